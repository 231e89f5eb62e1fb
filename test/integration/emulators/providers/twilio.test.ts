import assert from 'node:assert/strict';
import type { SimulatedMessage, SimulatorStats } from '../../../../src/emulators/providers/index.js';
import { waitFor } from '../../../helpers/wait.js';
import { receivers } from './receiver.js';
import { ACCOUNT, control, LONG_CODE, ManualClock, simulators, sms, TOKEN, twilioSend } from './helpers.js';

const TO = '+4915112345678';
const SERVICE = 'MG0123456789abcdef0123456789abcdef';

describe('provider simulators: Twilio Messages API', () => {
  const start = simulators();
  const receiver = receivers();

  it('answers 201 with the Message resource: SM sid, queued, to/from/body, RFC 2822 dates, segments as strings', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read });
    const res = await twilioSend(sim.url, { ...sms(TO, 'Hi there'), StatusCallback: 'https://relay.example/status' });
    assert.equal(res.status, 201);
    const m = res.body;
    assert.match(String(m['sid']), /^SM[0-9a-f]{32}$/);
    assert.equal(m['status'], 'queued');
    assert.equal(m['to'], TO);
    assert.equal(m['from'], LONG_CODE);
    assert.equal(m['body'], 'Hi there');
    assert.equal(m['account_sid'], ACCOUNT);
    assert.equal(m['direction'], 'outbound-api');
    assert.equal(m['num_segments'], '1');
    assert.equal(m['date_created'], 'Thu, 01 Jan 2026 12:00:00 +0000');
    assert.equal(m['uri'], `/2010-04-01/Accounts/${ACCOUNT}/Messages/${String(m['sid'])}.json`);
    assert.equal(m['error_code'], null);
    const [logged] = sim.messages();
    assert.deepEqual(logged, {
      time: clock.now,
      provider: 'twilio',
      channel: ACCOUNT,
      path: `/2010-04-01/Accounts/${ACCOUNT}/Messages.json`,
      sender: LONG_CODE,
      recipient: TO,
      text: 'Hi there',
      segments: 1,
      queuedMs: 0,
      providerMessageId: String(m['sid']),
      statusCallback: 'https://relay.example/status',
    } satisfies SimulatedMessage);
  });

  it('a Messaging Service send starts as accepted with from null; long and Unicode bodies count segments', async () => {
    const sim = await start();
    const viaService = await twilioSend(sim.url, { To: TO, MessagingServiceSid: SERVICE, Body: 'x'.repeat(161) });
    assert.equal(viaService.status, 201);
    assert.equal(viaService.body['status'], 'accepted');
    assert.equal(viaService.body['from'], null);
    assert.equal(viaService.body['messaging_service_sid'], SERVICE);
    assert.equal(viaService.body['num_segments'], '2');
    const unicode = await twilioSend(sim.url, sms(TO, 'Grüße 👋'.repeat(10)));
    assert.equal(unicode.body['num_segments'], '2');
    assert.equal(sim.messages()[0]!.sender, SERVICE);
  });

  it('refuses with Twilio error codes: 21604, 21603, 21602, 21211, 21212, 21610 (configured, or marked by a test)', async () => {
    const sim = await start({ twilio: { unsubscribed: ['+4915100009999'] } });
    const cases: Array<[Record<string, string>, number, RegExp]> = [
      [{ From: LONG_CODE, Body: 'x' }, 21604, /'To' phone number is required/],
      [{ To: TO, Body: 'x' }, 21603, /'From' phone number is required/],
      [{ To: TO, From: LONG_CODE }, 21602, /body is required/],
      [{ To: '015112345678', From: LONG_CODE, Body: 'x' }, 21211, /Invalid 'To' Phone Number/],
      [{ To: TO, From: '+0 not a number', Body: 'x' }, 21212, /Invalid 'From'/],
      [{ To: '+4915100009999', From: LONG_CODE, Body: 'x' }, 21610, /unsubscribed recipient/],
    ];
    for (const [params, code, message] of cases) {
      const res = await twilioSend(sim.url, params);
      assert.equal(res.status, 400, `status for ${code}`);
      assert.equal(res.body['code'], code);
      assert.equal(res.body['status'], 400);
      assert.equal(res.body['more_info'], `https://www.twilio.com/docs/errors/${code}`);
      assert.match(String(res.body['message']), message);
    }
    sim.block('twilio', TO);
    assert.equal((await twilioSend(sim.url, sms(TO))).body['code'], 21610);
    sim.unblock('twilio', TO);
    assert.equal((await twilioSend(sim.url, sms(TO))).status, 201);
    const stats = sim.stats().twilio;
    assert.deepEqual(stats.rejected, { '21604': 1, '21603': 1, '21602': 1, '21211': 1, '21212': 1, '21610': 2 });
    assert.equal(stats.accepted, 1);
    assert.equal(sim.messages().length, 1, 'refusals are not logged');
  });

  it('authenticates with HTTP basic auth: 401 code 20003 without credentials, or with a wrong token when tokens are configured', async () => {
    const open = await start();
    const none = await twilioSend(open.url, sms(TO), { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.body['code'], 20003);
    assert.equal(none.headers.get('www-authenticate'), 'Basic realm="Twilio API"');
    assert.equal((await twilioSend(open.url, sms(TO), { token: 'anything' })).status, 201);

    const strict = await start({ twilio: { authTokens: { [ACCOUNT]: TOKEN } } });
    const wrong = await twilioSend(strict.url, sms(TO), { token: 'wrong' });
    assert.deepEqual(wrong.body, {
      code: 20003,
      message: 'Authenticate',
      more_info: 'https://www.twilio.com/docs/errors/20003',
      status: 401,
    });
    assert.equal(
      (await twilioSend(strict.url, sms(TO), { account: 'AC99999999999999999999999999999999' })).status,
      401,
    );
    assert.equal((await twilioSend(strict.url, sms(TO))).status, 201);
    assert.equal(strict.stats().twilio.rejected['20003'], 2);
  });

  it('ignores I-Twilio-Idempotency-Token, as real Twilio does: a repeat is a new message, counted as a repeated key', async () => {
    const sim = await start();
    const first = await twilioSend(sim.url, sms(TO, 'once'), { idempotencyToken: 'activity-1' });
    const again = await twilioSend(sim.url, sms(TO, 'once'), { idempotencyToken: 'activity-1' });
    assert.equal(again.status, 201);
    assert.notEqual(again.body['sid'], first.body['sid']);
    assert.deepEqual(
      sim.messages().map((m) => m.idempotencyKey),
      ['activity-1', 'activity-1'],
    );
    const stats = sim.stats().twilio;
    assert.deepEqual([stats.accepted, stats.duplicates, stats.repeatedKeys], [2, 0, 1]);
  });

  it('honourIdempotencyToken (only when a test asks for it): a repeat returns the first message and adds no log entry', async () => {
    const sim = await start({ twilio: { honourIdempotencyToken: true } });
    const first = await twilioSend(sim.url, sms(TO, 'once'), { idempotencyToken: 'activity-1' });
    const again = await twilioSend(sim.url, sms(TO, 'once'), { idempotencyToken: 'activity-1' });
    const other = await twilioSend(sim.url, sms(TO, 'once'), { idempotencyToken: 'activity-2' });
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.notEqual(other.body['sid'], first.body['sid']);
    assert.deepEqual(
      sim.messages().map((m) => m.idempotencyKey),
      ['activity-1', 'activity-2'],
    );
    const stats = sim.stats().twilio;
    assert.equal(stats.accepted, 2);
    assert.equal(stats.duplicates, 1);
    assert.equal(stats.senders[LONG_CODE]!.duplicates, 1);
  });

  it('counts the sender MPS in segments: what arrives over it is queued (accepted), counted in segments as rate violations', async () => {
    const clock = new ManualClock();
    const fast = '+4915100000002';
    const sim = await start({ clock: clock.read, twilio: { mpsBySender: { [fast]: 3 } } });
    // Long code, 1 segment per second: a 1-segment message, then another 1000 ms later: no queue.
    assert.equal((await twilioSend(sim.url, sms('+4915100001000'))).status, 201);
    clock.advance(1000);
    await twilioSend(sim.url, sms('+4915100001010'));
    // 999 ms later the previous segment is still in the window: this one waits (1 segment over).
    clock.advance(999);
    await twilioSend(sim.url, sms('+4915100001020'));
    // 3 segments per second: a 2-segment and a 1-segment message fit one window, a 4th segment does not.
    clock.advance(10_000);
    await twilioSend(sim.url, sms('+4915100002000', 'x'.repeat(200), fast));
    await twilioSend(sim.url, sms('+4915100002010', 'x', fast));
    clock.advance(1000);
    // A 4-segment UCS-2 message from an idle window: more than the MPS alone, spread over two windows, not queued.
    await twilioSend(sim.url, sms('+4915100002020', 'ж'.repeat(250), fast));
    // Right after it, a 2-segment message waits behind it: 2 segments over.
    clock.advance(100);
    await twilioSend(sim.url, sms('+4915100002030', 'ж'.repeat(100), fast));
    const stats = sim.stats().twilio;
    assert.equal(stats.accepted, 7);
    assert.deepEqual(
      sim.messages().map((m) => [m.segments, m.queuedMs! > 0]),
      [
        [1, false],
        [1, false],
        [1, true],
        [2, false],
        [1, false],
        [4, false],
        [2, true],
      ],
    );
    assert.equal(stats.senders[LONG_CODE]!.rateViolations, 1);
    assert.equal(stats.senders[fast]!.rateViolations, 2);
    assert.equal(stats.senders[fast]!.segments, 9);
    assert.equal(stats.rateViolations, 3);
    assert.equal(stats.segments, 12);
  });

  it('refuses with 21611 a message that does not fit the sender queue (queueSeconds of its MPS); the queue drains at the MPS', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read, twilio: { queueSeconds: 3 } });
    // 1 segment per second, a queue of 3 segments: the first goes at once, three wait, the fifth is refused.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await twilioSend(sim.url, sms(`+49151000030${i}0`)));
    assert.deepEqual(
      answers.map((a) => a.status),
      [201, 201, 201, 201, 400],
    );
    assert.equal(answers[4]!.body['code'], 21611);
    assert.equal(sim.stats().twilio.rejected['21611'], 1);
    // One second later one queued segment has gone: one place is free again.
    clock.advance(1000);
    assert.equal((await twilioSend(sim.url, sms('+4915100003050'))).status, 201);
    assert.equal((await twilioSend(sim.url, sms('+4915100003060'))).status, 400);
  });

  it('a message queued past its ValidityPeriod is never sent: its status callback is failed with ErrorCode 30001', async () => {
    const rx = await receiver();
    const sim = await start({ seed: 1, callbacks: { delayMs: 5 } });
    const callback = `${rx.url}/status`;
    const send = (to: string) =>
      twilioSend(sim.url, { ...sms(to, 'x'.repeat(320)), StatusCallback: callback, ValidityPeriod: '2' });
    // Three segments each at 1 segment per second: the first goes at once, the second would start 3 s later (> 2 s).
    const first = await send('+4915100004000');
    const second = await send('+4915100004010');
    assert.equal(second.status, 201, 'accepted (queued), like Twilio');
    assert.equal(sim.messages()[1]!.expiresAfterMs, 2000);
    await sim.callbacksIdle();
    const statuses = rx
      .at('/status')
      .map((r) => Object.fromEntries(new URLSearchParams(r.body)))
      .map((p) => [p['MessageSid'], p['MessageStatus'], p['ErrorCode']]);
    assert.deepEqual(
      statuses.filter(([sid]) => sid === second.body['sid']),
      [[second.body['sid'], 'failed', '30001']],
    );
    assert.deepEqual(
      statuses.filter(([sid]) => sid === first.body['sid']).map(([, status]) => status),
      ['sent', 'delivered'],
    );
    assert.equal(
      (await twilioSend(sim.url, { ...sms('+4915100004020'), ValidityPeriod: '36001' })).body['code'],
      21624,
    );
  });

  it('answers 429 with code 20429 to a request beyond the account concurrency limit', async () => {
    const sim = await start({ twilio: { concurrency: 2 } });
    sim.setFaults({ twilio: { latencyMs: 60_000 } });
    const aborter = new AbortController();
    const held = [
      twilioSend(sim.url, sms(TO), { signal: aborter.signal }),
      twilioSend(sim.url, sms(TO), { signal: aborter.signal }),
    ];
    await waitFor('two calls in flight', () => (sim.stats().twilio.inFlight === 2 ? true : undefined));
    const refused = await twilioSend(sim.url, sms(TO));
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.body, {
      code: 20429,
      message: 'Too Many Requests',
      more_info: 'https://www.twilio.com/docs/errors/20429',
      status: 429,
    });
    // Another account has its own limit.
    sim.clearFaults();
    assert.equal((await twilioSend(sim.url, sms(TO), { account: 'AC11111111111111111111111111111111' })).status, 201);
    aborter.abort();
    await Promise.allSettled(held);
    await waitFor('held calls ended', () => (sim.stats().twilio.inFlight === 0 ? true : undefined));
    assert.equal((await twilioSend(sim.url, sms(TO))).status, 201, 'the slots are free again');
    const stats: SimulatorStats['twilio'] = sim.stats().twilio;
    assert.equal(stats.rateLimited, 1);
    assert.equal(stats.rejected['20429'], 1);
    assert.equal(stats.concurrencyPeak, 3);
  });

  it('DELETE on the Messages resource is 405 (GET lists, POST sends); an unknown path is a 404 naming the routes', async () => {
    const sim = await start();
    const res = await fetch(`${sim.url}/2010-04-01/Accounts/${ACCOUNT}/Messages.json`, { method: 'DELETE' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, POST');
    const missing = await control<{ error: { message: string } }>(sim.url, 'GET', '../nothing');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error.message, /POST \/bot\{token\}\/sendMessage/);
  });
});
