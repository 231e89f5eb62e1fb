/**
 * Which of dispatch's dead letters may go back to `outbound`. A message replayed there is sent to the provider again,
 * so what the provider took (or may have taken) never goes back by accident: `InteractionNotSent` never (the provider
 * took it; the interaction in its description belongs on `interactions`), `ProviderAnswerUnreadable` only when a
 * replay asks for that reason by name (after a person checked with the provider that it was not sent).
 */
import { DISPATCH_DEAD_LETTER_REASONS } from './outcome.js';

/** Dead-letter reasons of `outbound` that a replay to `outbound` never sends back. */
export const NEVER_REPLAYED_TO_OUTBOUND: readonly string[] = [DISPATCH_DEAD_LETTER_REASONS.interactionNotSent];

/** Dead-letter reasons of `outbound` that a replay sends back only when it asks for that reason. */
export const REPLAYED_TO_OUTBOUND_BY_NAME: readonly string[] = [DISPATCH_DEAD_LETTER_REASONS.unconfirmed];

/** What a replay to `outbound` may do. */
export type OutboundReplay =
  /** The reason asked for is one that never goes back to `outbound`. */
  | { allowed: false; reason: string }
  /** Replay, leaving the dead letters with these reasons where they are. */
  | { allowed: true; excludeReasons: readonly string[] };

/** The policy for a replay of `outbound`'s dead letters that asks for `reason` (or for every reason). */
export function outboundReplay(reason?: string): OutboundReplay {
  if (reason !== undefined && NEVER_REPLAYED_TO_OUTBOUND.includes(reason)) return { allowed: false, reason };
  return {
    allowed: true,
    excludeReasons: [...NEVER_REPLAYED_TO_OUTBOUND, ...REPLAYED_TO_OUTBOUND_BY_NAME.filter((r) => r !== reason)],
  };
}
