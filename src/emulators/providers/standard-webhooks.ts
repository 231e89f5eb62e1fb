/**
 * Standard Webhooks v1 signatures as the contract simulator reads the spec, for both of its sides: it verifies the
 * relay's sends and signs its own reports and replies. Headers
 * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` (one or more space-separated
 * `v1,<base64>` entries), each an HMAC-SHA256 keyed with the base64 part of a `whsec_…` secret over
 * `id.timestamp.rawBody`. Any secret of the list may match (rotation); signatures compare in constant time.
 * (The relay's signer and verifier live with the contract adapter; this module is deliberately independent of them,
 * so that a misreading of the spec on either side fails the tests instead of agreeing with itself.)
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface WebhookHeaders {
  id?: string | undefined;
  timestamp?: string | undefined;
  signature?: string | undefined;
}

export interface VerifyOptions {
  /** `whsec_<base64>` secrets (a bare base64 string is accepted too); any one may have signed. */
  secrets: readonly string[];
  headers: WebhookHeaders;
  /** The body exactly as received. */
  body: string | Buffer;
  /** The verifier's clock, Unix seconds. */
  nowSeconds: number;
  /** Largest accepted distance between `webhook-timestamp` and now, seconds. @defaultValue 300 */
  toleranceSeconds?: number;
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** The HMAC key of a secret: the bytes of its base64 part. */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64))
    throw new TypeError(`a webhook secret must be 'whsec_' followed by base64, found '${secret.slice(0, 6)}…'`);
  return Buffer.from(b64, 'base64');
}

export function verifyStandardWebhook(options: VerifyOptions): VerifyResult {
  const { id, timestamp, signature } = options.headers;
  const tolerance = options.toleranceSeconds ?? 300;
  if (!id) return { ok: false, reason: 'missing webhook-id header' };
  if (!timestamp) return { ok: false, reason: 'missing webhook-timestamp header' };
  if (!signature) return { ok: false, reason: 'missing webhook-signature header' };
  if (!/^\d+$/.test(timestamp))
    return { ok: false, reason: `webhook-timestamp must be Unix seconds, found '${timestamp}'` };
  const ts = Number(timestamp);
  if (Math.abs(options.nowSeconds - ts) > tolerance) {
    return {
      ok: false,
      reason: `webhook-timestamp ${ts} is ${options.nowSeconds - ts} s from now (tolerance ${tolerance} s)`,
    };
  }
  const given = signature
    .split(' ')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  if (given.length === 0) return { ok: false, reason: "webhook-signature holds no 'v1,<base64>' entry" };
  const signed = Buffer.concat([
    Buffer.from(`${id}.${timestamp}.`, 'utf8'),
    typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body,
  ]);
  for (const secret of options.secrets) {
    const expected = createHmac('sha256', secretKey(secret)).update(signed).digest();
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) return { ok: true };
  }
  return { ok: false, reason: 'no webhook-signature entry matches a configured secret' };
}

/**
 * The three headers of a message signed with every secret of the list (one `v1,<base64>` entry each, space-separated,
 * as the spec allows during a rotation); `nowSeconds` stamps `webhook-timestamp`.
 */
export function signStandardWebhook(
  secrets: readonly string[],
  id: string,
  body: string,
  nowSeconds: number,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const timestamp = String(Math.floor(nowSeconds));
  const signed = Buffer.from(`${id}.${timestamp}.${body}`, 'utf8');
  const signature = secrets
    .map((secret) => `v1,${createHmac('sha256', secretKey(secret)).update(signed).digest('base64')}`)
    .join(' ');
  return { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
}
