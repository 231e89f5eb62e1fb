/**
 * Twilio request signatures (`X-Twilio-Signature`), verified as twilio-node's `validateRequest` does
 * (twilio/twilio-node src/webhooks/webhooks.ts): base64(HMAC(secret, URL + each POST parameter's name and value, sorted
 * by name)). The secret and the hash: an auth token with SHA-1; or, when the request carries
 * `X-Twilio-Webhooks-Signature-Settings` (a Webhooks Rule with a SharedKey matched the URL), the SharedKey secret with
 * the algorithm the header names. Comparisons are constant-time. The readings without a primary source are in
 * assumptions.ts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';
import { TWILIO_SIGNATURE_ALGORITHMS } from './assumptions.js';

/** The algorithms a Twilio signature may use (the `algorithm` of `X-Twilio-Webhooks-Signature-Settings`). */
export type TwilioSignatureAlgorithm = (typeof TWILIO_SIGNATURE_ALGORITHMS)[number];
const HASHES: Record<TwilioSignatureAlgorithm, string> = { HMAC_SHA1: 'sha1', HMAC_SHA256: 'sha256' };

/** The header Twilio adds when a Webhooks Rule signs with a SharedKey: `key=<SharedKey SID>,algorithm=HMAC_SHA256`. */
export const TWILIO_SIGNATURE_SETTINGS_HEADER = 'x-twilio-webhooks-signature-settings';

/**
 * The parameters as Twilio signs them: each name (sorted) followed by each of its distinct values (sorted), as
 * twilio-node's `toFormUrlEncodedParam` does for a repeated parameter (assumptions.ts `TWILIO_REPEATED_VALUES`). The
 * parameters are grouped in one pass, so the cost is linear in the body (plus the sort).
 */
function signedParameters(params: URLSearchParams): string {
  const groups = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    const values = groups.get(name);
    if (values === undefined) groups.set(name, new Set([value]));
    else values.add(value);
  }
  let data = '';
  for (const name of [...groups.keys()].sort()) for (const value of [...groups.get(name)!].sort()) data += name + value;
  return data;
}

function hmac(secret: string, url: string, parameters: string, algorithm: TwilioSignatureAlgorithm): string {
  return createHmac(HASHES[algorithm], secret).update(url, 'utf8').update(parameters, 'utf8').digest('base64');
}

/** The `X-Twilio-Signature` of a form POST to `url` with `params`, for one secret (an auth token or a SharedKey secret). */
export function twilioSignature(
  secret: string,
  url: string,
  params: URLSearchParams,
  algorithm: TwilioSignatureAlgorithm = 'HMAC_SHA1',
): string {
  return hmac(secret, url, signedParameters(params), algorithm);
}

/** twilio-node's `addPort`: the URL with its scheme's default port written out (`:443`, else `:80`) when it has none. */
function withPort(url: URL): string {
  if (url.port !== '') return url.toString();
  const auth =
    url.username === '' && url.password === ''
      ? ''
      : `${url.username}${url.password === '' ? '' : `:${url.password}`}@`;
  return `${url.protocol}//${auth}${url.host}${url.protocol === 'https:' ? ':443' : ':80'}${url.pathname}${url.search}${url.hash}`;
}

/** twilio-node's `removePort`. */
function withoutPort(url: URL): string {
  const copy = new URL(url);
  copy.port = '';
  return copy.toString();
}

/** twilio-node's `withLegacyQuerystring`: the query re-encoded by `querystring.stringify` (`'`, `(`, `)`, `*`, `!` left bare). */
function withLegacyQuery(url: string): string {
  const parsed = new URL(url);
  if (parsed.search === '') return url;
  const query = stringifyQuery(parseQuery(parsed.search.slice(1)));
  parsed.search = '';
  return `${parsed.toString()}?${query}`;
}

/**
 * The URLs a signature is checked against: the URL as the request reached the relay, and the four forms twilio-node's
 * `validateRequest` tries because "signature generation on the back end is inconsistent": without the port, with the
 * scheme's default port, and each of those with the legacy query encoding (twilio/twilio-node src/webhooks/webhooks.ts).
 */
export function twilioSignedUrls(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url];
  }
  const forms = [withoutPort(parsed), withPort(parsed)];
  return [...new Set([url, ...forms, ...forms.map(withLegacyQuery)])];
}

/**
 * Whether `signature` is the signature of the request under one of `secrets`, over one of the URL forms of
 * {@link twilioSignedUrls} (constant-time, every secret and form tried). The parameters are grouped once.
 */
export function verifyTwilioSignature(
  signature: string | undefined,
  secrets: readonly string[],
  url: string,
  params: URLSearchParams,
  algorithm: TwilioSignatureAlgorithm = 'HMAC_SHA1',
): boolean {
  if (signature === undefined || signature === '' || secrets.length === 0) return false;
  const given = Buffer.from(signature, 'utf8');
  const parameters = signedParameters(params);
  let ok = false;
  for (const candidate of twilioSignedUrls(url)) {
    for (const secret of secrets) {
      const expected = Buffer.from(hmac(secret, candidate, parameters, algorithm), 'utf8');
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
    }
  }
  return ok;
}

/**
 * The signing a request declares in `X-Twilio-Webhooks-Signature-Settings` (`key=<SID>,algorithm=<name>`; names
 * compared case-insensitively); undefined when the header is absent (auth token, HMAC-SHA1); `unsupported` when the
 * header names no algorithm this service knows (assumptions.ts `TWILIO_SIGNATURE_ALGORITHMS`).
 */
export function signatureSettings(
  header: string | undefined,
): { algorithm: TwilioSignatureAlgorithm } | { unsupported: true } | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim().toLowerCase() !== 'algorithm') continue;
    const name = part
      .slice(eq + 1)
      .trim()
      .toUpperCase();
    const algorithm = TWILIO_SIGNATURE_ALGORITHMS.find((a) => a === name);
    return algorithm === undefined ? { unsupported: true } : { algorithm };
  }
  return { unsupported: true };
}
