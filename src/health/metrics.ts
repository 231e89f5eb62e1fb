/**
 * Metrics: one prom-client registry per process, with Node's default metrics (CPU, memory, event-loop lag, GC)
 * under the `channel_relay_` prefix. Stages register their own counters and histograms on it.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'channel_relay_';

export interface MetricsOptions {
  /** Labels on every series, e.g. `{ service: 'dispatch' }`. @defaultValue {} */
  labels?: Record<string, string>;
  /** Collect Node's default process metrics. @defaultValue true */
  defaultMetrics?: boolean;
}

export function createMetricsRegistry(options: MetricsOptions = {}): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  return registry;
}

/**
 * The metric `name` on `registry`: the one already there (a second stage or loop of the same process registers the
 * same series), or the one `create` makes and registers.
 */
export function registered<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** A counter on `registry`, shared by every component that asks for the same name. */
export function sharedCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  return registered(
    registry,
    name,
    () => new Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry] }),
  );
}

/**
 * A gauge on `registry` whose value `read` gives when scraped, registered once per registry: a second component asking
 * for the same name shares the first one's (and its `read`).
 */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  registered(
    registry,
    name,
    () =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      }),
  );
}
