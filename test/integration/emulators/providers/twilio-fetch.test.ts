import assert from 'node:assert/strict';
import type { InboundReply } from '../../../../src/emulators/providers/index.js';
import {
  ACCOUNT,
  control,
  LONG_CODE,
  ManualClock,
  simulators,
  sms,
  TOKEN,
  twilioSend,
  type Answer,
} from './helpers.js';
import { receivers } from './receiver.js';

const TO = '+4915112345678';
const SERVICE = 'MG0123456789abcdef0123456789abcdef';
const OTHER_ACCOUNT = 'AC11111111111111111111111111111111';
const FAST = { delayMs: 0, retryDelayMs: 1 };

/** `GET /2010-04-01/Accounts/{account}/Messages/{sid}.json` with basic auth (`token: null`: none). */
async function twilioFetch(
  url: string,
  sid: string,
  opts: { account?: string; token?: string | null; method?: string } = {},
): Promise<Answer<Record<string, unknown>>> {
  const account = opts.account ?? ACCOUNT;
  const headers: Record<string, string> = {};
  if (opts.token !== null)
    headers['Authorization'] = `Basic ${Buffer.from(`${account}:${opts.token ?? TOKEN}`).toString('base64')}`;
  const res = await fetch(`${url}/2010-04-01/Accounts/${account}/Messages/${sid}.json`, {
    method: opts.method ?? 'GET',
    headers,
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: (text === '' ? undefined : JSON.parse(text)) as Record<string, unknown>,
  };
}

const form = (body: string): Record<string, string> => Object.fromEntries(new URLSearchParams(body));

describe('provider simulators: Twilio Message fetch', () => {
  const start = simulators();
  const receiver = receivers();

  it('an outbound message before its first status callback: the resource its send answered (queued, no date_sent)', async () => {
    const clock = new ManualClock();
    const rx = await receiver();
    const sim = await start({ clock: clock.read, callbacks: { delayMs: 60_000 } });
    const sent = await twilioSend(sim.url, { ...sms(TO, 'Hi there'), StatusCallback: `${rx.url}/status` });
    const sid = String(sent.body['sid']);
    clock.advance(5_000);
    const before = await twilioFetch(sim.url, sid);
    assert.equal(before.status, 200);
    assert.match(String(before.headers.get('content-type')), /application\/json/);
    assert.deepEqual(before.body, sent.body, 'before any callback the resource is the one the send answered');
    assert.equal(before.body['status'], 'queued');
    assert.equal(before.body['direction'], 'outbound-api');
    assert.equal(before.body['date_sent'], null);
  });

  it('an outbound message after its callbacks: delivered, date_sent set, RFC 2822 dates; undelivered carries error_code and error_message', async () => {
    const clock = new ManualClock();
    const rx = await receiver();
    const sim = await start({ clock: clock.read, callbacks: FAST });
    const sent = await twilioSend(sim.url, { ...sms(TO, 'Hi there'), StatusCallback: `${rx.url}/status` });
    await sim.callbacksIdle();
    assert.deepEqual(
      rx.at('/status').map((r) => form(r.body)['MessageStatus']),
      ['sent', 'delivered'],
    );
    const got = await twilioFetch(sim.url, String(sent.body['sid']));
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { ...sent.body, status: 'delivered', date_sent: 'Thu, 01 Jan 2026 12:00:00 +0000' });

    const failing = await start({
      clock: clock.read,
      callbacks: { ...FAST, undeliveredRate: 1 },
      twilio: { errorCodes: [30003] },
    });
    const lost = await twilioSend(failing.url, { ...sms(TO), StatusCallback: `${rx.url}/lost` });
    await failing.callbacksIdle();
    const undelivered = await twilioFetch(failing.url, String(lost.body['sid']));
    assert.equal(undelivered.body['status'], 'undelivered');
    assert.equal(undelivered.body['error_code'], 30003);
    assert.equal(undelivered.body['error_message'], 'Unreachable destination handset');
  });

  it('without status callbacks the fetched status is the final one at once (a failed message has no date_sent)', async () => {
    const sim = await start({
      callbacks: { ...FAST, undeliveredRate: 1 },
      twilio: { failedShare: 1, errorCodes: [30006] },
    });
    const sent = await twilioSend(sim.url, sms(TO));
    const got = await twilioFetch(sim.url, String(sent.body['sid']));
    assert.equal(got.body['status'], 'failed');
    assert.equal(got.body['error_code'], 30006);
    assert.equal(got.body['date_sent'], null);
    const ok = await start();
    const delivered = await twilioFetch(ok.url, String((await twilioSend(ok.url, sms(TO))).body['sid']));
    assert.equal(delivered.body['status'], 'delivered');
    assert.equal(delivered.body['date_sent'], delivered.body['date_created']);
  });

  it('an inbound reply: remembered with its MessageSid (sim.inboundReplies, /_simulator/inbound) and fetchable as received, inbound', async () => {
    const clock = new ManualClock();
    const rx = await receiver();
    const sim = await start({
      clock: clock.read,
      callbacks: FAST,
      twilio: { inboundUrls: { [LONG_CODE]: `${rx.url}/inbound`, [SERVICE]: `${rx.url}/inbound` } },
      recipients: { replyRate: 1, keywords: ['START'] },
    });
    const sent = await twilioSend(sim.url, sms(TO, 'Reply START to subscribe'));
    await sim.callbacksIdle();
    const [posted] = rx.at('/inbound').map((r) => form(r.body));
    assert.ok(posted);
    const sid = posted['MessageSid']!;
    assert.match(sid, /^SM[0-9a-f]{32}$/);
    assert.notEqual(sid, sent.body['sid']);
    const replies = sim.inboundReplies();
    assert.deepEqual(replies, [
      {
        sid,
        accountSid: ACCOUNT,
        from: TO,
        to: LONG_CODE,
        body: 'START',
        time: clock.now,
        inReplyTo: String(sent.body['sid']),
        intent: 'keyword',
      },
    ] satisfies InboundReply[]);
    assert.deepEqual((await control(sim.url, 'GET', 'inbound')).body, replies);

    const got = await twilioFetch(sim.url, sid);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, {
      account_sid: ACCOUNT,
      api_version: '2010-04-01',
      body: 'START',
      date_created: 'Thu, 01 Jan 2026 12:00:00 +0000',
      date_sent: 'Thu, 01 Jan 2026 12:00:00 +0000',
      date_updated: 'Thu, 01 Jan 2026 12:00:00 +0000',
      direction: 'inbound',
      error_code: null,
      error_message: null,
      from: TO,
      messaging_service_sid: null,
      num_media: '0',
      num_segments: '1',
      price: null,
      price_unit: 'USD',
      sid,
      status: 'received',
      subresource_uris: { media: `/2010-04-01/Accounts/${ACCOUNT}/Messages/${sid}/Media.json` },
      to: LONG_CODE,
      uri: `/2010-04-01/Accounts/${ACCOUNT}/Messages/${sid}.json`,
    });

    // A reply to a Messaging Service send names the service; a later reply has a later date; reset() forgets neither.
    clock.advance(3_600_000);
    await twilioSend(sim.url, { To: '+4915112345679', MessagingServiceSid: SERVICE, Body: 'x' });
    await sim.callbacksIdle();
    sim.reset();
    const later = sim.inboundReplies()[1]!;
    assert.equal(later.to, SERVICE);
    const viaService = await twilioFetch(sim.url, later.sid);
    assert.equal(viaService.body['messaging_service_sid'], SERVICE);
    assert.equal(viaService.body['date_created'], 'Thu, 01 Jan 2026 13:00:00 +0000');
    assert.equal((await twilioFetch(sim.url, sid)).status, 200);
  });

  it('a repeated inbound callback is one reply; a STOP is remembered with intent stop; no inbound URL: nothing remembered', async () => {
    const rx = await receiver();
    const sim = await start({
      callbacks: { ...FAST, repeatRate: 1 },
      twilio: { inboundUrls: { [LONG_CODE]: `${rx.url}/inbound` } },
      recipients: { stopRate: 1 },
    });
    await twilioSend(sim.url, sms(TO));
    await twilioSend(sim.url, sms(TO, 'from elsewhere', '+4915100000002'));
    await sim.callbacksIdle();
    const posted = rx.at('/inbound').map((r) => form(r.body)['MessageSid']);
    assert.equal(posted.length, 2, 'sent and repeated');
    assert.equal(posted[0], posted[1]);
    const replies = sim.inboundReplies();
    assert.equal(replies.length, 1);
    assert.equal(replies[0]!.sid, posted[0]);
    assert.equal(replies[0]!.intent, 'stop');
    assert.equal(replies[0]!.body, 'STOP');
    assert.equal(sim.callbackStats().kinds.inbound.unroutable, 1);
  });

  it('refuses like Twilio: 401 20003 without or with wrong credentials, 404 20404 for an unknown sid or another account, 405 for POST', async () => {
    const sim = await start({ twilio: { authTokens: { [ACCOUNT]: TOKEN, [OTHER_ACCOUNT]: 'other-token' } } });
    const sid = String((await twilioSend(sim.url, sms(TO))).body['sid']);
    for (const token of [null, 'wrong-token']) {
      const res = await twilioFetch(sim.url, sid, { token });
      assert.equal(res.status, 401);
      assert.deepEqual(res.body, {
        code: 20003,
        message: 'Authenticate',
        more_info: 'https://www.twilio.com/docs/errors/20003',
        status: 401,
      });
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="Twilio API"');
    }
    const unknown = 'SM00000000000000000000000000000000';
    const missing = await twilioFetch(sim.url, unknown);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, {
      code: 20404,
      message: `The requested resource /2010-04-01/Accounts/${ACCOUNT}/Messages/${unknown}.json was not found`,
      more_info: 'https://www.twilio.com/docs/errors/20404',
      status: 404,
    });
    const elsewhere = await twilioFetch(sim.url, sid, { account: OTHER_ACCOUNT, token: 'other-token' });
    assert.equal(elsewhere.status, 404);
    assert.equal(elsewhere.body['code'], 20404);
    const post = await twilioFetch(sim.url, sid, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
    assert.equal(sim.stats().twilio.requests, 1, 'fetches are not counted as sends');
  });
});
