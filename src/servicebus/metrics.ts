/**
 * Counters of the Service Bus layer, on the process's prom-client registry (`src/health` `createMetricsRegistry`),
 * named after the OpenTelemetry messaging metrics (`messaging.client.consumed.messages`,
 * `messaging.client.sent.messages`) in Prometheus form:
 *
 * - `channel_relay_messages_received_total{queue}`: messages handed to a handler.
 * - `channel_relay_messages_consumed_total{queue,outcome}`: settlements; `outcome` is `completed`, `abandoned`,
 *   `dead_lettered`, `lock_lost` (the lock was gone: the bus redelivers it) or `settle_failed`.
 * - `channel_relay_messages_sent_total{queue}`: messages the bus accepted from a sender.
 *
 * And a receive loop's health (`loop-health.ts`) as gauges read when scraped (`watchLoopHealth`):
 * `channel_relay_receive_loop_running{queue}` (1 while it receives), `…_consecutive_errors{queue}` (receives that
 * failed in a row) and `…_last_receive_timestamp_seconds{queue}` (when the broker last answered; absent before).
 *
 * Several loops and senders may share one registry: each counter is registered once and reused.
 */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX, registered, sharedCounter } from '../health/index.js';
import type { LoopHealth } from './loop-health.js';

/** How a delivery ended, as counted. */
export type ConsumedOutcome = 'completed' | 'abandoned' | 'dead_lettered' | 'lock_lost' | 'settle_failed';

export interface ServiceBusMetrics {
  received(queue: string, count: number): void;
  consumed(queue: string, outcome: ConsumedOutcome): void;
  sent(queue: string, count: number): void;
}

const NOOP: ServiceBusMetrics = { received: () => undefined, consumed: () => undefined, sent: () => undefined };

/** The counters on `registry`; without a registry, counting does nothing. */
export function serviceBusMetrics(registry?: Registry): ServiceBusMetrics {
  if (!registry) return NOOP;
  const received = sharedCounter(
    registry,
    `${METRIC_PREFIX}messages_received_total`,
    'Service Bus messages received and handed to a handler',
    ['queue'],
  );
  const consumed = sharedCounter(
    registry,
    `${METRIC_PREFIX}messages_consumed_total`,
    'Service Bus messages settled, by outcome',
    ['queue', 'outcome'],
  );
  const sent = sharedCounter(
    registry,
    `${METRIC_PREFIX}messages_sent_total`,
    'Service Bus messages sent and accepted by the bus',
    ['queue'],
  );
  return {
    received: (queue, count) => received.inc({ queue }, count),
    consumed: (queue, outcome) => consumed.inc({ queue, outcome }),
    sent: (queue, count) => sent.inc({ queue }, count),
  };
}

/** The loops watched on each registry, by queue: the gauges read them when scraped. */
const watched = new WeakMap<Registry, Map<string, () => LoopHealth>>();

/**
 * Exposes the health of the loop receiving from `queue` on `registry` (a later loop on the same queue replaces it).
 * The gauges are registered once per registry and read every watched loop when scraped.
 */
export function watchLoopHealth(registry: Registry, queue: string, health: () => LoopHealth): void {
  let loops = watched.get(registry);
  if (loops === undefined) {
    const all = new Map<string, () => LoopHealth>();
    watched.set(registry, (loops = all));
    const gauge = (name: string, help: string, read: (h: LoopHealth) => number | undefined): void => {
      const full = `${METRIC_PREFIX}${name}`;
      registered(
        registry,
        full,
        () =>
          new Gauge({
            name: full,
            help,
            labelNames: ['queue'],
            registers: [registry],
            collect() {
              this.reset();
              for (const [q, healthOf] of all) {
                const value = read(healthOf());
                if (value !== undefined) this.set({ queue: q }, value);
              }
            },
          }),
      );
    };
    gauge('receive_loop_running', 'Whether the receive loop on the queue still receives (1) or stopped (0)', (h) =>
      h.running ? 1 : 0,
    );
    gauge(
      'receive_loop_consecutive_errors',
      'Receives (and session accepts) on the queue that failed in a row; 0 after a success',
      (h) => h.consecutiveErrors,
    );
    gauge(
      'receive_loop_last_receive_timestamp_seconds',
      'Unix time the broker last answered a receive on the queue (with messages or empty)',
      (h) => (h.lastReceiveAt === undefined ? undefined : h.lastReceiveAt / 1000),
    );
  }
  loops.set(queue, health);
}
