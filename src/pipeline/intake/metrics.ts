/**
 * Intake's counts: the `stats()` snapshot (`IntakeStats`) and, when a registry is given, the prom-client counters
 * `channel_relay_intake_events_total` (by outcome) and `channel_relay_intake_dead_letters_total` (by reason), taken
 * from the registry when a stage registered them before. One call per batch, retry and settlement.
 */
import type { Counter, Registry } from 'prom-client';
import { METRIC_PREFIX, sharedCounter } from '../../health/index.js';

/** Counts since construction (a snapshot). */
export interface IntakeStats {
  batches: number;
  /** Deliveries handed to `handle`. */
  received: number;
  /** Deliveries completed after their message went to `outbound` (a repeat within one batch is sent once). */
  sent: number;
  /** Activities whose contact had opted out: completed without a message. */
  skippedByCompliance: number;
  deadLettered: number;
  /** Dead letters per reason. */
  deadLetterReasons: Record<string, number>;
  abandoned: number;
  /** Reads and sends tried again within a batch (one per failed attempt that was retried). */
  retries: number;
}

/** How a delivery was settled. */
export type IntakeOutcome = 'sent' | 'skipped_compliance' | 'dead_lettered' | 'abandoned';

const INTAKE_EVENTS = `${METRIC_PREFIX}intake_events_total`;
const INTAKE_DEAD_LETTERS = `${METRIC_PREFIX}intake_dead_letters_total`;

/** Intake's counts since construction, and its counters on `registry` when one is given. */
export class IntakeMetrics {
  readonly #events: Counter<'outcome'> | undefined;
  readonly #deadLetters: Counter<'reason'> | undefined;
  readonly #stats: IntakeStats = {
    batches: 0,
    received: 0,
    sent: 0,
    skippedByCompliance: 0,
    deadLettered: 0,
    deadLetterReasons: {},
    abandoned: 0,
    retries: 0,
  };

  constructor(registry: Registry | undefined) {
    if (registry) {
      this.#events = sharedCounter(registry, INTAKE_EVENTS, 'Activities events handled by intake, by outcome.', [
        'outcome',
      ]);
      this.#deadLetters = sharedCounter(
        registry,
        INTAKE_DEAD_LETTERS,
        'Activities events dead-lettered by intake, by reason.',
        ['reason'],
      );
    }
  }

  /** A snapshot of the counts since construction. */
  snapshot(): IntakeStats {
    return { ...this.#stats, deadLetterReasons: { ...this.#stats.deadLetterReasons } };
  }

  /** A batch of `size` deliveries was handed to `handle`. */
  batch(size: number): void {
    this.#stats.batches += 1;
    this.#stats.received += size;
  }

  /** A read or a send is tried again within the batch. */
  retry(): void {
    this.#stats.retries += 1;
  }

  /** A delivery is being settled with `outcome` (the events counter). */
  settling(outcome: IntakeOutcome): void {
    this.#events?.inc({ outcome });
  }

  deadLettered(reason: string): void {
    this.#stats.deadLettered += 1;
    this.#stats.deadLetterReasons[reason] = (this.#stats.deadLetterReasons[reason] ?? 0) + 1;
    this.#deadLetters?.inc({ reason });
  }

  completed(outcome: 'sent' | 'skipped_compliance'): void {
    if (outcome === 'sent') this.#stats.sent += 1;
    else this.#stats.skippedByCompliance += 1;
  }

  abandoned(): void {
    this.#stats.abandoned += 1;
  }
}
