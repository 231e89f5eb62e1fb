/**
 * Metrics: one prom-client registry per process, with Node's default metrics (CPU, memory, event-loop lag, GC)
 * under the `channel_relay_` prefix. Stages register their own counters and histograms on it.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

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
