import assert from 'node:assert/strict';
import { SEED, SENDERS, maxInWindow, startSystem, until, type System } from './harness.js';

/**
 * The send path end to end: a journey in the Dataverse emulator → Service Bus → intake → outbound (sessions) →
 * dispatch → the provider simulators → interactions → recorder → CreateInteraction in the Dataverse emulator.
 */
describe('send path end to end', function () {
  this.timeout(120_000);
  let system: System | undefined;
  afterEach(async () => {
    await system?.close();
    system = undefined;
  });

  /** Checks exactly one message and one `sent` interaction per allowed activity, and the senders' limits. */
  async function assertDelivered(s: System, expected: ReadonlyMap<string, string>, perSecond: number): Promise<void> {
    const interactions = await until(`${expected.size} sent interactions`, async () => {
      const all = await s.interactions();
      return all.filter((i) => i.responseType === 'sent').length >= expected.size ? all : undefined;
    });
    const messages = s.messages();
    const keys = messages.map((m) => m.idempotencyKey);
    assert.equal(new Set(keys).size, keys.length, 'no activity was sent twice');
    assert.deepEqual(new Set(keys), new Set(expected.keys()), 'one message per allowed activity, none for the others');
    for (const m of messages) assert.equal(m.recipient, expected.get(m.idempotencyKey as string), `recipient of ${m.idempotencyKey}`);
    for (const sender of Object.values(SENDERS)) {
      const times = messages.filter((m) => m.sender === sender).map((m) => m.time);
      assert.ok(maxInWindow(times) <= perSecond, `${sender}: ${maxInWindow(times)} messages in one second, limit ${perSecond}`);
      assert.equal(s.sim.stats().twilio.senders[sender]?.rateViolations ?? 0, 0, `${sender}: the simulator saw no rate violation`);
    }
    const sent = interactions.filter((i) => i.responseType === 'sent');
    assert.equal(sent.length, expected.size, 'one sent interaction per message');
    assert.deepEqual(new Set(sent.map((i) => i.activityId)), new Set(expected.keys()));
    assert.equal(interactions.filter((i) => i.duplicateOf !== undefined).length, 0, 'no interaction recorded twice');
    for (const queue of ['activities', 'outbound', 'interactions']) assert.deepEqual(await s.deadLetters(queue), [], `nothing dead-lettered on ${queue}`);
  }

  /** Runs a journey and opts some contacts out after their activities were created; returns activity id → phone. */
  async function journey(s: System, journeyId: string, count: number, optOutEvery: number): Promise<{ expected: Map<string, string>; optedOut: string[] }> {
    const run = await s.runJourney(journeyId, count);
    assert.ok(run.skipped.length > 0 || journeyId !== SEED.journey, 'the seed has contacts the journey skips (opted out before)');
    const optedOut = run.created.filter((_, i) => i % optOutEvery === 0).map((c) => c.contactId);
    await s.optOut(optedOut);
    const phones = new Map<string, string>();
    const res = await fetch(`${s.dv.url}/api/data/v9.2/contacts?$select=contactid,mobilephone`, { headers: { Authorization: 'Bearer e2e-admin', Prefer: 'odata.maxpagesize=5000' } });
    for (const c of ((await res.json()) as { value: Array<{ contactid: string; mobilephone: string }> }).value) phones.set(c.contactid, c.mobilephone);
    const skipped = new Set(optedOut);
    const expected = new Map(run.created.filter((c) => !skipped.has(c.contactId)).map((c) => [c.activityId, phones.get(c.contactId) as string]));
    return { expected, optedOut };
  }

  it('a journey over 500 contacts: one message per allowed contact within the rate limit, one sent interaction each', async () => {
    system = await startSystem({ smsPerSecond: 50 });
    const s = system;
    const { expected, optedOut } = await journey(s, SEED.journey, 500, 25);
    assert.ok(expected.size > 400 && optedOut.length > 10);
    const relay = s.relay(['intake', 'dispatch', 'recorder']);
    await assertDelivered(s, expected, 50);
    const stats = relay.stats();
    assert.equal(stats.intake?.skippedByCompliance, optedOut.length, 'contacts who opted out after creation got no message');
    assert.equal(stats.recorder?.written, expected.size);
  });
});
