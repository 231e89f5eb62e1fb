/**
 * The latency benchmark (#15 §3): how long an activity takes from its Create in the Dataverse emulator (the journey
 * run's `createdAtMs`) to the provider simulator's acceptance (the message's `time`, found by its idempotency key, the
 * activity row) and to the `sent` interaction stored in the emulator (`recordedAtMs`), at 25 %, 50 % and 90 % of the
 * relay's capacity measured first in the same run; and single activities into an idle relay (batching must not
 * linger), with the sender's dispatch session still held and after its release. All three clocks are the benchmark
 * process's (the emulators run in it). See docs/benchmarks.md, "Latency".
 *
 * Settings (environment variables; defaults in {@link SETTINGS}, measure.ts's COMMON): LATENCY_CAPACITY_ACTIVITIES,
 * LATENCY_SECONDS, LATENCY_TICK_MS, LATENCY_IDLE_SAMPLES, and the PIPELINE_* latencies, sender and warm-up.
 */
import { SEED, buildWorkers, type System, type WorkerProcess } from '../integration/pipeline/harness.js';
import {
  COMMON,
  RELAY_IDENTITY,
  deployedWorkers,
  dvStats,
  emulatorGet,
  fmt,
  interactionsReach,
  measuredJourney,
  now,
  percentile,
  setting,
  sleep,
  STAGES,
  startWorkers,
  stopWorkers,
  verdict,
  startBenchSystem,
} from './pipeline/measure.js';
import type { BenchSection } from './section.js';

const SETTINGS = {
  ...COMMON,
  /** Contacts of the journey the relay's capacity is measured with. */
  capacityActivities: setting('LATENCY_CAPACITY_ACTIVITIES', 3000),
  /** How long activities arrive at each load, s. */
  seconds: setting('LATENCY_SECONDS', 20),
  /** A journey run every this many ms, of as many contacts as the arrival rate gives. */
  tickMs: setting('LATENCY_TICK_MS', 100),
  /** Single activities into the idle relay, in each of the two idle cases. */
  idleSamples: setting('LATENCY_IDLE_SAMPLES', 5),
};
/**
 * The idle cases: single activities this far apart, longer than every loop's receive wait (200 ms); shorter than
 * dispatch's `sessionIdleMs` (2 s, the default the workers run with), so the sender's session is still held, or
 * after the dispatch worker reports it released.
 */
const HELD_SPACING_MS = 1000;
const RELEASED_SPACING_MS = 2000;
/**
 * A single activity after a session release reaches the provider within this multiple of one with it held: accepting
 * the session again costs a few round trips; a first receive that lingered for its batch cost the receive wait (200 ms,
 * 2.6x in a trial run before the fix).
 */
const RELEASED_RATIO_TARGET = 1.5;
const LOADS = [0.25, 0.5, 0.9] as const;
const TARGET_P99_MS = 1000;

/** One activity's timestamps: created, accepted by the provider, its `sent` interaction stored (ms since the epoch). */
interface Sample {
  created: number;
  provider?: number;
  sent?: number;
}

/** Runs journeys of `count` and remembers when each created its activities. */
async function createActivities(system: System, count: number, samples: Map<string, Sample>): Promise<number> {
  const run = await system.runJourney(SEED.journey, count);
  for (const c of run.created) samples.set(c.activityRowId, { created: run.createdAtMs });
  return run.created.length;
}

/** Waits until every activity of `samples` has its `sent` interaction, then fills in the two other timestamps. */
async function complete(system: System, samples: Map<string, Sample>, before: number): Promise<void> {
  await interactionsReach(system, before + samples.size, 600_000, 'latency');
  for (const m of system.sim.messages()) {
    const s = m.idempotencyKey === undefined ? undefined : samples.get(m.idempotencyKey);
    if (s !== undefined) s.provider = Math.min(s.provider ?? Infinity, m.time);
  }
  const body = await emulatorGet<{ value: Array<{ activityRowId?: string; recordedAtMs?: number }> }>(
    `${system.dv.url}/_emulator/interactions?journeyId=${SEED.journey}&responseType=sent`,
  );
  for (const i of body.value) {
    const s = i.activityRowId === undefined ? undefined : samples.get(i.activityRowId);
    if (s !== undefined && i.recordedAtMs !== undefined) s.sent = Math.min(s.sent ?? Infinity, i.recordedAtMs);
  }
}

interface Latencies {
  activities: number;
  arrivalPerSecond: number;
  provider: number[];
  sent: number[];
  /** Activities without a provider message or `sent` interaction found. */
  unmatched: number;
}

function latencies(samples: Map<string, Sample>, seconds: number): Latencies {
  const provider: number[] = [];
  const sent: number[] = [];
  let unmatched = 0;
  for (const s of samples.values()) {
    if (s.provider === undefined || s.sent === undefined) unmatched++;
    if (s.provider !== undefined) provider.push(s.provider - s.created);
    if (s.sent !== undefined) sent.push(s.sent - s.created);
  }
  return { activities: samples.size, arrivalPerSecond: samples.size / seconds, provider, sent, unmatched };
}

/** Activities arriving at `perSecond` for `seconds`: a journey run per tick, on an absolute schedule. */
async function paced(system: System, perSecond: number): Promise<Latencies> {
  const before = (await dvStats(system)).interactions;
  const samples = new Map<string, Sample>();
  const ticks = Math.max(1, Math.round((SETTINGS.seconds * 1000) / SETTINGS.tickMs));
  const t0 = now();
  const runs: Array<Promise<number>> = [];
  for (let i = 0; i < ticks; i++) {
    const wait = t0 + i * SETTINGS.tickMs - now();
    if (wait > 0) await sleep(wait);
    const due = Math.floor((perSecond * (i + 1) * SETTINGS.tickMs) / 1000);
    const count = due - Math.floor((perSecond * i * SETTINGS.tickMs) / 1000);
    if (count > 0) runs.push(createActivities(system, count, samples));
  }
  await Promise.all(runs);
  const seconds = (now() - t0) / 1000;
  await complete(system, samples, before);
  return latencies(samples, seconds);
}

/** The health URL a worker logged at start (`health endpoints listening`). */
function healthUrl(worker: WorkerProcess): string {
  for (const line of worker.stderr().split('\n')) {
    if (!line.includes('"health endpoints listening"')) continue;
    const url = (JSON.parse(line) as { url?: unknown }).url;
    if (typeof url === 'string') return url;
  }
  throw new Error('the worker logged no "health endpoints listening" line with its url');
}

/** The `outbound` sessions the dispatch worker holds now (`channel_relay_sessions_held` on its /metrics). */
async function sessionsHeld(dispatchHealth: string): Promise<number> {
  const text = await (await fetch(`${dispatchHealth}/metrics`)).text();
  const m = /^channel_relay_sessions_held\{[^}]*queue="outbound"[^}]*\} (\d+)$/m.exec(text);
  if (m === null) throw new Error(`no channel_relay_sessions_held{queue="outbound"} in ${dispatchHealth}/metrics`);
  return Number(m[1]);
}

/**
 * Single activities into the idle relay, `spacingMs` apart: nothing in flight, every stage waiting on an empty queue;
 * with `released`, each also waits until the dispatch worker holds no session (its sender's was released as idle).
 * `otherState` counts the samples meant for a held session that found it released.
 */
async function idleSingles(
  system: System,
  dispatchHealth: string,
  spacingMs: number,
  released: boolean,
): Promise<Latencies & { otherState: number }> {
  const before = (await dvStats(system)).interactions;
  const samples = new Map<string, Sample>();
  let otherState = 0;
  for (let i = 0; i < SETTINGS.idleSamples; i++) {
    await sleep(spacingMs);
    if (released) {
      const deadline = now() + 30_000;
      while ((await sessionsHeld(dispatchHealth)) > 0) {
        if (now() > deadline) throw new Error('the dispatch worker still holds a session 30 s after the last activity');
        await sleep(50);
      }
    } else if (i > 0 && (await sessionsHeld(dispatchHealth)) === 0) otherState++;
    const one = new Map<string, Sample>();
    await createActivities(system, 1, one);
    await complete(system, one, before + samples.size);
    for (const [k, v] of one) samples.set(k, v);
  }
  return { ...latencies(samples, 1), otherState };
}

export async function benchLatency(): Promise<BenchSection> {
  console.error('bench latency: building dist/ …');
  await buildWorkers();
  const system = await startBenchSystem({ limits: 'off' });
  try {
    deployedWorkers(system);
    const workers = await startWorkers(system);
    const pids = workers.map((w) => w.child.pid!);
    console.error(`bench latency: warm-up, ${COMMON.warmup} contacts …`);
    await measuredJourney(system, SEED.journey, COMMON.warmup, pids, RELAY_IDENTITY, 600_000);
    console.error(`bench latency: capacity, ${SETTINGS.capacityActivities} contacts …`);
    const capacity = (
      await measuredJourney(system, SEED.journey, SETTINGS.capacityActivities, pids, RELAY_IDENTITY, 600_000)
    ).perSecond;
    const dispatchHealth = healthUrl(workers[STAGES.indexOf('dispatch')]!);
    console.error(`bench latency: idle, ${SETTINGS.idleSamples} single activities, the session held …`);
    const idle = await idleSingles(system, dispatchHealth, HELD_SPACING_MS, false);
    console.error(`bench latency: idle, ${SETTINGS.idleSamples} single activities, each after the session's release …`);
    const afterRelease = await idleSingles(system, dispatchHealth, RELEASED_SPACING_MS, true);
    const loads: Array<{ load: number; figures: Latencies }> = [];
    for (const load of LOADS) {
      console.error(`bench latency: ${load * 100} % of ${fmt(capacity, 0)}/s for ${SETTINGS.seconds} s …`);
      await sleep(2000);
      loads.push({ load, figures: await paced(system, load * capacity) });
    }
    await stopWorkers(workers);
    return { title: 'Latency', markdown: report(capacity, idle, afterRelease, loads) };
  } finally {
    await system.close();
  }
}

function report(
  capacity: number,
  idle: Latencies & { otherState: number },
  afterRelease: Latencies,
  loads: Array<{ load: number; figures: Latencies }>,
): string {
  const s = SETTINGS;
  const ms = (values: number[], p: number): string => fmt(percentile(values, p));
  const three = (values: number[]): string => `${ms(values, 50)} / ${ms(values, 95)} / ${ms(values, 99)}`;
  const atHalf = loads.find((l) => l.load === 0.5)?.figures;
  const p99Half = atHalf === undefined ? Number.NaN : percentile(atHalf.provider, 99);
  const quarter = loads.find((l) => l.load === 0.25)?.figures;
  const idleMedian = percentile(idle.provider, 50);
  const quarterMedian = quarter === undefined ? Number.NaN : percentile(quarter.provider, 50);
  const releasedMedian = percentile(afterRelease.provider, 50);
  const unmatched = loads.reduce((n, l) => n + l.figures.unmatched, idle.unmatched + afterRelease.unmatched);
  return [
    'The relay\'s three built workers (as in "Pipeline"), warmed up, on the same emulators',
    `(**${s.providerLatencyMs} ms per provider call**, **${s.dataverseLatencyMs} ms per Dataverse request**, Dataverse limits off, the sender at`,
    `${fmt(s.senderRate)}/s with ${s.senderConcurrency} calls in flight). Capacity is measured first in the same run: a journey of`,
    `${fmt(s.capacityActivities)} contacts at once, from its start to its last interaction: **${fmt(capacity, 1)} activities/s**. Then activities`,
    `arrive at 25 %, 50 % and 90 % of that for ${s.seconds} s each: a journey run every ${s.tickMs} ms of as many contacts as the rate gives.`,
    "Latency runs from the run's Create of the activity in the Dataverse emulator (`createdAtMs` of the run) to the",
    "provider simulator's acceptance of its message (by idempotency key) and to its `sent` interaction stored in the",
    "emulator (`recordedAtMs`); it includes the emulator's own posting to `activities`, as Dataverse's asynchronous",
    'posting would. All timestamps come from one clock (the emulators run in the benchmark process).',
    'The idle activities come one at a time, every stage waiting on an empty queue: either while the dispatch session',
    `of their sender is still held (${fmt(HELD_SPACING_MS / 1000)} s apart, inside dispatch's 2 s \`sessionIdleMs\`) or after it was released (each`,
    "once the dispatch worker's `channel_relay_sessions_held` reads 0), when dispatch accepts the session again for it.",
    '',
    '| Load | Arrivals/s | Activities | To provider acceptance, ms p50 / p95 / p99 | To `sent` interaction, ms p50 / p95 / p99 |',
    '|---|---|---|---|---|',
    `| Idle, the sender's session held: one activity at a time, ${fmt(HELD_SPACING_MS / 1000)} s apart | — | ${fmt(idle.activities)} | ${three(idle.provider)} | ${three(idle.sent)} |`,
    `| Idle, after the sender's session was released: one activity at a time, ${fmt(RELEASED_SPACING_MS / 1000)} s apart and once dispatch holds no session | — | ${fmt(afterRelease.activities)} | ${three(afterRelease.provider)} | ${three(afterRelease.sent)} |`,
    ...loads.map(
      (l) =>
        `| ${l.load * 100} % | ${fmt(l.figures.arrivalPerSecond, 1)} | ${fmt(l.figures.activities)} | ${three(l.figures.provider)} | ${three(l.figures.sent)} |`,
    ),
    '',
    ...(unmatched > 0
      ? [`${fmt(unmatched)} activities had no provider message or \`sent\` interaction found.`, '']
      : []),
    ...(idle.otherState > 0
      ? [`${fmt(idle.otherState)} of the "session held" activities found it released (the machine was slow).`, '']
      : []),
    '| Target | Measured | |',
    '|---|---|---|',
    `| p99 to provider acceptance <= ${fmt(TARGET_P99_MS)} ms at 50 % of capacity | ${fmt(p99Half)} ms | ${verdict(p99Half <= TARGET_P99_MS)} |`,
    `| No linger when idle: a single activity reaches the provider no later than the median at 25 % load | ${fmt(idleMedian)} ms (25 %: ${fmt(quarterMedian)} ms) | ${verdict(idleMedian <= quarterMedian)} |`,
    `| No linger after a session release: a single activity whose sender's session was released reaches the provider within ${fmt(RELEASED_RATIO_TARGET, 2)}x the median with it held | ${fmt(releasedMedian)} ms (${fmt(releasedMedian / idleMedian, 2)}x) | ${verdict(releasedMedian <= RELEASED_RATIO_TARGET * idleMedian)} |`,
    '',
    'Settings (environment variables): `LATENCY_CAPACITY_ACTIVITIES`, `LATENCY_SECONDS`, `LATENCY_TICK_MS`, `LATENCY_IDLE_SAMPLES`, and',
    `the \`PIPELINE_*\` latencies, sender and warm-up. This run: ${fmt(s.capacityActivities)} contacts for capacity, ${s.seconds} s per load, ${s.tickMs} ms ticks,`,
    `${s.idleSamples} idle samples, warm-up ${fmt(s.warmup)}.`,
  ].join('\n');
}
