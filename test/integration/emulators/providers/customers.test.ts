import assert from 'node:assert/strict';
import type { ProviderSimulators, ProviderSimulatorsOptions } from '../../../../src/emulators/providers/index.js';
import { verifyTwilioSignature } from '../../../../src/providers/index.js';
import { waitFor } from '../../../helpers/wait.js';
import { ACCOUNT, LONG_CODE, simulators, TOKEN, twilioSend } from './helpers.js';
import { receivers, type Received, type Receiver } from './receiver.js';

const INBOUND = '/callbacks/sms/twilio/inbound';
const form = (r: Received): Record<string, string> => Object.fromEntries(new URLSearchParams(r.body));

/**
 * Plays the relay and the agents: checks each customer webhook's signature with the relay's verifier and answers the
 * customer through the Messages API with `reply(body)` (none when it returns undefined).
 */
function agents(
  rx: Receiver,
  sim: () => ProviderSimulators,
  reply: (body: string) => string | undefined,
): { sends: Array<Promise<unknown>>; badSignatures: number } {
  const state = { sends: [] as Array<Promise<unknown>>, badSignatures: 0 };
  rx.answer = (r) => {
    const params = new URLSearchParams(r.body);
    const signature = r.headers['x-twilio-signature'];
    if (
      !verifyTwilioSignature(
        typeof signature === 'string' ? signature : undefined,
        [TOKEN],
        `${rx.url}${r.path}`,
        params,
      )
    )
      state.badSignatures += 1;
    const text = reply(params.get('Body') ?? '');
    if (text !== undefined)
      state.sends.push(twilioSend(sim().url, { To: params.get('From') ?? '', From: LONG_CODE, Body: text }));
    return 200;
  };
  return state;
}

describe('provider simulators: simulated customers holding conversations', function () {
  this.timeout(30_000);
  const start = simulators();
  const receiver = receivers();

  async function setUp(options: ProviderSimulatorsOptions = {}): Promise<{ sim: ProviderSimulators; rx: Receiver }> {
    const rx = await receiver();
    const sim = await start({
      ...options,
      twilio: {
        authTokens: { [ACCOUNT]: TOKEN },
        mpsBySender: { [LONG_CODE]: 1000 },
        inboundUrls: { [LONG_CODE]: `${rx.url}${INBOUND}` },
      },
      callbacks: { delayMs: 0, retryDelayMs: 1 },
    });
    return { sim, rx };
  }

  it('each customer writes, waits for the number to answer, then writes the next: in order, signed as Twilio signs inbound SMS', async () => {
    const { sim, rx } = await setUp();
    const relay = agents(
      rx,
      () => sim,
      (body) => `re: ${body.split(' ').slice(0, 2).join(' ')}`,
    );
    const started = sim.startConversations({
      accountSid: ACCOUNT,
      sender: LONG_CODE,
      customers: 20,
      messagesPerCustomer: 3,
      thinkMs: 5,
    });
    assert.equal(started.length, 20);
    assert.equal(new Set(started.map((c) => c.phone)).size, 20, 'a phone number each');
    await sim.customersIdle();
    await Promise.all(relay.sends);

    assert.equal(relay.badSignatures, 0, "every webhook verifies with the relay's verifier");
    const customers = sim.customers();
    for (const c of customers) {
      assert.equal(c.state, 'done', c.name);
      assert.deepEqual(
        c.written.map((w) => [w.seq, w.text.split(' ').slice(0, 2).join(' '), w.files]),
        [1, 2, 3].map((k) => [k, `${c.name} #${k}`, 0]),
      );
      assert.deepEqual(
        c.received.map((r) => r.text),
        [1, 2, 3].map((k) => `re: ${c.name} #${k}`),
        `${c.name} received the answers in order`,
      );
      // What reached the inbound URL: this customer's messages in order, each written after the answer before it.
      const hooks = rx
        .at(INBOUND)
        .map(form)
        .filter((p) => p['From'] === c.phone);
      assert.deepEqual(
        hooks.map((p) => p['MessageSid']),
        c.written.map((w) => w.sid),
      );
      for (const p of hooks) {
        assert.equal(p['AccountSid'], ACCOUNT);
        assert.equal(p['To'], LONG_CODE);
        assert.equal(p['NumMedia'], '0');
        assert.equal(p['SmsStatus'], 'received');
        assert.match(p['MessageSid'] ?? '', /^SM[0-9a-f]{32}$/);
      }
      for (let k = 1; k < c.written.length; k++)
        assert.ok(c.written[k]!.time >= c.received[k - 1]!.time, `${c.name} #${k + 1} waited for the answer to #${k}`);
    }
    assert.deepEqual(sim.customerStats(), {
      customers: 20,
      active: 0,
      written: 60,
      attachments: 0,
      received: 60,
      ended: 0,
      stalled: 0,
    });
    assert.equal(sim.callbackStats().kinds.inbound.succeeded, 60);
  });

  it('the survey link ends a conversation before its last message; a message from another number is not an answer', async () => {
    const { sim, rx } = await setUp();
    const relay = agents(
      rx,
      () => sim,
      (body) => (body.includes('#2') ? 'Please tell us how we did: https://survey.example.com/s/sms' : `re: ${body}`),
    );
    const [c] = sim.startConversations({
      accountSid: ACCOUNT,
      sender: LONG_CODE,
      customers: 1,
      messagesPerCustomer: 5,
      thinkMs: 0,
    });
    await sim.customersIdle();
    await Promise.all(relay.sends);
    const [after] = sim.customers();
    assert.equal(after!.state, 'ended');
    assert.equal(after!.ended, true);
    assert.equal(after!.written.length, 2, 'nothing written after the survey');
    assert.equal(sim.customerStats().ended, 1);

    // The survey after the answer to the last message ends a customer that was done.
    rx.answer = (r) => {
      const to = new URLSearchParams(r.body).get('From') ?? '';
      relay.sends.push(
        twilioSend(sim.url, { To: to, From: LONG_CODE, Body: 're: yours' }).then(() =>
          twilioSend(sim.url, { To: to, From: LONG_CODE, Body: 'Survey: https://survey.example.com/s/sms' }),
        ),
      );
      return 200;
    };
    sim.startConversations({ accountSid: ACCOUNT, sender: LONG_CODE, customers: 1, messagesPerCustomer: 1 });
    await sim.customersIdle();
    await Promise.all(relay.sends);
    const last = sim.customers()[1]!;
    assert.deepEqual([last.state, last.ended, last.received.length], ['ended', true, 2]);

    // Another sender writing to the customer does not count as its conversation's answer.
    await twilioSend(sim.url, { To: c!.phone, From: '+4915100000009', Body: 'Hello from elsewhere' });
    assert.equal(sim.customers()[0]!.received.length, 2);
  });

  it("customers act on their own: the recipients' replies and STOPs are not theirs", async () => {
    const { sim, rx } = await setUp({ recipients: { stopRate: 1 } });
    const relay = agents(
      rx,
      () => sim,
      (body) => `re: ${body}`,
    );
    sim.startConversations({
      accountSid: ACCOUNT,
      sender: LONG_CODE,
      customers: 3,
      messagesPerCustomer: 2,
      thinkMs: 0,
    });
    await sim.customersIdle();
    await Promise.all(relay.sends);
    await sim.callbacksIdle();
    // A contact of a journey still answers STOP.
    await twilioSend(sim.url, { To: '+4915199990000', From: LONG_CODE, Body: 'Spring offer' });
    await sim.callbacksIdle();
    const bodies = rx.at(INBOUND).map((r) => form(r)['Body']);
    assert.equal(bodies.filter((b) => b === 'STOP').length, 1, 'only the contact answered STOP');
    assert.equal(bodies.length, 3 * 2 + 1);
  });

  it('a customer left without an answer stalls (a webhook answered 500 is not sent again)', async () => {
    const { sim, rx } = await setUp();
    rx.answer = () => 500;
    sim.startConversations({
      accountSid: ACCOUNT,
      sender: LONG_CODE,
      customers: 2,
      messagesPerCustomer: 3,
      replyTimeoutMs: 200,
    });
    await sim.customersIdle();
    const customers = sim.customers();
    assert.deepEqual(
      customers.map((c) => [c.state, c.written.length]),
      [
        ['stalled', 1],
        ['stalled', 1],
      ],
    );
    assert.equal(rx.at(INBOUND).length, 2, 'Twilio retries an inbound webhook only after a network error');
    const stats = sim.customerStats();
    assert.equal(stats.stalled, 2);
    assert.equal(sim.callbackStats().kinds.inbound.failed, 2);
  });

  it("every k-th message is an MMS whose media the simulators serve (behind the account's basic auth)", async () => {
    const { sim, rx } = await setUp();
    const relay = agents(
      rx,
      () => sim,
      (body) => `re: ${body}`,
    );
    sim.startConversations({
      accountSid: ACCOUNT,
      sender: LONG_CODE,
      customers: 1,
      messagesPerCustomer: 4,
      attachmentEvery: 2,
      thinkMs: 0,
    });
    await sim.customersIdle();
    await Promise.all(relay.sends);
    assert.equal(relay.badSignatures, 0);
    const hooks = rx.at(INBOUND).map(form);
    assert.deepEqual(
      hooks.map((p) => [p['NumMedia'], p['MessageSid']?.slice(0, 2), p['MediaContentType0']]),
      [
        ['0', 'SM', undefined],
        ['1', 'MM', 'image/png'],
        ['0', 'SM', undefined],
        ['1', 'MM', 'image/png'],
      ],
    );
    const [c] = sim.customers();
    assert.deepEqual(
      c!.written.map((w) => [w.sid, w.files]),
      hooks.map((p) => [p['MessageSid'], Number(p['NumMedia'])]),
    );
    assert.equal(sim.customerStats().attachments, 2);
    const url = hooks[1]!['MediaUrl0']!;
    assert.ok(url.includes(`/Messages/${hooks[1]!['MessageSid']}/Media/`), 'a media item of the inbound message');
    assert.equal((await fetch(url, { redirect: 'manual' })).status, 401, 'behind basic auth');
    const auth = `Basic ${Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64')}`;
    const redirect = await fetch(url, { headers: { Authorization: auth }, redirect: 'manual' });
    assert.equal(redirect.status, 307);
    const file = await fetch(new URL(redirect.headers.get('location')!, url));
    assert.equal(file.headers.get('content-type'), 'image/png');
    assert.equal(
      Buffer.from(await file.arrayBuffer())
        .subarray(1, 4)
        .toString('latin1'),
      'PNG',
    );
  });

  it('bad options are refused, each named; the control API starts customers and lists them', async () => {
    const { sim, rx } = await setUp();
    assert.throws(
      () =>
        sim.startConversations({
          accountSid: '',
          sender: '+4915199999999',
          customers: 0,
          messagesPerCustomer: 1.5,
          thinkMs: -1,
        }),
      (err: unknown) =>
        err instanceof TypeError &&
        [
          'accountSid: expected an AccountSid, found ""',
          'sender: expected a number with an inbound URL (twilio.inboundUrls), found "+4915199999999"',
          'customers: expected an integer >= 1, found 0',
          'messagesPerCustomer: expected an integer >= 1, found 1.5',
          'thinkMs: expected whole ms >= 0, found -1',
        ].every((p) => err.message.includes(p)),
    );
    const noToken = await start({ twilio: { inboundUrls: { [LONG_CODE]: `${rx.url}${INBOUND}` } } });
    assert.throws(
      () =>
        noToken.startConversations({ accountSid: ACCOUNT, sender: LONG_CODE, customers: 1, messagesPerCustomer: 1 }),
      /authToken: expected the auth token of "AC0123456789abcdef0123456789abcdef"/,
    );

    const relay = agents(
      rx,
      () => sim,
      (body) => `re: ${body}`,
    );
    const bad = await fetch(`${sim.url}/_simulator/customers`, {
      method: 'POST',
      body: JSON.stringify({ accountSid: ACCOUNT, sender: LONG_CODE, customers: 'many', messagesPerCustomer: 1 }),
    });
    assert.equal(bad.status, 400);
    assert.match(
      ((await bad.json()) as { error: { message: string } }).error.message,
      /customers: expected an integer/,
    );
    const res = await fetch(`${sim.url}/_simulator/customers`, {
      method: 'POST',
      body: JSON.stringify({
        accountSid: ACCOUNT,
        sender: LONG_CODE,
        customers: 2,
        messagesPerCustomer: 2,
        thinkMs: 0,
      }),
    });
    assert.equal(res.status, 201);
    assert.deepEqual(
      ((await res.json()) as Array<{ name: string }>).map((c) => c.name),
      ['c1', 'c2'],
    );
    await waitFor('both customers done', () => (sim.customerStats().active === 0 ? true : undefined), 10_000);
    await Promise.all(relay.sends);
    const listed = (await (await fetch(`${sim.url}/_simulator/customers`)).json()) as {
      stats: { written: number; received: number };
      customers: Array<{ name: string; written: unknown[]; received: unknown[] }>;
    };
    assert.deepEqual(listed.stats.written, 4);
    assert.deepEqual(listed.stats.received, 4);
    assert.deepEqual(
      listed.customers.map((c) => [c.name, c.written.length, c.received.length]),
      [
        ['c1', 2, 2],
        ['c2', 2, 2],
      ],
    );
  });
});
