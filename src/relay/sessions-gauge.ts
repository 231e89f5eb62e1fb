/**
 * `channel_relay_sessions_held{queue}`: the sessions this process's session loops hold now (dispatch's senders on
 * `outbound`, the conversations stage's customers), read at each scrape. `channel-relay status --metrics` shows it per
 * worker: the broker has no session count to give (its management API counts messages only).
 */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX, registered } from '../health/index.js';
import type { ReceiveLoop, SessionReceiveLoop } from '../servicebus/index.js';

export const SESSIONS_HELD = `${METRIC_PREFIX}sessions_held`;

/** The session loops each registry's gauge reads (a process may start several relays on one registry). */
const loopsOf = new WeakMap<Registry, Set<SessionReceiveLoop>>();

function isSessionLoop(loop: ReceiveLoop): loop is SessionReceiveLoop {
  return Array.isArray((loop as Partial<SessionReceiveLoop>).sessions);
}

/** Counts the session loops among `loops` in `registry`'s gauge; returns a function that stops counting them. */
export function countSessionsHeld(registry: Registry, loops: readonly ReceiveLoop[]): () => void {
  const sessionLoops = loops.filter(isSessionLoop);
  if (sessionLoops.length === 0) return () => undefined;
  let set = loopsOf.get(registry);
  if (!set) {
    const held = new Set<SessionReceiveLoop>();
    set = held;
    loopsOf.set(registry, held);
    registered(
      registry,
      SESSIONS_HELD,
      () =>
        new Gauge({
          name: SESSIONS_HELD,
          help: 'Service Bus sessions held now by the session loops of this process (dispatch: senders; conversations: customers)',
          labelNames: ['queue'],
          registers: [registry],
          collect() {
            const byQueue = new Map<string, number>();
            for (const loop of held) byQueue.set(loop.queue, (byQueue.get(loop.queue) ?? 0) + loop.sessions.length);
            this.reset();
            for (const [queue, n] of byQueue) this.set({ queue }, n);
          },
        }),
    );
  }
  for (const loop of sessionLoops) set.add(loop);
  const counted = set;
  return () => {
    for (const loop of sessionLoops) counted.delete(loop);
  };
}
