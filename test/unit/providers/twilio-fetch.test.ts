import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { TwilioProvider, createProvider, mapTwilioFetchResponse } from '../../../src/providers/index.js';
import { CaptureStream } from '../../helpers/capture.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { ACCOUNT_SID, AUTH_TOKEN, rejection } from './fixtures.js';
import { refusedUrl, startRecordingServer } from './recording-server.js';

const SID = 'SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const resource = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  account_sid: ACCOUNT_SID,
  sid: SID,
  direction: 'inbound',
  from: '+15551234567',
  to: '+15005550006',
  body: 'START',
  status: 'received',
  date_created: 'Thu, 01 Jan 2026 12:00:00 +0000',
  ...extra,
});

describe('twilio adapter: fetchMessage', () => {
  const track = closedAfterEach();
  const make = (baseUrl: string, log = new CaptureStream()) => {
    const provider = createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl },
      { timeoutMs: 500, log: createLogger({ level: 'debug', stream: log, pretty: false }) },
    );
    assert.ok(provider instanceof TwilioProvider);
    return provider;
  };

  it('GETs the Message resource with basic auth and no body; maps the fields (date_created RFC 2822 → ms)', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 200, body: resource() });
    const logs = new CaptureStream();
    const got = await make(server.url, logs).fetchMessage(SID, AbortSignal.timeout(5000));
    assert.deepEqual(got, {
      sid: SID,
      direction: 'inbound',
      from: '+15551234567',
      to: '+15005550006',
      body: 'START',
      dateCreated: Date.UTC(2026, 0, 1, 12, 0, 0),
    });
    const req = server.requests[0]!;
    assert.equal(req.method, 'GET');
    assert.equal(req.url, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${SID}.json`);
    assert.equal(
      req.headers['authorization'],
      `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
    );
    assert.equal(req.body, '');
    assert.equal(req.headers['content-length'], undefined);
    for (const secret of [AUTH_TOKEN, '15551234567', Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')])
      assert.ok(!logs.text.includes(secret));
    assert.ok(logs.lines().some((l) => l['outcome'] === 'found' && l['status'] === 200));
  });

  it('404 → undefined; 5xx → ProviderUnavailable, 429 → ProviderRateLimited (retryable); 401 → ProviderUnauthorized; no token in any error', async () => {
    const server = track(await startRecordingServer());
    const provider = make(server.url);
    server.reply({ status: 404, body: { code: 20404, message: 'The requested resource was not found', status: 404 } });
    assert.equal(await provider.fetchMessage(SID, AbortSignal.timeout(5000)), undefined);
    for (const [status, body, code, retryable] of [
      [503, { code: 20503, message: 'Service Unavailable', status: 503 }, 'ProviderUnavailable', true],
      [429, { code: 20429, message: 'Too Many Requests', status: 429 }, 'ProviderRateLimited', true],
      [401, { code: 20003, message: `Authenticate ${AUTH_TOKEN}`, status: 401 }, 'ProviderUnauthorized', false],
    ] as const) {
      server.reply({ status, body });
      const err = await rejection(provider.fetchMessage(SID, AbortSignal.timeout(5000)));
      assert.ok(isProviderError(err));
      assert.equal(err.code, code);
      assert.equal(err.retryable, retryable);
      assert.ok(!JSON.stringify(err.toJSON()).includes(AUTH_TOKEN));
    }
  });

  it('a connection refused → ProviderUnavailable (retryable); a sid that is not letters and digits is refused before any call', async () => {
    const provider = make(await refusedUrl());
    const err = await rejection(provider.fetchMessage(SID, AbortSignal.timeout(5000)));
    assert.equal(err.code, 'ProviderUnavailable');
    assert.equal(err.retryable, true);
    await assert.rejects(provider.fetchMessage('../Messages', AbortSignal.timeout(5000)), TypeError);
  });

  it('a 2xx without a sid, direction or readable date_created is unreadable (not retryable)', () => {
    for (const body of [
      resource({ sid: undefined }),
      resource({ direction: 1 }),
      resource({ date_created: 'yesterday' }),
      'not json',
    ]) {
      const out = mapTwilioFetchResponse({ status: 200, headers: {}, body });
      assert.ok(isProviderError(out));
      assert.equal(out.code, 'ProviderAnswerUnreadable');
    }
    const nulls = mapTwilioFetchResponse({ status: 200, headers: {}, body: resource({ from: null, body: null }) });
    assert.ok(!isProviderError(nulls) && nulls !== undefined);
    assert.equal(nulls.from, '');
    assert.equal(nulls.body, '');
  });
});
