/**
 * Twilio: status callbacks (`POST /callbacks/:channel/twilio/status?t=<token>`, answered 204) and inbound SMS
 * and MMS (`POST /callbacks/:channel/twilio/inbound`, answered 200 with empty TwiML: no automatic reply, confirmations
 * go through `outbound`; an MMS's media go with the message to a bridged channel's conversation), both form-encoded
 * and signed with `X-Twilio-Signature`.
 *
 * Invariants: nothing is read or recorded before the signature is verified, as twilio-node's `validateRequest` does
 * ({@link verifyTwilioSignature}), with the auth token or, when a Webhooks Rule signs, the SharedKey secret, never
 * both; a body with more than {@link MAX_TWILIO_PARAMETERS} parameters is refused (400) before anything is computed,
 * so a check is linear in the body.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings, publicUrl } from './settings.js';
import { openContext } from '../../correlation/index.js';
import { MAX_TWILIO_MEDIA, MAX_TWILIO_PARAMETERS, STATUS_CALLBACK_RECIPIENT } from './assumptions.js';
import type { Attachment } from '../messages.js';
import { signatureSettings, TWILIO_SIGNATURE_SETTINGS_HEADER, verifyTwilioSignature } from '../../providers/index.js';

export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

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
      return {
        failure: false,
        ...(callbacks?.deliveredResponseType === undefined ? {} : { responseType: callbacks.deliveredResponseType }),
      };
    case 'read':
      return {
        failure: false,
        ...(callbacks?.openedResponseType === undefined ? {} : { responseType: callbacks.openedResponseType }),
      };
    case 'undelivered':
    case 'failed':
      return {
        failure: true,
        ...(channel.failureResponseType === undefined ? {} : { responseType: channel.failureResponseType }),
      };
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
function verified(
  request: FastifyRequest,
  service: CallbackService,
): { channel: Channel; params: URLSearchParams } | { refused: RouteResult } {
  const channel = routeChannel(request, service, 'twilio');
  const settings = channel === undefined ? undefined : callbackSettings(channel);
  if (channel === undefined || settings === undefined) return { refused: refusal('unknown-channel') };
  const body = rawBody(request);
  const route = request.routeOptions.url;
  const fields = fieldCount(body);
  if (fields > MAX_TWILIO_PARAMETERS) {
    service.log.warn('twilio callback refused: more parameters than Twilio sends', {
      channel: channel.name,
      route,
      fields,
      limit: MAX_TWILIO_PARAMETERS,
    });
    return { refused: refusal('bad-request') };
  }
  const params = new URLSearchParams(body);
  const header = request.headers['x-twilio-signature'];
  const signature = typeof header === 'string' ? header : undefined;
  const settingsHeader = request.headers[TWILIO_SIGNATURE_SETTINGS_HEADER];
  const signing = signatureSettings(typeof settingsHeader === 'string' ? settingsHeader : undefined);
  const refused = (reason: string): { refused: RouteResult } => {
    service.log.warn('twilio callback refused: signature missing or not matching', {
      channel: channel.name,
      route,
      reason,
    });
    return { refused: refusal('forbidden') };
  };
  if (signing !== undefined && 'unsupported' in signing) return refused('unsupported-algorithm');
  if (signing !== undefined && settings.twilioSharedKeys.length === 0) return refused('no-shared-key');
  const secrets = signing === undefined ? settings.twilioAuthTokens : settings.twilioSharedKeys;
  if (!verifyTwilioSignature(signature, secrets, publicUrl(settings, request.url), params, signing?.algorithm))
    return refused(signature === undefined ? 'missing' : 'mismatch');
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
    service.log.warn('twilio status callback with a token that does not open', {
      channel: channel.name,
      reason: opened.ok ? 'other-channel' : opened.reason,
    });
    return refusal(!opened.ok && opened.reason === 'malformed' ? 'bad-token' : 'forbidden');
  }
  const tile = service.tiles.remember(opened.context);
  // Every status, a failure too: a read would find the message's activity as the newest whatever became of it. `To`
  // is signed with the body, the send time sealed in the token (none in a token of version 1: nothing learned).
  const to = params.get(STATUS_CALLBACK_RECIPIENT) ?? '';
  if (opened.sentAt !== undefined && to !== '') {
    const { activityRowId, contactId } = opened.context;
    service.replies.learn(channel.name, to, { activityRowId, contactId, tile, sentAt: opened.sentAt });
  }
  const messageStatus = params.get('MessageStatus') ?? '';
  const log = service.log.child({
    channel: channel.name,
    activityRowId: opened.context.activityRowId,
    status: messageStatus,
  });
  const { responseType, failure } = responseTypeOfStatus(channel, messageStatus);
  if (responseType === undefined) {
    if (failure || messageStatus === 'delivered' || messageStatus === 'read')
      log.info('status with no response type on this channel: not recorded');
    return { outcome: 'ignored', status: 204 };
  }
  const sid = params.get('MessageSid') ?? params.get('SmsSid') ?? undefined;
  const errorCode = params.get('ErrorCode') ?? undefined;
  await service.record({
    context: opened.context,
    responseType,
    channel: channel.name,
    ...(sid ? { providerMessageId: sid } : {}),
    ...(failure
      ? { detail: { ...(errorCode ? { code: errorCode } : {}), message: `Twilio MessageStatus ${messageStatus}` } }
      : {}),
  });
  log.info('status recorded', { responseType });
  return { outcome: 'recorded', status: 204 };
}

/**
 * The media of an inbound MMS: `MediaUrl{N}` with `MediaContentType{N}` for N from 0 below `NumMedia` (at most
 * {@link MAX_TWILIO_MEDIA}, Twilio's limit per message); a missing or non-HTTP(S) URL is skipped.
 */
export function inboundMedia(params: URLSearchParams): Attachment[] {
  const count = Number(params.get('NumMedia') ?? '0');
  if (!Number.isInteger(count) || count < 1) return [];
  const media: Attachment[] = [];
  for (let n = 0; n < Math.min(count, MAX_TWILIO_MEDIA); n++) {
    const url = params.get(`MediaUrl${n}`) ?? '';
    if (!/^https?:\/\//i.test(url)) continue;
    const contentType = params.get(`MediaContentType${n}`) ?? '';
    media.push({ url, ...(contentType === '' ? {} : { contentType }) });
  }
  return media;
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
  const attachments = inboundMedia(params);
  const outcome = await service.reply(
    channel,
    {
      address: from,
      text: params.get('Body') ?? '',
      replyId: sid,
      proof,
      ...(attachments.length === 0 ? {} : { attachments }),
    },
    service.log.child({ channel: channel.name, route: 'twilio-inbound' }),
  );
  return { outcome, ...twiml };
}

export function registerTwilio(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'POST', '/callbacks/:channel/twilio/status', 'twilio-status', status);
  addRoute(app, service, 'POST', '/callbacks/:channel/twilio/inbound', 'twilio-inbound', inbound);
}
