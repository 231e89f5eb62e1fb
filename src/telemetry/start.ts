/**
 * Turning tracing on for one process, from the environment, and off again (flushing what is buffered).
 *
 * Off by default: with neither `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) nor
 * `APPLICATIONINSIGHTS_CONNECTION_STRING` set, nothing is registered and @opentelemetry/api stays on its no-op tracer
 * (the stages' span helpers in `spans.ts` then return at once). `OTEL_SDK_DISABLED=true` keeps it off whatever is set.
 *
 * - OTLP: a `NodeTracerProvider` (sdk-trace-node) with a `BatchSpanProcessor` and the OTLP/HTTP exporter
 *   (exporter-trace-otlp-http: JSON over HTTP, `/v1/traces` appended to `OTEL_EXPORTER_OTLP_ENDPOINT`; the exporter
 *   reads the other standard `OTEL_EXPORTER_OTLP_*` variables itself: headers, timeout, compression).
 * - Azure Monitor: `useAzureMonitor` of @azure/monitor-opentelemetry, which registers its own provider; with OTLP set
 *   too, the OTLP processor is handed to it as one of its `spanProcessors`, so both get every span. Its automatic HTTP
 *   and database instrumentations are turned off: they would record full URLs (a Telegram URL holds the bot token and
 *   a chat id), which the relay never records.
 *
 * Either way the Azure SDK's own spans (Service Bus send/receive/settle) join the relay's traces through
 * @azure/opentelemetry-instrumentation-azure-sdk. That instrumentation hooks `require('@azure/core-tracing')` only (no
 * ESM loader hook is installed here), so it is registered and then core-tracing is required once more, from
 * @azure/service-bus's place, through `createRequire`: the hook sets core-tracing's instrumenter, whose state the package shares between its CommonJS and
 * ESM builds (node_modules/@azure/core-tracing/dist/esm/state.js), and @azure/service-bus 7.9 is CommonJS anyway.
 */
import { createRequire } from 'node:module';
import { context, propagation, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { setLogLevel } from '@azure/logger';
import { createAzureSdkInstrumentation } from '@azure/opentelemetry-instrumentation-azure-sdk';
import { defaultResource, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type * as AzureMonitorDistro from '@azure/monitor-opentelemetry';
import { silentLogger, type Logger } from '../log.js';
import { stringOption } from '../options.js';
import { ConfigError, errorMessage } from '../errors.js';
import { raceAbort } from '../abort.js';
import { setTracing } from './spans.js';

export interface TelemetryOptions {
  /** The stage: the service is `channel-relay-<stage>`; `relay` (several stages in one process): `channel-relay`. */
  service: string;
  /** Where the `OTEL_*` and `APPLICATIONINSIGHTS_*` variables are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /**
   * Span processors to use instead of the ones the environment asks for (tests: an `InMemorySpanExporter` behind a
   * `SimpleSpanProcessor`). Given, tracing is on whatever the environment says. @defaultValue from the environment
   */
  spanProcessors?: SpanProcessor[];
}

/** Tracing in this process, as `startTelemetry` left it. */
export interface Telemetry {
  /** Whether spans are recorded and exported (false: the no-op tracer). */
  readonly enabled: boolean;
  /** Where spans go: `otlp`, `azure-monitor`, `custom` (given processors); empty when off. */
  readonly exporters: readonly string[];
  /**
   * Flushes what is buffered and unregisters the provider; idempotent; never rejects (a failed export is logged). Call
   * it last in the graceful shutdown.
   */
  close(): Promise<void>;
}

/** How long `close()` waits for the last spans to be sent; what is not sent by then is lost. */
export const CLOSE_TIMEOUT_MS = 5_000;

const OFF: Telemetry = { enabled: false, exporters: [], close: () => Promise.resolve() };

/** One `startTelemetry` at a time per process: the API's globals can be registered once until they are disabled. */
let running: Telemetry | undefined;

/** Turns tracing on as the environment asks (see the module comment); does nothing (and registers nothing) when off. */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const service = stringOption('startTelemetry', 'service', options.service);
  const env = options.env ?? process.env;
  const log = options.log ?? silentLogger();
  if (running !== undefined) throw new Error('startTelemetry: tracing is already started in this process');
  const otlp = nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) ?? nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
  const azure = nonEmpty(env['APPLICATIONINSIGHTS_CONNECTION_STRING']);
  const disabled = env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true';
  if (options.spanProcessors === undefined && (disabled || (otlp === undefined && azure === undefined))) return OFF;
  if (otlp !== undefined) checkUrl(env);

  const resource: Resource = defaultResource().merge(
    resourceFromAttributes({
      [ATTR_SERVICE_NAME]:
        nonEmpty(env['OTEL_SERVICE_NAME']) ?? (service === 'relay' ? 'channel-relay' : `channel-relay-${service}`),
    }),
  );
  const exporters: string[] = [];
  const processors: SpanProcessor[] = [];
  if (options.spanProcessors !== undefined) {
    processors.push(...options.spanProcessors);
    exporters.push('custom');
  } else if (otlp !== undefined) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter(otlpConfig(env))));
    exporters.push('otlp');
  }

  let shutdown: () => Promise<void>;
  if (azure !== undefined && options.spanProcessors === undefined) {
    exporters.push('azure-monitor');
    shutdown = startAzureMonitor(azure, resource, processors, env);
  } else {
    const provider = new NodeTracerProvider({ resource, spanProcessors: processors });
    // The W3C trace-context propagator and the AsyncLocalStorage context manager: `context.with` reaches the logs.
    provider.register();
    shutdown = () => provider.shutdown();
  }
  const instrumentations = registerInstrumentations({ instrumentations: [createAzureSdkInstrumentation()] });
  // The copy of core-tracing that @azure/service-bus loads (it is that package's dependency, not the relay's).
  const require = createRequire(import.meta.url);
  createRequire(require.resolve('@azure/service-bus'))('@azure/core-tracing');
  setTracing(true);
  log.info('tracing on', { exporters, service: resource.attributes[ATTR_SERVICE_NAME] });

  let closing: Promise<void> | undefined;
  const telemetry: Telemetry = {
    enabled: true,
    exporters,
    close() {
      closing ??= (async () => {
        setTracing(false);
        instrumentations();
        try {
          // Bounded: an unreachable collector would hold the shutdown for the exporter's own timeout (30 s) and more.
          await raceAbort(shutdown(), AbortSignal.timeout(CLOSE_TIMEOUT_MS));
        } catch (err) {
          // Spans that could not be sent are lost, not the relay's work: the shutdown stays clean (exit 0).
          log.warn('tracing: flushing the last spans failed; they are lost', { exporters, err: errorMessage(err) });
        } finally {
          trace.disable();
          context.disable();
          propagation.disable();
          running = undefined;
        }
      })();
      return closing;
    },
  };
  running = telemetry;
  return telemetry;
}

/** An OTLP endpoint that is no http(s) URL stops start-up with the variable named (exit 2), not at the first export. */
function checkUrl(env: NodeJS.ProcessEnv): void {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
    const value = nonEmpty(env[name]);
    if (value === undefined) continue;
    let ok: boolean;
    try {
      ok = ['http:', 'https:'].includes(new URL(value).protocol);
    } catch {
      ok = false;
    }
    if (!ok)
      throw new ConfigError('ConfigInvalid', [
        {
          source: `environment variable ${name}`,
          path: '',
          expected: 'an http:// or https:// URL (the OTLP/HTTP collector)',
          found: JSON.stringify(value),
        },
      ]);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/**
 * The exporter's URL when `env` is not the process's environment (the exporter reads `process.env` itself otherwise):
 * the traces endpoint as given, or the base endpoint with `/v1/traces` (OTLP exporter specification).
 */
function otlpConfig(env: NodeJS.ProcessEnv): { url?: string } {
  if (env === process.env) return {};
  const traces = nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
  if (traces !== undefined) return { url: traces };
  const base = nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']) ?? '';
  return { url: `${base.replace(/\/+$/, '')}/v1/traces` };
}

/** Azure Monitor's distro with the relay's resource and extra processors; resolves to its shutdown. */
function startAzureMonitor(
  connectionString: string,
  resource: Resource,
  spanProcessors: SpanProcessor[],
  env: NodeJS.ProcessEnv,
): () => Promise<void> {
  // Loaded only when asked for: the distro pulls in many instrumentations the relay does not use.
  const distro = createRequire(import.meta.url)('@azure/monitor-opentelemetry') as typeof AzureMonitorDistro;
  distro.useAzureMonitor({
    azureMonitorExporterOptions: { connectionString },
    resource,
    spanProcessors,
    // Every trace, as with OTLP alone. The distro's default samples 5 traces a second in each process on its own,
    // which would record one stage of an activity and not the next; its ratio sampler decides from the trace id, so
    // the same in every process.
    samplingRatio: 1,
    tracesPerSecond: 0,
    enableLiveMetrics: false,
    instrumentationOptions: {
      azureSdk: { enabled: true },
      http: { enabled: false },
      mongoDb: { enabled: false },
      mySql: { enabled: false },
      postgreSql: { enabled: false },
      redis: { enabled: false },
      redis4: { enabled: false },
      // The relay's logs stay in its own JSON lines (redacted); they carry trace_id and span_id to join them.
      winston: { enabled: false },
      bunyan: { enabled: false },
    },
  });
  // The distro turns the Azure SDK's own logger on at 'warning', as plain text on stderr beside the relay's JSON lines
  // (every closed AMQP link is a warning there). It stays as the operator set it, else off.
  if (env['AZURE_LOG_LEVEL'] === undefined && env['APPLICATIONINSIGHTS_INSTRUMENTATION_LOGGING_LEVEL'] === undefined)
    setLogLevel();
  return () => distro.shutdownAzureMonitor();
}
