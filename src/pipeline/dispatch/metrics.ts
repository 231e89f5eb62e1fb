/**
 * What the dispatch stage counts: its Prometheus counters and histograms (registered once per registry, found again
 * when a second stage shares it), its in-process counts, and the `DispatchStats` snapshot made of them.
 */
import { Gauge, Histogram, type Counter, type Registry } from 'prom-client';
import type { Channel } from '../../channels/index.js';
import { METRIC_PREFIX, registered, scrapedGauge, sharedCounter } from '../../health/index.js';

/** A snapshot of what the stage has done since it started. */
export interface DispatchStats {
  /** Sessions held now. */
  sessions: number;
  /** Messages waiting for their sender's window, a pause or their recipient's turn. */
  waiting: number;
  /** Provider calls in flight. */
  inFlight: number;
  /** Provider calls made (retries included). */
  providerCalls: number;
  /** Calls made again after a retryable failure. */
  retries: number;
  /** 429s that paused a sender. */
  rateLimitPauses: number;
  /** Messages the provider accepted. */
  sent: number;
  /** Messages the provider refused for good (recorded as the failure outcome, or completed without one). */
  rejected: number;
  /** Deliveries completed. */
  completed: number;
  /** Deliveries dead-lettered (any reason). */
  deadLettered: number;
  /** Deliveries handed back (abort, or the session lock's deadline). */
  abandoned: number;
  /** Of those, handed back because they could not be sent before the session lock's deadline. */
  handedBackAtLockDeadline: number;
  /** Failed attempts to send interactions. */
  interactionSendFailures: number;
  /** Settlements (complete/abandon/dead-letter) that failed (lock lost …). */
  settleFailures: number;
  /** Sessions taken over from a holder that did not release them (it died or lost its lock): each waited one full window. */
  takenOverWithoutRelease: number;
  /** Messages a holder left in flight that the provider had (looked up): recorded, not sent again. */
  inFlightFound: number;
  /** Messages a holder left in flight that the provider did not have (looked up): sent. */
  inFlightNotFound: number;
  /** Messages a holder left in flight sent again without a lookup: contract (same `RequestId`), Telegram (may repeat). */
  inFlightResent: number;
  /** Messages a holder left in flight whose lookup failed: handed back, not sent. */
  inFlightLookupFailed: number;
  /** Calls whose answer was lost (timeout, connection, 5xx) and whose message the provider had (looked up): not sent again. */
  lostAnswerFound: number;
  /** Calls whose answer was lost and whose message the provider did not have (looked up): called again. */
  lostAnswerNotFound: number;
  /** Calls whose answer was lost and whose lookup failed: the message handed back, not sent again. */
  lostAnswerLookupFailed: number;
}

/** The counts the stage keeps since it started (the stats without what it holds now). */
export type DispatchCounts = Omit<DispatchStats, 'sessions' | 'waiting' | 'inFlight'>;

/** What a held session adds to the stats. */
export interface SessionLoad {
  limiterStats(): { waiting: number; inFlight: number };
}

/** The `outcome` label of `dispatch_messages_total`. */
export type MessageOutcome =
  | 'sent'
  | 'rejected'
  | 'retries_exhausted'
  | 'unauthorized'
  | 'unconfirmed'
  | 'invalid'
  | 'failed'
  | 'abandoned'
  | 'interaction_not_sent';

export interface DispatchMetrics {
  messages: Counter<'channel' | 'outcome'>;
  callDuration: Histogram<'channel' | 'result'>;
  retries: Counter<'channel' | 'code'>;
  pauses: Counter<'channel'>;
  /** Lookups of a message at the provider (`reason`: `lost_answer`, `in_flight`; `result`: `found`, `not_found`, `failed`). */
  lookups: Counter<'channel' | 'reason' | 'result'>;
  /** Provider calls a held sender session allows in flight now (sized from rate × latency), by sender (`senderKey`). */
  senderConcurrency: Gauge<'sender'>;
  /** The most calls in flight a held sender session would allow (`rateLimit.concurrency`, at most `messages`). */
  senderConcurrencyLimit: Gauge<'sender'>;
}

/** Why a message was looked up at the provider: a call's lost answer, or listed in flight by the last holder (or this one). */
export type LookupReason = 'lost_answer' | 'in_flight';
/** What a lookup said. */
export type LookupResult = 'found' | 'not_found' | 'failed';

/** All counts at zero. */
export function zeroCounts(): DispatchCounts {
  return {
    providerCalls: 0,
    retries: 0,
    rateLimitPauses: 0,
    sent: 0,
    rejected: 0,
    completed: 0,
    deadLettered: 0,
    abandoned: 0,
    handedBackAtLockDeadline: 0,
    interactionSendFailures: 0,
    settleFailures: 0,
    takenOverWithoutRelease: 0,
    inFlightFound: 0,
    inFlightNotFound: 0,
    inFlightResent: 0,
    inFlightLookupFailed: 0,
    lostAnswerFound: 0,
    lostAnswerNotFound: 0,
    lostAnswerLookupFailed: 0,
  };
}

/** The stats: the sessions held now, what their limiters hold, and the counts. */
export function dispatchStats(sessions: ReadonlySet<SessionLoad>, counts: DispatchCounts): DispatchStats {
  let waiting = 0;
  let inFlight = 0;
  for (const session of sessions) {
    const s = session.limiterStats();
    waiting += s.waiting;
    inFlight += s.inFlight;
  }
  return { sessions: sessions.size, waiting, inFlight, ...counts };
}

/** The stage's metrics in `registry`, created there unless a stage already registered them. */
export function createDispatchMetrics(registry: Registry): DispatchMetrics {
  const p = `${METRIC_PREFIX}dispatch_`;
  return {
    messages: sharedCounter(
      registry,
      `${p}messages_total`,
      'Outbound messages by outcome: sent, rejected, retries_exhausted, unauthorized, unconfirmed, invalid, failed, abandoned, interaction_not_sent',
      ['channel', 'outcome'],
    ),
    callDuration: registered(
      registry,
      `${p}provider_call_duration_seconds`,
      () =>
        new Histogram({
          name: `${p}provider_call_duration_seconds`,
          help: 'Provider call duration by result (ok or the ProviderError code)',
          labelNames: ['channel', 'result'] as const,
          buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers: [registry],
        }),
    ),
    retries: sharedCounter(
      registry,
      `${p}retries_total`,
      'Provider calls made again, by the code of the failure before',
      ['channel', 'code'],
    ),
    pauses: sharedCounter(registry, `${p}rate_limit_pauses_total`, 'Provider 429s that paused a sender', ['channel']),
    lookups: sharedCounter(
      registry,
      `${p}provider_lookups_total`,
      'Messages looked up at the provider before a call again, by reason (lost_answer, in_flight) and result (found: not sent again; not_found: sent; failed: handed back)',
      ['channel', 'reason', 'result'],
    ),
    senderConcurrency: sharedGauge(
      registry,
      `${p}sender_concurrency`,
      "Provider calls a held sender session allows in flight now: the sender's rate times the provider's observed latency (with headroom), within the limit",
    ),
    senderConcurrencyLimit: sharedGauge(
      registry,
      `${p}sender_concurrency_limit`,
      "The most provider calls in flight a held sender session allows: the channel's rateLimit.concurrency, at most rateLimit.messages",
    ),
  };
}

/**
 * The stage's gauges on `registry`, once per registry: each channel's sender rate limit as configured (for utilization:
 * `rate(channel_relay_dispatch_messages_total{outcome="sent"})` over `…_sender_rate_limit_per_second`), and what the
 * stage holds now, read from `stats` when scraped.
 */
export function registerDispatchGauges(
  registry: Registry,
  channels: readonly Channel[],
  stats: () => DispatchStats,
): void {
  const p = `${METRIC_PREFIX}dispatch_`;
  const limit = (name: string, help: string, value: (c: Channel) => number): void => {
    const gauge = registered(
      registry,
      `${p}${name}`,
      () => new Gauge({ name: `${p}${name}`, help, labelNames: ['channel'], registers: [registry] }),
    );
    for (const c of channels) gauge.set({ channel: c.name }, value(c));
  };
  limit(
    'sender_rate_limit_per_second',
    "The channel's sender rate limit (rateLimit.messages per rateLimit.intervalMs), in messages per second",
    (c) => (c.rateLimit.messages * 1000) / c.rateLimit.intervalMs,
  );
  // A sender's calls in flight and their ceiling (rateLimit.concurrency) are …_sender_concurrency{sender} and
  // …_sender_concurrency_limit{sender} (createSenderConcurrencyGauges), set while its session is held.
  const held = (name: string, help: string, read: (s: DispatchStats) => number): void =>
    scrapedGauge(registry, `${p}${name}`, help, () => read(stats()));
  // The sessions held are channel_relay_sessions_held{queue} (src/relay/sessions-gauge.ts), for every session loop.
  held(
    'messages_waiting',
    "Messages waiting for their sender's window, a pause or their recipient's turn",
    (s) => s.waiting,
  );
  held('provider_calls_in_flight', 'Provider calls in flight now', (s) => s.inFlight);
}

/** A gauge by sender on `registry`, shared by every stage that asks for the same name. */
function sharedGauge(registry: Registry, name: string, help: string): Gauge<'sender'> {
  return registered(
    registry,
    name,
    () => new Gauge({ name, help, labelNames: ['sender'] as const, registers: [registry] }),
  );
}
