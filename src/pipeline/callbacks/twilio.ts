/**
 * Twilio: status callbacks (`POST /callbacks/:channel/twilio/status?t=<token>`, answered 204) and inbound SMS
 * (`POST /callbacks/:channel/twilio/inbound`, answered 200 with empty TwiML: no automatic reply, confirmations go
 * through `outbound`), both form-encoded and signed with `X-Twilio-Signature`.
 *
 * Invariants: nothing is read or recorded before the signature is verified, as twilio-node's `validateRequest` does
 * ({@link verifyTwilioSignature}), with the auth token or, when a Webhooks Rule signs, the SharedKey secret, never
 * both; a body with more than {@link MAX_TWILIO_PARAMETERS} parameters is refused (400) before anything is computed,
 * so a check is linear in the body.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings, publicUrl } from './settings.js';
import { openContext } from '../../correlation/index.js';
import { MAX_TWILIO_PARAMETERS, TWILIO_SIGNATURE_ALGORITHMS } from './assumptions.js';

export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** The algorithms a Twilio signature may use (the `algorithm` of `X-Twilio-Webhooks-Signature-Settings`). */
export type TwilioSignatureAlgorithm = (typeof TWILIO_SIGNATURE_ALGORITHMS)[number];
const HASHES: Record<TwilioSignatureAlgorithm, string> = { HMAC_SHA1: 'sha1', HMAC_SHA256: 'sha256' };

/** The header Twilio adds when a Webhooks Rule signs with a SharedKey: `key=<SharedKey SID>,algorithm=HMAC_SHA256`. */
export const SIGNATURE_SETTINGS_HEADER = 'x-twilio-webhooks-signature-settings';

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
export function twilioSignature(secret: string, url: string, params: URLSearchParams, algorithm: TwilioSignatureAlgorithm = 'HMAC_SHA1'): string {
  return hmac(secret, url, signedParameters(params), algorithm);
}

/** twilio-node's `addPort`: the URL with its scheme's default port written out (`:443`, else `:80`) when it has none. */
function withPort(url: URL): string {
  if (url.port !== '') return url.toString();
  const auth = url.username === '' && url.password === '' ? '' : `${url.username}${url.password === '' ? '' : `:${url.password}`}@`;
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
export function signatureSettings(header: string | undefined): { algorithm: TwilioSignatureAlgorithm } | { unsupported: true } | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim().toLowerCase() !== 'algorithm') continue;
    const name = part.slice(eq + 1).trim().toUpperCase();
    const algorithm = TWILIO_SIGNATURE_ALGORITHMS.find((a) => a === name);
    return algorithm === undefined ? { unsupported: true } : { algorithm };
  }
  return { unsupported: true };
}

/** The number of `&`-separated fields of a form body, counted without parsing it (an upper bound of its parameters). */
function fieldCount(body: string): number {
  let n = 1;
  for (let i = body.indexOf('&'); i >= 0; i = body.indexOf('&', i + 1)) n += 1;
  return n;
}

/**
 * The response type a `MessageStatus` records on a channel; undefined: nothing is recorded. delivered → the channel's
 * delivered response type; undelivered and failed → its failure response type (when the tile defines one, else
 * logged and ignored); read → the opened response type; queued, accepted, scheduled, sending, sent → acknowledged,
 * nothing recorded (dispatch recorded `sent`).
 */
export function responseTypeOfStatus(channel: Channel, status: string): { responseType?: string; failure: boolean } {
  const callbacks = channel.callbacks;
  switch (status) {
    case 'delivered':
      return { failure: false, ...(callbacks?.deliveredResponseType === undefined ? {} : { responseType: callbacks.deliveredResponseType }) };
    case 'read':
      return { failure: false, ...(callbacks?.openedResponseType === undefined ? {} : { responseType: callbacks.openedResponseType }) };
    case 'undelivered':
    case 'failed':
      return { failure: true, ...(channel.failureResponseType === undefined ? {} : { responseType: channel.failureResponseType }) };
    default:
      return { failure: false };
  }
}

/**
 * The channel and the verified form parameters, or the refusal. The signature is base64(HMAC(secret, URL + each POST
 * parameter's name and value, sorted by name)); the secret and the hash: the channel's auth token (and
 * `callbacks.previousAuthToken` during a rotation) with SHA-1; or, when the request carries
 * `X-Twilio-Webhooks-Signature-Settings` (a Webhooks Rule with a SharedKey matched the URL), the channel's
 * `callbacks.sharedKeySecret` with the algorithm the header names (HMAC_SHA1 or HMAC_SHA256).
 */
function verified(request: FastifyRequest, service: CallbackService): { channel: Channel; params: URLSearchParams } | { refused: RouteResult } {
  const channel = routeChannel(request, service, 'twilio');
  const settings = channel === undefined ? undefined : callbackSettings(channel);
  if (channel === undefined || settings === undefined) return { refused: refusal('unknown-channel') };
  const body = rawBody(request);
  const route = request.routeOptions.url;
  const fields = fieldCount(body);
  if (fields > MAX_TWILIO_PARAMETERS) {
    service.log.warn('twilio callback refused: more parameters than Twilio sends', { channel: channel.name, route, fields, limit: MAX_TWILIO_PARAMETERS });
    return { refused: refusal('bad-request') };
  }
  const params = new URLSearchParams(body);
  const header = request.headers['x-twilio-signature'];
  const signature = typeof header === 'string' ? header : undefined;
  const settingsHeader = request.headers[SIGNATURE_SETTINGS_HEADER];
  const signing = signatureSettings(typeof settingsHeader === 'string' ? settingsHeader : undefined);
  const refused = (reason: string): { refused: RouteResult } => {
    service.log.warn('twilio callback refused: signature missing or not matching', { channel: channel.name, route, reason });
    return { refused: refusal('forbidden') };
  };
  if (signing !== undefined && 'unsupported' in signing) return refused('unsupported-algorithm');
  if (signing !== undefined && settings.twilioSharedKeys.length === 0) return refused('no-shared-key');
  const secrets = signing === undefined ? settings.twilioAuthTokens : settings.twilioSharedKeys;
  if (!verifyTwilioSignature(signature, secrets, publicUrl(settings, request.url), params, signing?.algorithm)) return refused(signature === undefined ? 'missing' : 'mismatch');
  return { channel, params };
}

async function status(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const v = verified(request, service);
  if ('refused' in v) return v.refused;
  const { channel, params } = v;
  const token = (request.query as { t?: unknown }).t;
  if (typeof token !== 'string' || token === '') return refusal('bad-token');
  const opened = openContext(token, service.keys);
  if (!opened.ok || opened.channel !== channel.name) {
    service.log.warn('twilio status callback with a token that does not open', { channel: channel.name, reason: opened.ok ? 'other-channel' : opened.reason });
    return refusal(!opened.ok && opened.reason === 'malformed' ? 'bad-token' : 'forbidden');
  }
  const messageStatus = params.get('MessageStatus') ?? '';
  const log = service.log.child({ channel: channel.name, activityRowId: opened.context.activityRowId, status: messageStatus });
  const { responseType, failure } = responseTypeOfStatus(channel, messageStatus);
  if (responseType === undefined) {
    if (failure || messageStatus === 'delivered' || messageStatus === 'read') log.info('status with no response type on this channel: not recorded');
    return { outcome: 'ignored', status: 204 };
  }
  const sid = params.get('MessageSid') ?? params.get('SmsSid') ?? undefined;
  const errorCode = params.get('ErrorCode') ?? undefined;
  await service.record({
    context: opened.context,
    responseType,
    channel: channel.name,
    ...(sid ? { providerMessageId: sid } : {}),
    ...(failure ? { detail: { ...(errorCode ? { code: errorCode } : {}), message: `Twilio MessageStatus ${messageStatus}` } } : {}),
  });
  log.info('status recorded', { responseType });
  return { outcome: 'recorded', status: 204 };
}

async function inbound(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const v = verified(request, service);
  if ('refused' in v) return v.refused;
  const { channel, params } = v;
  const from = params.get('From') ?? '';
  const sid = params.get('MessageSid') ?? params.get('SmsSid') ?? '';
  const twiml = { status: 200, body: EMPTY_TWIML, contentType: 'text/xml; charset=utf-8' };
  if (from === '' || sid === '') return refusal('bad-request');
  // An opt-in is applied only when the message fetched by this MessageSid matches (see CallbackService.verifyOptIn).
  const proof = { kind: 'twilio', sid, from, to: params.get('To') ?? '' } as const;
  const outcome = await service.reply(channel, { address: from, text: params.get('Body') ?? '', replyId: sid, proof }, service.log.child({ channel: channel.name, route: 'twilio-inbound' }));
  return { outcome, ...twiml };
}

export function registerTwilio(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'POST', '/callbacks/:channel/twilio/status', 'twilio-status', status);
  addRoute(app, service, 'POST', '/callbacks/:channel/twilio/inbound', 'twilio-inbound', inbound);
}
