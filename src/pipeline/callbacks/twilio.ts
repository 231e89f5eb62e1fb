/**
 * Twilio: status callbacks (`POST /callbacks/:channel/twilio/status?t=<token>`) and inbound SMS
 * (`POST /callbacks/:channel/twilio/inbound`), both form-encoded and signed with `X-Twilio-Signature`:
 * base64(HMAC-SHA1(auth token, full public URL + each POST parameter's name and value, sorted by name)).
 * The channel's auth token is accepted, and during a rotation also `callbacks.previousAuthToken`.
 *
 * `MessageStatus`: delivered → the channel's delivered response type; undelivered and failed → its failure response
 * type (when the tile defines one, else logged and ignored); read → the opened response type; queued, accepted,
 * scheduled, sending, sent → acknowledged, nothing recorded (dispatch recorded `sent`). Answers: 204 for a status
 * callback, 200 with empty TwiML for an inbound message (no automatic reply; confirmations go through `outbound`).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings, publicUrl } from './settings.js';
import { openContext } from './token.js';

export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** The `X-Twilio-Signature` of a form POST to `url` with `params`, for one auth token. */
export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const names = [...new Set(params.keys())].sort();
  let data = url;
  for (const name of names) for (const value of params.getAll(name).sort()) data += name + value;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** Whether `signature` is the signature of the request under one of `authTokens` (constant-time, every token tried). */
export function verifyTwilioSignature(signature: string | undefined, authTokens: readonly string[], url: string, params: URLSearchParams): boolean {
  if (signature === undefined || signature === '' || authTokens.length === 0) return false;
  const given = Buffer.from(signature, 'utf8');
  let ok = false;
  for (const token of authTokens) {
    const expected = Buffer.from(twilioSignature(token, url, params), 'utf8');
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}

/** The response type a `MessageStatus` records on a channel; undefined: nothing is recorded. */
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

/** The channel and the verified form parameters, or the refusal. */
function verified(request: FastifyRequest, service: CallbackService): { channel: Channel; params: URLSearchParams } | { refused: RouteResult } {
  const channel = routeChannel(request, service, 'twilio');
  const settings = channel === undefined ? undefined : callbackSettings(channel);
  if (channel === undefined || settings === undefined) return { refused: refusal('unknown-channel') };
  const params = new URLSearchParams(rawBody(request));
  const header = request.headers['x-twilio-signature'];
  const signature = typeof header === 'string' ? header : undefined;
  if (!verifyTwilioSignature(signature, settings.twilioAuthTokens, publicUrl(settings, request.url), params)) {
    service.log.warn('twilio callback refused: signature missing or not matching', { channel: channel.name, route: request.routeOptions.url, reason: signature === undefined ? 'missing' : 'mismatch' });
    return { refused: refusal('forbidden') };
  }
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
