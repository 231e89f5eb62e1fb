/**
 * The whole system on loopback for end-to-end tests: the embedded system of `npm start` (`startEmbeddedSystem`: the
 * Service Bus, Dataverse and provider emulators, the service endpoint and step registered through `registerRelay`)
 * with the tests' seed (a second journey on a second SMS sender, a third on a contract endpoint) and channels (two SMS
 * senders at given rates, Telegram, and an outbound-marketing channel on the contract provider), and the workers (in this process through `startRelay`, or as real processes from `workers/`). Everything
 * goes through the real SDKs.
 */
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { ServiceBusClient } from '@azure/service-bus';
import type { ChannelRegistry } from '../../../src/channels/index.js';
import type { RelayConfig } from '../../../src/config/index.js';
import { DataverseRecords, startEmbeddedSystem } from '../../../src/demo/index.js';
import type {
  DataverseEmulator,
  JourneyRunResult,
  LimitsConfig,
  PartialTargets,
  SeedDocument,
} from '../../../src/emulators/dataverse/index.js';
import type { AgentOptions, DirectLineEmulator } from '../../../src/emulators/directline/index.js';
import type { ProviderSimulators, SimulatedMessage } from '../../../src/emulators/providers/index.js';
import type { ServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import type { RegistrationReport } from '../../../src/registration/index.js';
import type { Interaction } from '../../../src/emulators/dataverse/index.js';
import { errorMessage } from '../../../src/errors.js';
import { Closer } from '../../../src/lifecycle.js';
import { silentLogger, type Logger } from '../../../src/log.js';
import { configPath, packageRoot } from '../../../src/paths.js';
import { startRelay, type RunningRelay, type StageName } from '../../../src/relay/index.js';
import { peekDeadLetters, type DeadLetter } from '../../../src/servicebus/index.js';
import { runScratchDir } from '../../helpers/mocha-run.js';
import { waitFor } from '../../helpers/wait.js';

/** The seed's ids (config/dataverse-seed.json). */
export const SEED = {
  journey: 'a7bf09dd-7b81-51ce-9fac-9dcbbb837cae',
  createMessage: '29cba0be-d3f2-59df-afc0-48f8293ebd20',
  activityFilter: 'c25496db-5571-5067-91ea-23c2ab733cb6',
  /** A second journey and message on a second SMS sender, added by {@link testSeed}. */
  journey2: 'b8c01aee-8c92-4d1f-9fad-0edcccc94dbf',
  iteration2: 'c9d12bff-9da3-4e20-8abe-1fedddda5ec0',
  message2: 'dae23c00-aeb4-4f31-9bcf-20fe0eeb6fd1',
  /** A third journey and message on the `contract` channel (an outbound-marketing channel on a contract endpoint), added by {@link testSeed}. */
  journey3: 'e1f34d11-aef5-4a42-8cdf-3b20ffffa6d2',
  iteration3: 'f2a45e22-bf06-4b53-9de0-4c31aaaab7e3',
  message3: '03b56f33-c017-4c64-8ef1-5d42bbbbc8f4',
};

export const SENDERS = { sms: '+4915100000001', sms2: '+4915100000002' };
/**
 * The `contract` channel: its `From`, and its rate, that of the contract simulator's default per-sender limit (the
 * contract defines none; `ContractOptions.perSender`). Its session key is `contract:<sender>`.
 */
export const CONTRACT = { sender: '+4915100000003', perSecond: 10, sessionId: 'contract:+4915100000003' };
export const SECRETS = {
  TWILIO_AUTH_TOKEN: 'e2e0a1b2c3d4e5f60718293a4b5c6d7e',
  TELEGRAM_BOT_TOKEN: '7000000001:AAE2eTestTokenForTheSimulator0123456',
  CONTRACT_SIGNING_SECRET: 'whsec_ZTJlLWNvbnRyYWN0LXNpZ25pbmctc2VjcmV0',
};

/**
 * The sample seed with absolute tile paths, a second journey whose message goes through the `sms2` channel and a third
 * whose message goes through the `contract` channel (each journey reaches the seed's contacts from the first).
 */
export function testSeed(message2Text = 'Hello {firstname} {lastname}, second sender here.'): SeedDocument {
  const doc = JSON.parse(readFileSync(configPath('dataverse-seed.json'), 'utf8')) as SeedDocument & {
    rows: Record<string, Array<Record<string, unknown>>>;
    journeys: Array<Record<string, unknown>>;
  };
  doc.tiles = (doc.tiles ?? []).map((t) => (typeof t === 'string' ? configPath(t) : t));
  doc.solutions = (doc.solutions ?? []).map((file) => configPath(file));
  doc.rows['sample_specialmessages']?.push({
    sample_specialmessageid: SEED.message2,
    sample_name: 'Second sender',
    sample_channel: 'sms2',
    sample_text: message2Text,
  });
  doc.rows['msdyncrm_customerjourneyiterations']?.push({
    msdyncrm_customerjourneyiterationid: SEED.iteration2,
    msdyncrm_name: 'Second journey - 1',
  });
  doc.rows['msdyncrm_customerjourneys']?.push({
    msdyncrm_customerjourneyid: SEED.journey2,
    msdyncrm_name: 'Second journey',
  });
  doc.journeys.push({
    journeyId: SEED.journey2,
    iterationId: SEED.iteration2,
    entityType: 'sample_specialmessage',
    entityId: SEED.message2,
    activityName: 'Second sender SMS',
  });
  doc.rows['sample_specialmessages']?.push({
    sample_specialmessageid: SEED.message3,
    sample_name: 'Contract endpoint',
    sample_channel: 'contract',
    sample_text: 'Hello {firstname} {lastname}, through the contract endpoint.',
  });
  doc.rows['msdyncrm_customerjourneyiterations']?.push({
    msdyncrm_customerjourneyiterationid: SEED.iteration3,
    msdyncrm_name: 'Contract journey - 1',
  });
  doc.rows['msdyncrm_customerjourneys']?.push({
    msdyncrm_customerjourneyid: SEED.journey3,
    msdyncrm_name: 'Contract journey',
  });
  doc.journeys.push({
    journeyId: SEED.journey3,
    iterationId: SEED.iteration3,
    entityType: 'sample_specialmessage',
    entityId: SEED.message3,
    activityName: 'Contract endpoint message',
  });
  return doc;
}

export interface SystemOptions {
  /** Messages per second of each SMS sender (the simulator enforces the same). @defaultValue 50 */
  smsPerSecond?: number;
  /** Messages per second of the second SMS sender (`sms2`), when it should differ. @defaultValue smsPerSecond */
  sms2PerSecond?: number;
  /** Provider calls in flight per SMS sender (the channels' `rateLimit.concurrency`). @defaultValue 10 */
  smsConcurrency?: number;
  /** Emulated latency of every provider call, ms (the simulators' `latencyMs`). @defaultValue 0 */
  providerLatencyMs?: number;
  /** Emulated latency of every Dataverse Web API request, ms (the emulator's `responseDelayMs`). @defaultValue 0 */
  dataverseLatencyMs?: number;
  /**
   * Dataverse service protection limits, over {@link HEADER_FREE_LIMITS} (realistic budgets and execution time
   * charged per operation, without the rate-limit headers: the worst plausible reading of headers that are no
   * contract); `'off'` for none. @defaultValue HEADER_FREE_LIMITS
   */
  limits?: 'off' | Partial<LimitsConfig>;
  /**
   * Creates whose posted Target lacks attributes the relay needs (it reads those rows). @defaultValue
   * {@link PARTIAL_TARGETS}: every other Create's Target without its contact and message record
   */
  partialTargets?: PartialTargets | 'none';
  /** Lock duration of every queue (ISO 8601), e.g. `PT2S` so that a killed worker's messages come back soon. @defaultValue the sample's `PT1M` */
  lockDuration?: string;
  /** The text of the second journey's message (sender `sms2`). @defaultValue a one-segment greeting */
  message2Text?: string;
  /**
   * Conversations: the Direct Line emulator with its agents, and a messaging account bridging the `sms` channel
   * (startEmbeddedSystem's `conversations`); then spawn the `callbacks`, `conversations` and `dispatch` workers.
   * `true` or the agents' options. @defaultValue false
   */
  conversations?: boolean | { agents?: AgentOptions };
  /** Relay configuration overrides (merged over the defaults). */
  config?: (config: RelayConfig) => void;
  log?: Logger;
}

/** The limits the end-to-end tests run under unless told otherwise: realistic, but no `x-ms-ratelimit-*` headers. */
export const HEADER_FREE_LIMITS: Partial<LimitsConfig> = { headers: 'omit' };

/** Half the Creates post a Target without `msdyncrm_contact` and `msdyncrm_entityid` (the relay reads those rows). */
export const PARTIAL_TARGETS: PartialTargets = { omit: ['msdyncrm_contact', 'msdyncrm_entityid'], share: 0.5 };

export interface System {
  /** What registering the service endpoint and step did (their ids). */
  registration: RegistrationReport;
  sb: ServiceBusEmulator;
  dv: DataverseEmulator;
  sim: ProviderSimulators;
  /** With `conversations`: the Direct Line emulator and its record of the agents' conversations. */
  dl?: DirectLineEmulator;
  /** The environment a worker process runs with. */
  env: Record<string, string>;
  config: RelayConfig;
  channels: ChannelRegistry;
  /** Runs stages in this process; closed by {@link System.close}. */
  relay(stages: readonly StageName[]): RunningRelay;
  /**
   * Starts a worker process from `workers/<name>.ts` under tsx, or with `compiled` from `dist/workers/<name>.js`
   * under plain node as deployed (after {@link buildWorkers}); killed by {@link System.close} if still
   * running.
   */
  spawnWorker(name: StageName | 'all', options?: SpawnOptions): WorkerProcess;
  /** Runs a seed journey; returns the activities created and the contacts the journey skipped. */
  runJourney(journeyId: string, count: number): Promise<JourneyRunResult>;
  /** Sets contacts' compliance field (as a contact opting out after the activity was created). */
  optOut(contactIds: readonly string[]): Promise<void>;
  interactions(): Promise<Interaction[]>;
  messages(): SimulatedMessage[];
  /** Messages in a queue's dead-letter queue (peeked, not removed). */
  deadLetters(queue: string): Promise<DeadLetter[]>;
  close(): Promise<void>;
}

export interface SpawnOptions {
  /** Run the compiled entry point `dist/workers/<name>.js` with plain node instead of `workers/<name>.ts` under tsx. @defaultValue false */
  compiled?: boolean;
  /** Extra arguments to node before the entry point (e.g. `--max-old-space-size=…`). @defaultValue [] */
  nodeArgs?: readonly string[];
}

export interface WorkerProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** Everything it wrote to stderr (its JSON log lines). */
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Sends SIGKILL (a crash: nothing drains, locks expire) and resolves when it is gone. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export async function startSystem(options: SystemOptions = {}): Promise<System> {
  const closer = new Closer();
  const log = options.log ?? silentLogger();
  const rate = options.smsPerSecond ?? 50;
  const rate2 = options.sms2PerSecond ?? rate;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-e2e-'));
  const limits = options.limits === 'off' ? 'off' : { ...HEADER_FREE_LIMITS, ...options.limits };
  closer.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const busConfig = JSON.parse(readFileSync(configPath('servicebus-emulator.json'), 'utf8')) as {
      UserConfig: { Namespaces: Array<{ Queues: Array<{ Properties: Record<string, unknown> }> }> };
    };
    if (options.lockDuration !== undefined)
      for (const q of busConfig.UserConfig.Namespaces[0]?.Queues ?? [])
        q.Properties['LockDuration'] = options.lockDuration;

    // Two SMS senders, Telegram and a contract endpoint, with short provider timeouts; the embedded system holds each
    // Twilio sender to its rate.
    const channelsFile = path.join(dir, 'channels.json');
    const tile = configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml');
    const sms = (name: string, sender: string, perSecond: number): Record<string, unknown> => ({
      name,
      tile,
      provider: {
        type: 'twilio',
        accountSid: 'AC00000000000000000000000000000001',
        authToken: 'env:TWILIO_AUTH_TOKEN',
        baseUrl: '${PROVIDERS_URL}',
      },
      sender,
      addressField: 'mobilephone',
      textField: 'sample_text',
      channelField: 'sample_channel',
      rateLimit: { messages: perSecond, intervalMs: 1000, concurrency: options.smsConcurrency ?? 10 },
      failureResponseType: 'failed',
      timeoutMs: 2000,
    });
    writeFileSync(
      channelsFile,
      JSON.stringify({
        channels: [
          sms('sms', SENDERS.sms, rate),
          sms('sms2', SENDERS.sms2, rate2),
          {
            name: 'telegram',
            tile,
            provider: { type: 'telegram', botToken: 'env:TELEGRAM_BOT_TOKEN', baseUrl: '${PROVIDERS_URL}' },
            sender: 'channelrelay_bot',
            addressField: 'sample_telegramchatid',
            textField: 'sample_text',
            channelField: 'sample_channel',
            rateLimit: { messages: 30, perRecipientMs: 1000 },
            failureResponseType: 'failed',
          },
          {
            // An outbound-marketing channel served by a contract endpoint (no ChannelDefinitionId; RequestId = the
            // activity row id, the endpoint's idempotency key).
            name: 'contract',
            tile,
            provider: {
              type: 'contract',
              url: '${PROVIDERS_URL}/contract/outbound/messages',
              signingSecret: 'env:CONTRACT_SIGNING_SECRET',
            },
            sender: CONTRACT.sender,
            addressField: 'mobilephone',
            textField: 'sample_text',
            channelField: 'sample_channel',
            rateLimit: { messages: CONTRACT.perSecond, intervalMs: 1000, concurrency: 10 },
            failureResponseType: 'failed',
            timeoutMs: 2000,
          },
        ],
      }),
    );
    const embedded = closer.add(
      'embedded system',
      await startEmbeddedSystem({
        seed: testSeed(options.message2Text),
        channelsFile,
        serviceBusConfig: busConfig,
        limits,
        ...(options.partialTargets === 'none' ? {} : { partialTargets: options.partialTargets ?? PARTIAL_TARGETS }),
        providerLatencyMs: options.providerLatencyMs ?? 0,
        dataverseLatencyMs: options.dataverseLatencyMs ?? 0,
        env: { LOG_LEVEL: 'info', INTAKE_BATCH_SIZE: '50', ...SECRETS },
        ...(options.conversations === undefined ? {} : { conversations: options.conversations }),
        log,
      }),
    );
    const { sb, dv, sim, dl, env, config, channels } = embedded;
    config.dispatch.sessionIdleMs = 500;
    // The relay's governor spreads its budgets over the emulator's (scaled) window, as an operator would set them.
    if (limits !== 'off') {
      if (limits.windowMs !== undefined) config.dataverse.limitsWindowMs = limits.windowMs;
      if (limits.maxRequests !== undefined) config.dataverse.requestBudget = limits.maxRequests;
      if (limits.maxExecutionMs !== undefined) config.dataverse.executionBudgetMs = limits.maxExecutionMs;
      // The same for worker processes.
      env['DATAVERSE_LIMITS_WINDOW_MS'] = String(config.dataverse.limitsWindowMs);
      if (config.dataverse.requestBudget !== undefined)
        env['DATAVERSE_REQUEST_BUDGET'] = String(config.dataverse.requestBudget);
      if (config.dataverse.executionBudgetMs !== undefined)
        env['DATAVERSE_EXECUTION_BUDGET_MS'] = String(config.dataverse.executionBudgetMs);
    }
    config.intake.maxWaitMs = 100;
    config.recorder.maxWaitMs = 100;
    options.config?.(config);
    const records = new DataverseRecords(dv.url, embedded.admin);
    const fastRetry = { retryDelayInMs: 200, maxRetryDelayInMs: 1000, timeoutInMs: 2000 };

    const system: System = {
      registration: embedded.registration,
      sb,
      dv,
      sim,
      ...(dl === undefined ? {} : { dl }),
      env,
      config,
      channels,
      relay: (stages) =>
        closer.add(
          `relay ${stages.join(',')}`,
          startRelay({
            stages,
            config,
            channels,
            log,
            serviceBus: { retry: fastRetry },
            // The conversations stage validates the messaging account against the emulated identity platform.
            ...(embedded.identityCa === undefined ? {} : { identityCa: embedded.identityCa }),
          }),
        ),
      spawnWorker: (name, spawnOptions = {}) => {
        if (spawnOptions.compiled === true && built === undefined)
          throw new Error(
            "spawnWorker({ compiled: true }) runs dist/: await buildWorkers() first (in a before hook), so that dist/ is this checkout's code",
          );
        const entry =
          spawnOptions.compiled === true
            ? [path.join('dist', 'workers', `${name}.js`)]
            : ['--import', 'tsx', `workers/${name}.ts`];
        const child = spawn(process.execPath, [...(spawnOptions.nodeArgs ?? []), ...entry], {
          cwd: packageRoot(),
          env: {
            PATH: process.env['PATH'] ?? '',
            ...env,
            DISPATCH_MAX_SESSIONS: String(config.dispatch.maxSessions),
            NODE_V8_COVERAGE: '',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout.resume();
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
        const worker: WorkerProcess = {
          child,
          stderr: () => err,
          exited,
          stop: async () => {
            if (child.exitCode === null) child.kill('SIGTERM');
            return exited;
          },
          kill: async () => {
            if (child.exitCode === null) child.kill('SIGKILL');
            await exited;
          },
        };
        closer.add(`worker ${name}`, async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGKILL');
            await exited;
          }
        });
        return worker;
      },
      runJourney: (journeyId, count) => records.runJourney(journeyId, count),
      optOut: (contactIds) => records.optOut(contactIds, 'donotphone'),
      interactions: async () => {
        const res = await fetch(`${dv.url}/_emulator/interactions`);
        const body = (await res.json()) as { value?: Interaction[] } | Interaction[];
        return Array.isArray(body) ? body : (body.value ?? []);
      },
      messages: () => sim.messages(),
      deadLetters: async (queue) => {
        const bus = new ServiceBusClient(sb.connectionString);
        try {
          return (await peekDeadLetters(bus, queue)).matching;
        } finally {
          await bus.close();
        }
      },
      close: () => closer.close(),
    };
    return system;
  } catch (err) {
    await closer.close();
    throw err;
  }
}

/** Most messages in any sliding window of `windowMs` among the given times. */
export function maxInWindow(times: readonly number[], windowMs = 1000): number {
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    max = Math.max(max, end - start + 1);
  }
  return max;
}

let built: Promise<void> | undefined;

/**
 * Builds `dist/` from this checkout (`tsconfig.build.json`, as `npm run build` does) once per test run, for
 * {@link System.spawnWorker}'s `compiled` workers: a fresh clone has no `dist/`, and an old one may hold other code.
 * Under `mocha --parallel` the worker processes share the checkout: the first to create the build folder in the run's
 * scratch folder (test/helpers/mocha-run.ts) builds, the others wait for the outcome it writes there, so that no
 * worker's tsc rewrites dist/ while another's test runs it.
 */
export function buildWorkers(): Promise<void> {
  built ??= buildOncePerRun();
  return built;
}

/** Creates the folder `lock`: true, or false when another process did first. */
function takeLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function buildOncePerRun(): Promise<void> {
  const build = (): Promise<void> =>
    promisify(execFile)(
      process.execPath,
      [path.join(packageRoot(), 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: packageRoot() },
    ).then(() => undefined);
  const scratch = runScratchDir();
  if (scratch === undefined) return build();
  const lock = path.join(scratch, 'build');
  const outcome = path.join(lock, 'outcome');
  mkdirSync(scratch, { recursive: true });
  if (!takeLock(lock)) {
    const text = await waitFor(
      'the build of dist/ by another mocha worker',
      () => (existsSync(outcome) ? readFileSync(outcome, 'utf8') : undefined),
      300_000,
    );
    if (text !== 'built') throw new Error(`the build of dist/ by another mocha worker failed: ${text}`);
    return;
  }
  // Written whole, then renamed: a waiting worker never reads half of it.
  const settle = (text: string): void => {
    writeFileSync(`${outcome}.tmp`, text);
    renameSync(`${outcome}.tmp`, outcome);
  };
  try {
    await build();
    settle('built');
  } catch (err) {
    settle(errorMessage(err));
    throw err;
  }
}

/** Waits until `probe` holds, polling; fails with `what` after `timeoutMs`. */
export function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  return waitFor(what, probe, timeoutMs);
}
