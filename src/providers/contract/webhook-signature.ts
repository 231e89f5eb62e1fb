/**
 * Standard Webhooks v1 signatures (https://github.com/standard-webhooks/standard-webhooks, spec 1.0.0): signing for
 * what the relay sends (the contract adapter) and verification for what it receives (the callbacks service).
 *
 * - Headers: `webhook-id` (the idempotency key of the message), `webhook-timestamp` (Unix seconds) and
 *   `webhook-signature`: one or more space-separated `v1,<base64>` entries.
 * - Each entry is base64(HMAC-SHA256(key, `${id}.${timestamp}.${rawBody}`)).
 * - A secret is `whsec_<base64>`; the key is the base64-decoded part after the prefix (the prefix is optional).
 * - Verification: the timestamp must lie within the tolerance (5 min) of now, in either direction; the signature
 *   header may carry several entries and several secrets may be accepted at once, which is how a secret is rotated
 *   (sign with the new and the old secret for a while, accept both, then drop the old one). Entries of another
 *   version (`v1a,…`) are ignored. Comparisons are constant-time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The spec's recommended tolerance between `webhook-timestamp` and now. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** One secret or several (rotation): `whsec_<base64>` each. */
export type WebhookSecrets = string | readonly string[];

/** The three Standard Webhooks headers, lower-case names. */
export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** What is wrong with a `whsec_<base64>` secret (prefix optional), never showing it; undefined when it is one. */
export function webhookSecretProblem(secret: string): string | undefined {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!BASE64.test(encoded) || encoded.length % 4 === 1) return `${encoded.length} characters that are not all base64`;
  return Buffer.from(encoded, 'base64').length === 0 ? 'a secret that decodes to nothing' : undefined;
}

/**
 * The HMAC key of a `whsec_<base64>` secret (prefix optional). Throws a `TypeError` naming what is wrong (never the
 * secret) when the rest is not base64 or decodes to nothing.
 */
export function webhookSecretKey(secret: string): Buffer {
  const problem = webhookSecretProblem(secret);
  if (problem !== undefined)
    throw new TypeError(`a webhook signing secret must be "whsec_" followed by base64; found ${problem}`);
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

function secretList(secrets: WebhookSecrets): readonly string[] {
  const list = typeof secrets === 'string' ? [secrets] : secrets;
  if (list.length === 0) throw new TypeError('at least one webhook signing secret is needed');
  return list;
}

function hmac(key: Buffer, id: string, timestamp: number, body: string | Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/**
 * The `webhook-signature` value for one message: `v1,<base64>` per secret, space-separated (one entry when one
 * secret is given). `timestamp` is Unix seconds; `body` is the raw body exactly as sent.
 */
export function signWebhook(secrets: WebhookSecrets, id: string, timestamp: number, body: string | Buffer): string {
  return secretList(secrets)
    .map((secret) => `v1,${hmac(webhookSecretKey(secret), id, timestamp, body).toString('base64')}`)
    .join(' ');
}

/** The three headers for one message, signed now (or at `nowMs`) with each secret. */
export function webhookHeaders(
  secrets: WebhookSecrets,
  id: string,
  body: string | Buffer,
  nowMs: number = Date.now(),
): WebhookHeaders {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secrets, id, timestamp, body),
  };
}

export interface VerifyWebhookOptions {
  /** The secrets accepted (several during a rotation). */
  secrets: WebhookSecrets;
  /** @defaultValue {@link WEBHOOK_TOLERANCE_SECONDS} (300) */
  toleranceSeconds?: number;
  /** The current time in milliseconds. @defaultValue Date.now() */
  nowMs?: number;
}

/** Why a webhook was refused. */
export type WebhookRefusal =
  /** One of the three headers is absent or empty. */
  | 'missing-headers'
  /** `webhook-timestamp` is not an integer. */
  | 'invalid-timestamp'
  /** Older than the tolerance (a replay, or a very late retry). */
  | 'timestamp-too-old'
  /** Newer than the tolerance (a skewed clock). */
  | 'timestamp-too-new'
  /** No `v1` entry matches any accepted secret (tampered body, wrong secret). */
  | 'no-matching-signature';

export type WebhookVerification =
  { ok: true; id: string; timestamp: number } | { ok: false; reason: WebhookRefusal; message: string };

/** Request headers as Node (`IncomingHttpHeaders`) or fetch (`Headers`) hands them over; names in any case. */
export type HeaderSource = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).forEach === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  for (const [key, value] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (key.toLowerCase() !== name) continue;
    return typeof value === 'string' ? value : value?.join(' ');
  }
  return undefined;
}

/**
 * Verifies a received webhook against its raw body (the bytes received, before any JSON parsing). Returns the
 * message id and timestamp, or the reason for refusing it; never throws for a bad request (a bad secret in
 * `options` throws a `TypeError`, as that is configuration).
 */
export function verifyWebhook(
  rawBody: string | Buffer,
  headers: HeaderSource,
  options: VerifyWebhookOptions,
): WebhookVerification {
  const keys = secretList(options.secrets).map(webhookSecretKey);
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const now = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const signature = header(headers, 'webhook-signature');
  if (!id || !stamp || !signature) {
    return {
      ok: false,
      reason: 'missing-headers',
      message: 'webhook-id, webhook-timestamp and webhook-signature are all required',
    };
  }
  if (!/^\d+$/.test(stamp.trim())) {
    return {
      ok: false,
      reason: 'invalid-timestamp',
      message: `webhook-timestamp must be Unix seconds, found ${JSON.stringify(stamp.slice(0, 40))}`,
    };
  }
  const timestamp = Number(stamp.trim());
  if (now - timestamp > tolerance) {
    return {
      ok: false,
      reason: 'timestamp-too-old',
      message: `webhook-timestamp is ${now - timestamp} s old, more than the ${tolerance} s tolerated`,
    };
  }
  if (timestamp - now > tolerance) {
    return {
      ok: false,
      reason: 'timestamp-too-new',
      message: `webhook-timestamp is ${timestamp - now} s in the future, more than the ${tolerance} s tolerated`,
    };
  }
  const expected = keys.map((key) => hmac(key, id, timestamp, rawBody));
  let matched = false;
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const given = Buffer.from(entry.slice(comma + 1), 'base64');
    // Every candidate is compared (no early exit), so timing says nothing about which secret matched.
    for (const digest of expected) {
      if (given.length === digest.length && timingSafeEqual(given, digest)) matched = true;
    }
  }
  if (!matched)
    return { ok: false, reason: 'no-matching-signature', message: 'no v1 signature matches an accepted secret' };
  return { ok: true, id, timestamp };
}
