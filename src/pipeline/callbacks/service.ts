/**
 * What every route of the callbacks service shares: its dependencies (`CallbacksDeps`, validated once), the
 * outcome counter, the refusals (fixed bodies that say nothing about a contact or a secret), recording an
 * interaction through `interactions`, and handling a reply (opt-out, opt-in, keyword; on a channel bridged to
 * Omnichannel, anything else goes to the customer's conversation on `conversations`).
 */
import type { Registry } from 'prom-client';
import { DEFAULT_OPT_IN_MAX_AGE_MS, type Channel, type MessagingRegistry } from '../../channels/index.js';
import { errorMessage, isProviderError } from '../../errors.js';
import { sharedCounter } from '../../health/index.js';
import type { ReadinessCheck } from '../../health/index.js';
import { areaLogger, maskDigits, silentLogger, type Logger } from '../../log.js';
import {
  INBOUND_RESPONSE_TYPE,
  MESSAGE_VERSION,
  conversationMessageId,
  conversationSessionId,
  interactionMessageId,
  type Attachment,
  type ConversationMessage,
  type InteractionMessage,
  type MarketingContext,
  type OutboundMessage,
} from '../messages.js';
import type {
  CallbackDirectory,
  ChannelLookup,
  ConversationSender,
  InteractionSender,
  OutboundSender,
} from '../ports.js';
import type { TwilioMessage } from '../../providers/index.js';
import { findHolders, latestActivity } from './attribution.js';
import { firstWord, matchReply } from './keywords.js';
import { linkAt } from '../../correlation/index.js';
import type { CallbackKeys } from '../../correlation/index.js';
import { delayUnlessAborted } from '../../abort.js';
import { TileCache } from './tiles.js';
import { ReplyCache } from './replies.js';

/** How long an opt-in's Twilio message fetch may take in all (two tries), well inside Twilio's 15 s webhook wait. */
export const OPT_IN_FETCH_BUDGET_MS = 5000;
/** The pause before the fetch's second try. */
const OPT_IN_RETRY_DELAY_MS = 500;
/** Compliance PATCHes run at once for an address several contacts hold. */
const PATCHES_AT_ONCE = 8;

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise's outcome as a value, so that one started early and never awaited rejects nothing unhandled. */
function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** Fetches a message of a Twilio channel's account by its MessageSid (`TwilioProvider.fetchMessage` fits). */
export interface TwilioMessageFetcher {
  /** The message, or undefined when Twilio has none with this sid (404); throws a `ProviderError` otherwise. */
  fetchMessage(sid: string, signal: AbortSignal): Promise<TwilioMessage | undefined>;
}

export interface CallbacksDeps {
  channels: ChannelLookup;
  /** The keys that open context tokens and link codes (`parseCallbackKeys`). */
  keys: CallbackKeys;
  /** Where interactions go (the recorder writes them). */
  interactions: InteractionSender;
  /** Where opt-out/opt-in confirmations go (dispatch sends them). */
  outbound: OutboundSender;
  /** Dataverse: contacts by address, activities, message records, the compliance field. */
  directory: CallbackDirectory;
  /**
   * The Twilio message fetch of a Twilio channel (its account's credentials and base URL): an opt-in reply is applied
   * only when the message fetched by its MessageSid is inbound, from and to the webhook's numbers, starts with the same
   * word and is no older than `callbacks.optInMaxAgeMs`. @defaultValue none: every Twilio opt-in is refused (`unverified`)
   */
  twilioMessages?: (channel: Channel) => TwilioMessageFetcher | undefined;
  /**
   * The channels bridged to Omnichannel (the channels file's `messaging` section): on a relay channel that one of them
   * bridges, a customer message that is not consumed (an opt-out or opt-in word, a keyword recorded for a journey) goes
   * to `conversations`. Requires `conversations`. @defaultValue none: nothing is bridged
   */
  messaging?: Pick<MessagingRegistry, 'byRelayChannel'>;
  /** Where the customer messages of bridged channels go (the conversations stage reads them). Required with `messaging`. */
  conversations?: ConversationSender;
  /** Finds link `index` of a message record's text, as the send path numbered them. @defaultValue links.ts `linkAt` */
  linkAt?: (text: string, index: number) => string | undefined;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Counts requests by route and outcome (`channel_relay_callbacks_received_total`). @defaultValue none */
  registry?: Registry;
  /** Largest request body read; above it 413. @defaultValue 65536 */
  bodyLimitBytes?: number;
  /** Timeout of each Dataverse read/write and queue send made for a request. @defaultValue 10000 */
  callTimeoutMs?: number;
  /**
   * How long a client may take to send a request, headers and body, ms; then the connection is answered 408 and
   * closed, so a client that stops half-way through cannot hold a socket (checked every quarter of it, at most every
   * second). The handling after the body arrived is not limited by it. @defaultValue 10000
   */
  requestTimeoutMs?: number;
  /**
   * The reply cache (replies.ts): recipients kept, and the longest after its send that a message stands for its
   * recipient's keyword replies. `max: 0` or `maxAgeMs: 0`: none, every keyword reply reads.
   * @defaultValue replies.ts `REPLIES_DEFAULTS` (100,000 recipients, 24 h)
   */
  replyCache?: { max?: number; maxAgeMs?: number };
  /** Extra readiness checks for `/readyz` (the relay's). @defaultValue none */
  readiness?: () => ReadinessCheck[];
  /** Clock (ms). @defaultValue Date.now */
  now?: () => number;
}

export const CALLBACKS_DEFAULTS = { bodyLimitBytes: 65_536, callTimeoutMs: 10_000, requestTimeoutMs: 10_000 } as const;

/** The routes, as counted. */
export type CallbackRoute =
  'twilio-status' | 'twilio-inbound' | 'telegram' | 'contract-reports' | 'contract-inbound' | 'link' | 'other';

/** How a request ended, as counted. */
export type CallbackOutcome =
  | 'recorded'
  | 'ignored'
  | 'opted-out'
  | 'opted-in'
  | 'conversation'
  | 'unknown-sender'
  | 'no-activity'
  | 'redirected'
  | 'unauthorized'
  | 'forbidden'
  | 'stale'
  | 'unverified'
  | 'bad-token'
  | 'bad-request'
  | 'unknown-channel'
  | 'not-found'
  | 'method-not-allowed'
  | 'too-large'
  | 'timeout'
  | 'unavailable'
  | 'error';

/** The HTTP status of each refusal and its fixed body: nothing about the contact, the token or the secret. */
export const REFUSALS = {
  'bad-request': { status: 400, error: 'bad request' },
  'bad-token': { status: 400, error: 'bad request' },
  unauthorized: { status: 401, error: 'unauthorized' },
  stale: { status: 401, error: 'unauthorized' },
  forbidden: { status: 403, error: 'forbidden' },
  'unknown-channel': { status: 404, error: 'not found' },
  'not-found': { status: 404, error: 'not found' },
  'method-not-allowed': { status: 405, error: 'method not allowed' },
  'too-large': { status: 413, error: 'payload too large' },
  timeout: { status: 408, error: 'request timeout' },
  unavailable: { status: 503, error: 'unavailable' },
  error: { status: 500, error: 'internal error' },
} as const satisfies Partial<Record<CallbackOutcome, { status: number; error: string }>>;
export type Refusal = keyof typeof REFUSALS;

/** A reply received on a channel. */
export interface InboundReply {
  /** The sender's address as the provider gives it (phone number, chat id). */
  address: string;
  text: string;
  /** The provider's id of the reply (MessageSid, update_id, webhook-id): confirmations are keyed by it. */
  replyId: string;
  /** The address it was written to, when the provider says (real-time inbound). @defaultValue the channel's sender */
  to?: string;
  /** Real-time journeys: every message part by name, when the provider names them (the contract's `Message`). @defaultValue `text` only */
  parts?: Record<string, string>;
  /** Real-time journeys: the OrganizationId the provider gave, if any. @defaultValue the channel's `callbacks.organizationId` */
  organizationId?: string;
  /**
   * A bridged channel: the provider's id of the message, the key of its `conversations` message (MessageSid, Telegram
   * `chat_id:message_id`). @defaultValue `replyId`
   */
  messageId?: string;
  /** Files the customer sent with it (Twilio MMS media, Telegram files): forwarded on a bridged channel. @defaultValue none */
  attachments?: Attachment[];
  /**
   * What proves an opt-in real and recent (opt-outs and keywords never use it): `twilio`, the message fetched by its
   * MessageSid must match the webhook; `sent-at`, the provider's timestamp of the message (Telegram `message.date`).
   * @defaultValue none: an opt-in applies as received (the contract's Standard Webhooks requests are refused after 5 minutes)
   */
  proof?: OptInProof;
}

/** See `InboundReply.proof`. */
export type OptInProof =
  { kind: 'twilio'; sid: string; from: string; to: string } | { kind: 'sent-at'; sentAt: number | undefined };

/** Whether an opt-in may be applied; when not, the outcome and why (logged, never a number). */
type OptInCheck =
  { ok: true } | { ok: false; outcome: 'stale' | 'unverified'; reason: string; ageMs?: number; mismatch?: string[] };

/** What the route modules use. */
export class CallbackService {
  readonly channels: ChannelLookup;
  readonly keys: CallbackKeys;
  readonly directory: CallbackDirectory;
  readonly linkAt: (text: string, index: number) => string | undefined;
  readonly log: Logger;
  readonly bodyLimitBytes: number;
  readonly callTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly now: () => number;
  readonly readiness: () => ReadinessCheck[];
  /** The tiles met so far (link codes name them by digest). */
  readonly tiles: TileCache;
  /** The newest message known sent to each recipient (from verified status callbacks): keyword replies without a read. */
  readonly replies: ReplyCache;
  readonly #interactions: InteractionSender;
  readonly #outbound: OutboundSender;
  readonly #twilioMessages: ((channel: Channel) => TwilioMessageFetcher | undefined) | undefined;
  readonly #messaging: Pick<MessagingRegistry, 'byRelayChannel'> | undefined;
  readonly #conversations: ConversationSender | undefined;
  readonly #received: ReturnType<typeof sharedCounter<'route' | 'outcome'>> | undefined;

  constructor(deps: CallbacksDeps) {
    for (const key of ['channels', 'keys', 'interactions', 'outbound', 'directory'] as const) {
      if (deps[key] === undefined || deps[key] === null)
        throw new TypeError(`createCallbacksServer: '${key}' is required`);
    }
    if (deps.messaging !== undefined && deps.conversations === undefined)
      throw new TypeError("createCallbacksServer: 'conversations' is required with 'messaging' (bridged channels)");
    const bodyLimitBytes = deps.bodyLimitBytes ?? CALLBACKS_DEFAULTS.bodyLimitBytes;
    if (!Number.isInteger(bodyLimitBytes) || bodyLimitBytes < 1)
      throw new TypeError(
        `createCallbacksServer: bodyLimitBytes must be a positive integer, found ${String(deps.bodyLimitBytes)}`,
      );
    const callTimeoutMs = deps.callTimeoutMs ?? CALLBACKS_DEFAULTS.callTimeoutMs;
    if (!(callTimeoutMs > 0))
      throw new TypeError(`createCallbacksServer: callTimeoutMs must be > 0, found ${String(deps.callTimeoutMs)}`);
    const requestTimeoutMs = deps.requestTimeoutMs ?? CALLBACKS_DEFAULTS.requestTimeoutMs;
    if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1)
      throw new TypeError(
        `createCallbacksServer: requestTimeoutMs must be a positive integer, found ${String(deps.requestTimeoutMs)}`,
      );
    this.channels = deps.channels;
    this.keys = deps.keys;
    this.directory = deps.directory;
    this.linkAt = deps.linkAt ?? linkAt;
    this.log = areaLogger(deps.log ?? silentLogger(), 'callbacks');
    this.bodyLimitBytes = bodyLimitBytes;
    this.callTimeoutMs = callTimeoutMs;
    this.requestTimeoutMs = requestTimeoutMs;
    this.now = deps.now ?? Date.now;
    this.readiness = deps.readiness ?? (() => []);
    this.tiles = new TileCache({ now: deps.now });
    this.replies = new ReplyCache({ ...deps.replyCache, now: deps.now });
    this.#interactions = deps.interactions;
    this.#outbound = deps.outbound;
    this.#twilioMessages = deps.twilioMessages;
    this.#messaging = deps.messaging;
    this.#conversations = deps.conversations;
    this.#received = deps.registry
      ? sharedCounter(
          deps.registry,
          'channel_relay_callbacks_received_total',
          'Callback requests received, by route and outcome.',
          ['route', 'outcome'],
        )
      : undefined;
  }

  count(route: CallbackRoute, outcome: CallbackOutcome): void {
    this.#received?.inc({ route, outcome });
  }

  /** A signal that ends after `callTimeoutMs`. */
  signal(): AbortSignal {
    return AbortSignal.timeout(this.callTimeoutMs);
  }

  /**
   * Sends one interaction to `interactions` with the MessageId `interactionMessageId` (activity + response type
   * (+ keyword)): a repeat within the bus's duplicate-detection window is dropped by the bus.
   */
  async record(message: Omit<InteractionMessage, 'v' | 'occurredAt'> & { occurredAt?: number }): Promise<void> {
    const body: InteractionMessage = { v: MESSAGE_VERSION, occurredAt: this.now(), ...message };
    await this.#interactions.send([{ body, messageId: interactionMessageId(body) }], this.signal());
  }

  /**
   * A reply: opt-out or opt-in (the compliance field set or cleared on EVERY contact holding the sender's address, one
   * confirmation through `outbound`), a keyword (the tile's custom response type with the TriggerKeyword, on the
   * newest message this process knows was sent to the address, from the reply cache, without a read; else read: the
   * contact's most recent activity on the channel, only when exactly one contact holds the address), or nothing.
   * An unknown sender (and a keyword from an address several contacts hold) is acknowledged and nothing is recorded.
   * On Telegram a text starting with `/` is a bot command (`/start` when a chat is opened): ignored unless the
   * channel's words list it with its slash.
   *
   * An opt-out always applies (a replayed STOP only opts out again). An opt-in applies only when `reply.proof` shows
   * the reply real and recent (`verifyOptIn`); otherwise nothing changes, no confirmation is sent, and the outcome is
   * `stale` (older than `callbacks.optInMaxAgeMs`) or `unverified` (including a proof that could not be checked within
   * {@link OPT_IN_FETCH_BUDGET_MS}).
   *
   * On a channel bridged to Omnichannel (`messaging`), a message that is not consumed goes to the customer's
   * conversation ({@link converse}, outcome `conversation`): consumed are the opt-out words (whatever became of them:
   * a STOP never reaches an agent), an opt-in word from an address an opted-out contact holds, and a keyword recorded
   * for a journey; free text, an opt-in word with nothing to opt back in (no contact, or none opted out: `YES` is one
   * of the default opt-in words, and the customer's answer to an agent), a keyword that records nothing (unknown
   * sender, no activity, no custom response type) and a message with only attachments are forwarded. A bot command the channel does not list stays ignored (Telegram sends `/start` when a chat opens). On a
   * real-time journeys channel every message is recorded inbound and, when bridged, forwarded too: the relay cannot
   * tell what the journey makes of it.
   */
  async reply(channel: Channel, reply: InboundReply, log: Logger): Promise<CallbackOutcome> {
    const outcome = await this.#reply(channel, reply, log);
    if (outcome === 'conversation') return this.converse(channel, reply, log);
    return outcome;
  }

  /** `reply` up to the decision: `conversation` when the message is to be forwarded (a bridged channel). */
  async #reply(channel: Channel, reply: InboundReply, log: Logger): Promise<CallbackOutcome> {
    const callbacks = channel.callbacks;
    if (callbacks === undefined) return 'ignored';
    const bridged = this.#messaging?.byRelayChannel(channel.name) !== undefined;
    /** What a message that is not consumed becomes: forwarded when bridged, else `outcome`. */
    const unconsumed = (outcome: CallbackOutcome): CallbackOutcome => (bridged ? 'conversation' : outcome);
    if (channel.tile === undefined && channel.channelDefinitionId !== undefined)
      return unconsumed(await this.realtimeInbound(channel, reply, log));
    const intent = matchReply(reply.text, callbacks, { botCommands: channel.provider.type === 'telegram' });
    const masked = maskDigits(reply.address);
    if (intent.kind === 'command') {
      log.info('bot command the channel does not list: ignored', { sender: masked, command: intent.word.slice(0, 40) });
      return 'ignored';
    }
    if (intent.kind === 'none') {
      if (bridged) return 'conversation';
      log.info('reply matches no keyword: not recorded', { sender: masked });
      return 'ignored';
    }
    const tile = channel.tile;
    const compliance = tile?.complianceField;
    if (intent.kind === 'keyword') {
      const known = this.#lastSent(channel, reply.address);
      if (known !== undefined) {
        await this.record({
          context: known.context,
          responseType: known.responseType,
          triggerKeyword: intent.keyword,
          channel: channel.name,
          providerMessageId: reply.replyId,
        });
        log.info('keyword reply recorded against the newest message known sent to its sender (no read)', {
          contactId: known.context.contactId,
          activityRowId: known.context.activityRowId,
          keyword: intent.keyword,
        });
        return 'recorded';
      }
    }
    // An opt-in's proof is checked while the holders are looked up: the provider waits for the answer (Twilio 15 s).
    const optInCheck =
      intent.kind === 'opt-in' && compliance !== undefined
        ? settle(this.verifyOptIn(channel, reply, intent.word))
        : undefined;
    const holders = await findHolders(
      this.directory,
      channel,
      reply.address,
      compliance === undefined ? [] : [compliance],
      this.signal(),
    );
    if (holders.length === 0) {
      log.info('reply from an address no contact holds: not recorded', { sender: masked, intent: intent.kind });
      return intent.kind === 'opt-out' ? 'unknown-sender' : unconsumed('unknown-sender');
    }
    if (intent.kind === 'opt-out' || intent.kind === 'opt-in') {
      const optOut = intent.kind === 'opt-out';
      const contactIds = holders.map((c) => c.contactId);
      if (compliance === undefined) {
        log.warn('opt-out/opt-in word on a channel without a tile compliance field: nothing changed', {
          contacts: contactIds.length,
          word: intent.word,
        });
        return optOut ? 'ignored' : unconsumed('ignored');
      }
      if (!optOut && bridged && holders.every((c) => c.row[compliance] !== true)) {
        // Nothing to opt back in: a word like YES is the customer's answer to an agent.
        log.info('opt-in word from an address no opted-out contact holds: forwarded to the conversation', {
          contacts: contactIds.length,
          word: intent.word,
        });
        return 'conversation';
      }
      if (!optOut) {
        const check = await (optInCheck as Promise<Settled<OptInCheck>>).then((r) =>
          r.ok ? r.value : Promise.reject(r.error),
        );
        if (!check.ok) {
          const { outcome, ...why } = check;
          log.info('opt-in refused: not proven real and recent, consent unchanged', {
            ...why,
            replyId: reply.replyId.slice(0, 64),
            contacts: contactIds.length,
            word: intent.word,
          });
          return outcome;
        }
      }
      // Every contact holding the address: the person who wrote STOP cannot be told apart from the others sharing the
      // number, and a message to any of them reaches that person. A contact whose field the read (made for this
      // reply) found already set to the value is not written again (a repeated STOP costs its read only); several
      // PATCHes run at once so that a shared number stays within the provider's wait.
      const changing = holders.filter((c) => c.row[compliance] !== optOut).map((c) => c.contactId);
      for (let i = 0; i < changing.length; i += PATCHES_AT_ONCE) {
        await Promise.all(
          changing
            .slice(i, i + PATCHES_AT_ONCE)
            .map((contactId) => this.directory.updateContact(contactId, { [compliance]: optOut }, this.signal())),
        );
      }
      const text = optOut ? callbacks.optOutConfirmation : callbacks.optInConfirmation;
      if (text !== '') await this.confirm(channel, reply, text, optOut ? 'opt-out' : 'opt-in');
      log.info(optOut ? 'contact opted out' : 'contact opted in', {
        contactIds: contactIds.slice(0, 20),
        contacts: contactIds.length,
        changed: changing.length,
        word: intent.word,
        field: compliance,
      });
      return optOut ? 'opted-out' : 'opted-in';
    }
    if (holders.length > 1) {
      log.info('keyword from an address several contacts hold: not recorded', {
        sender: masked,
        contacts: holders.length,
        keyword: intent.keyword,
      });
      return unconsumed('unknown-sender');
    }
    const contactId = (holders[0] as (typeof holders)[number]).contactId;
    const responseType = tile?.customResponseType;
    if (tile === undefined || responseType === undefined) {
      log.info('keyword reply on a channel whose tile has no custom response type: not recorded', {
        contactId,
        keyword: intent.keyword,
      });
      return unconsumed('ignored');
    }
    const context = await latestActivity(this.directory, channel, contactId, this.signal());
    if (context === undefined) {
      log.info('keyword reply from a contact with no activity on the channel: not recorded', {
        contactId,
        keyword: intent.keyword,
      });
      return unconsumed('no-activity');
    }
    this.tiles.remember(context);
    await this.record({
      context,
      responseType,
      triggerKeyword: intent.keyword,
      channel: channel.name,
      providerMessageId: reply.replyId,
    });
    log.info('keyword reply recorded', { contactId, activityRowId: context.activityRowId, keyword: intent.keyword });
    return 'recorded';
  }

  /**
   * The context a keyword reply from `address` is recorded against without a read: the newest message this process
   * knows was sent to it on the channel, sent within the reply cache's age (replies.ts says when that is what a read
   * would find), when the channel's tile has a custom response type, the message's tile is known here (not ambiguous)
   * and of the channel's message table. Undefined: the reply reads as before.
   */
  #lastSent(channel: Channel, address: string): { context: MarketingContext; responseType: string } | undefined {
    const tile = channel.tile;
    const responseType = tile?.customResponseType;
    if (tile === undefined || responseType === undefined) return undefined;
    const sent = this.replies.newest(channel.name, address);
    const context = sent && this.tiles.context(sent.tile, sent.activityRowId, sent.contactId);
    return context?.entityType === tile.entityType ? { context, responseType } : undefined;
  }

  /**
   * Whether an opt-in reply is real and recent enough to apply (see `InboundReply.proof`). The Twilio message fetch
   * gets {@link OPT_IN_FETCH_BUDGET_MS} and one more try (after a retryable failure or a 404: Twilio may not serve a
   * message it has just created); a proof that cannot be checked within that is `unverified`: the opt-in is not
   * applied (the safe direction: the contact stays opted out and can send START again). Twilio does not retry a
   * webhook answered with an error, so a 503 would lose the reply just the same.
   */
  async verifyOptIn(channel: Channel, reply: InboundReply, word: string): Promise<OptInCheck> {
    const proof = reply.proof;
    if (proof === undefined) return { ok: true };
    const maxAgeMs = channel.callbacks?.optInMaxAgeMs ?? DEFAULT_OPT_IN_MAX_AGE_MS;
    const fresh = (sentAt: number): OptInCheck => {
      const ageMs = Math.round(this.now() - sentAt);
      return ageMs > maxAgeMs
        ? { ok: false, outcome: 'stale', reason: 'older than optInMaxAgeMs', ageMs }
        : { ok: true };
    };
    if (proof.kind === 'sent-at') {
      return proof.sentAt === undefined || !Number.isFinite(proof.sentAt)
        ? { ok: false, outcome: 'unverified', reason: 'no timestamp' }
        : fresh(proof.sentAt);
    }
    const fetcher = this.#twilioMessages?.(channel);
    if (fetcher === undefined)
      return { ok: false, outcome: 'unverified', reason: 'no Twilio message fetch for this channel' };
    const budget = AbortSignal.timeout(OPT_IN_FETCH_BUDGET_MS);
    let message: TwilioMessage | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        message = await fetcher.fetchMessage(proof.sid, budget);
        if (message !== undefined) break;
        if (attempt === 2) return { ok: false, outcome: 'unverified', reason: 'no such message at Twilio' };
      } catch (err) {
        // A refusal that a retry does not change (credentials, a 4xx, an unreadable 2xx, a malformed sid): refused now.
        if (!isProviderError(err) || !err.retryable)
          return {
            ok: false,
            outcome: 'unverified',
            reason: `message fetch failed: ${isProviderError(err) ? err.code : errorMessage(err)}`,
          };
        if (attempt === 2 || budget.aborted)
          return {
            ok: false,
            outcome: 'unverified',
            reason: `message fetch failed twice or ran out of time: ${err.code}`,
          };
      }
      await delayUnlessAborted(OPT_IN_RETRY_DELAY_MS, budget);
      if (budget.aborted)
        return {
          ok: false,
          outcome: 'unverified',
          reason: `message fetch ran out of time (${OPT_IN_FETCH_BUDGET_MS} ms)`,
        };
    }
    const mismatch: string[] = [];
    if (message.sid !== proof.sid) mismatch.push('sid');
    if (message.direction !== 'inbound') mismatch.push('direction');
    if (message.from !== proof.from) mismatch.push('from');
    if (message.to !== proof.to) mismatch.push('to');
    if (firstWord(message.body) !== word) mismatch.push('body');
    if (mismatch.length > 0)
      return { ok: false, outcome: 'unverified', reason: 'the fetched message does not match the webhook', mismatch };
    return fresh(message.dateCreated);
  }

  /**
   * A reply on a real-time journeys channel (no tile): every message, opt-out words included, goes to
   * `msdyn_D365ChannelsInbound` (Customer Insights handles keywords and consent there), keyed by the provider's id.
   */
  async realtimeInbound(channel: Channel, reply: InboundReply, log: Logger): Promise<CallbackOutcome> {
    const organizationId = reply.organizationId ?? channel.callbacks?.organizationId;
    if (channel.channelDefinitionId === undefined || organizationId === undefined) {
      log.warn('real-time inbound message without an OrganizationId (set callbacks.organizationId): not recorded');
      return 'ignored';
    }
    await this.record({
      context: {
        kind: 'realtime',
        channelDefinitionId: channel.channelDefinitionId,
        requestId: reply.replyId,
        from: reply.address,
        organizationId,
      },
      responseType: INBOUND_RESPONSE_TYPE,
      channel: channel.name,
      providerMessageId: reply.replyId,
      inbound: {
        to: reply.to ?? channel.sender,
        text: reply.text,
        ...(reply.parts === undefined ? {} : { parts: reply.parts }),
      },
    });
    log.info('real-time inbound message recorded', { requestId: reply.replyId });
    return 'recorded';
  }

  /**
   * Forwards a customer message of a bridged channel to `conversations`: a ConversationMessage `customer` with its
   * attachments, MessageId `conversationMessageId` (the provider's id: a provider's retried webhook is dropped by the
   * bus's duplicate detection) and SessionId `conversationSessionId` (one session per customer: one replica owns the
   * conversation, in order). A message with neither text nor attachments is ignored.
   */
  async converse(channel: Channel, reply: InboundReply, log: Logger): Promise<CallbackOutcome> {
    const sender = this.#conversations;
    const attachments = reply.attachments ?? [];
    if (sender === undefined) return 'ignored';
    if (reply.text.trim() === '' && attachments.length === 0) {
      log.info('empty customer message on a bridged channel: nothing to forward', {
        sender: maskDigits(reply.address),
      });
      return 'ignored';
    }
    const messageId = reply.messageId ?? reply.replyId;
    const body: ConversationMessage = {
      v: MESSAGE_VERSION,
      kind: 'customer',
      channel: channel.name,
      customer: reply.address,
      messageId,
      text: reply.text,
      ...(attachments.length === 0 ? {} : { attachments }),
      receivedAt: this.now(),
    };
    await sender.send(
      [
        {
          body,
          messageId: conversationMessageId(channel.name, messageId),
          sessionId: conversationSessionId(channel.name, reply.address),
        },
      ],
      this.signal(),
    );
    log.info('customer message forwarded to its conversation', {
      sender: maskDigits(reply.address),
      attachments: attachments.length,
    });
    return 'conversation';
  }

  /** The automated confirmation, keyed by the reply's id so that a repeated reply sends it once (duplicate detection). */
  async confirm(channel: Channel, reply: InboundReply, text: string, what: 'opt-out' | 'opt-in'): Promise<void> {
    const key = `${channel.name}:${what}:${reply.replyId}`.slice(0, 128);
    const body: OutboundMessage = {
      v: MESSAGE_VERSION,
      key,
      channel: channel.name,
      to: reply.address,
      text,
      purpose: 'confirmation',
      acceptedAt: this.now(),
    };
    await this.#outbound.send([{ body, messageId: key, sessionId: channel.senderKey }], this.signal());
  }

  /**
   * Logs a failure of a request's work. The logger masks phone numbers; a chat id (a bare number, e.g. inside a
   * Dataverse error that quotes the filter) is masked here too.
   */
  failed(log: Logger, what: string, err: unknown): void {
    log.error(`${what} failed`, {
      error: errorMessage(err).replace(/(?<![\w-])\d{6,}(?![\w-])/g, (m) => maskDigits(m)),
    });
  }
}
