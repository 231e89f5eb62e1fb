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
 * Several loops and senders may share one registry: each counter is registered once and reused.
 */
import type { Registry } from 'prom-client';
import { METRIC_PREFIX, sharedCounter } from '../health/index.js';

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
