/**
 * What `startRelay` hands each stage's wiring (intake.ts, dispatch.ts, recorder.ts) and what a wiring hands back. A
 * wiring builds its stage and senders and checks their settings but receives nothing: the relay starts every loop
 * once every stage is built, so that a bad setting stops start-up before a single message is locked.
 */
import type { ServiceBusClient } from '@azure/service-bus';
import type { Registry } from 'prom-client';
import type { RelayConfig } from '../config/index.js';
import type { ReadinessCheck } from '../health/index.js';
import type { Governor } from '../dataverse/index.js';
import type { Closer } from '../lifecycle.js';
import type { Logger } from '../log.js';
import type { IntakeStage, RecorderStage } from '../pipeline/index.js';
import { startBatchLoop, type ReceiveLoop } from '../servicebus/index.js';

/** The parts every stage shares. */
export interface RelayParts {
  config: RelayConfig;
  bus: ServiceBusClient;
  log: Logger;
  /** Counters of the stages and of the Service Bus layer. @defaultValue none */
  registry?: Registry;
  /** Where a wiring's senders are closed: after the receive loops, before the clients (last-added first). */
  closer: Closer;
}

/** A stage built on the real clients, not yet receiving. */
export interface WiredStage<Stats> {
  stats(): Stats;
  /** Told first when stopping: the stage ends its waits (backoff, Retry-After) and hands back what waits. */
  stop?(): void;
  /** Starts the stage's receive loop, which receives the moment it is made. */
  loop(): ReceiveLoop;
  /** Readiness checks of the stage's own beyond its loop (a Direct Line account refused). */
  readiness?(stopping: boolean): ReadinessCheck[];
}

/** Where the Service Bus layer counts (nothing without a registry). */
export function counting(parts: Pick<RelayParts, 'registry'>): { metrics?: Registry } {
  return parts.registry ? { metrics: parts.registry } : {};
}

/** How a stage's batch loop receives beyond its batch settings. */
export interface StageLoopOptions {
  /** Bodies as raw bytes (intake: the decoder sees what Dataverse sent). @defaultValue false */
  rawBody?: boolean;
  /** Most bytes of bodies held by the batches in flight. @defaultValue no bound */
  maxBytesInFlight?: number;
  /**
   * The Dataverse identity's governor the stage's calls go through: no batch is received while a call of this process
   * waits for the limits (`ready`), so that batches do not queue behind them, locked and in memory.
   */
  governor: Pick<Governor, 'state'>;
}

/** Starts a batch loop on `queue` with a stage's batch settings (`intake` or `recorder`), handing each batch to `stage`. */
export function startStageBatchLoop(
  parts: RelayParts,
  queue: string,
  settings: RelayConfig['recorder'],
  stage: Pick<IntakeStage | RecorderStage, 'handle'>,
  options: StageLoopOptions,
): ReceiveLoop {
  const { governor } = options;
  return startBatchLoop({
    client: parts.bus,
    queue,
    rawBody: options.rawBody ?? false,
    maxBatch: settings.batchSize,
    maxWaitMs: settings.maxWaitMs,
    concurrency: settings.concurrency,
    ...(options.maxBytesInFlight === undefined ? {} : { maxBytesInFlight: options.maxBytesInFlight }),
    ready: () => governor.state().waiting === 0,
    handler: (batch, signal) => stage.handle(batch, signal),
    log: parts.log,
    ...counting(parts),
  });
}
