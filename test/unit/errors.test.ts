import assert from 'node:assert/strict';
import {
  ConfigError,
  DataverseError,
  errorMessage,
  EventError,
  MessageTooLargeError,
  ProviderError,
  StartDeadlineError,
  isConfigError,
  isDataverseError,
  isEventError,
  isMessageTooLargeError,
  isProviderError,
  isRelayError,
  isRetryable,
  isRetryableCode,
  isStartDeadlineError,
  type RelayErrorCode,
} from '../../src/errors.js';

describe('errors', () => {
  const table: Array<[RelayErrorCode, boolean]> = [
    ['DataverseThrottled', true],
    ['DataverseUnavailable', true],
    ['DataverseBadRequest', false],
    ['DataverseNotFound', false],
    ['ProviderRateLimited', true],
    ['ProviderTimeout', true],
    ['ProviderRejected', false],
    ['ProviderUnauthorized', false],
    ['EventUndecodable', false],
    ['ConfigInvalid', false],
    ['MessageTooLarge', false],
    ['StartDeadlineMissed', false],
  ];
  for (const [code, retryable] of table) {
    it(`${code} is ${retryable ? '' : 'not '}retryable by its code`, () => {
      assert.equal(isRetryableCode(code), retryable);
    });
  }

  it('keeps the upstream answer and the retry delay', () => {
    const err = new DataverseError(
      'DataverseThrottled',
      'Number of requests exceeded the limit of 6000 over time window of 300 seconds.',
      {
        upstream: {
          status: 429,
          headers: { 'retry-after': '7' },
          body: { error: { code: '0x80072322' } },
          code: '0x80072322',
        },
        retryAfterMs: 7000,
      },
    );
    assert.equal(err.retryable, true);
    assert.equal(err.upstream?.status, 429);
    assert.equal(err.upstream?.headers?.['retry-after'], '7');
    assert.equal(err.retryAfterMs, 7000);
    assert.deepEqual(JSON.parse(JSON.stringify(err)).upstream.body, { error: { code: '0x80072322' } });
    assert.equal(err.name, 'DataverseError');
  });

  it('guards check the brand of each boundary, not the class', () => {
    const provider = new ProviderError('ProviderRejected', 'invalid number');
    assert.ok(isRelayError(provider) && isProviderError(provider));
    assert.ok(!isDataverseError(provider) && !isEventError(provider) && !isConfigError(provider));
    const lookalike = Object.assign(new Error('x'), { code: 'ProviderRejected', retryable: true });
    assert.ok(!isRelayError(lookalike), 'an error with the same fields but no brand is not ours');
    assert.equal(isRetryable(lookalike), false);
    const copied = { ...new EventError('EventUndecodable', 'broken JSON') };
    assert.ok(isEventError(copied), 'the brand survives a spread copy (as across module copies)');
  });

  it("the Service Bus sender's too-large refusal is ours, recognised by its brand and naming the message and sizes", () => {
    const err = new MessageTooLargeError('outbound', 'row-1', 300_000, 262_144);
    assert.ok(isRelayError(err) && isMessageTooLargeError(err));
    assert.deepEqual(
      [err.kind, err.code, err.retryable, err.name],
      ['servicebus', 'MessageTooLarge', false, 'MessageTooLargeError'],
    );
    assert.deepEqual(
      [err.queue, err.messageId, err.bodyBytes, err.maxSizeInBytes],
      ['outbound', 'row-1', 300_000, 262_144],
    );
    assert.equal(
      err.message,
      'message row-1 is too large for outbound: its JSON body is 300000 bytes and a batch holds at most 262144 bytes',
    );
    assert.ok(isMessageTooLargeError({ ...err }), 'the brand survives a spread copy');
    const lookalike = Object.assign(new Error('too large'), {
      code: 'MessageTooLarge',
      messageId: 'row-1',
      bodyBytes: 1,
      maxSizeInBytes: 1,
    });
    assert.ok(!isMessageTooLargeError(lookalike), 'the same fields without the brand are not the refusal');
    assert.ok(
      !isMessageTooLargeError(new StartDeadlineError(0, 'x')) &&
        !isMessageTooLargeError(new ProviderError('ProviderRejected', 'x')),
    );
  });

  it("the limiter's start deadline is ours, recognised by its brand, not its class", () => {
    const startBy = Date.UTC(2026, 0, 1, 12);
    const err = new StartDeadlineError(startBy, 'the sender is paused');
    assert.ok(isRelayError(err) && isStartDeadlineError(err) && !isRetryable(err));
    assert.deepEqual(
      [err.kind, err.code, err.startBy, err.why],
      ['limiter', 'StartDeadlineMissed', startBy, 'the sender is paused'],
    );
    assert.equal(err.message, 'the call could not start by 2026-01-01T12:00:00.000Z: the sender is paused');
    assert.ok(isStartDeadlineError({ ...err }), 'a copy (another module copy of the class) is still recognised');
    assert.ok(!isStartDeadlineError(Object.assign(new Error('x'), { name: 'StartDeadlineError', startBy, why: 'x' })));
    assert.ok(!isStartDeadlineError(new MessageTooLargeError('q', 'm', 2, 1)));
  });

  it('a config error lists each problem on its own line', () => {
    const err = new ConfigError('ConfigInvalid', [
      { source: 'relay.json', path: 'log.level', expected: 'one of "info"', found: '"loud" (string)' },
      {
        source: 'environment variable DATAVERSE_URL',
        path: 'dataverse.url',
        expected: 'an http(s) URL',
        found: '"x" (string)',
      },
    ]);
    assert.equal(
      err.message,
      'configuration has 2 problems\n  - relay.json: log.level: expected one of "info", found "loud" (string)\n  - environment variable DATAVERSE_URL: dataverse.url: expected an http(s) URL, found "x" (string)',
    );
  });

  it("errorMessage says what an AggregateError's inner errors say when it has no message of its own", () => {
    const lock = new Error('timed out waiting to acquire a lock for initMgmtLink');
    assert.equal(
      errorMessage(new AggregateError([lock, lock])),
      'timed out waiting to acquire a lock for initMgmtLink',
    );
    assert.equal(
      errorMessage(new AggregateError([new Error('connect ECONNREFUSED ::1:80'), 'refused twice'], 'connect failed')),
      'connect failed (connect ECONNREFUSED ::1:80; refused twice)',
    );
    assert.equal(errorMessage(new AggregateError([], 'nothing inside')), 'nothing inside');
    assert.equal(errorMessage(new Error('plain')), 'plain');
    assert.equal(errorMessage({ code: 1 }), '{"code":1}');
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNRESET');
    assert.equal(new ProviderError('ProviderUnavailable', 'reset', { cause }).cause, cause);
  });
});
