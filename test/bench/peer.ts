/**
 * The peer benchmark (#15): the relay's three built workers against what a Dynamics 365 developer would build
 * instead, a careful Functions-style worker (pipeline/peer.ts: 16 messages at once, three Dataverse requests per
 * activity, Retry-After honoured, the sender's rate kept), and the one-at-a-time baseline (pipeline/baseline.ts), on
 * the same emulators, in two scenarios: Dataverse's service protection limits at their real rate over a short window
 * (600 requests and 120 s of execution time per 30 s, 52 at once: 6,000 and 1,200 s per 5 minutes scaled down), and
 * limits off. Then a longer relay run under limits at a fraction of that rate, so that its budget binds: how much of the budget it uses, and
 * that Dataverse answered its identity no 429. See docs/benchmarks.md, "Peer".
 *
 * Settings (environment variables; defaults in {@link SETTINGS}, measure.ts's COMMON): PEER_ACTIVITIES,
 * PEER_BASELINE_ACTIVITIES, PEER_WARMUP, PEER_BINDING_ACTIVITIES, PEER_BINDING_SHARE, PEER_LIMITS_WINDOW_MS,
 * PEER_RECORDER_EXECUTION_SHARE, and the PIPELINE_* latencies and sender.
 */
import { SEED, buildWorkers, type System } from '../integration/pipeline/harness.js';
import {
  COMMON,
  RELAY_IDENTITY,
  correct,
  correctness,
  deployedWorkers,
  describeCorrectness,
  dvStats,
  fmt,
  measuredJourney,
  now,
  per,
  setting,
  sleep,
  startScript,
  startWorkers,
  stopWorkers,
  verdict,
  type Correctness,
  type RunFigures,
  startBenchSystem,
} from './pipeline/measure.js';
import type { BenchSection } from './section.js';

const SETTINGS = {
  ...COMMON,
  /** Contacts of each measured journey (the seed's opted-out contacts are skipped: 3,000 give 2,970 activities). */
  activities: setting('PEER_ACTIVITIES', 3000),
  /** Contacts of the baseline's journey (limits off only). */
  baselineActivities: setting('PEER_BASELINE_ACTIVITIES', 500),
  /** Contacts of the peer's and the baseline's first journey, before the measured ones (the relay's: PIPELINE_WARMUP). */
  scriptWarmup: setting('PEER_WARMUP', 100),
  /** Contacts of the relay's run under the limits that is long enough for the budget to bind. */
  bindingActivities: setting('PEER_BINDING_ACTIVITIES', 9000),
  /**
   * The budgets of the binding run, as a share of the real rate's: small enough that the budget, not the machine's
   * CPU, bounds the relay (at the real rate it can write about 180 interactions/s, near what a loaded machine gives).
   */
  bindingShare: setting('PEER_BINDING_SHARE', 0.5),
  /** The limits' window, ms; the budgets are Dataverse's rate over it (6,000 requests and 1,200 s per 5 minutes). */
  windowMs: setting('PEER_LIMITS_WINDOW_MS', 30_000),
  /**
   * The recorder's part of the identity's execution-time budget (docs/operations.md: every interaction is an operation,
   * while intake reads one operation per table and batch).
   */
  recorderExecutionShare: setting('PEER_RECORDER_EXECUTION_SHARE', 0.9),
};

const LIMITS = {
  windowMs: SETTINGS.windowMs,
  maxRequests: Math.round((6000 * SETTINGS.windowMs) / 300_000),
  maxExecutionMs: Math.round((1_200_000 * SETTINGS.windowMs) / 300_000),
  maxConcurrent: 52,
};

/** The limits of the binding run: {@link LIMITS} at `bindingShare` of the rate (same window and concurrency). */
const BINDING_LIMITS = {
  ...LIMITS,
  maxRequests: Math.round(LIMITS.maxRequests * SETTINGS.bindingShare),
  maxExecutionMs: Math.round(LIMITS.maxExecutionMs * SETTINGS.bindingShare),
};

const TARGETS = { vsPeerLimited: 100, vsPeerUnlimited: 3, budgetUse: 0.8 } as const;
const PEER_IDENTITY = 'peer';
const BASELINE_IDENTITY = 'baseline';
const TIMEOUT_MS = 1_800_000;

/** Turns the emulator's limits on (as `limits`, no rate-limit headers: the harness's reading) or off. */
async function emulatorLimits(system: System, enabled: boolean, limits: typeof LIMITS = LIMITS): Promise<void> {
  const res = await fetch(`${system.dv.url}/_emulator/limits`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(enabled ? { enabled: true, headers: 'omit', ...limits } : { enabled: false }),
  });
  if (!res.ok) throw new Error(`PATCH /_emulator/limits: ${res.status} ${await res.text()}`);
}

/** The relay's governor told the same window, the identity's budgets (`limits`) shared by intake and the recorder. */
function relayLimitsEnv(limits: typeof LIMITS): (stage: string) => Record<string, string> {
  return (stage): Record<string, string> => {
    if (stage === 'dispatch') return {};
    const share = stage === 'recorder' ? SETTINGS.recorderExecutionShare : 1 - SETTINGS.recorderExecutionShare;
    return {
      DATAVERSE_LIMITS_WINDOW_MS: String(limits.windowMs),
      DATAVERSE_REQUEST_BUDGET: String(Math.floor(limits.maxRequests / 2)),
      DATAVERSE_EXECUTION_BUDGET_MS: String(Math.floor(limits.maxExecutionMs * share)),
    };
  };
}

/** The most of the identity's budget (`limits`) used in any window while `during` runs: requests and execution time. */
async function budgetUse<T>(
  system: System,
  identity: string,
  during: Promise<T>,
  limits: typeof LIMITS = LIMITS,
): Promise<{ result: T; requests: number; execution: number }> {
  let done = false;
  let requests = 0;
  let execution = 0;
  const sampling = (async () => {
    while (!done) {
      const s = (await dvStats(system)).identities[identity];
      if (s !== undefined) {
        requests = Math.max(requests, s.requestsInWindow / limits.maxRequests);
        execution = Math.max(execution, s.executionMsInWindow / limits.maxExecutionMs);
      }
      await sleep(250);
    }
  })();
  try {
    return { result: await during, requests, execution };
  } finally {
    done = true;
    await sampling;
  }
}

interface Measured {
  run: RunFigures;
  check: Correctness;
}

async function measure(
  system: System,
  count: number,
  pids: number[],
  identity: string,
  what: string,
): Promise<Measured> {
  console.error(`bench peer: ${what}, ${count} contacts …`);
  const run = await measuredJourney(system, SEED.journey, count, pids, identity, TIMEOUT_MS);
  // Each part's figures as it ends, for trial runs that stop early.
  console.error(
    `bench peer: ${what}: ${fmt(run.activities)} in ${fmt(run.seconds, 1)} s, ${fmt(run.perSecond, 1)}/s, ${fmt(run.throttled)} 429s`,
  );
  return { run, check: await correctness(system, run.rowIds) };
}

interface Results {
  relayOff: Measured;
  peerOff: Measured;
  baselineOff: Measured;
  relayLimited: Measured;
  peerLimited: Measured;
  peerUse: { requests: number; execution: number };
  binding: Measured & { requests: number; execution: number; seconds: number };
  seconds: Record<string, number>;
}

export async function benchPeer(): Promise<BenchSection> {
  console.error('bench peer: building dist/ …');
  await buildWorkers();
  const system = await startBenchSystem({ limits: 'off' });
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = now();
    try {
      return await f();
    } finally {
      seconds[name] = (now() - t0) / 1000;
    }
  };
  try {
    deployedWorkers(system);
    const peerEnv = { PEER_IDENTITY, PEER_RATE: String(SETTINGS.senderRate) };

    // Limits off: each implementation warmed up, then the measured journey.
    const relayOff = await timed('relay, limits off', async () => {
      const workers = await startWorkers(system);
      const pids = workers.map((w) => w.child.pid!);
      await measure(system, COMMON.warmup, pids, RELAY_IDENTITY, 'relay warm-up');
      const m = await measure(system, SETTINGS.activities, pids, RELAY_IDENTITY, 'relay, limits off');
      await stopWorkers(workers);
      return m;
    });
    const peerOff = await timed('peer, limits off', async () => {
      const peer = await startScript(system, 'peer', peerEnv);
      await measure(system, SETTINGS.scriptWarmup, [peer.pid], PEER_IDENTITY, 'peer warm-up');
      const m = await measure(system, SETTINGS.activities, [peer.pid], PEER_IDENTITY, 'peer, limits off');
      await peer.stop();
      return m;
    });
    const baselineOff = await timed('baseline, limits off', async () => {
      const baseline = await startScript(system, 'baseline', { BASELINE_IDENTITY });
      await measure(system, SETTINGS.scriptWarmup, [baseline.pid], BASELINE_IDENTITY, 'baseline warm-up');
      const m = await measure(system, SETTINGS.baselineActivities, [baseline.pid], BASELINE_IDENTITY, 'baseline');
      await baseline.stop();
      return m;
    });

    // Limits on. Warm-ups run with the emulator's limits off (counted only while on), and the relay's governor's
    // own window of its warm-up passes before the limits come on.
    const { relayLimited, binding } = await timed('relay, limits on', async () => {
      const workers = await startWorkers(system, relayLimitsEnv(LIMITS));
      const pids = workers.map((w) => w.child.pid!);
      await measure(system, COMMON.warmup, pids, RELAY_IDENTITY, 'relay warm-up (its governor on the short window)');
      await sleep(LIMITS.windowMs);
      await emulatorLimits(system, true);
      const limited = await measure(system, SETTINGS.activities, pids, RELAY_IDENTITY, 'relay, limits on');
      await stopWorkers(workers);
      // The binding run: smaller budgets, told to fresh workers (their governors' windows empty, as the emulator's
      // once a window has passed).
      await emulatorLimits(system, false);
      const bindingWorkers = await startWorkers(system, relayLimitsEnv(BINDING_LIMITS));
      const bindingPids = bindingWorkers.map((w) => w.child.pid!);
      await sleep(LIMITS.windowMs);
      await emulatorLimits(system, true, BINDING_LIMITS);
      const t0 = now();
      const use = await budgetUse(
        system,
        RELAY_IDENTITY,
        measure(system, SETTINGS.bindingActivities, bindingPids, RELAY_IDENTITY, 'relay, limits on, budget binding'),
        BINDING_LIMITS,
      );
      const bindingSeconds = (now() - t0) / 1000;
      await stopWorkers(bindingWorkers);
      await emulatorLimits(system, false);
      return {
        relayLimited: limited,
        binding: { ...use.result, requests: use.requests, execution: use.execution, seconds: bindingSeconds },
      };
    });
    const { peerLimited, peerUse } = await timed('peer, limits on', async () => {
      const peer = await startScript(system, 'peer', peerEnv);
      await measure(system, SETTINGS.scriptWarmup, [peer.pid], PEER_IDENTITY, 'peer warm-up');
      await emulatorLimits(system, true);
      const use = await budgetUse(
        system,
        PEER_IDENTITY,
        measure(system, SETTINGS.activities, [peer.pid], PEER_IDENTITY, 'peer, limits on'),
      );
      await peer.stop();
      await emulatorLimits(system, false);
      return { peerLimited: use.result, peerUse: { requests: use.requests, execution: use.execution } };
    });
    return {
      title: 'Peer',
      markdown: report({ relayOff, peerOff, baselineOff, relayLimited, peerLimited, peerUse, binding, seconds }),
    };
  } finally {
    await system.close();
  }
}

function report(r: Results): string {
  const s = SETTINGS;
  const cpu = (m: Measured): number => per(m.run.cpuMs, m.run.activities);
  const row = (name: string, scenario: string, m: Measured): string =>
    `| ${name} | ${scenario} | ${fmt(m.run.activities)} | ${fmt(m.run.seconds, 1)} s | **${fmt(m.run.perSecond, 1)}** | ${fmt(per(m.run.requests, m.run.activities), 3)} | ${fmt(m.run.throttled)} | ${fmt(cpu(m), 3)} | ${describeCorrectness(m.check)} |`;
  const vsLimited = r.relayLimited.run.perSecond / r.peerLimited.run.perSecond;
  const vsUnlimited = r.relayOff.run.perSecond / r.peerOff.run.perSecond;
  const relay429s = r.relayLimited.run.throttled + r.binding.run.throttled;
  const use = Math.max(r.binding.requests, r.binding.execution);
  const binds = use >= TARGETS.budgetUse;
  const allCorrect = [r.relayOff, r.peerOff, r.baselineOff, r.relayLimited, r.peerLimited, r.binding].every((m) =>
    correct(m.check),
  );
  const pct = (x: number): string => `${fmt(x * 100, 1)} %`;
  return [
    "What a Dynamics 365 developer would build instead of the relay, against the relay's built workers, on the same",
    `emulators (**${s.providerLatencyMs} ms per provider call**, **${s.dataverseLatencyMs} ms per Dataverse request**; the journey's sender at`,
    `${fmt(s.senderRate)} messages/s with ${s.senderConcurrency} calls in flight), each implementation in its own processes and warmed up first:`,
    '',
    '- **Peer** (`test/bench/pipeline/peer.ts`): an Azure Function with a Service Bus trigger, written carefully:',
    '  `subscribe` with `maxConcurrentCalls: 16` on `activities`; per message GET the contact, GET the message record,',
    '  render, POST to the provider, `CreateInteraction`, complete (three Dataverse requests, and a GET of the activity',
    '  row first for the half of the Creates whose Target lacks the contact and message record); a 429 waits its',
    "  `Retry-After` and retries; a token bucket keeps the sender's rate; an unexpected error abandons the message.",
    '- **Baseline** (`test/bench/pipeline/baseline.ts`): the same steps one message at a time (see "Pipeline").',
    '- **Relay**: `node dist/workers/{intake,dispatch,recorder}.js` as in "Pipeline".',
    '',
    `Two scenarios. **Limits at the real rate**: the Dataverse emulator's service protection limits at Dataverse's`,
    `rate over a ${fmt(LIMITS.windowMs / 1000)} s window (${fmt(LIMITS.maxRequests)} requests and ${fmt(LIMITS.maxExecutionMs / 1000)} s of execution time per window and identity,`,
    `${LIMITS.maxConcurrent} at once; no \`x-ms-ratelimit-*\` headers), and the relay's governor told the same window`,
    `(\`DATAVERSE_LIMITS_WINDOW_MS\`), its identity's budgets shared by intake and the recorder as docs/operations.md says`,
    `(requests half each; execution time ${pct(1 - s.recorderExecutionShare)} intake, ${pct(s.recorderExecutionShare)} the recorder, which writes). **Limits off**.`,
    "Warm-ups run with the limits off. Each journey runs over the organization's first contacts (the seed's opted-out",
    'ones are skipped).',
    "The relay's governor (`src/dataverse/governor.ts`) lets a burst spend what the window has left, unpaced, while the work in sight",
    '(what its window holds, the calls in flight and those waiting) fits each budget less 10 %, and paces a backlog that does not fit',
    `at the budget's sustained rate once it held a call back: at the real rate the journey's interactions (a write operation each, 20 ms in`,
    `the emulator) fit the recorder's ${fmt((LIMITS.maxExecutionMs * s.recorderExecutionShare) / 1000)} s per window; in the binding run below they do not.`,
    `The baseline runs only with the limits off, over ${fmt(r.baselineOff.run.activities)} activities: under the limits it needs the peer's`,
    'three requests per activity and would take as long (about 7 minutes for 2,970).',
    '',
    "Requests are the emulator's count for the implementation's identity (a `$batch` is one; a request answered 429 is not one of them); 429s are those it",
    "answered to that identity; CPU is user + system time of the implementation's processes over the journey;",
    'correctness: exactly one provider message (by idempotency key, the activity row) and one `sent` interaction per',
    'activity, checked a second after the last.',
    '',
    '| Implementation | Scenario | Activities | Journey → last interaction | **Activities/s** | Dataverse requests per activity | 429s | CPU ms per activity | Correctness |',
    '|---|---|---|---|---|---|---|---|---|',
    row('Relay', 'limits at the real rate', r.relayLimited),
    row('Peer', 'limits at the real rate', r.peerLimited),
    row('Relay', 'limits off', r.relayOff),
    row('Peer', 'limits off', r.peerOff),
    row('Baseline', 'limits off', r.baselineOff),
    '',
    `The peer used at most ${pct(r.peerUse.requests)} of the request budget in a window (${pct(r.peerUse.execution)} of the execution time).`,
    `**Budget binding**: the relay then ran ${fmt(r.binding.run.activities)} more activities (fresh workers, not warmed up) under the same limits at ${pct(s.bindingShare)} of the rate`,
    `(${fmt(BINDING_LIMITS.maxRequests)} requests and ${fmt(BINDING_LIMITS.maxExecutionMs / 1000)} s of execution time per ${fmt(LIMITS.windowMs / 1000)} s, its governors told the same budgets and split), so that the budget`,
    `and not the machine's CPU bounds it (${fmt(r.binding.seconds, 0)} s,`,
    `${fmt(r.binding.run.perSecond, 1)}/s, ${fmt(per(r.binding.run.requests, r.binding.run.activities), 3)} requests per activity, ${describeCorrectness(r.binding.check)}): at most ${pct(r.binding.requests)} of the request`,
    `budget and ${pct(r.binding.execution)} of the execution-time budget in any window (sampled every 250 ms), ${fmt(r.binding.run.throttled)} 429s.`,
    '',
    'What bounds the relay at the real rate and not with the limits off: with the limits on, the emulator answers a request',
    "only after the execution time it is charged, a `$batch`'s operations one after another as Dataverse runs them (50",
    "interactions x 20 ms = 1 s), so the recorder's 16 writes in flight (`recorder.concurrency`) carry at most 800",
    'interactions/s, and a journey of a few seconds ends about a second after its last interactions reach the recorder. With',
    'the limits off the answers are not held, and the three workers and the emulators share the two cores.',
    '',
    '| Target | Measured | |',
    '|---|---|---|',
    `| Relay >= ${TARGETS.vsPeerLimited}x the peer with limits at the real rate | ${fmt(vsLimited, 1)}x | ${verdict(vsLimited >= TARGETS.vsPeerLimited)} |`,
    `| Relay >= ${TARGETS.vsPeerUnlimited}x the peer with limits off | ${fmt(vsUnlimited, 2)}x | ${verdict(vsUnlimited >= TARGETS.vsPeerUnlimited)} |`,
    `| 0 429s to the relay's identity while it uses >= ${TARGETS.budgetUse * 100} % of the budget when it binds | ${fmt(relay429s)} 429s, ${pct(use)} | ${verdict(relay429s === 0 && binds)} |`,
    `| One provider message and one \`sent\` interaction per activity, every implementation and scenario | ${allCorrect ? 'yes' : 'no: see the table'} | ${verdict(allCorrect)} |`,
    '',
    `Time per part: ${Object.entries(r.seconds)
      .map(([k, v]) => `${k} ${fmt(v, 0)} s`)
      .join(', ')}.`,
    '',
    'Settings (environment variables): `PEER_ACTIVITIES`, `PEER_BASELINE_ACTIVITIES`, `PEER_WARMUP`, `PEER_BINDING_ACTIVITIES`,',
    '`PEER_BINDING_SHARE`, `PEER_LIMITS_WINDOW_MS`, `PEER_RECORDER_EXECUTION_SHARE`, and the `PIPELINE_*` latencies, sender and warm-up of "Pipeline". This run: ' +
      `${fmt(s.activities)} / ${fmt(s.baselineActivities)} contacts, warm-up ${fmt(s.scriptWarmup)} (relay ${fmt(s.warmup)}), binding ${fmt(s.bindingActivities)} at ${pct(s.bindingShare)}, window ${fmt(s.windowMs)} ms.`,
  ].join('\n');
}
