import assert from 'node:assert/strict';
import type { ConversationRecord } from '../../../src/emulators/directline/index.js';
import type { SimulatedCustomer } from '../../../src/emulators/providers/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import {
  SECRETS,
  SENDERS,
  buildWorkers,
  maxInWindow,
  startSystem,
  until,
  type System,
  type WorkerProcess,
} from './harness.js';

/** The `sms` channel's account (harness) and rate, which the embedded system bridges to the agents. */
const ACCOUNT_SID = 'AC00000000000000000000000000000001';
const LIMIT = 50;
/** The agents close a conversation (survey, endOfConversation) after this many customer messages. */
const TURNS = 3;

/**
 * Conversations end to end, as an operator runs them (built workers): simulated customers write SMS to the bridged
 * `sms` channel's number → the provider simulators' signed inbound webhooks → callbacks → `conversations` (a
 * session per customer) → the conversations stage → the Direct Line emulator, whose agents answer → the stage's polls
 * → `outbound` → dispatch → the Twilio simulator → the customers. Every figure is read from the two emulators'
 * records: what each customer wrote and received (the provider simulators) and what the agents saw and said
 * (`dl.conversations()`).
 */
describe('conversations end to end', function () {
  this.timeout(600_000);
  const track = closedAfterEach();
  before(async function () {
    this.timeout(180_000);
    await buildWorkers();
  });

  async function system(): Promise<System> {
    const s = track(
      await startSystem({
        smsPerSecond: LIMIT,
        // A killed worker's sessions come back within seconds.
        lockDuration: 'PT5S',
        conversations: { agents: { endAfterTurns: TURNS, replyDelayMs: 100 } },
      }),
    );
    assert.ok(s.dl, 'the Direct Line emulator runs');
    return s;
  }

  /** Waits until the callbacks worker listens (a customer's webhook that meets a closed port is lost, as with Twilio). */
  async function callbacksListening(s: System): Promise<void> {
    const url = s.env['CALLBACKS_PUBLIC_URL'] as string;
    await until('the callbacks worker listening', async () => {
      try {
        await (await fetch(`${url}/`)).arrayBuffer();
        return true;
      } catch {
        return undefined;
      }
    });
  }

  /** Starts `customers` customers; every second message of each is an MMS (the channel takes customers' files). */
  function converse(s: System, customers: number, thinkMs: number): SimulatedCustomer[] {
    return s.sim.startConversations({
      accountSid: ACCOUNT_SID,
      sender: SENDERS.sms,
      customers,
      messagesPerCustomer: TURNS,
      attachmentEvery: 2,
      thinkMs,
      replyTimeoutMs: 180_000,
      authToken: SECRETS.TWILIO_AUTH_TOKEN,
    });
  }

  /** Waits for every customer to finish; fails naming the ones that did not get their survey. */
  async function finished(s: System, count: number): Promise<SimulatedCustomer[]> {
    let progress = '';
    await until(
      `${count} customers to finish`,
      () => {
        const st = s.sim.customerStats();
        progress = JSON.stringify(st);
        // The survey comes after the answer to the last message: a customer is done before it has ended.
        return st.active === 0 && st.ended + st.stalled === count ? true : undefined;
      },
      400_000,
    ).catch((err: Error) => Promise.reject(new Error(`${err.message} (${progress})`)));
    const customers = s.sim.customers();
    const unfinished = customers.filter((c) => c.state !== 'ended');
    assert.deepEqual(
      unfinished.map((c) => `${c.name}: ${c.state}, wrote ${c.written.length}, received ${c.received.length}`),
      [],
      'every customer ended with the survey',
    );
    return customers;
  }

  const phoneOf = (r: ConversationRecord): unknown =>
    (r.routing?.customerContext as { phone?: unknown } | undefined)?.phone;

  /**
   * One Direct Line conversation per customer; in it, the customer's messages once each and in order, and every agent
   * message reached the customer once and in order; within the sender's rate; nothing dead-lettered.
   */
  async function assertConversations(s: System, customers: readonly SimulatedCustomer[]): Promise<void> {
    const records = s.dl!.conversations();
    for (const c of customers) {
      const mine = records.filter((r) => phoneOf(r) === c.phone);
      assert.equal(
        mine.length,
        1,
        `${c.name}: one Direct Line conversation (none started over); its conversations' customer messages: ${JSON.stringify(
          mine.map((r) => r.activities.filter((x) => x.direction === 'customer').map((x) => x.text)),
        )}`,
      );
      const r = mine[0]!;
      assert.equal(r.routed, true, `${c.name}: routed to a workstream`);
      assert.equal(r.ended, true, `${c.name}: ended by the agents`);
      const posted = r.activities.filter((a) => a.direction === 'customer' && a.type === 'message');
      assert.deepEqual(
        posted.map((a) => [a.text, a.attachments?.length ?? 0]),
        c.written.map((w) => [w.text, w.files]),
        `${c.name}: each message reached the agents once, in order, with its file`,
      );
      assert.deepEqual(
        c.received.map((m) => m.text),
        r.activities.filter((a) => a.direction === 'agent' && a.type === 'message').map((a) => a.text),
        `${c.name}: each agent message reached the customer once, in order`,
      );
    }
    // A start whose answer was lost (a timeout under load) after Direct Line created the conversation leaves that one
    // empty: no agent saw it (work is routed on the first message). Any other extra conversation is a defect.
    const reached = records.filter((r) => r.activities.some((a) => a.direction === 'customer'));
    assert.equal(reached.length, customers.length, 'no other conversation with a customer message');
    const times = s.sim
      .messages({ provider: 'twilio', sender: SENDERS.sms })
      .flatMap((m) => Array.from({ length: m.segments ?? 1 }, () => m.time));
    assert.ok(maxInWindow(times) <= LIMIT, `${maxInWindow(times)} segments in one second, limit ${LIMIT}`);
    assert.equal(s.sim.stats().twilio.senders[SENDERS.sms]?.rateViolations ?? 0, 0, 'the simulator queued nothing');
    for (const queue of ['conversations', 'outbound'])
      assert.deepEqual(await s.deadLetters(queue), [], `nothing dead-lettered on ${queue}`);
  }

  /**
   * Kills `victim` (a conversations worker) once the customers have written `written` messages (every customer's first
   * is written at once: kill past their number, mid-conversation), and starts another.
   */
  async function killAt(s: System, replicas: WorkerProcess[], victim: WorkerProcess, written: number): Promise<void> {
    await until(
      `${written} customer messages written`,
      () => (s.sim.customerStats().written >= written ? true : undefined),
      300_000,
    );
    // Mid-conversation: the agents are talking with customers whose conversations have not ended.
    const open = s.dl!.conversations().filter((r) => r.turns > 0 && !r.ended).length;
    await victim.kill();
    assert.ok(open > 0, 'killed while conversations were going on');
    replicas.push(s.spawnWorker('conversations', { compiled: true }));
  }

  it('200 customers in parallel: every message reaches the agents once and in order, every reply its customer, within the rate', async () => {
    const s = await system();
    s.spawnWorker('callbacks', { compiled: true });
    s.spawnWorker('dispatch', { compiled: true });
    s.spawnWorker('conversations', { compiled: true });
    await callbacksListening(s);
    converse(s, 200, 50);
    const customers = await finished(s, 200);
    await assertConversations(s, customers);
    assert.equal(s.sim.customerStats().written, 200 * TURNS);
  });

  it('a conversations worker killed (SIGKILL) mid-conversation and restarted: nothing lost, no conversation restarted, order kept', async () => {
    const s = await system();
    s.spawnWorker('callbacks', { compiled: true });
    s.spawnWorker('dispatch', { compiled: true });
    const replicas = [s.spawnWorker('conversations', { compiled: true })];
    await callbacksListening(s);
    converse(s, 40, 300);
    await killAt(s, replicas, replicas[0]!, 60);
    await killAt(s, replicas, replicas[1]!, 100);
    const customers = await finished(s, 40);
    await assertConversations(s, customers);
    for (const w of replicas)
      assert.doesNotMatch(w.stderr(), /conversation expired: started a new one/, 'no conversation started over');
  });

  it('two conversations replicas, one killed (SIGKILL) mid-conversation: nothing lost, no conversation restarted, order kept', async () => {
    const s = await system();
    s.spawnWorker('callbacks', { compiled: true });
    s.spawnWorker('dispatch', { compiled: true });
    const replicas = [
      s.spawnWorker('conversations', { compiled: true }),
      s.spawnWorker('conversations', { compiled: true }),
    ];
    await callbacksListening(s);
    converse(s, 40, 300);
    await killAt(s, replicas, replicas[0]!, 60);
    await killAt(s, replicas, replicas[1]!, 100);
    const customers = await finished(s, 40);
    await assertConversations(s, customers);
    for (const w of replicas)
      assert.doesNotMatch(w.stderr(), /conversation expired: started a new one/, 'no conversation started over');
  });
});
