import assert from 'node:assert/strict';
import {
  ConfigError,
  DataverseError,
  EventError,
  ProviderError,
  isConfigError,
  isDataverseError,
  isEventError,
  isProviderError,
  isRelayError,
  isRetryable,
  isRetryableCode,
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
  ];
  for (const [code, retryable] of table) {
    it(`${code} is ${retryable ? '' : 'not '}retryable by its code`, () => {
      assert.equal(isRetryableCode(code), retryable);
    });
  }

  it('keeps the upstream answer and the retry delay', () => {
    const err = new DataverseError('DataverseThrottled', 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.', {
      upstream: { status: 429, headers: { 'retry-after': '7' }, body: { error: { code: '0x80072322' } }, code: '0x80072322' },
      retryAfterMs: 7000,
    });
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

  it('a config error lists each problem on its own line', () => {
    const err = new ConfigError('ConfigInvalid', [
      { source: 'relay.json', path: 'log.level', expected: 'one of "info"', found: '"loud" (string)' },
      { source: 'environment variable DATAVERSE_URL', path: 'dataverse.url', expected: 'an http(s) URL', found: '"x" (string)' },
    ]);
    assert.equal(
      err.message,
      'configuration has 2 problems\n  - relay.json: log.level: expected one of "info", found "loud" (string)\n  - environment variable DATAVERSE_URL: dataverse.url: expected an http(s) URL, found "x" (string)',
    );
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNRESET');
    assert.equal(new ProviderError('ProviderUnavailable', 'reset', { cause }).cause, cause);
  });
});
