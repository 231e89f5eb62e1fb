/**
 * The service-protection governor as Prometheus series, read when scraped: how many calls it lets in flight, how many
 * wait, whether a `Retry-After` is running, and how many 429s and calls it has seen.
 */
import { Counter, type Registry } from 'prom-client';
import { METRIC_PREFIX, registered, scrapedGauge } from '../health/index.js';
import type { Governor } from './governor.js';

/** Registers the governor's series on `registry`, once per registry: the first governor registered is the one read. */
export function registerGovernorMetrics(registry: Registry, governor: Governor): void {
  const gauge = (name: string, help: string, read: () => number): void =>
    scrapedGauge(registry, `${METRIC_PREFIX}${name}`, help, read);
  gauge(
    'dataverse_concurrency_limit',
    'Dataverse calls the governor lets in flight now (AIMD, at most 52)',
    () => governor.state().concurrency,
  );
  gauge('dataverse_calls_in_flight', 'Dataverse calls in flight', () => governor.state().inFlight);
  gauge(
    'dataverse_calls_waiting',
    'Dataverse calls waiting for the governor (limits, Retry-After, pacing)',
    () => governor.state().waiting,
  );
  gauge(
    'dataverse_execution_used_seconds',
    'Execution time the governor counts in the window (its own calls: observed durations, plus estimates for those in flight)',
    () => governor.state().executionUsedMs / 1000,
  );
  gauge(
    'dataverse_retry_after_seconds',
    'Seconds left of a running Retry-After (0: none)',
    () => Math.max(0, governor.state().pausedUntil - Date.now()) / 1000,
  );
  const counter = (name: string, help: string, read: () => number): void => {
    const full = `${METRIC_PREFIX}${name}`;
    let seen = 0;
    registered(
      registry,
      full,
      () =>
        new Counter({
          name: full,
          help,
          registers: [registry],
          collect() {
            const now = read();
            if (now > seen) this.inc(now - seen);
            seen = now;
          },
        }),
    );
  };
  counter(
    'dataverse_throttled_total',
    'Dataverse 429 answers (service protection limits) seen by the relay',
    () => governor.state().throttled,
  );
  counter('dataverse_calls_total', 'Dataverse calls made through the governor', () => governor.state().calls);
}
