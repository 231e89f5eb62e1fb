/**
 * What travels between the stages: the OutboundMessage on `outbound` (intake → dispatch) and the InteractionMessage
 * on `interactions` (dispatch, callbacks → recorder). Both are JSON bodies with a version field; the parse functions
 * check every field and throw an `EventError` that names the field, so a stage can dead-letter a body it cannot read
 * with a reason a person understands.
 */
import type { MarketingContext } from '../correlation/index.js';
import { createHash } from 'node:crypto';
import { errorMessage, EventError } from '../errors.js';

/** Where an outbound-marketing activity came from (correlation seals it in callback tokens). */
export type { MarketingContext };

/** The body version written by this code. A reader refuses versions it does not know. */
export const MESSAGE_VERSION = 1;

/** Where a real-time journeys send came from: the outbound Custom API payload's identifiers. */
export interface RealtimeContext {
  kind: 'realtime';
  channelDefinitionId: string;
  /** `RequestId` of the payload: the idempotency key and the notification's RequestId. */
  requestId: string;
  /** The sender as the payload named it (`From`). */
  from: string;
  /** `OrganizationId` of the RemoteExecutionContext (needed by msdyn_D365ChannelsNotification). */
  organizationId: string;
  /** `MarketingAppContext.CustomerJourneyId`, when given. */
  journeyId?: string;
}

export type SendContext = MarketingContext | RealtimeContext;

/** One message to send through one channel: the body of a message on `outbound`. */
export interface OutboundMessage {
  v: typeof MESSAGE_VERSION;
  /**
   * The idempotency key: the activity row's id (`msdyncrm_customerjourneycustomchannelactivityid`) or the real-time
   * `RequestId`. Also the Service Bus MessageId and the provider's idempotency key (the contract's `RequestId`).
   */
  key: string;
  /** The channel's name in channels.json. */
  channel: string;
  /** The recipient's address (phone number, chat id …) as the provider expects it. */
  to: string;
  /** The rendered text. */
  text: string;
  /** Real-time journeys: every message part by name (`text` included). */
  parts?: Record<string, string>;
  /**
   * Why this message is sent: a journey's (its outcome is recorded), an automated reply (opt-out confirmation: no
   * activity to record), or an agent's or bot's message in an Omnichannel conversation (`conversation`: nothing is
   * recorded in Dataverse; Omnichannel keeps the transcript).
   */
  purpose: 'journey' | 'confirmation' | 'conversation';
  /** Files sent with the text (an agent's attachments: MMS media, Telegram documents, contract attachments). */
  attachments?: Attachment[];
  /** `conversation` messages: the Direct Line conversation and activity the message comes from. */
  conversation?: { account: string; conversationId: string; activityId: string };
  context?: SendContext;
  /** When intake accepted the event (ms since the epoch): end-to-end latency. */
  acceptedAt: number;
}

/** A file sent or received with a message, by URL (a provider's media URL, a Direct Line attachment's contentUrl). */
export interface Attachment {
  url: string;
  /** MIME type, when known. */
  contentType?: string;
  /** File name, when known. */
  name?: string;
}

/**
 * A message on `conversations` (sessions: one per customer of a bridged channel, `conversationSessionId`):
 * - `customer`: what a customer wrote on a channel bridged to Omnichannel (from the callbacks service), to be posted
 *   to the customer's Direct Line conversation; MessageId `conversationMessageId` (the provider's id: a provider's
 *   retried webhook is dropped by duplicate detection);
 * - `poll`: a scheduled wake-up of the customer's session, to read the agents' replies from the conversation's
 *   watermark (a durable timer: it survives a crash and any replica may take it).
 */
export type ConversationMessage =
  | {
      v: typeof MESSAGE_VERSION;
      kind: 'customer';
      /** The relay channel (channels.json) the customer wrote on. */
      channel: string;
      /** The customer's address on that channel (phone number, chat id …). */
      customer: string;
      /** The provider's id of the message (MessageSid, Telegram `chat_id:message_id`, webhook-id). */
      messageId: string;
      text: string;
      attachments?: Attachment[];
      /** When the callbacks service received it (ms since the epoch). */
      receivedAt: number;
    }
  | {
      v: typeof MESSAGE_VERSION;
      kind: 'poll';
      channel: string;
      customer: string;
      /** When it was scheduled for (ms since the epoch). */
      dueAt: number;
    };

/** Service Bus ids are at most 128 characters: longer ones are shortened to a prefix and a hash of the whole. */
function boundedId(id: string): string {
  if (id.length <= 128) return id;
  return `${id.slice(0, 84)}#${createHash('sha256').update(id).digest('base64url')}`;
}

/** The session of a customer's conversation on `conversations`: one replica at a time owns it, in order. */
export function conversationSessionId(channel: string, customer: string): string {
  return boundedId(`${channel}:${customer}`);
}

/** The MessageId of a customer message on `conversations`: the provider's id, so a retried webhook is dropped. */
export function conversationMessageId(channel: string, messageId: string): string {
  return boundedId(`${channel}:${messageId}`);
}

/** The key (MessageId on `outbound`) of an agent's message: the Direct Line activity, so it is sent once. */
export function conversationOutboundKey(conversationId: string, activityId: string): string {
  return boundedId(`dl:${conversationId}:${activityId}`);
}

/**
 * The response type of a real-time journeys inbound message (a reply through a real-time channel): written with
 * `msdyn_D365ChannelsInbound`, not as a notification. Such an interaction has a `realtime` context whose `requestId`
 * is the provider's id of the inbound message (its idempotency key) and whose `from` is who wrote (the contact's
 * address), and an `inbound` part with the text and the address it was written to.
 */
export const INBOUND_RESPONSE_TYPE = 'Inbound';

/** An outcome to write to Dataverse: the body of a message on `interactions`. */
export interface InteractionMessage {
  v: typeof MESSAGE_VERSION;
  context: SendContext;
  /**
   * Marketing: a `ResponseType` id of the channel's tile (`sent`, `delivered`, `failed`, `keyword` …).
   * Real-time: the status written to msdyn_D365ChannelsNotification (`Sent`, `NotSent`, `Delivered`, `NotDelivered`).
   */
  responseType: string;
  /** Required when the tile's response type is `custom="True"`. */
  triggerKeyword?: string;
  /** The channel the message went through. */
  channel: string;
  /** The provider's message id (Twilio SID, Telegram message_id …), when there is one. */
  providerMessageId?: string;
  /** What the provider said, for a failure outcome: code and message, never secrets or the recipient. */
  detail?: { code?: string | number; message: string };
  /** When it happened (ms since the epoch). */
  occurredAt: number;
  /** Required with responseType {@link INBOUND_RESPONSE_TYPE} (and only then): the inbound message. */
  inbound?: {
    /** The address it was written to (the channel's sender). */
    to: string;
    /** The message text as received (the `text` part). */
    text: string;
    /**
     * Every message part by name, as the provider gave them (`msdyn_D365ChannelsInbound`'s `Message` is a
     * `Dictionary<string, string>` of parts); `text` above wins over a `text` here. @defaultValue `{ text }` only
     */
    parts?: Record<string, string>;
  };
}

/**
 * The Service Bus MessageId of an interaction: the activity row id (or real-time RequestId) + response type
 * (+ keyword), so repeats are dropped by the bus.
 */
export function interactionMessageId(
  m: Pick<InteractionMessage, 'context' | 'responseType' | 'triggerKeyword'>,
): string {
  const key = m.context.kind === 'marketing' ? m.context.activityRowId : m.context.requestId;
  const id = `${key}:${m.responseType}${m.triggerKeyword === undefined ? '' : `:${m.triggerKeyword.toLowerCase()}`}`;
  // Service Bus message ids are at most 128 characters.
  return id.length <= 128 ? id : id.slice(0, 128);
}

type Json = Record<string, unknown>;

function fail(what: string, path: string, expected: string, found: unknown): never {
  const shown = found === undefined ? 'nothing' : (JSON.stringify(found)?.slice(0, 80) ?? String(found));
  throw new EventError('EventMissingAttribute', `${what}: '${path}' must be ${expected}, found ${shown}`);
}

function object(what: string, value: unknown): Json {
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    const text = Buffer.isBuffer(value) ? value.toString('utf8') : value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new EventError('EventUndecodable', `${what}: the body is not JSON (${errorMessage(err)})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EventError(
      'EventUndecodable',
      `${what}: the body must be a JSON object, found ${Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value as Json;
}

function str(what: string, o: Json, key: string, path = key): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') fail(what, path, 'a non-empty string', v);
  return v;
}

function optStr(what: string, o: Json, key: string, path = key): string | undefined {
  return o[key] === undefined ? undefined : str(what, o, key, path);
}

function num(what: string, o: Json, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(what, key, 'a number', v);
  return v;
}

function version(what: string, o: Json): typeof MESSAGE_VERSION {
  if (o['v'] !== MESSAGE_VERSION) fail(what, 'v', `${MESSAGE_VERSION} (the body version this relay reads)`, o['v']);
  return MESSAGE_VERSION;
}

function parseContext(what: string, value: unknown): SendContext {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(what, 'context', 'an object', value);
  const c = value as Json;
  if (c['kind'] === 'marketing') {
    return {
      kind: 'marketing',
      activityId: str(what, c, 'activityId', 'context.activityId'),
      activityRowId: str(what, c, 'activityRowId', 'context.activityRowId'),
      contactId: str(what, c, 'contactId', 'context.contactId'),
      journeyId: str(what, c, 'journeyId', 'context.journeyId'),
      iterationId: str(what, c, 'iterationId', 'context.iterationId'),
      entityType: str(what, c, 'entityType', 'context.entityType'),
      entityId: str(what, c, 'entityId', 'context.entityId'),
    };
  }
  if (c['kind'] === 'realtime') {
    const journeyId = optStr(what, c, 'journeyId', 'context.journeyId');
    return {
      kind: 'realtime',
      channelDefinitionId: str(what, c, 'channelDefinitionId', 'context.channelDefinitionId'),
      requestId: str(what, c, 'requestId', 'context.requestId'),
      from: str(what, c, 'from', 'context.from'),
      organizationId: str(what, c, 'organizationId', 'context.organizationId'),
      ...(journeyId === undefined ? {} : { journeyId }),
    };
  }
  return fail(what, 'context.kind', "'marketing' or 'realtime'", c['kind']);
}

function parts(what: string, value: unknown): Record<string, string> {
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    !Object.values(value).every((v) => typeof v === 'string')
  ) {
    fail(what, 'parts', 'an object of strings', value);
  }
  return value as Record<string, string>;
}

function attachments(what: string, value: unknown): Attachment[] {
  if (!Array.isArray(value)) fail(what, 'attachments', 'an array', value);
  return value.map((a, i) => {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) fail(what, `attachments[${i}]`, 'an object', a);
    const o = a as Json;
    const url = str(what, o, 'url', `attachments[${i}].url`);
    const contentType = optStr(what, o, 'contentType', `attachments[${i}].contentType`);
    const name = optStr(what, o, 'name', `attachments[${i}].name`);
    return { url, ...(contentType === undefined ? {} : { contentType }), ...(name === undefined ? {} : { name }) };
  });
}

/** Reads the body of a `conversations` message; throws `EventError` naming the field. */
export function parseConversationMessage(body: unknown): ConversationMessage {
  const what = 'conversation message';
  const o = object(what, body);
  const v = version(what, o);
  const channel = str(what, o, 'channel');
  const customer = str(what, o, 'customer');
  if (o['kind'] === 'poll') return { v, kind: 'poll', channel, customer, dueAt: num(what, o, 'dueAt') };
  if (o['kind'] !== 'customer') fail(what, 'kind', "'customer' or 'poll'", o['kind']);
  const message: ConversationMessage = {
    v,
    kind: 'customer',
    channel,
    customer,
    messageId: str(what, o, 'messageId'),
    text: typeof o['text'] === 'string' ? o['text'] : fail(what, 'text', 'a string', o['text']),
    receivedAt: num(what, o, 'receivedAt'),
  };
  if (o['attachments'] !== undefined) message.attachments = attachments(what, o['attachments']);
  return message;
}

/** Reads the body of an `outbound` message (object, JSON string or Buffer); throws `EventError` naming the field. */
export function parseOutboundMessage(body: unknown): OutboundMessage {
  const what = 'outbound message';
  const o = object(what, body);
  const purpose = o['purpose'];
  if (purpose !== 'journey' && purpose !== 'confirmation' && purpose !== 'conversation')
    fail(what, 'purpose', "'journey', 'confirmation' or 'conversation'", purpose);
  const message: OutboundMessage = {
    v: version(what, o),
    key: str(what, o, 'key'),
    channel: str(what, o, 'channel'),
    to: str(what, o, 'to'),
    text: typeof o['text'] === 'string' ? o['text'] : fail(what, 'text', 'a string', o['text']),
    purpose,
    acceptedAt: num(what, o, 'acceptedAt'),
  };
  if (o['parts'] !== undefined) message.parts = parts(what, o['parts']);
  if (o['attachments'] !== undefined) message.attachments = attachments(what, o['attachments']);
  if (o['conversation'] !== undefined) {
    const c = o['conversation'];
    if (typeof c !== 'object' || c === null || Array.isArray(c)) fail(what, 'conversation', 'an object', c);
    const conv = c as Json;
    message.conversation = {
      account: str(what, conv, 'account', 'conversation.account'),
      conversationId: str(what, conv, 'conversationId', 'conversation.conversationId'),
      activityId: str(what, conv, 'activityId', 'conversation.activityId'),
    };
  } else if (purpose === 'conversation') {
    fail(what, 'conversation', 'the Direct Line conversation and activity of an agent message', undefined);
  }
  if (o['context'] !== undefined) message.context = parseContext(what, o['context']);
  else if (purpose === 'journey')
    fail(what, 'context', 'the journey context (a journey message is recorded)', undefined);
  return message;
}

/** Reads the body of an `interactions` message; throws `EventError` naming the field. */
export function parseInteractionMessage(body: unknown): InteractionMessage {
  const what = 'interaction message';
  const o = object(what, body);
  const message: InteractionMessage = {
    v: version(what, o),
    context: parseContext(what, o['context']),
    responseType: str(what, o, 'responseType'),
    channel: str(what, o, 'channel'),
    occurredAt: num(what, o, 'occurredAt'),
  };
  const keyword = optStr(what, o, 'triggerKeyword');
  if (keyword !== undefined) message.triggerKeyword = keyword;
  const providerMessageId = optStr(what, o, 'providerMessageId');
  if (providerMessageId !== undefined) message.providerMessageId = providerMessageId;
  const detail = o['detail'];
  if (detail !== undefined) {
    if (typeof detail !== 'object' || detail === null || typeof (detail as Json)['message'] !== 'string')
      fail(what, 'detail', '{ code?, message }', detail);
    const d = detail as Json;
    const code = d['code'];
    if (code !== undefined && typeof code !== 'string' && typeof code !== 'number')
      fail(what, 'detail.code', 'a string or a number', code);
    message.detail = { message: d['message'] as string, ...(code === undefined ? {} : { code }) };
  }
  const inbound = o['inbound'];
  if (message.responseType === INBOUND_RESPONSE_TYPE) {
    if (message.context.kind !== 'realtime')
      fail(
        what,
        'context.kind',
        `'realtime' (an '${INBOUND_RESPONSE_TYPE}' interaction is a real-time journeys inbound message)`,
        message.context.kind,
      );
    if (typeof inbound !== 'object' || inbound === null || Array.isArray(inbound))
      fail(what, 'inbound', '{ to, text } (required with responseType Inbound)', inbound);
    const i = inbound as Json;
    const text = i['text'];
    if (typeof text !== 'string') fail(what, 'inbound.text', 'a string', text);
    message.inbound = { to: str(what, i, 'to', 'inbound.to'), text };
    if (i['parts'] !== undefined) {
      const p = i['parts'];
      if (
        typeof p !== 'object' ||
        p === null ||
        Array.isArray(p) ||
        !Object.values(p).every((v) => typeof v === 'string')
      )
        fail(what, 'inbound.parts', 'an object of strings', p);
      message.inbound.parts = p as Record<string, string>;
    }
  } else if (inbound !== undefined) {
    fail(what, 'inbound', `nothing unless responseType is '${INBOUND_RESPONSE_TYPE}'`, inbound);
  }
  return message;
}
