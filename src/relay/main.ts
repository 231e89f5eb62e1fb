/**
 * The life of a worker process, for the entry points in `workers/`: configuration (defaults, file, environment) and
 * channels, a logger, metrics and the health server, the stages, and the signals. A configuration problem stops
 * start-up with every problem named (file or variable, key, expected, found) and exit code 2.
 */
import type { ChannelRegistry } from '../channels/index.js';
import type { RelayConfig } from '../config/index.js';
import type { CallbackKeys } from '../correlation/index.js';
import { errorMessage } from '../errors.js';
import { createMetricsRegistry, startHealthServer, type HealthServer } from '../health/index.js';
import { createShutdown, exitCodeOf, onShutdownSignals } from '../lifecycle.js';
import { createLogger } from '../log.js';
import { startTelemetry, type Telemetry } from '../telemetry/index.js';
import { startRelay, type RunningRelay } from './relay.js';
import { loadStageConfig, type StageName } from './requirements.js';

export interface WorkerMainOptions {
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Where problems that stop start-up are written. @defaultValue process.stderr */
  stderr?: { write(text: string): unknown };
  /** Ends the process. @defaultValue process.exit */
  exit?: (code: number) => void;
  /** How often the receive loops are checked for having stopped on their own. @defaultValue 5000 */
  watchIntervalMs?: number;
}

/**
 * Runs the stages until SIGTERM/SIGINT. Exit codes: 0 after a clean shutdown, 1 when work was handed back or a
 * close failed, 2 for a bad configuration, 130 on a second signal.
 */
export async function runWorker(stages: readonly StageName[], options: WorkerMainOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const stderr = options.stderr ?? process.stderr;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const service = stages.length === 1 ? (stages[0] as string) : 'relay';

  let config: RelayConfig;
  let callbackKeys: CallbackKeys | undefined;
  let channels: ChannelRegistry | undefined;
  let warnings: string[];
  try {
    // Only what these stages use (requirements.ts): the recorder reads no channel, dispatch no Dataverse.
    const loaded = loadStageConfig(stages, { env });
    ({ config, callbackKeys } = loaded.loaded);
    channels = loaded.channels;
    warnings = loaded.loaded.warnings;
  } catch (err) {
    stderr.write(`${service}: cannot start: ${errorMessage(err)}\n`);
    exit(exitCodeOf(err));
    return;
  }

  const log = createLogger({ level: config.log.level, base: { service, pid: process.pid } });
  for (const warning of warnings) log.warn(`configuration: ${warning}`);
  // Before any work: the Azure SDK's tracing hook is set before the first Service Bus client is made. Off unless
  // OTEL_EXPORTER_OTLP_ENDPOINT or APPLICATIONINSIGHTS_CONNECTION_STRING is set (docs/operations.md, "Traces").
  let telemetry: Telemetry;
  try {
    telemetry = startTelemetry({ service, env, log });
  } catch (err) {
    stderr.write(`${service}: cannot start: ${errorMessage(err)}\n`);
    exit(exitCodeOf(err));
    return;
  }
  const registry = createMetricsRegistry({ labels: { service } });
  // The health server first: a port that is taken stops start-up before any message is received.
  let relay: RunningRelay | undefined;
  let health: HealthServer;
  try {
    health = await startHealthServer({
      port: config.health.port,
      host: config.health.host,
      registry,
      readiness: () => relay?.readiness() ?? [{ name: 'starting', ok: false }],
      log,
    });
  } catch (err) {
    stderr.write(
      `${service}: cannot start: the health server cannot listen on ${config.health.host}:${config.health.port} (health.port / HEALTH_PORT): ${errorMessage(err)}\n`,
    );
    await telemetry.close();
    exit(1);
    return;
  }
  try {
    relay = startRelay({
      stages,
      config,
      ...(channels ? { channels } : {}),
      ...(callbackKeys ? { callbackKeys } : {}),
      log,
      registry,
    });
  } catch (err) {
    stderr.write(`${service}: cannot start: ${errorMessage(err)}\n`);
    await health.close();
    await telemetry.close();
    exit(exitCodeOf(err));
    return;
  }
  const running = relay;
  const server = health;
  const shutdown = createShutdown({
    stopIntake: () => running.stopIntake(),
    drain: (signal) => running.drain(signal),
    // The spans of the last messages are flushed after the stages have closed.
    closer: {
      close: async () => {
        try {
          await Promise.all([running.close(), server.close()]);
        } finally {
          await telemetry.close();
        }
      },
    },
    budgetMs: config.shutdown.budgetMs,
    log,
  });
  onShutdownSignals(shutdown, { exit, log });
  // A loop that stopped on its own (its client closed under it) receives nothing any more: exit with 1 so that the
  // orchestrator restarts the worker, rather than stay up, live and idle.
  const watch = setInterval(() => {
    const dead = running.deadLoops();
    if (dead.length === 0) return;
    clearInterval(watch);
    log.error('a receive loop stopped on its own; shutting down so that the worker is restarted', { loops: dead });
    void shutdown('receive loop stopped').then(
      () => exit(1),
      () => exit(1),
    );
  }, options.watchIntervalMs ?? 5_000);
  watch.unref();
  log.info('worker ready', { stages, health: server.url });
}
