import assert from 'node:assert/strict';
import type { SimulatedMessage } from '../../../src/emulators/providers/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED, SENDERS, buildWorkers, maxInWindow, startSystem, until, type WorkerProcess } from './harness.js';

/** The channels' rate window (harness: `rateLimit.intervalMs`). */
const WINDOW_MS = 1000;
const LIMIT = 50;

/** JSON log lines of a worker with this message. */
function logLines(worker: WorkerProcess, message: string): Array<Record<string, unknown>> {
  return worker
    .stderr()
    .split('\n')
    .filter((l) => l.includes(`"message":"${message}`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Dispatch through kill -9 of the replica that holds a sender's session, with a standby replica already waiting for
 * it (a dropped connection releases the session at once, so the standby takes it within a fraction of a second), as
 * built workers (`node dist/workers/dispatch.js`, built by the test). The Twilio simulator sends a repeated
 * idempotency token again (real Twilio ignores it), so every repeat is visible in its log.
 */
describe('dispatch through kill -9 of the session holder', function () {
  this.timeout(300_000);
  const track = closedAfterEach();
  before(async function () {
    this.timeout(120_000);
    await buildWorkers();
  });

  it('two replicas, the holder killed right after a burst and mid-burst (3 kills): no second above the limit, a hold of one window, no message sent twice', async () => {
    const s = track(await startSystem({ smsPerSecond: LIMIT }));
    // Debug lines say which replica holds the session ('session accepted' / 'session released').
    s.env['LOG_LEVEL'] = 'debug';
    const run = await s.runJourney(SEED.journey, 1000);
    const expected = new Set(run.created.map((c) => c.activityRowId));
    const intake = s.spawnWorker('intake', { compiled: true });
    s.spawnWorker('recorder', { compiled: true });
    // The whole journey on `outbound` before dispatch starts: the holder always has a backlog, so it sends full bursts
    // however slowly intake runs on a loaded machine (the kills below wait for a full or a starting burst).
    await until(`intake to send ${expected.size} messages to outbound`, () => (logLines(intake, 'sent to outbound').length >= expected.size ? true : undefined), 120_000);
    const replicas = [s.spawnWorker('dispatch', { compiled: true }), s.spawnWorker('dispatch', { compiled: true })];
    const sms = (): SimulatedMessage[] => s.messages().filter((m) => m.sender === SENDERS.sms);
    const holder = (): WorkerProcess | undefined =>
      replicas.find((w) => w.child.exitCode === null && w.child.signalCode === null && logLines(w, 'session accepted').length > logLines(w, 'session released').length);
    /**
     * Polls between every two I/O events of this process (the simulator runs here), not every 20 ms: a burst of 50
     * calls on loopback lasts a few tens of milliseconds, and a kill must land inside one.
     */
    const moment = async <T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = probe();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };

    const kills: Array<{ at: number; kind: string; before: number; inWindow: number }> = [];
    const scenarios = ['right after a burst', 'mid-burst', 'right after a burst'] as const;
    for (const kind of scenarios) {
      const victim = await moment(`a holder sending (${kind})`, () => {
        const now = Date.now();
        const recent = sms().filter((m) => m.time > now - WINDOW_MS);
        // Right after a burst: the window is (nearly) full. Mid-burst: a burst begun in a window that held little.
        const sending = recent.some((m) => m.time > now - 30);
        const ready = kind === 'mid-burst' ? sending && recent.length >= 5 && recent.length <= LIMIT * 0.8 : recent.length >= LIMIT * 0.9;
        return ready ? holder() : undefined;
      });
      const at = Date.now();
      await victim.kill();
      kills.push({ at, kind, before: sms().length, inWindow: sms().filter((m) => m.time > at - WINDOW_MS && m.time <= at).length });
      replicas.push(s.spawnWorker('dispatch', { compiled: true }));
      if (sms().length >= expected.size * 0.8) break;
      await until('the successor sending', () => (sms().length > kills[kills.length - 1]!.before + LIMIT ? true : undefined));
    }
    assert.equal(kills.length, scenarios.length, `killed ${kills.length} times before the journey ran out`);

    await until(`${expected.size} sent interactions`, async () => ((await s.interactions()).filter((i) => i.responseType === 'sent').length >= expected.size ? true : undefined));
    const messages = sms();
    const times = messages.map((m) => m.time);
    assert.ok(maxInWindow(times, WINDOW_MS) <= LIMIT, `${maxInWindow(times, WINDOW_MS)} messages in one second, limit ${LIMIT}`);
    assert.equal(s.sim.stats().twilio.senders[SENDERS.sms]?.rateViolations ?? 0, 0, 'the simulator saw no rate violation');

    // No message sent twice: by relay key, and by recipient and body.
    const keys = messages.map((m) => m.idempotencyKey);
    // Repeats per kill: messages sent after a kill (until the next) whose key was sent before.
    const repeatsPerKill = kills.map((k, i) => {
      const next = kills[i + 1]?.at ?? Infinity;
      const before = new Set(messages.filter((m) => m.time <= k.at).map((m) => m.idempotencyKey));
      return messages.filter((m) => m.time > k.at && m.time <= next && before.has(m.idempotencyKey)).length;
    });
    assert.deepEqual(repeatsPerKill, kills.map(() => 0), 'no message of a kill\'s batch sent again');
    const repeatedKeys = keys.length - new Set(keys).size;
    const repeatedTexts = messages.length - new Set(messages.map((m) => `${m.recipient}\u0000${m.text}`)).size;
    assert.deepEqual(new Set(keys), expected, 'every activity sent');
    assert.equal(repeatedKeys, 0, `repeats over ${kills.length} kills`);
    assert.equal(repeatedTexts, 0);

    // The pause after each kill: the successor takes the session without a clean hand-over and holds one window from
    // then (the dead holder's last call time is unknown); then it looks up the dead holder's batch (4 at once) and
    // sends. Its first send comes at least one window after the takeover, and within two.
    const takeovers = replicas.flatMap((w) => logLines(w, 'session taken over without a clean hand-over'));
    assert.ok(takeovers.length >= kills.length, `each kill was taken over without a clean hand-over: ${takeovers.length}`);
    for (const t of takeovers) assert.ok(Number(t['waitMs']) <= WINDOW_MS + 10, `the hold is one window (+ the 10 ms guard): ${String(t['waitMs'])} ms`);
    const takenAt = takeovers.map((t) => Date.parse(String(t['timestamp']))).sort((a, b) => a - b);
    const sorted = [...times].sort((a, b) => a - b);
    const pauses = kills.map((k) => {
      const takeover = takenAt.find((t) => t >= k.at) ?? Number.NaN;
      const first = sorted.find((t) => t > takeover) ?? Number.NaN;
      return { takeover: takeover - k.at, hold: first - takeover };
    });
    for (const [i, p] of pauses.entries()) {
      const what = `kill ${i + 1} (${kills[i]?.kind}): taken over ${p.takeover} ms after the kill, first send ${p.hold} ms after the takeover`;
      assert.ok(p.hold >= WINDOW_MS, `${what}: held at least one window`);
      assert.ok(p.hold <= 2 * WINDOW_MS, `${what}: and within two (the hold, then the lookups)`);
      assert.ok(p.takeover < WINDOW_MS, `${what}: the standby took the session at once (a dropped connection releases it)`);
    }
    const found = replicas.flatMap((w) => logLines(w, 'listed in flight before this delivery; the provider has it'));
    const notFound = replicas.flatMap((w) => logLines(w, 'listed in flight before this delivery; the provider does not have it'));
    assert.ok(found.length > 0, `messages in flight at a kill were found at Twilio and recorded, not sent again (found ${found.length}, not found ${notFound.length})`);
    assert.deepEqual(await s.deadLetters('outbound'), [], 'nothing dead-lettered');
    console.log(`      ${kills.map((k, i) => `${k.kind} (${k.inWindow} in the second before): takeover +${pauses[i]?.takeover} ms, hold ${pauses[i]?.hold} ms`).join('; ')}; in flight: found ${found.length}, not found ${notFound.length}; repeats per kill ${repeatsPerKill.join(', ')}`);
  });
});
