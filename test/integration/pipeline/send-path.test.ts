import assert from 'node:assert/strict';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED, SENDERS, maxInWindow, startSystem, until, type System } from './harness.js';

/**
 * The send path end to end: a journey in the Dataverse emulator → Service Bus → intake → outbound (sessions) →
 * dispatch → the provider simulators → interactions → recorder → CreateInteraction in the Dataverse emulator.
 */
describe('send path end to end', function () {
  this.timeout(120_000);
  const track = closedAfterEach();

  /** Checks exactly one message and one `sent` interaction per allowed activity, and the senders' limits (in segments, as Twilio counts them). */
  async function assertDelivered(s: System, expected: ReadonlyMap<string, string>, perSecond: number): Promise<void> {
    let progress = '';
    const interactions = await until(`${expected.size} sent interactions`, async () => {
      const all = await s.interactions();
      progress = `${s.messages().length} provider messages, ${all.length} interactions`;
      return all.filter((i) => i.responseType === 'sent').length >= expected.size ? all : undefined;
    }).catch((err: Error) => Promise.reject(new Error(`${err.message} (${progress})`)));
    const messages = s.messages();
    const keys = messages.map((m) => m.idempotencyKey);
    assert.equal(new Set(keys).size, keys.length, 'no activity was sent twice');
    assert.deepEqual(new Set(keys), new Set(expected.keys()), 'one message per allowed activity, none for the others');
    for (const m of messages)
      assert.equal(m.recipient, expected.get(m.idempotencyKey as string), `recipient of ${m.idempotencyKey}`);
    for (const sender of Object.values(SENDERS)) {
      // One time per segment: a window's count is its segments.
      const times = messages
        .filter((m) => m.sender === sender)
        .flatMap((m) => Array.from({ length: m.segments ?? 1 }, () => m.time));
      assert.ok(
        maxInWindow(times) <= perSecond,
        `${sender}: ${maxInWindow(times)} segments in one second, limit ${perSecond}`,
      );
      assert.equal(
        s.sim.stats().twilio.senders[sender]?.rateViolations ?? 0,
        0,
        `${sender}: the simulator queued no segment`,
      );
    }
    const sent = interactions.filter((i) => i.responseType === 'sent');
    assert.equal(sent.length, expected.size, 'one sent interaction per message');
    assert.deepEqual(new Set(sent.map((i) => i.activityRowId)), new Set(expected.keys()));
    assert.equal(interactions.filter((i) => i.duplicateOf !== undefined).length, 0, 'no interaction recorded twice');
    for (const queue of ['activities', 'outbound', 'interactions'])
      assert.deepEqual(await s.deadLetters(queue), [], `nothing dead-lettered on ${queue}`);
  }

  type JourneyRun = { expected: Map<string, string>; optedOut: string[]; contacts: Map<string, string> };
  const contactOf = (a: JourneyRun, b: JourneyRun, rowId: string): string =>
    a.contacts.get(rowId) ?? b.contacts.get(rowId) ?? '';

  /**
   * Runs a journey and opts some contacts out after their activities were created; returns activity row id → phone.
   * The rows of a run share one msdyncrm_activityid (the tile's, as the emulator gives it): the relay must not key on it.
   */
  async function journey(s: System, journeyId: string, count: number, optOutEvery: number): Promise<JourneyRun> {
    const run = await s.runJourney(journeyId, count);
    if (journeyId === SEED.journey)
      assert.ok(run.skipped.length > 0, 'the seed has contacts the journey skips (opted out before)');
    const optedOut = run.created.filter((_, i) => i % optOutEvery === 0).map((c) => c.contactId);
    await s.optOut(optedOut);
    const phones = new Map<string, string>();
    const res = await fetch(`${s.dv.url}/api/data/v9.2/contacts?$select=contactid,mobilephone`, {
      headers: { Authorization: 'Bearer e2e-admin', Prefer: 'odata.maxpagesize=5000' },
    });
    for (const c of ((await res.json()) as { value: Array<{ contactid: string; mobilephone: string }> }).value)
      phones.set(c.contactid, c.mobilephone);
    const skipped = new Set(optedOut);
    assert.equal(new Set(run.created.map((c) => c.activityId)).size, 1, 'one msdyncrm_activityid for the whole run');
    const expected = new Map(
      run.created
        .filter((c) => !skipped.has(c.contactId))
        .map((c) => [c.activityRowId, phones.get(c.contactId) as string]),
    );
    return { expected, optedOut, contacts: new Map(run.created.map((c) => [c.activityRowId, c.contactId])) };
  }

  it('a journey over 500 contacts: one message per allowed contact within the rate limit, one sent interaction each', async () => {
    const s = track(await startSystem({ smsPerSecond: 50 }));
    const { expected, optedOut, contacts } = await journey(s, SEED.journey, 500, 25);
    assert.ok(expected.size > 400 && optedOut.length > 10);
    const relay = s.relay(['intake', 'dispatch', 'recorder']);
    await assertDelivered(s, expected, 50);
    // The recorder counts a write once its message is settled, a moment after Dataverse has the interaction; one whose
    // settlement timed out (a loaded machine) comes back and is completed as already written, not written again.
    const recorded = (): number =>
      (relay.stats().recorder?.written ?? 0) + (relay.stats().recorder?.alreadyWritten ?? 0);
    await until('the recorder to count every interaction it wrote', () =>
      recorded() >= expected.size ? true : undefined,
    );
    const stats = relay.stats();
    assert.equal(
      stats.intake?.skippedByCompliance,
      optedOut.length,
      'contacts who opted out after creation got no message',
    );
    assert.equal(recorded(), expected.size);
    // Under the harness's defaults: half the Targets lacked the contact and message record (their rows were read),
    // and no rate-limit header came (the governor paced from its own count).
    const posting = (
      (await (await fetch(`${s.dv.url}/_emulator/stats`)).json()) as { posting: { partialTargets: number } }
    ).posting;
    assert.equal(posting.partialTargets, Math.floor(contacts.size / 2));
    assert.equal(stats.intake?.deadLettered, 0);
    assert.deepEqual([stats.dataverse?.requestsRemaining, stats.dataverse?.timeRemainingMs], [undefined, undefined]);
    assert.ok((stats.dataverse?.operationEstimateMs ?? 0) > 0, 'it learned an execution estimate');
  });

  it('two dispatch replicas share two senders: no rate-limit violation, no duplicate', async () => {
    const s = track(await startSystem({ smsPerSecond: 50, config: (c) => (c.dispatch.maxSessions = 1) }));
    const one = await journey(s, SEED.journey, 500, 50);
    const two = await journey(s, SEED.journey2, 300, 1000);
    // The second journey's opt-out also stops that contact's activity of the first journey.
    const late = new Set(two.optedOut);
    const expected = new Map(
      [...one.expected, ...two.expected].filter(([rowId]) => !late.has(contactOf(one, two, rowId))),
    );
    s.relay(['intake']);
    const replicas = [s.relay(['dispatch']), s.relay(['dispatch'])];
    s.relay(['recorder']);
    await assertDelivered(s, expected, 50);
    const calls = replicas.map((r) => r.stats().dispatch?.providerCalls ?? 0);
    assert.ok(
      calls.every((n) => n > 0),
      `both replicas sent (${calls.join(' + ')})`,
    );
    assert.equal(calls[0]! + calls[1]!, expected.size, 'no send was repeated by the other replica');
  });

  it('long and Unicode texts: the SMS sender limit counts segments, and the simulator queues none', async () => {
    // 3 UCS-2 segments a message (150 UTF-16 units with the names) on a sender of 30 segments per second.
    const text = `Привет {firstname} {lastname}! ${'Весеннее предложение: скидка 20% на всё. '.repeat(3)}`;
    const s = track(await startSystem({ smsPerSecond: 30, message2Text: text }));
    const { expected } = await journey(s, SEED.journey2, 120, 1000);
    s.relay(['intake', 'dispatch', 'recorder']);
    await assertDelivered(s, expected, 30);
    const sent = s.messages().filter((m) => m.sender === SENDERS.sms2);
    assert.ok(
      sent.length > 100 && sent.every((m) => (m.segments ?? 0) >= 3),
      `every message of sms2 has 3 or more segments: ${sent.map((m) => m.segments).join(',')}`,
    );
  });

  it('provider 5xx, 429 bursts and lost answers, and Dataverse throttling: nothing lost, no duplicate send (each lost answer looked up in the Messages list before any call again)', async () => {
    // The simulator keeps no idempotency record (as Twilio, which ignores the header): a call made again after an answer
    // lost after acceptance would be a second message. Dispatch asks the Messages list first. The timeouts come after
    // Twilio created the message; the 5xx before it, for the first half of the run, and after it for the second half.
    const s = track(await startSystem({ smsPerSecond: 50, limits: { windowMs: 2000, maxRequests: 12 } }));
    const { expected } = await journey(s, SEED.journey, 500, 25);
    const faults = { errorRate: 0.1, timeoutRate: 0.02, timeoutAfterAccept: true };
    s.sim.setFaults({ seed: 7, twilio: { ...faults, rateLimitBurst: { count: 3, retryAfterSeconds: 1 } } });
    // Another integration on the same application user spends the budget now and then, so the relay gets 429s.
    const neighbour = setInterval(() => {
      for (let i = 0; i < 12; i++)
        void fetch(`${s.dv.url}/api/data/v9.2/WhoAmI`, { headers: { Authorization: 'Bearer channel-relay' } }).then(
          (r) => r.arrayBuffer(),
        );
    }, 1500);
    const relay = s.relay(['intake', 'dispatch', 'recorder']);
    try {
      await until('half of the interactions', async () =>
        (await s.interactions()).length >= expected.size / 2 ? true : undefined,
      );
    } finally {
      clearInterval(neighbour);
    }
    s.sim.setFaults({ twilio: { ...faults, errorAfterAccept: true } });
    await assertDelivered(s, expected, 50);
    const stats = relay.stats();
    const seen = JSON.stringify({ dataverse: stats.dataverse, recorder: stats.recorder, intake: stats.intake });
    assert.ok((stats.dataverse?.throttled ?? 0) > 0, `the relay met 429s: ${seen}`);
    assert.ok(
      (stats.recorder?.retries ?? 0) + (stats.intake?.retries ?? 0) + (stats.intake?.abandoned ?? 0) > 0,
      `and went on (retried or handed back): ${seen}`,
    );
    const twilio = s.sim.stats().twilio;
    assert.ok(
      twilio.faults.errors > 10 && twilio.faults.rateLimitBursts === 3 && twilio.faults.timeouts > 0,
      `faults were injected: ${JSON.stringify(twilio.faults)}`,
    );
    assert.equal(twilio.repeatedKeys, 0, "no activity's message was created twice");
    const lookups = stats.dispatch;
    const looked = JSON.stringify({
      lostAnswerFound: lookups?.lostAnswerFound,
      lostAnswerNotFound: lookups?.lostAnswerNotFound,
      lostAnswerLookupFailed: lookups?.lostAnswerLookupFailed,
      inFlightFound: lookups?.inFlightFound,
      inFlightNotFound: lookups?.inFlightNotFound,
    });
    // Every timeout and every 5xx of the second half is an answer lost after Twilio created the message: each is found,
    // once (after the call, or on the message's next delivery when it was handed back meanwhile), and recorded with its
    // SID; the 5xx of the first half were looked up, not found and called again.
    const found = (lookups?.lostAnswerFound ?? 0) + (lookups?.inFlightFound ?? 0);
    assert.ok(
      found > twilio.faults.timeouts,
      `each timeout and the 5xx after acceptance were found in the Messages list, not sent again: ${looked}`,
    );
    assert.ok(
      (lookups?.lostAnswerNotFound ?? 0) > 0,
      `the 5xx before acceptance were looked up and called again: ${looked}`,
    );
    console.log(`      faults ${JSON.stringify(twilio.faults)}; lookups ${looked}`);
  });

  it('dispatch and recorder workers stopped with SIGTERM mid-run and restarted: nothing lost, no duplicate send', async () => {
    const s = track(await startSystem({ smsPerSecond: 50 }));
    const { expected } = await journey(s, SEED.journey, 500, 25);
    s.spawnWorker('intake');
    const dispatch = s.spawnWorker('dispatch');
    const recorder = s.spawnWorker('recorder');
    await until('a third of the messages sent', () => (s.messages().length >= expected.size / 3 ? true : undefined));
    const [dispatchCode, recorderCode] = await Promise.all([dispatch.stop(), recorder.stop()]);
    assert.equal(dispatchCode, 0, `dispatch drained and exited cleanly:\n${dispatch.stderr().slice(-2000)}`);
    assert.equal(recorderCode, 0, `recorder drained and exited cleanly:\n${recorder.stderr().slice(-2000)}`);
    const sentWhileStopped = s.messages().length;
    assert.ok(sentWhileStopped < expected.size, 'stopped mid-run');
    const shutDown = dispatch
      .stderr()
      .split('\n')
      .find((l) => l.includes('"message":"shut down"'));
    assert.match(shutDown ?? '', /"drained":true/, `the dispatch worker logged its shutdown: ${shutDown}`);
    // Their successors (closed with the system).
    s.spawnWorker('dispatch');
    s.spawnWorker('recorder');
    await assertDelivered(s, expected, 50);
    // The simulator keeps no idempotency record here (as Twilio): a repeated call would be a second message.
    assert.equal(s.sim.stats().twilio.repeatedKeys, 0, 'a graceful stop repeats no send');
  });

  it('a dispatch worker killed (SIGKILL) mid-run: nothing lost, no send repeated (the successor looks up in the Messages list what the dead one had in flight)', async () => {
    // The simulator keeps no idempotency record (as Twilio): a message in flight at the kill, sent again, would be a
    // second message to its recipient.
    const s = track(await startSystem({ smsPerSecond: 50, lockDuration: 'PT2S' }));
    const { expected } = await journey(s, SEED.journey, 500, 25);
    s.spawnWorker('intake');
    s.spawnWorker('recorder');
    const crashed = s.spawnWorker('dispatch');
    await until('a third of the messages sent', () => (s.messages().length >= expected.size / 3 ? true : undefined));
    await crashed.kill();
    assert.ok(s.messages().length < expected.size, 'killed mid-run');
    const successor = s.spawnWorker('dispatch');
    await assertDelivered(s, expected, 50);
    assert.equal(s.sim.stats().twilio.repeatedKeys, 0, 'no recipient got a message twice');
    // The batch in hand when the worker died comes back when its locks expire; each of its messages is looked up
    // before it is sent: found (recorded with its SID) or not found (sent).
    const reconciled = successor
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"message":"listed in flight before this delivery; the provider'));
    assert.ok(reconciled.length > 0, "the successor looked up the dead worker's messages in flight");
  });
});
