/**
 * What the pipeline benchmarks (pipeline, peer, latency, backlog, tracing) share: their settings, the Dataverse
 * emulator's counters, a measured journey, the relay's built workers and the comparison implementations (baseline,
 * peer) as processes of their own, and the formatting of figures.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../../src/paths.js';
import type { JourneyRunResult } from '../../../src/emulators/dataverse/index.js';
import {
  SECRETS,
  SENDERS,
  startSystem,
  type System,
  type SystemOptions,
  type WorkerProcess,
} from '../../integration/pipeline/harness.js';
import { cpuMs, peakRssMb } from './proc.js';

/** A numeric setting from the environment (>= 0), or `fallback`. */
export function setting(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new TypeError(`${name} must be a number >= 0, found ${JSON.stringify(raw)}`);
  return value;
}

/** Emulated latencies and the throughput sender's limits, the same for every pipeline benchmark. */
export const COMMON = {
  /** Emulated latency of each provider call, ms. */
  providerLatencyMs: setting('PIPELINE_PROVIDER_LATENCY_MS', 50),
  /** Emulated latency of each Dataverse Web API request, ms. */
  dataverseLatencyMs: setting('PIPELINE_DATAVERSE_LATENCY_MS', 20),
  /** Rate limit of the sender of the throughput journeys, messages/s: high, so that no provider limit caps the relay. */
  senderRate: setting('PIPELINE_SENDER_RATE', 2000),
  /** Provider calls in flight per sender (the channel's rateLimit.concurrency). */
  senderConcurrency: setting('PIPELINE_SENDER_CONCURRENCY', 90),
  /** Activities each implementation handles after its start and before the measured run (V8 compiles its hot paths). */
  warmup: setting('PIPELINE_WARMUP', 3000),
};

/**
 * The emulators a section runs on: COMMON's latencies and throughput sender, plus the section's own options (Dataverse
 * limits, a second sender).
 */
export function startBenchSystem(extra: SystemOptions = {}): Promise<System> {
  return startSystem({
    smsPerSecond: COMMON.senderRate,
    smsConcurrency: COMMON.senderConcurrency,
    providerLatencyMs: COMMON.providerLatencyMs,
    dataverseLatencyMs: COMMON.dataverseLatencyMs,
    ...extra,
  });
}

/**
 * NODE_OPTIONS of the relay's workers: the Dockerfile's (`ENV NODE_OPTIONS`), so that the bench runs them as deployed.
 * PIPELINE_NODE_OPTIONS replaces it (e.g. '' for node's defaults).
 */
export const DEPLOYED_NODE_OPTIONS = '--max-old-space-size=1024 --max-semi-space-size=8';
export const WORKER_NODE_OPTIONS = process.env['PIPELINE_NODE_OPTIONS'] ?? DEPLOYED_NODE_OPTIONS;

/**
 * Makes the workers `system` spawns run as deployed: the relay's own defaults (the harness sets a smaller intake
 * batch for its tests) and the Dockerfile's NODE_OPTIONS; with PIPELINE_CPU_PROF=DIR they write V8 CPU profiles there.
 */
export function deployedWorkers(system: System): void {
  delete system.env['INTAKE_BATCH_SIZE'];
  const nodeOptions = [WORKER_NODE_OPTIONS];
  const cpuProfDir = process.env['PIPELINE_CPU_PROF'];
  if (cpuProfDir !== undefined && cpuProfDir !== '') {
    mkdirSync(cpuProfDir, { recursive: true });
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preload profiles through the inspector instead.
    nodeOptions.push(`--import ${path.join(packageRoot(), 'test', 'bench', 'pipeline', 'cpu-profile.mjs')}`);
    system.env['CPU_PROFILE_DIR'] = path.resolve(cpuProfDir);
  }
  system.env['NODE_OPTIONS'] = nodeOptions.filter((o) => o !== '').join(' ');
}

/** The relay's Dataverse identity (the emulator's token), shared by intake and the recorder. */
export const RELAY_IDENTITY = 'channel-relay';
export const STAGES = ['intake', 'dispatch', 'recorder'] as const;

export interface IdentityTraffic {
  requests: number;
  reads: number;
  writes: number;
}
export interface IdentityLimits {
  served: number;
  throttled: { requests: number; executionTime: number; concurrency: number };
  executionMsInWindow: number;
  executionMsTotal: number;
  requestsInWindow: number;
}
export interface EmulatorStats {
  interactions: number;
  interactionDuplicates: number;
  traffic: { identities: Record<string, IdentityTraffic> };
  identities: Record<string, IdentityLimits>;
  limits: { enabled: boolean; windowMs: number; maxRequests: number; maxExecutionMs: number };
  posting: { backlog: number; posted: number };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** GET on an emulator-only endpoint; a reset connection (a kept-alive socket the busy emulator closed) is tried again. */
export async function emulatorGet<T>(url: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    } catch (err) {
      if (attempt >= 3 || !(err instanceof TypeError)) throw err;
      await sleep(200);
    }
  }
}

export async function dvStats(system: System): Promise<EmulatorStats> {
  return emulatorGet<EmulatorStats>(`${system.dv.url}/_emulator/stats`);
}

export function traffic(stats: EmulatorStats, identity: string): IdentityTraffic {
  return stats.traffic.identities[identity] ?? { requests: 0, reads: 0, writes: 0 };
}

/** 429s the emulator answered to `identity` so far, for any of the three limits. */
export function throttled(stats: EmulatorStats, identity: string): number {
  const t = stats.identities[identity]?.throttled;
  return t === undefined ? 0 : t.requests + t.executionTime + t.concurrency;
}

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Polls the emulator until it holds `count` interactions; resolves with the time it first saw them (ms, hrtime). */
export async function interactionsReach(
  system: System,
  count: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = await dvStats(system);
    if (stats.interactions >= count) return now();
    if (Date.now() > deadline)
      throw new Error(`${what}: ${stats.interactions} of ${count} interactions after ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/** Activity rows of the journey run `activityId` (the tile id its rows share) with a `sent` interaction stored. */
async function sentRows(system: System, activityId: string): Promise<number> {
  const body = await emulatorGet<{ value: Array<{ activityRowId?: string }> }>(
    `${system.dv.url}/_emulator/interactions?activityId=${activityId}&responseType=sent`,
  );
  return new Set(body.value.map((i) => i.activityRowId)).size;
}

/**
 * Waits until every activity of `run` has its `sent` interaction; resolves with the time it first saw them (ms,
 * hrtime). The emulator's interaction count (cheap) must reach `before` + the run's activities first; then the run's
 * own rows are checked, since a straggler of an earlier run or a repeat can make up the count.
 */
async function journeyDone(system: System, run: JourneyRunResult, before: number, timeoutMs: number): Promise<number> {
  const activities = run.created.length;
  const what = `journey of ${activities}`;
  const deadline = Date.now() + timeoutMs;
  await interactionsReach(system, before + activities, timeoutMs, what);
  const activityId = run.created[0]?.activityId;
  if (activityId === undefined) return now();
  for (;;) {
    const done = await sentRows(system, activityId);
    if (done >= activities) return now();
    if (Date.now() > deadline) throw new Error(`${what}: ${done} sent after ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** The figures of one measured run, for one implementation. */
export interface RunFigures {
  activities: number;
  /** The activity rows the journey created (for {@link correctness}). */
  rowIds: string[];
  interactions: number;
  seconds: number;
  perSecond: number;
  cpuMs: number;
  /** CPU ms per process, in the order of the pids given. */
  cpuByProcess: number[];
  requests: number;
  reads: number;
  writes: number;
  /** 429s answered to the identity during the run. */
  throttled: number;
  duplicates: number;
  peakRssMb: number[];
}

/** Runs a journey of `count` and measures the processes `pids` and the identity's Dataverse traffic until the last interaction. */
export async function measuredJourney(
  system: System,
  journeyId: string,
  count: number,
  pids: number[],
  identity: string,
  timeoutMs: number,
): Promise<RunFigures> {
  const before = await dvStats(system);
  const cpuBefore = pids.map(cpuMs);
  const started = now();
  const run = await system.runJourney(journeyId, count);
  const activities = run.created.length;
  const ended = await journeyDone(system, run, before.interactions, timeoutMs);
  const cpuByProcess = pids.map((pid, i) => cpuMs(pid) - (cpuBefore[i] ?? 0));
  const after = await dvStats(system);
  const t0 = traffic(before, identity);
  const t1 = traffic(after, identity);
  const seconds = (ended - started) / 1000;
  return {
    activities,
    rowIds: run.created.map((c) => c.activityRowId),
    interactions: after.interactions - before.interactions,
    seconds,
    perSecond: activities / seconds,
    cpuMs: cpuByProcess.reduce((a, b) => a + b, 0),
    cpuByProcess,
    requests: t1.requests - t0.requests,
    reads: t1.reads - t0.reads,
    writes: t1.writes - t0.writes,
    throttled: throttled(after, identity) - throttled(before, identity),
    duplicates: after.interactionDuplicates - before.interactionDuplicates,
    peakRssMb: pids.map(peakRssMb),
  };
}

/** Exactly one provider message and one `sent` interaction per activity: what was missing and what came twice. */
export interface Correctness {
  missingMessages: number;
  duplicateMessages: number;
  missingSent: number;
  duplicateSent: number;
}

/**
 * Checks the activities `rowIds` against the provider simulator (messages by idempotency key: both the relay and
 * the comparison implementations send the activity row id) and the `sent` interactions stored in the emulator. Waits
 * `settleMs` first, so that a late repeat (a redelivered message) is counted.
 */
export async function correctness(system: System, rowIds: readonly string[], settleMs = 1000): Promise<Correctness> {
  await sleep(settleMs);
  const wanted = new Set(rowIds);
  const messages = new Map<string, number>();
  for (const m of system.sim.messages())
    if (m.idempotencyKey !== undefined && wanted.has(m.idempotencyKey))
      messages.set(m.idempotencyKey, (messages.get(m.idempotencyKey) ?? 0) + 1);
  const sent = new Map<string, number>();
  for (const i of await system.interactions())
    if (i.responseType === 'sent' && i.activityRowId !== undefined && wanted.has(i.activityRowId))
      sent.set(i.activityRowId, (sent.get(i.activityRowId) ?? 0) + 1);
  const count = (map: Map<string, number>): { missing: number; duplicate: number } => {
    let missing = 0;
    let duplicate = 0;
    for (const id of wanted) {
      const n = map.get(id) ?? 0;
      if (n === 0) missing++;
      else duplicate += n - 1;
    }
    return { missing, duplicate };
  };
  const m = count(messages);
  const s = count(sent);
  return {
    missingMessages: m.missing,
    duplicateMessages: m.duplicate,
    missingSent: s.missing,
    duplicateSent: s.duplicate,
  };
}

export const correct = (c: Correctness): boolean =>
  c.missingMessages + c.duplicateMessages + c.missingSent + c.duplicateSent === 0;

/** "one each" or what was missing and repeated. */
export function describeCorrectness(c: Correctness): string {
  if (correct(c)) return 'one each';
  return `messages: ${fmt(c.missingMessages)} missing, ${fmt(c.duplicateMessages)} repeated; sent: ${fmt(c.missingSent)} missing, ${fmt(c.duplicateSent)} repeated`;
}

export async function waitForLine(
  lines: () => string,
  pattern: RegExp,
  what: string,
  exited: Promise<unknown>,
  timeoutMs = 60_000,
): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(lines())) {
    if (gone) throw new Error(`${what} exited before it was ready:\n${lines().slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`${what} was not ready within ${timeoutMs / 1000} s:\n${lines().slice(-2000)}`);
    await sleep(100);
  }
}

/**
 * Starts the relay's three workers as deployed (Dockerfile): the compiled workers under plain node (after
 * buildWorkers), with `system.env` and `envOf(stage)` over it; resolves once each is ready.
 */
export async function startWorkers(
  system: System,
  envOf: (stage: (typeof STAGES)[number]) => Record<string, string> = () => ({}),
): Promise<WorkerProcess[]> {
  const saved = { ...system.env };
  const workers: WorkerProcess[] = [];
  try {
    for (const stage of STAGES) {
      Object.assign(system.env, envOf(stage));
      workers.push(system.spawnWorker(stage, { compiled: true }));
      for (const key of Object.keys(system.env)) delete system.env[key];
      Object.assign(system.env, saved);
    }
  } finally {
    for (const key of Object.keys(system.env)) delete system.env[key];
    Object.assign(system.env, saved);
  }
  await Promise.all(
    workers.map((w, i) => waitForLine(w.stderr, /"message":"worker ready"/, `the ${STAGES[i]} worker`, w.exited)),
  );
  return workers;
}

export async function stopWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  await Promise.all(workers.map((w) => w.stop()));
}

/** A comparison implementation (`baseline.ts`, `peer.ts`) running as its own process. */
export interface ScriptProcess {
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `test/bench/pipeline/<script>.ts` under tsx with the system's connection details and the Twilio sender of
 * the throughput journey; resolves once it writes `ready`. `env` adds to its environment (its identity, limits).
 */
export async function startScript(system: System, script: string, env: Record<string, string>): Promise<ScriptProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join('test', 'bench', 'pipeline', `${script}.ts`)], {
    cwd: packageRoot(),
    env: {
      PATH: process.env['PATH'] ?? '',
      SERVICEBUS_CONNECTION_STRING: system.sb.connectionString,
      DATAVERSE_URL: system.dv.url,
      PROVIDERS_URL: system.sim.url,
      TWILIO_ACCOUNT_SID: 'AC00000000000000000000000000000001',
      TWILIO_AUTH_TOKEN: SECRETS.TWILIO_AUTH_TOKEN,
      SMS_FROM: SENDERS.sms,
      NODE_V8_COVERAGE: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Its stderr is the errors it met (each abandoned its message) and its closing count: shown as they come.
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    process.stderr.write(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  let out = '';
  lines.on('line', (line) => (out += `${line}\n`));
  await waitForLine(() => out + err, /^ready$/m, `the ${script}`, exited);
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const verdict = (met: boolean): string => (met ? 'met' : '**missed**');
export const per = (n: number, d: number): number => n / Math.max(1, d);

/** The `p`-th percentile (0-100) of `values` (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
