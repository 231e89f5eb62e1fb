import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startProviderSimulators, type CallbackRecord } from '../../../../src/emulators/providers/index.js';
import { verifyWebhook } from '../../../../src/providers/index.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import {
  ACCOUNT,
  BOT_TOKEN,
  contractPayload,
  contractSend,
  control,
  LONG_CODE,
  SECRET,
  simulators,
  sms,
  telegramSend,
  TOKEN,
  twilioSend,
} from './helpers.js';
import { receivers, type Received } from './receiver.js';

/** X-Twilio-Signature recomputed here, from Twilio's description, independently of the simulator's signer. */
function twilioSignatureOk(token: string, url: string, r: Received): boolean {
  const params = new URLSearchParams(r.body);
  const sorted = [...params.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const data = url + sorted.map(([k, v]) => k + v).join('');
  const expected = Buffer.from(createHmac('sha1', token).update(data, 'utf8').digest('base64'));
  const given = Buffer.from(String(r.headers['x-twilio-signature'] ?? ''));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const form = (r: Received): Record<string, string> => Object.fromEntries(new URLSearchParams(r.body));
const recipient = (i: number): string => `+49151${String(10_000_000 + i)}`;
const FAST = { delayMs: 0, retryDelayMs: 1 };

async function inBatches(n: number, size: number, send: (i: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < n; start += size)
    await Promise.all(Array.from({ length: Math.min(size, n - start) }, (_, k) => send(start + k)));
}

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);
}

describe('provider simulators: callbacks, replies and clicks', () => {
  const start = simulators();
  const track = closedAfterEach();
  const receiver = receivers();

  it('Twilio: a message with a StatusCallback gets sent then delivered, form-encoded, signed with the auth token of its send', async () => {
    const rx = await receiver();
    const sim = await start({ seed: 1 });
    const callback = `${rx.url}/callbacks/sms/twilio/status?t=opaque-token-value`;
    const sent = await twilioSend(sim.url, { ...sms(recipient(1), 'Hi'), StatusCallback: callback });
    assert.equal(sent.status, 201);
    await sim.callbacksIdle();
    const got = rx.at('/callbacks/sms/twilio/status');
    assert.deepEqual(
      got.map((r) => form(r)['MessageStatus']),
      ['sent', 'delivered'],
    );
    for (const r of got) {
      assert.equal(r.method, 'POST');
      assert.match(String(r.headers['content-type']), /application\/x-www-form-urlencoded/);
      assert.ok(twilioSignatureOk(TOKEN, callback, r), 'X-Twilio-Signature verifies');
      assert.ok(!twilioSignatureOk('another-token', callback, r));
      const p = form(r);
      assert.equal(p['MessageSid'], sent.body['sid']);
      assert.equal(p['SmsSid'], sent.body['sid']);
      assert.equal(p['SmsStatus'], p['MessageStatus']);
      assert.equal(p['AccountSid'], ACCOUNT);
      assert.equal(p['From'], LONG_CODE);
      assert.equal(p['To'], recipient(1));
      assert.equal(p['ApiVersion'], '2010-04-01');
      assert.equal(p['ErrorCode'], undefined);
    }
    const records = sim.callbacks();
    assert.equal(records.length, 2);
    assert.deepEqual(records[0], {
      time: records[0]!.time,
      provider: 'twilio',
      kind: 'status',
      method: 'POST',
      url: `${rx.url}/callbacks/sms/twilio/status?t=***`,
      providerMessageId: String(sent.body['sid']),
      recipient: recipient(1),
      summary: { status: 'sent' },
      status: 204,
      attempt: 1,
      repeat: false,
      ok: true,
    } satisfies CallbackRecord);
    assert.deepEqual(sim.callbackStats().kinds.status, {
      sent: 2,
      succeeded: 2,
      failed: 0,
      retries: 0,
      repeats: 0,
      unroutable: 0,
    });
  });

  it('Twilio: with a fixed seed, undelivered/failed, read, clicks, keyword and STOP replies follow their rates over 200 messages', async () => {
    const rx = await receiver();
    const sim = await start({
      seed: 42,
      twilio: {
        mpsBySender: { [LONG_CODE]: 1000 },
        failedShare: 0.5,
        inboundUrls: { [LONG_CODE]: `${rx.url}/callbacks/sms/twilio/inbound` },
      },
      callbacks: { ...FAST, undeliveredRate: 0.2, readRate: 0.5 },
      recipients: { clickRate: 0.5, replyRate: 0.3, stopRate: 0.1, keywords: ['YES', 'INFO'] },
    });
    const text = `Sale! ${rx.url}/l/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA and ${rx.url}/l/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.`;
    await inBatches(200, 25, (i) =>
      twilioSend(sim.url, {
        ...sms(recipient(i), text),
        StatusCallback: `${rx.url}/callbacks/sms/twilio/status?t=m${i}`,
      }),
    );
    await sim.callbacksIdle();

    const finals = new Map<string, string>();
    for (const r of rx.at('/callbacks/sms/twilio/status')) {
      const p = form(r);
      assert.ok(twilioSignatureOk(TOKEN, `${rx.url}${r.path}`, r));
      if (p['MessageStatus'] !== 'sent' && p['MessageStatus'] !== 'read')
        finals.set(p['MessageSid']!, p['MessageStatus']!);
      if (p['MessageStatus'] === 'undelivered' || p['MessageStatus'] === 'failed')
        assert.ok(['30003', '30005', '30006'].includes(p['ErrorCode']!), `ErrorCode ${p['ErrorCode']}`);
    }
    const count = (s: string): number => [...finals.values()].filter((v) => v === s).length;
    assert.equal(finals.size, 200);
    const delivered = count('delivered');
    near(200 - delivered, 40, 16, 'not delivered');
    near(count('failed'), (200 - delivered) / 2, 12, 'failed among them');
    const reads = rx.at('/callbacks/sms/twilio/status').filter((r) => form(r)['MessageStatus'] === 'read').length;
    near(reads, delivered * 0.5, 25, 'read');
    const clicks = rx.received.filter((r) => r.path.startsWith('/l/'));
    assert.ok(clicks.every((c) => c.method === 'GET'));
    near(clicks.length, delivered * 2 * 0.5, 30, 'clicks');
    const inbound = rx.at('/callbacks/sms/twilio/inbound');
    const stops = inbound.filter((r) => form(r)['Body'] === 'STOP').length;
    const keywords = inbound.filter((r) => ['YES', 'INFO'].includes(form(r)['Body']!)).length;
    near(stops, delivered * 0.1, 12, 'STOP replies');
    near(keywords, delivered * 0.3, 20, 'keyword replies');
    assert.equal(stops + keywords, inbound.length);
    for (const r of inbound) {
      assert.ok(twilioSignatureOk(TOKEN, `${rx.url}/callbacks/sms/twilio/inbound`, r), 'inbound signature');
      const p = form(r);
      assert.equal(p['To'], LONG_CODE);
      assert.match(p['From']!, /^\+49151/);
      assert.match(p['MessageSid']!, /^SM[0-9a-f]{32}$/);
      assert.equal(p['AccountSid'], ACCOUNT);
      assert.equal(p['NumMedia'], '0');
      assert.equal(p['SmsStatus'], 'received');
    }
    const kinds = sim.callbackStats().kinds;
    assert.equal(kinds.click.sent, clicks.length);
    assert.equal(kinds.click.succeeded, clicks.length, 'a 302 is a successful click');
    assert.equal(kinds.inbound.sent, inbound.length);
    const clickRecord = sim.callbacks({ kind: 'click' })[0]!;
    assert.equal(clickRecord.status, 302);
    assert.match(clickRecord.url, /\/l\/AAAA\*\*\*$|\/l\/BBBB\*\*\*$/);
    assert.ok(['0', '1'].includes(clickRecord.summary['link']!));
  });

  it('Twilio: the same seed gives the same fates', async () => {
    const rx = await receiver();
    const run = async (): Promise<string[]> => {
      rx.received.length = 0;
      const sim = track(
        await startProviderSimulators({
          seed: 7,
          twilio: { mpsBySender: { [LONG_CODE]: 1000 } },
          callbacks: { ...FAST, undeliveredRate: 0.5 },
        }),
      );
      for (let i = 0; i < 20; i += 1)
        await twilioSend(sim.url, { ...sms(recipient(i)), StatusCallback: `${rx.url}/s?i=${i}` });
      await sim.callbacksIdle();
      return rx.received
        .filter((r) => form(r)['MessageStatus'] !== 'sent')
        .map((r) => `${r.path}:${form(r)['MessageStatus']}`)
        .sort();
    };
    assert.deepEqual(await run(), await run());
  });

  it('Twilio: no StatusCallback or statusCallbacks: false sends nothing; a reply without an inbound URL is unroutable', async () => {
    const rx = await receiver();
    const sim = await start({
      twilio: { statusCallbacks: false },
      callbacks: FAST,
      recipients: { replyRate: 1, keywords: ['YES'] },
    });
    await twilioSend(sim.url, { ...sms(recipient(1)), StatusCallback: `${rx.url}/s` });
    await twilioSend(sim.url, sms(recipient(2)));
    await sim.callbacksIdle();
    assert.equal(rx.received.length, 0);
    assert.equal(sim.callbackStats().kinds.inbound.unroutable, 2);
  });

  it('Twilio: initialStatusCallback adds queued; a Messaging Service send reports queued and carries MessagingServiceSid', async () => {
    const rx = await receiver();
    const service = 'MG0123456789abcdef0123456789abcdef';
    const sim = await start({ twilio: { initialStatusCallback: true }, callbacks: FAST });
    await twilioSend(sim.url, { To: recipient(1), From: LONG_CODE, Body: 'x', StatusCallback: `${rx.url}/direct` });
    await twilioSend(sim.url, {
      To: recipient(2),
      MessagingServiceSid: service,
      Body: 'x',
      StatusCallback: `${rx.url}/service`,
    });
    await sim.callbacksIdle();
    assert.deepEqual(
      rx.at('/direct').map((r) => form(r)['MessageStatus']),
      ['queued', 'sent', 'delivered'],
    );
    const viaService = rx.at('/service').map((r) => form(r));
    assert.deepEqual(
      viaService.map((p) => p['MessageStatus']),
      ['accepted', 'queued', 'sent', 'delivered'],
    );
    assert.equal(viaService[0]!['MessagingServiceSid'], service);
    assert.equal(viaService[0]!['From'], undefined);
  });

  it('Telegram: setWebhook/getWebhookInfo/deleteWebhook; replies are updates with the secret token, update_id increasing', async () => {
    const rx = await receiver();
    const sim = await start({
      telegram: { perBot: 1000 },
      callbacks: FAST,
      recipients: { replyRate: 1, keywords: ['YES'] },
    });
    const call = async (method: string, params: Record<string, unknown>) => {
      const res = await fetch(`${sim.url}/bot${BOT_TOKEN}/${method}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(params),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    assert.deepEqual((await call('getWebhookInfo', {})).body, {
      ok: true,
      result: { url: '', has_custom_certificate: false, pending_update_count: 0 },
    });
    const bad = await call('setWebhook', { url: `${rx.url}/tg`, secret_token: 'not allowed!' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body['ok'], false);
    const set = await call('setWebhook', { url: `${rx.url}/callbacks/tg/telegram`, secret_token: 'tg_secret-1' });
    assert.deepEqual(set.body, { ok: true, result: true, description: 'Webhook was set' });
    const info = (await call('getWebhookInfo', {})).body['result'] as Record<string, unknown>;
    assert.equal(info['url'], `${rx.url}/callbacks/tg/telegram`);
    assert.equal(info['max_connections'], 40);

    for (let i = 1; i <= 5; i += 1)
      assert.equal((await telegramSend(sim.url, { chat_id: 1000 + i, text: `Hello ${i}` })).status, 200);
    await sim.callbacksIdle();
    const updates = rx.at('/callbacks/tg/telegram');
    assert.equal(updates.length, 5);
    const bodies = updates.map(
      (r) =>
        JSON.parse(r.body) as {
          update_id: number;
          message: {
            message_id: number;
            from: { id: number; is_bot: boolean };
            chat: { id: number; type: string };
            date: number;
            text: string;
          };
        },
    );
    for (const [k, r] of updates.entries()) {
      assert.equal(r.headers['x-telegram-bot-api-secret-token'], 'tg_secret-1');
      assert.match(String(r.headers['content-type']), /application\/json/);
      const u = bodies[k]!;
      assert.equal(u.message.text, 'YES');
      assert.equal(u.message.chat.type, 'private');
      assert.equal(u.message.from.is_bot, false);
      assert.equal(u.message.from.id, u.message.chat.id);
      assert.equal(u.message.message_id, 2, 'after the bot message 1 in that chat');
      assert.ok(Number.isInteger(u.message.date));
    }
    const ids = bodies.map((u) => u.update_id).sort((a, b) => a - b);
    for (let k = 1; k < ids.length; k += 1) assert.equal(ids[k], ids[k - 1]! + 1, 'update_id increases by one');
    assert.deepEqual(new Set(bodies.map((u) => u.message.chat.id)), new Set([1001, 1002, 1003, 1004, 1005]));
    const record = sim.callbacks({ provider: 'telegram' })[0]!;
    assert.equal(record.kind, 'update');
    assert.equal(record.summary['intent'], 'keyword');
    assert.equal(record.providerMessageId, '1');

    assert.deepEqual((await call('deleteWebhook', {})).body, {
      ok: true,
      result: true,
      description: 'Webhook was deleted',
    });
    await telegramSend(sim.url, { chat_id: 2000, text: 'after delete' });
    await sim.callbacksIdle();
    assert.equal(rx.received.length, 5);
    assert.equal(sim.callbackStats().kinds.update.unroutable, 1);
    assert.equal(sim.stats().telegram.accepted, 6, 'webhook methods are not messages');
  });

  it('Telegram: a failing webhook is retried (non-2xx), and getWebhookInfo shows the last error', async () => {
    const rx = await receiver();
    let failures = 1;
    rx.answer = () => (failures-- > 0 ? 503 : 200);
    const sim = await start({
      telegram: { perBot: 1000 },
      callbacks: FAST,
      recipients: { replyRate: 1, keywords: ['YES'] },
    });
    await fetch(`${sim.url}/bot${BOT_TOKEN}/setWebhook?url=${encodeURIComponent(`${rx.url}/tg`)}`);
    await telegramSend(sim.url, { chat_id: 5, text: 'x' });
    await sim.callbacksIdle();
    assert.deepEqual(
      sim.callbacks().map((r) => [r.attempt, r.status, r.ok]),
      [
        [1, 503, false],
        [2, 200, true],
      ],
    );
    assert.equal(
      rx.received[0]!.headers['x-telegram-bot-api-secret-token'],
      undefined,
      'no secret token set, no header',
    );
    rx.answer = () => 500;
    await telegramSend(sim.url, { chat_id: 6, text: 'x' });
    await sim.callbacksIdle();
    assert.equal(sim.callbackStats().kinds.update.failed, 1);
    assert.equal(sim.callbacks().filter((r) => !r.repeat).length, 5, 'two + three attempts (maxRetries 2)');
    const info = (await (await fetch(`${sim.url}/bot${BOT_TOKEN}/getWebhookInfo`)).json()) as {
      result: Record<string, unknown>;
    };
    assert.equal(info.result['last_error_message'], 'HTTP 500');
    assert.equal(typeof info.result['last_error_date'], 'number');
  });

  it('contract: delivery reports and inbound messages, signed with Standard Webhooks (verified by src/providers verifyWebhook)', async () => {
    const rx = await receiver();
    const other = `whsec_${Buffer.from('another secret for the callbacks').toString('base64')}`;
    const sim = await start({
      seed: 3,
      contract: {
        reportsUrl: `${rx.url}/reports`,
        inboundUrl: `${rx.url}/inbound`,
        channelUrls: { rt: { reportsUrl: `${rx.url}/rt-reports` } },
        callbackSecrets: [other],
      },
      callbacks: { ...FAST, readRate: 1 },
      recipients: { stopRate: 1, stopWord: 'UNSUBSCRIBE' },
    });
    const sent = await contractSend(sim.url, contractPayload('req-1', '+4915112340001', 'sender-1', 'Hello'), {
      channel: 'sms',
    });
    assert.equal(sent.body['Status'], 'Sent');
    await contractSend(sim.url, contractPayload('req-2'), { channel: 'rt' });
    await sim.callbacksIdle();
    const reports = rx.at('/reports');
    assert.deepEqual(
      reports.map((r) => (JSON.parse(r.body) as { Status: string }).Status),
      ['Delivered', 'Read'],
    );
    for (const r of [...reports, ...rx.at('/inbound'), ...rx.at('/rt-reports')]) {
      const check = verifyWebhook(r.body, r.headers, { secrets: other });
      assert.ok(check.ok, `signature: ${JSON.stringify(check)}`);
      assert.equal(verifyWebhook(r.body, r.headers, { secrets: SECRET }).ok, false);
    }
    assert.deepEqual(JSON.parse(reports[0]!.body), {
      ChannelDefinitionId: '44444444-4444-4444-8444-444444444444',
      RequestId: 'req-1',
      MessageId: sent.body['MessageId'],
      From: 'sender-1',
      Status: 'Delivered',
      StatusDetails: {},
    });
    assert.notEqual(reports[0]!.headers['webhook-id'], reports[1]!.headers['webhook-id']);
    const inbound = rx.at('/inbound').map((r) => JSON.parse(r.body) as Record<string, unknown>);
    assert.equal(inbound.length, 2, 'both channels use the global inbound URL');
    assert.deepEqual(
      { ...inbound[0], MessageId: 'x' },
      {
        ChannelDefinitionId: '44444444-4444-4444-8444-444444444444',
        MessageId: 'x',
        From: '+4915112340001',
        To: 'sender-1',
        Message: { text: 'UNSUBSCRIBE' },
      },
    );
    assert.equal(rx.at('/rt-reports').length, 2, 'the per-channel reports URL');
    const records = sim.callbacks({ provider: 'contract', kind: 'report' });
    assert.ok(records.every((r) => r.idempotencyKey === 'req-1' || r.idempotencyKey === 'req-2'));
  });

  it('contract: undeliveredRate gives NotDelivered reports and no replies; secrets sign when callbackSecrets is not set', async () => {
    const rx = await receiver();
    const sim = await start({
      contract: { secrets: [SECRET], reportsUrl: `${rx.url}/reports`, inboundUrl: `${rx.url}/inbound` },
      callbacks: { ...FAST, undeliveredRate: 1 },
      recipients: { replyRate: 1, keywords: ['YES'] },
    });
    const body = contractPayload('req-9');
    await contractSend(sim.url, body, { sign: { secret: SECRET, timestampSeconds: Math.floor(Date.now() / 1000) } });
    await sim.callbacksIdle();
    const [report] = rx.at('/reports');
    assert.equal((JSON.parse(report!.body) as { Status: string }).Status, 'NotDelivered');
    assert.ok(verifyWebhook(report!.body, report!.headers, { secrets: SECRET }).ok);
    assert.equal(rx.at('/inbound').length, 0);
  });

  it('repeatRate 1: every callback goes twice, recorded as a repeat; Twilio identical, Standard Webhooks with the same webhook-id', async () => {
    const rx = await receiver();
    const sim = await start({
      contract: { secrets: [SECRET], reportsUrl: `${rx.url}/reports` },
      callbacks: { ...FAST, repeatRate: 1 },
    });
    await twilioSend(sim.url, { ...sms(recipient(1)), StatusCallback: `${rx.url}/status` });
    await contractSend(sim.url, contractPayload('req-r'), {
      sign: { secret: SECRET, timestampSeconds: Math.floor(Date.now() / 1000) },
    });
    await sim.callbacksIdle();
    const status = rx.at('/status');
    assert.equal(status.length, 4);
    assert.equal(status[0]!.body, status[1]!.body);
    assert.equal(status[0]!.headers['x-twilio-signature'], status[1]!.headers['x-twilio-signature']);
    const reports = rx.at('/reports');
    assert.equal(reports.length, 2);
    assert.equal(reports[0]!.headers['webhook-id'], reports[1]!.headers['webhook-id']);
    assert.equal(reports[0]!.body, reports[1]!.body);
    assert.ok(reports.every((r) => verifyWebhook(r.body, r.headers, { secrets: SECRET }).ok));
    for (const kind of ['status', 'report'] as const) {
      const records = sim.callbacks({ kind });
      assert.deepEqual(
        records.map((r) => r.repeat).sort(),
        kind === 'status' ? [false, false, true, true] : [false, true],
      );
    }
    const statusRecords = sim.callbacks({ kind: 'status' });
    assert.deepEqual(
      statusRecords.map((r) => `${r.summary['status']}${r.repeat ? '+' : ''}`),
      ['sent', 'sent+', 'delivered', 'delivered+'],
    );
    assert.equal(sim.callbackStats().kinds.status.repeats, 2);
    assert.equal(sim.callbackStats().kinds.status.sent, 2);
  });

  it('Twilio retries once after a connection failure and never after an HTTP error', async () => {
    const rx = await receiver();
    rx.answer = () => 500;
    const closedPort = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const sim = await start({ callbacks: FAST });
    await twilioSend(sim.url, { ...sms(recipient(1)), StatusCallback: `${rx.url}/status` });
    await twilioSend(sim.url, { ...sms(recipient(2)), StatusCallback: `http://127.0.0.1:${closedPort}/status` });
    await sim.callbacksIdle();
    const toRx = sim.callbacks().filter((r) => r.recipient === recipient(1));
    assert.deepEqual(
      toRx.map((r) => [r.attempt, r.status]),
      [
        [1, 500],
        [1, 500],
      ],
    );
    const toClosed = sim.callbacks().filter((r) => r.recipient === recipient(2));
    assert.deepEqual(
      toClosed.map((r) => [r.summary['status'], r.attempt, r.error]),
      [
        ['sent', 1, 'ECONNREFUSED'],
        ['sent', 2, 'ECONNREFUSED'],
        ['delivered', 1, 'ECONNREFUSED'],
        ['delivered', 2, 'ECONNREFUSED'],
      ],
    );
    assert.deepEqual(sim.callbackStats().kinds.status, {
      sent: 4,
      succeeded: 0,
      failed: 4,
      retries: 2,
      repeats: 0,
      unroutable: 0,
    });
  });

  it('GET /_simulator/callbacks (filters) and /_simulator/callbacks/stats; reset empties them', async () => {
    const rx = await receiver();
    const sim = await start({ callbacks: FAST });
    await twilioSend(sim.url, { ...sms(recipient(1)), StatusCallback: `${rx.url}/status?t=secret` });
    await sim.callbacksIdle();
    const all = await control<CallbackRecord[]>(sim.url, 'GET', 'callbacks?provider=twilio&kind=status');
    assert.equal(all.status, 200);
    assert.equal(all.body.length, 2);
    assert.ok(all.body.every((r) => !r.url.includes('secret')));
    assert.equal((await control<CallbackRecord[]>(sim.url, 'GET', 'callbacks?kind=report')).body.length, 0);
    assert.equal((await control(sim.url, 'GET', 'callbacks?kind=nope')).status, 400);
    const stats = await control<{ kinds: Record<string, { sent: number }>; pending: number; inFlight: number }>(
      sim.url,
      'GET',
      'callbacks/stats',
    );
    assert.equal(stats.body.kinds['status']!.sent, 2);
    assert.equal(stats.body.pending, 0);
    sim.reset();
    assert.equal(sim.callbacks().length, 0);
    assert.equal(sim.callbackStats().kinds.status.sent, 0);
  });

  it('callbacksIdle waits for what is scheduled; close() cancels it and nothing more is sent', async () => {
    const rx = await receiver();
    const sim = await startProviderSimulators({ callbacks: { delayMs: 60_000 } });
    await sim.callbacksIdle();
    await twilioSend(sim.url, { ...sms(recipient(1)), StatusCallback: `${rx.url}/status` });
    assert.equal(sim.callbackStats().pending, 1);
    let idle = false;
    const waiting = sim.callbacksIdle().then(() => (idle = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(idle, false);
    await sim.close();
    await waiting;
    assert.equal(sim.callbackStats().pending, 0);
    assert.equal(rx.received.length, 0);
    await sim.close();
  });

  it('validates the new options: each bad key named with what was expected and what was found', async () => {
    await assert.rejects(
      startProviderSimulators({
        callbacks: { undeliveredRate: 2, delayMs: { min: 5, max: 1 }, bogus: 1 } as never,
        recipients: { replyRate: 0.5, stopRate: 0.7 },
        twilio: { inboundUrls: { '+1': 'ftp://x' }, errorCodes: [], failedShare: -1 },
        contract: { reportsUrl: 'not a url' },
      }),
      (err: Error) => {
        assert.ok(err instanceof TypeError);
        for (const part of [
          'callbacks.undeliveredRate: expected a fraction from 0 to 1, found 2',
          'callbacks.delayMs: expected',
          'callbacks.bogus: unknown option',
          'recipients: replyRate + stopRate must not exceed 1',
          'recipients.keywords: expected at least one keyword',
          'twilio.inboundUrls.+1: expected an http(s) URL, found "ftp://x"',
          'twilio.errorCodes: expected a non-empty array',
          'twilio.failedShare: expected a fraction',
          'contract.reportsUrl: expected an http(s) URL, found "not a url"',
        ]) {
          assert.ok(err.message.includes(part), `missing "${part}" in ${err.message}`);
        }
        return true;
      },
    );
    await assert.rejects(
      startProviderSimulators({ contract: { inboundUrl: 'http://127.0.0.1:1/x' } }),
      /contract\.callbackSecrets: expected whsec_/,
    );
  });
});
