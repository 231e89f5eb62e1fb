import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { createProvider, TwilioProvider } from '../../../src/providers/index.js';
import { mapTwilioListResponse } from '../../../src/providers/twilio/map-response.js';
import { CaptureStream } from '../../helpers/capture.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { ACCOUNT_SID, AUTH_TOKEN, rejection } from './fixtures.js';
import { startRecordingServer } from './recording-server.js';

const FROM = '+15005550006';
const TO = '+15551234567';
const message = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  sid: 'SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  direction: 'outbound-api',
  from: FROM,
  to: TO,
  messaging_service_sid: null,
  body: 'Hello',
  status: 'queued',
  date_created: 'Thu, 01 Jan 2026 12:00:00 +0000',
  date_sent: null,
  ...extra,
});
const AT = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('twilio adapter: findSent (the Messages list)', () => {
  const track = closedAfterEach();
  const make = (baseUrl: string, log = new CaptureStream()) => {
    const provider = createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl },
      { timeoutMs: 500, log: createLogger({ level: 'debug', stream: log, pretty: false }) },
    );
    assert.ok(provider instanceof TwilioProvider);
    return provider;
  };

  it('GETs the list by To and From, 1000 a page, without DateSent; matches body and time; logs no number or token', async () => {
    const server = track(await startRecordingServer());
    server.reply({
      status: 200,
      body: { messages: [message({ sid: 'SMother', body: 'Hello there' }), message()], next_page_uri: null },
    });
    const logs = new CaptureStream();
    const found = await make(server.url, logs).findSent({
      from: FROM,
      to: TO,
      text: 'Hello',
      since: AT - 1000,
      until: AT + 1000,
    });
    assert.deepEqual(found, { providerMessageId: 'SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', status: 'queued' });
    const req = server.requests[0]!;
    assert.equal(req.method, 'GET');
    const url = new URL(req.url, server.url);
    assert.equal(url.pathname, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    assert.deepEqual(Object.fromEntries(url.searchParams), { To: TO, From: FROM, PageSize: '1000' });
    assert.equal(
      req.headers['authorization'],
      `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
    );
    for (const secret of [AUTH_TOKEN, TO.slice(1), FROM.slice(1)])
      assert.ok(!logs.text.includes(secret), `log without ${secret}`);
  });

  it('no match: inbound, another recipient or sender, created outside the span (± 60 s), a sid excluded', async () => {
    const server = track(await startRecordingServer());
    const provider = make(server.url);
    const query = { from: FROM, to: TO, text: 'Hello', since: AT, until: AT };
    for (const m of [
      message({ direction: 'inbound' }),
      message({ to: '+15550000000' }),
      message({ from: '+15550000001' }),
      message({ date_created: 'Thu, 01 Jan 2026 11:58:59 +0000' }),
      message({ date_created: 'Thu, 01 Jan 2026 12:01:01 +0000' }),
    ]) {
      server.reply({ status: 200, body: { messages: [m], next_page_uri: null } });
      assert.equal(await provider.findSent({ ...query }), undefined, JSON.stringify(m));
    }
    server.reply({
      status: 200,
      body: { messages: [message({ date_created: 'Thu, 01 Jan 2026 12:00:59 +0000' })], next_page_uri: null },
    });
    assert.ok(await provider.findSent(query), 'within the skew');
    assert.equal(
      await provider.findSent({ ...query, exclude: new Set(['SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']) }),
      undefined,
    );
  });

  it('a Messaging Service sender: no From filter, matched on messaging_service_sid', async () => {
    const server = track(await startRecordingServer());
    const service = 'MG0123456789abcdef0123456789abcdef';
    server.reply({
      status: 200,
      body: { messages: [message({ from: '+15005550009', messaging_service_sid: service })], next_page_uri: null },
    });
    assert.ok(await make(server.url).findSent({ from: service, to: TO, text: 'Hello', since: AT, until: AT }));
    assert.deepEqual(Object.fromEntries(new URL(server.requests[0]!.url, server.url).searchParams), {
      To: TO,
      PageSize: '1000',
    });
  });

  it('follows next_page_uri on the same origin only; a list it cannot read, or an error, rejects', async () => {
    const server = track(await startRecordingServer());
    const provider = make(server.url);
    const query = { from: FROM, to: TO, text: 'Hello', since: AT, until: AT };
    server.reply((req) =>
      req.url.includes('Page=1')
        ? { status: 200, body: { messages: [message()], next_page_uri: null } }
        : {
            status: 200,
            body: {
              messages: [message({ body: 'other' })],
              next_page_uri: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json?To=x&PageSize=1000&Page=1&PageToken=PAx`,
            },
          },
    );
    assert.ok(await provider.findSent(query));
    assert.equal(server.requests.length, 2);
    server.reply({
      status: 200,
      body: { messages: [], next_page_uri: 'http://elsewhere.example/2010-04-01/Accounts/x/Messages.json?Page=1' },
    });
    assert.match((await rejection(provider.findSent(query))).message, /another origin/);
    server.reply({ status: 200, body: { messages: 'none' } });
    assert.equal((await rejection(provider.findSent(query))).code, 'ProviderAnswerUnreadable');
    server.reply({ status: 503, body: { code: 20503, message: 'Service Unavailable', status: 503 } });
    assert.equal((await rejection(provider.findSent(query))).code, 'ProviderUnavailable');
  });

  it('maps a list answer: unreadable shapes are errors, null fields empty', () => {
    for (const body of [
      { messages: [message({ sid: undefined })] },
      { messages: [message({ date_created: 'soon' })] },
      { messages: [], next_page_uri: 3 },
      'not json',
    ]) {
      const out = mapTwilioListResponse({ status: 200, headers: {}, body });
      assert.ok(isProviderError(out), JSON.stringify(body));
    }
    const page = mapTwilioListResponse({
      status: 200,
      headers: {},
      body: { messages: [message({ body: null })], next_page_uri: '' },
    });
    assert.ok(!isProviderError(page));
    assert.equal(page.messages[0]?.body, '');
    assert.equal(page.messages[0]?.dateCreated, AT);
    assert.equal(page.nextPageUri, undefined);
  });
});
