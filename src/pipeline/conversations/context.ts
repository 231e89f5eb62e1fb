/**
 * The conversations stage's options and what its sessions share, made from them once: the validated settings, the
 * ports, the counts and metrics, the Direct Line accounts' health.
 */
import type { Counter, Registry } from 'prom-client';
import type { Channel, MessagingRegistry } from '../../channels/index.js';
import { METRIC_PREFIX, sharedCounter } from '../../health/index.js';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { functionOption, intOption } from '../../options.js';
import { resolveRetry, type ResolvedRetry, type RetryOptions } from '../../retry.js';
import type { ChannelLookup, ConversationSender, DirectLinePort, MediaFetcher, OutboundSender } from '../ports.js';

/** Conversations a process remembers having held (ids of at most 128 characters: a few megabytes at most). */
const KNOWN_KEPT = 20_000;

export interface ConversationsOptions {
  /** The relay channels (the provider, sender key and address of a bridged channel). */
  channels: ChannelLookup;
  /** The channels file's `messaging` section: which relay channels are bridged, to which account. */
  messaging: MessagingRegistry;
  /** The Direct Line client of an account (by name); called once per account, the result is kept. */
  directLine: (account: string) => DirectLinePort;
  /** The fetcher of a relay channel's customer attachments; undefined when the channel has none. */
  media: (channel: Channel) => MediaFetcher | undefined;
  /** `conversations` itself: the scheduled polls. */
  conversations: ConversationSender;
  /** `outbound`: the agents' messages and the attachment refusals, through dispatch. */
  outbound: OutboundSender;
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Counters are registered here when given. */
  registry?: Registry;
  /** The wait before a poll while a conversation is active, ms. @defaultValue 1000 */
  pollIntervalMs?: number;
  /** The longest wait between two polls (it doubles after each poll that brought nothing), ms. @defaultValue 10000 */
  maxPollIntervalMs?: number;
  /** No more polls after this long without an activity either way, ms (the next customer message polls again). @defaultValue 1800000 */
  idleTimeoutMs?: number;
  /** A token that expires within this long is refreshed before the conversation is used, ms. @defaultValue 300000 */
  tokenRefreshMarginMs?: number;
  /** Direct Line calls within a batch. @defaultValue attempts 3, initialDelayMs 200, maxDelayMs 5000 */
  retry?: RetryOptions;
  /**
   * The longest one Direct Line call, media fetch or queue send takes (the Direct Line client's timeout): no call
   * starts unless it can end `lockMarginMs` before the session lock does. @defaultValue 10000
   */
  callTimeoutMs?: number;
  /** Kept free at the end of a session lock to write the state and settle. @defaultValue 5000 */
  lockMarginMs?: number;
  /**
   * The queue's MaxDeliveryCount: a delivery that fails for a passing reason on its last delivery is dead-lettered by
   * the stage, with the last error in its description, instead of by the bus without one. @defaultValue 10
   */
  maxDeliveryCount?: number;
  /** The longest wait before a throttled or failed delivery is handed back (a longer `Retry-After` is cut to it), ms. @defaultValue 30000 */
  maxHandBackWaitMs?: number;
  /** The wait before a delivery is handed back after Direct Line refused the account's secret, ms. @defaultValue 30000 */
  identityPauseMs?: number;
  /** The clock (ms since the epoch). @defaultValue Date.now */
  now?: () => number;
}

/** A snapshot of what the stage has done since it started. */
export interface ConversationsStats {
  /** Sessions (customers) held now. */
  sessions: number;
  /** Conversations started for a customer who had none. */
  started: number;
  /** Conversations this process went on with from the saved state, left by a restart or another replica. */
  resumed: number;
  /** Conversations that ended (`endOfConversation`). */
  ended: number;
  /** Conversations Direct Line no longer knew (expired): started again on the next customer message. */
  restarted: number;
  /** Customer messages posted to Direct Line. */
  toAgent: number;
  /** Agent messages sent to the customer (`outbound`). */
  toCustomer: number;
  /** Redelivered customer messages found already posted: not posted again. */
  duplicatesSkipped: number;
  attachmentsAccepted: number;
  attachmentsRefused: number;
  completed: number;
  abandoned: number;
  deadLettered: number;
  /** Settlements that failed (the lock was lost): the message comes back. */
  settleFailures: number;
  /** Direct Line calls that failed, by code. */
  directLineErrors: Record<string, number>;
}

export type ConversationEvent = 'started' | 'resumed' | 'ended' | 'restarted';
export type AttachmentResult = 'accepted' | 'refused' | 'failed';

interface ConversationsMetrics {
  conversations: Counter<'channel' | 'event'>;
  messages: Counter<'channel' | 'direction'>;
  attachments: Counter<'channel' | 'direction' | 'result'>;
  directLineErrors: Counter<'account' | 'code'>;
  deliveries: Counter<'outcome'>;
}

function createMetrics(registry: Registry): ConversationsMetrics {
  return {
    conversations: sharedCounter(
      registry,
      `${METRIC_PREFIX}conversations_total`,
      'Direct Line conversations by event: started, resumed (taken over from the saved state after a restart or from another replica), ended (endOfConversation), restarted (expired, started again)',
      ['channel', 'event'],
    ),
    messages: sharedCounter(
      registry,
      `${METRIC_PREFIX}conversation_messages_total`,
      'Conversation messages: to_agent (posted to Direct Line), to_customer (sent to outbound)',
      ['channel', 'direction'],
    ),
    attachments: sharedCounter(
      registry,
      `${METRIC_PREFIX}conversation_attachments_total`,
      'Conversation attachments by direction and result: accepted, refused (the channel does not allow them), failed (could not be fetched)',
      ['channel', 'direction', 'result'],
    ),
    directLineErrors: sharedCounter(
      registry,
      `${METRIC_PREFIX}directline_errors_total`,
      'Direct Line calls that failed, by account and DirectLineError code',
      ['account', 'code'],
    ),
    deliveries: sharedCounter(
      registry,
      `${METRIC_PREFIX}conversation_deliveries_total`,
      'conversations deliveries by settlement: completed, abandoned, dead_lettered',
      ['outcome'],
    ),
  };
}

/** What the sessions of one stage share. */
export class ConversationsContext {
  readonly channels: ChannelLookup;
  readonly messaging: MessagingRegistry;
  readonly media: (channel: Channel) => MediaFetcher | undefined;
  readonly conversations: ConversationSender;
  readonly outbound: OutboundSender;
  readonly log: Logger;
  readonly pollIntervalMs: number;
  readonly maxPollIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly tokenRefreshMarginMs: number;
  readonly retry: ResolvedRetry;
  readonly callTimeoutMs: number;
  readonly lockMarginMs: number;
  readonly maxDeliveryCount: number;
  readonly maxHandBackWaitMs: number;
  readonly identityPauseMs: number;
  readonly now: () => number;
  /** Aborts when the stage stops: waits end at once and what waits is handed back. */
  readonly stopping = new AbortController();
  readonly sessions = new Set<object>();
  readonly counts: Omit<ConversationsStats, 'sessions'> = {
    started: 0,
    resumed: 0,
    ended: 0,
    restarted: 0,
    toAgent: 0,
    toCustomer: 0,
    duplicatesSkipped: 0,
    attachmentsAccepted: 0,
    attachmentsRefused: 0,
    completed: 0,
    abandoned: 0,
    deadLettered: 0,
    settleFailures: 0,
    directLineErrors: {},
  };
  /**
   * Conversations this process has held, the newest {@link KNOWN_KEPT}: a session whose saved conversation is not
   * among them was taken over from the saved state (a restart, another replica): counted as resumed.
   */
  readonly #known = new Set<string>();
  /** Accounts whose secret Direct Line refused last (cleared by a call that succeeds), with the error. */
  readonly unauthorized = new Map<string, string>();
  readonly #metrics: ConversationsMetrics | undefined;
  readonly #directLineFactory: (account: string) => DirectLinePort;
  readonly #clients = new Map<string, DirectLinePort>();

  /** Validates the options (a bad value throws a `TypeError` naming it) and registers the metrics. */
  constructor(o: ConversationsOptions) {
    const c = 'ConversationsStage';
    if (typeof o.channels?.byName !== 'function' || typeof o.channels.all !== 'function')
      throw new TypeError(`${c}: channels must have byName(name) and all()`);
    if (typeof o.messaging?.byRelayChannel !== 'function' || typeof o.messaging.account !== 'function')
      throw new TypeError(`${c}: messaging must have byRelayChannel(name) and account(name)`);
    this.#directLineFactory = functionOption(c, 'directLine', o.directLine);
    this.media = functionOption(c, 'media', o.media);
    if (typeof o.conversations?.send !== 'function')
      throw new TypeError(`${c}: conversations must have a send function`);
    if (typeof o.outbound?.send !== 'function') throw new TypeError(`${c}: outbound must have a send function`);
    this.channels = o.channels;
    this.messaging = o.messaging;
    this.conversations = o.conversations;
    this.outbound = o.outbound;
    this.log = areaLogger(o.log ?? silentLogger(), 'conversations');
    this.pollIntervalMs = intOption(c, 'pollIntervalMs', o.pollIntervalMs, 1000, 1);
    this.maxPollIntervalMs = intOption(c, 'maxPollIntervalMs', o.maxPollIntervalMs, 10_000, this.pollIntervalMs);
    this.idleTimeoutMs = intOption(c, 'idleTimeoutMs', o.idleTimeoutMs, 1_800_000, 1);
    this.tokenRefreshMarginMs = intOption(c, 'tokenRefreshMarginMs', o.tokenRefreshMarginMs, 300_000, 0);
    this.retry = resolveRetry(c, 'retry', o.retry, { attempts: 3, initialDelayMs: 200, maxDelayMs: 5000 });
    this.callTimeoutMs = intOption(c, 'callTimeoutMs', o.callTimeoutMs, 10_000, 1);
    this.lockMarginMs = intOption(c, 'lockMarginMs', o.lockMarginMs, 5000, 0);
    this.maxDeliveryCount = intOption(c, 'maxDeliveryCount', o.maxDeliveryCount, 10, 1);
    this.maxHandBackWaitMs = intOption(c, 'maxHandBackWaitMs', o.maxHandBackWaitMs, 30_000, 0);
    this.identityPauseMs = intOption(c, 'identityPauseMs', o.identityPauseMs, 30_000, 0);
    this.now = o.now ?? Date.now;
    this.#metrics = o.registry === undefined ? undefined : createMetrics(o.registry);
  }

  /** Notes that this process holds `conversationId`; true when it had not before (taken over from the saved state). */
  hold(conversationId: string): boolean {
    const known = this.#known.delete(conversationId);
    this.#known.add(conversationId);
    if (this.#known.size > KNOWN_KEPT) this.#known.delete(this.#known.values().next().value as string);
    return !known;
  }

  /** The Direct Line client of an account, made once. */
  directLine(account: string): DirectLinePort {
    let client = this.#clients.get(account);
    if (client === undefined) {
      client = this.#directLineFactory(account);
      this.#clients.set(account, client);
    }
    return client;
  }

  conversation(channel: string, event: ConversationEvent): void {
    this.counts[event]++;
    this.#metrics?.conversations.inc({ channel, event });
  }

  message(channel: string, direction: 'to_agent' | 'to_customer', n = 1): void {
    if (n === 0) return;
    if (direction === 'to_agent') this.counts.toAgent += n;
    else this.counts.toCustomer += n;
    this.#metrics?.messages.inc({ channel, direction }, n);
  }

  attachment(channel: string, direction: 'from_customer' | 'from_agent', result: AttachmentResult, n = 1): void {
    if (n === 0) return;
    if (result === 'accepted') this.counts.attachmentsAccepted += n;
    else if (result === 'refused') this.counts.attachmentsRefused += n;
    this.#metrics?.attachments.inc({ channel, direction, result }, n);
  }

  directLineError(account: string, code: string): void {
    this.counts.directLineErrors[code] = (this.counts.directLineErrors[code] ?? 0) + 1;
    this.#metrics?.directLineErrors.inc({ account, code });
  }

  settled(outcome: 'completed' | 'abandoned' | 'deadLettered' | 'failed'): void {
    if (outcome === 'failed') {
      this.counts.settleFailures++;
      return;
    }
    this.counts[outcome]++;
    this.#metrics?.deliveries.inc({ outcome: outcome === 'deadLettered' ? 'dead_lettered' : outcome });
  }
}
