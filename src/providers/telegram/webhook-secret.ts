/**
 * Telegram's webhook authentication: every update carries `X-Telegram-Bot-Api-Secret-Token`, the `secret_token` given
 * to setWebhook (core.telegram.org/bots/api#setwebhook); the receiver compares it with the tokens it accepts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Whether `given` equals one of `accepted` (constant-time over digests, so lengths are not compared). */
export function verifySecretToken(given: string, accepted: readonly string[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const token of accepted) if (timingSafeEqual(g, digest(token))) ok = true;
  return ok;
}
