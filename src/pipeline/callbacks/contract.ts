/**
 * The contract's callbacks: delivery reports (`POST /callbacks/:channel/contract/reports`) and inbound messages
 * (`POST /callbacks/:channel/contract/inbound`), both answered 204.
 *
 * Invariants: nothing is read before the Standard Webhooks v1 signature over the raw body is verified with the
 * channel's `signingSecret` (the same secrets the relay signs its sends with; several separated by whitespace during a
 * rotation; src/providers' `verifyWebhook`): missing headers or no matching signature → 403, a timestamp more than
 * 5 min from now → 401. A replayed `webhook-id` within the tolerance is answered the same and records nothing twice:
 * the interaction's MessageId is the same (activity or RequestId + response type), so the bus drops the repeat. A
 * report is recorded only against a message of this channel.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { verifyWebhook } from '../../providers/index.js';
import type { Attachment, SendContext } from '../messages.js';
import { activityContext } from './activity.js';
import { channelOf } from './opens.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings } from './settings.js';
import { openContext } from '../../correlation/index.js';
import type { Logger } from '../../log.js';

type Json = Record<string, unknown>;

/** The channel and the parsed, verified body, or the refusal. */
function verified(
  request: FastifyRequest,
  service: CallbackService,
): { channel: Channel; body: Json; webhookId: string } | { refused: RouteResult } {
  const channel = routeChannel(request, service, 'contract');
  const settings = channel === undefined ? undefined : callbackSettings(channel);
  if (channel === undefined || settings === undefined) return { refused: refusal('unknown-channel') };
  const raw = rawBody(request);
  const check = verifyWebhook(raw, request.headers, { secrets: settings.contractSecrets, nowMs: service.now() });
  if (!check.ok) {
    service.log.warn('contract callback refused', { channel: channel.name, reason: check.reason });
    const stale =
      check.reason === 'timestamp-too-old' ||
      check.reason === 'timestamp-too-new' ||
      check.reason === 'invalid-timestamp';
    return { refused: refusal(stale ? 'stale' : 'forbidden') };
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return { refused: refusal('bad-request') };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { refused: refusal('bad-request') };
  return { channel, body: body as Json, webhookId: check.id };
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The context of a report: a `RequestId` that opens as a context token, else the activity row whose id is the
 * `RequestId` (outbound marketing: the relay sends with RequestId = the row id; only an activity of this channel's
 * message table, and on a shared tile one whose record names this channel: another's is ignored), else the one
 * activity whose `msdyncrm_activityid` is the `RequestId` (a message sent before the relay keyed on the row; ignored
 * when several rows share it), else, on a real-time channel, the RequestId itself (→ `msdyn_D365ChannelsNotification`:
 * `Delivered`/`NotDelivered`); undefined when none fits.
 */
async function reportContext(
  service: CallbackService,
  channel: Channel,
  body: Json,
  requestId: string,
): Promise<SendContext | undefined> {
  const opened = openContext(requestId, service.keys);
  if (opened.ok) {
    if (opened.channel !== channel.name) return undefined;
    service.tiles.remember(opened.context);
    return opened.context;
  }
  if (channel.tile !== undefined) {
    const row = await service.directory.activityByRowId(requestId, service.signal());
    // Sent before the relay keyed on the row: the RequestId was msdyncrm_activityid, which only one row may have.
    const legacy = row === undefined ? await service.directory.activitiesByActivityId(requestId, service.signal()) : [];
    const found = row ?? (legacy.length === 1 ? legacy[0] : undefined);
    const context = found === undefined ? undefined : activityContext(found);
    if (context !== undefined) {
      // The activity must be one of this channel's messages, as a token must name this channel: its message table,
      // and on a shared tile the record's channel column (the same check a click makes).
      const of =
        context.entityType === channel.tile.entityType
          ? await channelOf(service, context.entityType, context.entityId, channel.name)
          : undefined;
      if (of?.channel.name !== channel.name) return undefined;
      service.tiles.remember(context);
      return context;
    }
  }
  if (channel.channelDefinitionId !== undefined) {
    const organizationId = text(body['OrganizationId']) ?? channel.callbacks?.organizationId;
    if (organizationId === undefined) return undefined;
    return {
      kind: 'realtime',
      channelDefinitionId: channel.channelDefinitionId,
      requestId,
      from: channel.sender,
      organizationId,
    };
  }
  return undefined;
}

/** `{RequestId, MessageId?, Status, StatusDetails?, OrganizationId?}` with Status `Delivered`, `NotDelivered` or `Read`. */
async function reports(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const v = verified(request, service);
  if ('refused' in v) return v.refused;
  const { channel, body } = v;
  const requestId = text(body['RequestId']);
  const status = text(body['Status']);
  if (requestId === undefined || status === undefined) return refusal('bad-request');
  // The RequestId may be a context token: only a short digest of it is logged, and the activity once it is known.
  const requestRef = createHash('sha256').update(requestId, 'utf8').digest('base64url').slice(0, 12);
  const context = await reportContext(service, channel, body, requestId);
  const log = service.log.child({
    channel: channel.name,
    requestRef,
    status,
    ...(context?.kind === 'marketing' ? { activityRowId: context.activityRowId } : {}),
  });
  if (context === undefined) {
    log.warn('contract report that matches no message of this channel: not recorded');
    return { outcome: 'ignored', status: 204 };
  }
  let responseType: string | undefined;
  if (context.kind === 'realtime')
    responseType = status === 'Delivered' || status === 'NotDelivered' ? status : undefined;
  else if (status === 'Delivered') responseType = channel.callbacks?.deliveredResponseType;
  else if (status === 'NotDelivered') responseType = channel.failureResponseType;
  else if (status === 'Read') responseType = channel.callbacks?.openedResponseType;
  if (responseType === undefined) {
    log.info('contract report with no response type on this channel: not recorded');
    return { outcome: 'ignored', status: 204 };
  }
  const messageId = text(body['MessageId']);
  const details = body['StatusDetails'];
  const failure = status === 'NotDelivered';
  await service.record({
    context,
    responseType,
    channel: channel.name,
    ...(messageId ? { providerMessageId: messageId } : {}),
    ...(failure
      ? {
          detail: {
            message:
              typeof details === 'object' && details !== null ? JSON.stringify(details).slice(0, 500) : 'NotDelivered',
          },
        }
      : {}),
  });
  log.info('contract report recorded', { responseType });
  return { outcome: 'recorded', status: 204 };
}

/**
 * The files of an inbound message: the values of the channel's media parts (`provider.mediaParts`), in that order,
 * each one that is an http(s) URL (a part holding anything else is skipped with a log: the relay fetches files by URL
 * only, src/providers/contract/assumptions.ts). None on a channel without media parts: every part is then text.
 */
export function contractMedia(channel: Channel, parts: Record<string, string> | undefined, log: Logger): Attachment[] {
  const provider = channel.provider;
  const names = provider.type === 'contract' && !('unread' in provider) ? (provider.mediaParts ?? []) : [];
  const media: Attachment[] = [];
  for (const name of names) {
    const value = parts?.[name];
    if (value === undefined || value === '') continue;
    if (/^https?:\/\/\S+$/i.test(value) && URL.canParse(value)) media.push({ url: value });
    else log.warn('contract media part is not an http(s) URL: skipped', { part: name });
  }
  return media;
}

/**
 * `{From, To?, Message: {text, …parts} | "text", MessageId?, OrganizationId?}` (parts are strings): a reply (on a
 * real-time channel: `msdyn_D365ChannelsInbound` with every part, keyed by MessageId, else the webhook-id). On a
 * bridged channel, what is not consumed goes to the conversation: the text from `text`, the files from the channel's
 * media parts ({@link contractMedia}; `msdyn_D365ChannelsInbound`'s `Message` is a `Dictionary<string, string>` of
 * parts, dataverse-contracts.md §5 and §8, so a file can only come as a part holding its URL). A message with media
 * parts and no `text` is a message with only attachments.
 */
async function inbound(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const v = verified(request, service);
  if ('refused' in v) return v.refused;
  const { channel, body, webhookId } = v;
  const from = text(body['From']);
  const message = body['Message'];
  // `Message` as the real-time contract has it: the parts by name (strings), `text` among them; or a bare string.
  const parts =
    typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as Json) : undefined;
  if (parts !== undefined && !Object.values(parts).every((v) => typeof v === 'string')) return refusal('bad-request');
  const log = service.log.child({ channel: channel.name, route: 'contract-inbound' });
  const attachments = contractMedia(channel, parts as Record<string, string> | undefined, log);
  const messageText =
    typeof message === 'string'
      ? message
      : parts !== undefined
        ? (text(parts['text']) ?? (attachments.length > 0 ? '' : undefined))
        : undefined;
  if (from === undefined || messageText === undefined) return refusal('bad-request');
  const to = text(body['To']);
  const organizationId = text(body['OrganizationId']);
  const outcome = await service.reply(
    channel,
    {
      address: from,
      text: messageText,
      replyId: text(body['MessageId']) ?? webhookId,
      ...(parts === undefined ? {} : { parts: parts as Record<string, string> }),
      ...(to ? { to } : {}),
      ...(organizationId ? { organizationId } : {}),
      ...(attachments.length === 0 ? {} : { attachments }),
    },
    log,
  );
  return { outcome, status: 204 };
}

export function registerContract(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'POST', '/callbacks/:channel/contract/reports', 'contract-reports', reports);
  addRoute(app, service, 'POST', '/callbacks/:channel/contract/inbound', 'contract-inbound', inbound);
}
