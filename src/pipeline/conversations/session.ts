/**
 * The conversations stage's handler of one held session: one customer of one bridged channel, and the Direct Line
 * conversation the customer talks to the agents in. Customer messages are posted to the conversation (started,
 * renewed, refreshed or started over as needed); polls read the agents' activities from the watermark and send them
 * to the customer through `outbound`. The deliveries of a batch are handled in order; once one is handed back, the
 * rest are too (the session keeps the order). The state (`state.ts`) is written before the deliveries it covers are
 * completed, and a conversation as soon as it is started.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { delayUnlessAborted, linkedController } from '../../abort.js';
import type { Channel, MessagingAccount, MessagingChannel } from '../../channels/index.js';
import { errorMessage, isDirectLineError, isEventError, isRelayError } from '../../errors.js';
import { maskDigits, type Logger } from '../../log.js';
import { retryDelay } from '../../retry.js';
import { failedWith, retryWithinBatch } from '../batch-retry.js';
import {
  conversationMessageId,
  conversationOutboundKey,
  conversationSessionId,
  MESSAGE_VERSION,
  parseConversationMessage,
  type Attachment,
  type ConversationMessage,
  type OutboundMessage,
} from '../messages.js';
import type {
  AcceptedSession,
  Delivery,
  DirectLineActivity,
  DirectLineConversation,
  DirectLinePort,
  SessionHandler,
  UploadFile,
} from '../ports.js';
import type { ConversationsContext } from './context.js';
import { runInSpan } from '../../telemetry/index.js';
import { decodeState, encodeEnded, encodeState, markPosted, POSTED_KEPT, type ConversationState } from './state.js';

/** The reasons the stage dead-letters with (the description says what was wrong). */
export const CONVERSATIONS_DEAD_LETTER_REASONS = {
  /** The body is not a conversation message this relay reads. */
  unreadable: 'ConversationUnreadable',
  /** The relay channel is not configured, or not bridged to a messaging channel (channels file `messaging`). */
  unknownChannel: 'ConversationUnknownChannel',
  /** The message came in another customer's session. */
  sessionMismatch: 'ConversationSessionMismatch',
  /** Direct Line or `outbound` refused the message itself (400/413, too large): sending it again cannot help. */
  refused: 'ConversationRefused',
  /** Direct Line kept failing (throttled, unavailable, unreadable answers) until the last delivery. */
  directLineFailed: 'ConversationDirectLineFailed',
  /** Something else kept failing until the last delivery (a media fetch, a queue send). */
  failed: 'ConversationFailed',
} as const;

/**
 * A poll due this long ago that is still the one the state waits for was lost (dead-lettered after its deliveries):
 * another poll is then taken in its place, and a customer message schedules a new one.
 */
const POLL_OVERDUE_MS = 10 * 60_000;

/** Pages of activities read per poll (Direct Line answers a page per call; a longer history is read by the next poll). */
const PAGES_PER_POLL = 10;

/** How one delivery ends. */
type Verdict =
  | { kind: 'complete' }
  | { kind: 'deadLetter'; reason: string; description: string }
  | { kind: 'abandon'; waitMs: number; why: string };

/** Ends a delivery's handling with a verdict. */
class Ending extends Error {
  constructor(readonly verdict: Verdict) {
    super(verdict.kind === 'complete' ? 'complete' : verdict.kind === 'abandon' ? verdict.why : verdict.description);
  }
}

interface Batch {
  /** The loop's signal: the handler is told to hand back what it holds. */
  signal: AbortSignal;
  /** Aborts with `signal` or when the stage stops: waits end at once. */
  waits: AbortSignal;
  /** No call starts unless it ends by then (ms since the epoch). */
  deadline: number;
  /** The relay ids of the batch's customer messages. */
  customerIds: string[];
  /** A poll is wanted by then (ms since the epoch): the batch schedules one unless one is due sooner. */
  pollBy?: number;
  /** Deliveries whose completion needs the poll scheduled (handed back when it cannot be). */
  needPoll: Set<Delivery>;
}

/** A customer message's bridge: its relay channel, messaging channel and account. */
interface Bridge {
  channel: Channel;
  messaging: MessagingChannel;
  account: MessagingAccount;
}

type Parsed = { delivery: Delivery; msg: ConversationMessage } | { delivery: Delivery; error: unknown };

export class ConversationSession implements SessionHandler {
  readonly #ctx: ConversationsContext;
  readonly #session: AcceptedSession;
  readonly #log: Logger;
  #state: ConversationState | undefined;
  /** The state in memory differs from the one saved. */
  #dirty = false;
  /** Relay ids posted to the customer's previous conversation (ended or gone): never posted again to the next. */
  #previous: string[] = [];
  /** The state came from the last holder and has not been looked at for `resumed` yet. */
  #resumable: boolean;
  /** Customer messages the last holder listed as being posted: looked for in the conversation before posting. */
  readonly #inheritedPosting: Set<string>;
  /** Customer messages whose post this holder may have made without an answer. */
  readonly #uncertain = new Set<string>();
  /** The session's channel and customer, from its messages (the state keeps no address): what a poll is sent with. */
  #sessionChannel: string | undefined;
  #sessionCustomer: string | undefined;

  constructor(ctx: ConversationsContext, session: AcceptedSession) {
    this.#ctx = ctx;
    this.#session = session;
    this.#log = ctx.log;
    const decoded = decodeState(session.state);
    if (!decoded.ok) {
      this.#log.warn('the session state is unreadable: the next customer message starts a new conversation', {
        reason: decoded.reason,
      });
    }
    this.#state = decoded.ok ? decoded.state : undefined;
    this.#previous = decoded.ok ? decoded.previous : [];
    this.#resumable = this.#state !== undefined;
    this.#inheritedPosting = new Set(this.#state?.posting ?? []);
    ctx.sessions.add(this);
  }

  async onBatch(deliveries: Delivery[], signal: AbortSignal): Promise<void> {
    // Every held session's batch listens to the loop's signal and the stage's stop: as many as the sessions held.
    setMaxListeners(0, signal, this.#ctx.stopping.signal);
    const linked = linkedController(signal, this.#ctx.stopping.signal);
    try {
      const parsed = deliveries.map((delivery): Parsed => {
        try {
          return { delivery, msg: parseConversationMessage(delivery.body) };
        } catch (error) {
          return { delivery, error };
        }
      });
      const lockedUntil = this.#session.lockedUntil?.();
      const batch: Batch = {
        signal,
        waits: linked.signal,
        deadline:
          typeof lockedUntil === 'number' && Number.isFinite(lockedUntil)
            ? lockedUntil - this.#ctx.lockMarginMs
            : Infinity,
        customerIds: parsed.flatMap((p) =>
          'msg' in p && p.msg.kind === 'customer' ? [conversationMessageId(p.msg.channel, p.msg.messageId)] : [],
        ),
        needPoll: new Set(),
      };
      // Before any post: the state lists what this batch may post, so that a successor looks for it first.
      if (this.#state !== undefined && this.#markPosting(batch) && !(await this.#save())) {
        await Promise.all(
          deliveries.map((d) =>
            this.#settle(d, { kind: 'abandon', waitMs: 0, why: 'the session state could not be written' }),
          ),
        );
        return;
      }
      const results: Array<[Delivery, Verdict]> = [];
      let halted: Extract<Verdict, { kind: 'abandon' }> | undefined;
      for (const p of parsed) {
        if (halted !== undefined) {
          results.push([
            p.delivery,
            { kind: 'abandon', waitMs: 0, why: 'an earlier message of the session was handed back' },
          ]);
          continue;
        }
        // In the delivery's span: what it sends (a reply to `outbound`, a poll to `conversations`) continues its trace.
        const verdict =
          p.delivery.span === undefined
            ? await this.#handle(p, batch)
            : await runInSpan(p.delivery.span, () => this.#handle(p, batch));
        results.push([p.delivery, verdict]);
        if (verdict.kind === 'abandon') halted = verdict;
      }
      const polled = await this.#schedulePoll(batch);
      const saved = !this.#dirty || (await this.#save());
      // Completed only once the state that covers them is saved (and their poll scheduled).
      const final = results.map(([d, v]): [Delivery, Verdict] => {
        if (v.kind !== 'complete') return [d, v];
        if (!saved) return [d, { kind: 'abandon', waitMs: 0, why: 'the session state could not be written' }];
        if (!polled && batch.needPoll.has(d))
          return [d, { kind: 'abandon', waitMs: 0, why: 'the next poll could not be scheduled' }];
        return [d, v];
      });
      await Promise.all(final.filter(([, v]) => v.kind !== 'abandon').map(([d, v]) => this.#settle(d, v)));
      const waitMs = Math.min(
        halted?.waitMs ?? 0,
        this.#ctx.maxHandBackWaitMs,
        Math.max(0, batch.deadline - Date.now()),
      );
      if (waitMs > 0) await delayUnlessAborted(waitMs, batch.waits);
      await Promise.all(final.filter(([, v]) => v.kind === 'abandon').map(([d, v]) => this.#settle(d, v)));
    } finally {
      linked.dispose();
    }
  }

  onClose(): void {
    this.#ctx.sessions.delete(this);
  }

  /** Adds the batch's customer messages not yet posted to `posting`; true when that changed the state. */
  #markPosting(batch: Batch): boolean {
    const state = this.#state;
    if (state === undefined) return false;
    const posting = new Set(state.posting ?? []);
    const before = posting.size;
    for (const id of batch.customerIds) if (!state.posted.includes(id)) posting.add(id);
    if (posting.size === before) return false;
    state.posting = [...posting];
    this.#dirty = true;
    return true;
  }

  async #save(): Promise<boolean> {
    try {
      await this.#session.setState(this.#state === undefined ? encodeEnded(this.#previous) : encodeState(this.#state));
      this.#dirty = false;
      return true;
    } catch (err) {
      this.#log.warn('writing the session state failed: the deliveries it covers are handed back', {
        conversationId: this.#state?.conversationId,
        err: errorMessage(err),
      });
      return false;
    }
  }

  async #settle(delivery: Delivery, verdict: Verdict): Promise<void> {
    try {
      if (verdict.kind === 'complete') await delivery.complete();
      else if (verdict.kind === 'abandon') await delivery.abandon();
      else await delivery.deadLetter(verdict.reason, verdict.description);
      this.#ctx.settled(
        verdict.kind === 'complete' ? 'completed' : verdict.kind === 'abandon' ? 'abandoned' : 'deadLettered',
      );
    } catch (err) {
      this.#ctx.settled('failed');
      this.#log.warn('settlement failed: the message will be delivered again when its lock expires', {
        settlement: verdict.kind,
        messageId: delivery.messageId,
        err: errorMessage(err),
      });
    }
  }

  async #handle(p: Parsed, batch: Batch): Promise<Verdict> {
    const { delivery } = p;
    if ('error' in p) {
      const description = `message ${delivery.messageId ?? '(no id)'}: ${errorMessage(p.error)}`;
      this.#log.warn('conversation message unreadable: dead-lettered', {
        messageId: delivery.messageId,
        code: isEventError(p.error) ? p.error.code : 'EventUndecodable',
        err: errorMessage(p.error),
      });
      return { kind: 'deadLetter', reason: CONVERSATIONS_DEAD_LETTER_REASONS.unreadable, description };
    }
    const { msg } = p;
    let account: string | undefined;
    try {
      const bridge = this.#bridge(msg, delivery);
      account = bridge.account.name;
      this.#sessionChannel = msg.channel;
      this.#sessionCustomer = msg.customer;
      return msg.kind === 'customer'
        ? await this.#customer(msg, bridge, delivery, batch)
        : await this.#poll(msg, bridge, delivery, batch);
    } catch (err) {
      return this.#failed(err, delivery, msg, account);
    }
  }

  /** The relay channel, messaging channel and account of a message; an `Ending` (dead letter) when there is none. */
  #bridge(msg: ConversationMessage, delivery: Delivery): Bridge {
    const ctx = this.#ctx;
    const log = this.#log.child({ channel: msg.channel, messageId: delivery.messageId });
    const deadLetter: (reason: string, description: string, what: string) => never = (reason, description, what) => {
      log.warn(`${what}: dead-lettered`, { description });
      throw new Ending({ kind: 'deadLetter', reason, description });
    };
    const channel = ctx.channels.byName(msg.channel);
    if (channel === undefined) {
      const known = ctx.channels.all().map((c) => c.name);
      deadLetter(
        CONVERSATIONS_DEAD_LETTER_REASONS.unknownChannel,
        `channel '${msg.channel}' is not configured (configured channels: ${known.join(', ') || 'none'})`,
        'unknown channel',
      );
    }
    const messaging = ctx.messaging.byRelayChannel(msg.channel);
    if (messaging === undefined) {
      const bridged = ctx.messaging.accounts.flatMap((a) => a.channels.map((c) => c.relayChannel));
      deadLetter(
        CONVERSATIONS_DEAD_LETTER_REASONS.unknownChannel,
        `channel '${msg.channel}' is not bridged to Omnichannel: no messaging channel of the channels file names it as its relayChannel (bridged: ${bridged.join(', ') || 'none'})`,
        'channel not bridged',
      );
    }
    const account = ctx.messaging.account(messaging.account);
    if (account === undefined) {
      deadLetter(
        CONVERSATIONS_DEAD_LETTER_REASONS.unknownChannel,
        `messaging channel '${messaging.name}' names account '${messaging.account}', which is not configured`,
        'messaging account missing',
      );
    }
    const expected = conversationSessionId(msg.channel, msg.customer);
    if (delivery.sessionId !== undefined && delivery.sessionId !== expected) {
      deadLetter(
        CONVERSATIONS_DEAD_LETTER_REASONS.sessionMismatch,
        `a ${msg.kind} message of channel '${msg.channel}' came in the session of another customer (its session is channel:customer)`,
        'message in the wrong session',
      );
    }
    return { channel, messaging, account };
  }

  /** The verdict for an error that ended a delivery's handling. */
  #failed(err: unknown, delivery: Delivery, msg: ConversationMessage, account: string | undefined): Verdict {
    const ctx = this.#ctx;
    if (err instanceof Ending) return err.verdict;
    const log = this.#log.child({ channel: msg.channel, conversationId: this.#state?.conversationId });
    const last = delivery.deliveryCount >= ctx.maxDeliveryCount;
    const backoff = retryDelay(Math.max(1, delivery.deliveryCount), ctx.retry);
    const what = `${msg.kind === 'customer' ? 'customer message' : 'poll'} (delivery ${delivery.deliveryCount} of ${ctx.maxDeliveryCount})`;
    if (isGone(err)) {
      // Not expected here (each step that meets it starts over): forget the conversation, the next delivery starts one.
      log.warn('the conversation is gone: forgotten, handed back', { err: errorMessage(err) });
      this.#forget();
      return { kind: 'abandon', waitMs: 0, why: errorMessage(err) };
    }
    if (isDirectLineError(err)) {
      const detail = `Direct Line ${err.code}${err.upstream?.status === undefined ? '' : ` (HTTP ${err.upstream.status})`}: ${err.message}`;
      if (err.code === 'DirectLineUnauthorized') {
        if (account !== undefined) ctx.unauthorized.set(account, err.message);
        log.error('Direct Line refused the account secret: handed back after a pause', { account, err: err.message });
        return last
          ? {
              kind: 'deadLetter',
              reason: CONVERSATIONS_DEAD_LETTER_REASONS.directLineFailed,
              description: `${what}: ${detail}`,
            }
          : { kind: 'abandon', waitMs: ctx.identityPauseMs, why: detail };
      }
      if (!err.retryable) {
        log.warn('Direct Line refused the message: dead-lettered', { code: err.code, err: err.message });
        return {
          kind: 'deadLetter',
          reason: CONVERSATIONS_DEAD_LETTER_REASONS.refused,
          description: `${what}: ${detail}`,
        };
      }
      if (last) {
        log.warn('Direct Line kept failing until the last delivery: dead-lettered', { code: err.code });
        return {
          kind: 'deadLetter',
          reason: CONVERSATIONS_DEAD_LETTER_REASONS.directLineFailed,
          description: `${what}: ${detail}`,
        };
      }
      log.info('Direct Line failed: handed back after a wait', {
        code: err.code,
        deliveryCount: delivery.deliveryCount,
      });
      return { kind: 'abandon', waitMs: Math.max(err.retryAfterMs ?? 0, backoff), why: detail };
    }
    const detail = errorMessage(err);
    if (isRelayError(err) && !err.retryable) {
      log.warn('the message cannot be handled: dead-lettered', { code: err.code, err: detail });
      return {
        kind: 'deadLetter',
        reason: CONVERSATIONS_DEAD_LETTER_REASONS.refused,
        description: `${what}: ${err.code}: ${detail}`,
      };
    }
    if (last) {
      log.warn('kept failing until the last delivery: dead-lettered', { err: detail });
      return {
        kind: 'deadLetter',
        reason: CONVERSATIONS_DEAD_LETTER_REASONS.failed,
        description: `${what}: ${detail}`,
      };
    }
    log.warn('handling failed: handed back after a wait', { err: detail, deliveryCount: delivery.deliveryCount });
    return { kind: 'abandon', waitMs: isRelayError(err) ? (err.retryAfterMs ?? backoff) : backoff, why: detail };
  }

  // --- customer messages -------------------------------------------------------------------------------------------

  async #customer(
    msg: Extract<ConversationMessage, { kind: 'customer' }>,
    bridge: Bridge,
    delivery: Delivery,
    batch: Batch,
  ): Promise<Verdict> {
    const ctx = this.#ctx;
    const id = conversationMessageId(msg.channel, msg.messageId);
    const log = this.#log.child({ channel: msg.channel, customer: maskDigits(msg.customer) });
    const known = this.#state;
    if (this.#previous.includes(id) || known?.previous?.includes(id)) {
      ctx.counts.duplicatesSkipped++;
      log.info('already posted to the previous conversation, which has ended: not posted again');
      return { kind: 'complete' };
    }
    if (known !== undefined && known.account === bridge.account.name && known.posted.includes(id)) {
      ctx.counts.duplicatesSkipped++;
      log.info('already posted to the conversation: not posted again', { conversationId: known.conversationId });
      this.#wantPoll(batch, delivery);
      return { kind: 'complete' };
    }
    let state = await this.#ensure(bridge, batch, log);
    // Only a conversation this message may have reached before can have it.
    const maybePosted = delivery.deliveryCount > 1 || this.#inheritedPosting.has(id) || this.#uncertain.has(id);
    if (maybePosted && state.conversationId === known?.conversationId) {
      let found: boolean;
      try {
        found = await this.#findPosted(id, batch);
      } catch (err) {
        if (!isGone(err)) throw err;
        // Gone with what it had: the message goes to a new conversation.
        found = false;
        state = await this.#restart(bridge, batch, log);
      }
      if (found) {
        markPosted(state, id);
        this.#dirty = true;
        ctx.counts.duplicatesSkipped++;
        log.info('delivered again and already in the conversation: not posted again', {
          conversationId: state.conversationId,
          deliveryCount: delivery.deliveryCount,
        });
        this.#wantPoll(batch, delivery);
        return { kind: 'complete' };
      }
    }
    const files = await this.#customerFiles(msg, bridge, id, batch, log);
    if (msg.text === '' && files.length === 0) {
      log.info('nothing to post (no text, no attachment accepted)', { conversationId: state.conversationId });
      return { kind: 'complete' };
    }
    const activity = (s: ConversationState): DirectLineActivity => ({
      type: 'message',
      from: { id: s.userId },
      text: msg.text,
      channelData: {
        channeltype: bridge.messaging.channelId,
        // Routing context: what Omnichannel routes the conversation by, with its first message.
        ...(s.posted.length === 0 ? { conversationcontext: { ...bridge.messaging.conversationContext } } : {}),
        customercontext: customerContext(bridge.channel, msg.customer),
        relayMessageId: id,
      },
    });
    try {
      await this.#post(id, activity, files, batch);
    } catch (err) {
      if (!isGone(err)) throw err;
      state = await this.#restart(bridge, batch, log);
      await this.#post(id, activity, files, batch);
    }
    state = this.#state ?? state;
    markPosted(state, id);
    state.lastActivityAt = ctx.now();
    state.idlePolls = 0;
    this.#dirty = true;
    this.#uncertain.delete(id);
    ctx.message(msg.channel, 'to_agent');
    ctx.attachment(msg.channel, 'from_customer', 'accepted', files.length);
    log.debug('posted to the conversation', { conversationId: state.conversationId, files: files.length });
    this.#wantPoll(batch, delivery);
    return { kind: 'complete' };
  }

  /**
   * The customer's files to upload: fetched when the channel allows customer attachments; otherwise the channel's
   * refusal is sent to the customer (once per message: keyed on it) and none is posted.
   */
  async #customerFiles(
    msg: Extract<ConversationMessage, { kind: 'customer' }>,
    bridge: Bridge,
    id: string,
    batch: Batch,
    log: Logger,
  ): Promise<UploadFile[]> {
    const ctx = this.#ctx;
    const attachments = msg.attachments ?? [];
    if (attachments.length === 0) return [];
    const fetcher = bridge.messaging.attachments.customer ? ctx.media(bridge.channel) : undefined;
    if (fetcher === undefined) {
      if (bridge.messaging.attachments.customer)
        log.warn('this channel has no media fetcher: the customer attachments are refused', {
          count: attachments.length,
        });
      await this.#sendOutbound(
        [
          this.#outboundMessage(bridge, msg.customer, conversationOutboundKey('refusal', id), `refusal:${id}`, {
            text: bridge.messaging.attachmentRefusal,
          }),
        ],
        batch,
      );
      ctx.attachment(msg.channel, 'from_customer', 'refused', attachments.length);
      log.info('customer attachments refused: the refusal was sent', { count: attachments.length });
      return [];
    }
    const files: UploadFile[] = [];
    for (const attachment of attachments) {
      try {
        files.push(await fetcher.fetch(attachment, batch.signal));
      } catch (err) {
        // A passing failure hands the message back; one that will not pass posts the rest.
        if (!isRelayError(err) || err.retryable) throw err;
        ctx.attachment(msg.channel, 'from_customer', 'failed');
        log.warn('a customer attachment could not be fetched: posted without it', {
          contentType: attachment.contentType,
          code: err.code,
          err: errorMessage(err),
        });
      }
    }
    return files;
  }

  /** Posts (or uploads with) one customer activity; a retry after a failed attempt first looks whether it got there. */
  async #post(
    id: string,
    activity: (s: ConversationState) => DirectLineActivity,
    files: readonly UploadFile[],
    batch: Batch,
  ): Promise<void> {
    await this.#withConversation(async (conv, state, attempt) => {
      if (attempt > 1 && (await this.#findPostedOnce(conv, state, id, batch.signal))) return;
      this.#uncertain.add(id);
      const dl = this.#client(state);
      if (files.length > 0) await dl.upload(conv, activity(state), files, batch.signal);
      else await dl.post(conv, activity(state), batch.signal);
    }, batch);
  }

  /** Whether the conversation has an activity of this customer with this relay id after the saved watermark. */
  async #findPosted(id: string, batch: Batch): Promise<boolean> {
    return this.#withConversation((conv, state) => this.#findPostedOnce(conv, state, id, batch.signal), batch);
  }

  async #findPostedOnce(
    conv: DirectLineConversation,
    state: ConversationState,
    id: string,
    signal: AbortSignal,
  ): Promise<boolean> {
    let watermark = state.watermark;
    for (let page = 0; page < PAGES_PER_POLL * 10; page++) {
      const read = await this.#client(state).activities(conv, watermark, signal);
      if (read.activities.some((a) => a.from?.id === state.userId && relayIdOf(a) === id)) return true;
      if (read.activities.length === 0 || read.watermark === undefined || read.watermark === watermark) return false;
      watermark = read.watermark;
    }
    return false;
  }

  // --- polls -------------------------------------------------------------------------------------------------------

  async #poll(
    msg: Extract<ConversationMessage, { kind: 'poll' }>,
    bridge: Bridge,
    delivery: Delivery,
    batch: Batch,
  ): Promise<Verdict> {
    const ctx = this.#ctx;
    const now = ctx.now();
    const state = this.#state;
    if (state === undefined) {
      this.#log.debug('a poll for a session without a conversation: nothing to do', { channel: msg.channel });
      return { kind: 'complete' };
    }
    const log = this.#log.child({ channel: msg.channel, conversationId: state.conversationId });
    if (state.pollDueAt !== undefined && state.pollDueAt !== msg.dueAt && state.pollDueAt > now - POLL_OVERDUE_MS) {
      log.debug('a poll replaced by a later one: nothing to do', { dueAt: msg.dueAt, pollDueAt: state.pollDueAt });
      return { kind: 'complete' };
    }
    let current: ConversationState;
    try {
      current = await this.#ensureToken(state, batch, log);
    } catch (err) {
      if (!isGone(err)) throw err;
      return this.#gone(log);
    }
    this.#countResumed(msg.channel);
    const read: DirectLineActivity[] = [];
    let watermark = current.watermark;
    let more = false;
    try {
      for (let page = 0; ; page++) {
        if (page === PAGES_PER_POLL) {
          more = true;
          break;
        }
        const from = watermark;
        const answer = await this.#withConversation(
          (conv, s) => this.#client(s).activities(conv, from, batch.signal),
          batch,
        );
        read.push(...answer.activities);
        if (answer.activities.length === 0 || answer.watermark === undefined || answer.watermark === watermark) {
          watermark = answer.watermark ?? watermark;
          break;
        }
        watermark = answer.watermark;
      }
    } catch (err) {
      if (!isGone(err)) throw err;
      return this.#gone(log);
    }
    const outbound: OutboundMessage[] = [];
    const ownIds: string[] = [];
    let ended = false;
    let agentActivity = false;
    for (const a of read) {
      if (a.from?.id === current.userId) {
        const rid = relayIdOf(a);
        if (rid !== undefined) ownIds.push(rid);
        continue;
      }
      if (a.type === 'message' || a.type === 'endOfConversation') {
        agentActivity = true;
        const out = this.#agentMessage(a, bridge, msg.customer, current, log);
        if (out !== undefined) outbound.push(out);
      }
      if (a.type === 'endOfConversation') {
        ended = true;
        break;
      }
    }
    // Sent before the watermark is saved: a crash in between sends them again, dropped by `outbound`'s duplicate
    // detection (same keys).
    await this.#sendOutbound(outbound, batch);
    ctx.message(msg.channel, 'to_customer', outbound.length);
    for (const rid of ownIds) markPosted(current, rid);
    if (watermark !== undefined) current.watermark = watermark;
    delete current.pollDueAt;
    this.#dirty = true;
    if (ended) {
      this.#forget();
      ctx.conversation(msg.channel, 'ended');
      log.info('the agents ended the conversation: the next customer message starts a new one', {
        sent: outbound.length,
      });
      return { kind: 'complete' };
    }
    if (agentActivity) {
      current.lastActivityAt = now;
      current.idlePolls = 0;
    } else {
      current.idlePolls++;
    }
    if (now - current.lastActivityAt >= ctx.idleTimeoutMs) {
      log.info('no activity for the idle timeout: polling stops until the customer writes again', {
        idleTimeoutMs: ctx.idleTimeoutMs,
      });
      return { kind: 'complete' };
    }
    const waitMs = more
      ? 0
      : Math.min(ctx.maxPollIntervalMs, ctx.pollIntervalMs * 2 ** Math.min(current.idlePolls, 30));
    this.#wantPoll(batch, delivery, now + waitMs);
    return { kind: 'complete' };
  }

  /**
   * Drops the conversation (ended, or gone): the next customer message starts a new one. What was posted to it (or
   * may have been) is kept as `previous`, so that a redelivery of such a message is not posted to the new one.
   */
  #forget(): void {
    const state = this.#state;
    if (state !== undefined) this.#previous = [...state.posted, ...(state.posting ?? [])].slice(-POSTED_KEPT);
    this.#state = undefined;
    this.#dirty = true;
  }

  /** The conversation is gone (expired): the state is cleared; the next customer message starts a new one. */
  #gone(log: Logger): Verdict {
    this.#forget();
    log.info('the conversation expired: the next customer message starts a new one');
    return { kind: 'complete' };
  }

  /** An agent's activity as a message to the customer; undefined when nothing of it can be sent. */
  #agentMessage(
    a: DirectLineActivity,
    bridge: Bridge,
    customer: string,
    state: ConversationState,
    log: Logger,
  ): OutboundMessage | undefined {
    const ctx = this.#ctx;
    if (a.id === undefined || a.id === '') {
      log.warn('an agent activity without an id cannot be keyed: not sent', { type: a.type });
      return undefined;
    }
    const files: Attachment[] = [];
    const offered = a.attachments ?? [];
    if (offered.length > 0) {
      const usable = offered.filter((f) => typeof f.contentUrl === 'string' && f.contentUrl !== '');
      if (usable.length < offered.length)
        log.info('agent attachments without a URL (cards) are not sent', { count: offered.length - usable.length });
      if (bridge.messaging.attachments.agent) {
        for (const f of usable)
          files.push({ url: f.contentUrl as string, contentType: f.contentType, ...(f.name ? { name: f.name } : {}) });
        ctx.attachment(bridge.channel.name, 'from_agent', 'accepted', files.length);
      } else if (usable.length > 0) {
        ctx.attachment(bridge.channel.name, 'from_agent', 'refused', usable.length);
        log.info('agent attachments dropped: the channel does not allow agent attachments', { count: usable.length });
      }
    }
    const text = a.text ?? '';
    if (text === '' && files.length === 0) return undefined;
    return this.#outboundMessage(
      bridge,
      customer,
      conversationOutboundKey(state.conversationId, a.id),
      a.id,
      {
        text,
        ...(files.length > 0 ? { attachments: files } : {}),
      },
      state.conversationId,
    );
  }

  #outboundMessage(
    bridge: Bridge,
    customer: string,
    key: string,
    activityId: string,
    content: { text: string; attachments?: Attachment[] },
    conversationId = this.#state?.conversationId ?? '-',
  ): OutboundMessage {
    return {
      v: MESSAGE_VERSION,
      key,
      channel: bridge.channel.name,
      to: customer,
      text: content.text,
      ...(content.attachments ? { attachments: content.attachments } : {}),
      purpose: 'conversation',
      conversation: { account: bridge.account.name, conversationId, activityId },
      acceptedAt: this.#ctx.now(),
    };
  }

  async #sendOutbound(messages: OutboundMessage[], batch: Batch): Promise<void> {
    if (messages.length === 0) return;
    const sessionId = this.#ctx.channels.byName(messages[0]!.channel)?.senderKey;
    await this.#ctx.outbound.send(
      messages.map((m) => ({ body: m, messageId: m.key, ...(sessionId === undefined ? {} : { sessionId }) })),
      batch.signal,
    );
  }

  // --- polls scheduled ----------------------------------------------------------------------------------------------

  /** Asks the batch for a poll by `at` (default: one interval from now); `delivery` completes only once it is scheduled. */
  #wantPoll(batch: Batch, delivery: Delivery, at = this.#ctx.now() + this.#ctx.pollIntervalMs): void {
    batch.pollBy = Math.min(batch.pollBy ?? Infinity, at);
    batch.needPoll.add(delivery);
  }

  /**
   * Schedules the poll the batch asked for, unless the one the state waits for is due by then (and not lost); true
   * when no poll is missing.
   */
  async #schedulePoll(batch: Batch): Promise<boolean> {
    const state = this.#state;
    const ctx = this.#ctx;
    if (state === undefined || batch.pollBy === undefined) return true;
    const now = ctx.now();
    const due = state.pollDueAt;
    if (due !== undefined && due <= batch.pollBy && due > now - POLL_OVERDUE_MS) return true;
    const dueAt = Math.max(now, batch.pollBy);
    const channel = this.#sessionChannel;
    const customer = this.#sessionCustomer;
    if (channel === undefined || customer === undefined) return true;
    const body: ConversationMessage = { v: MESSAGE_VERSION, kind: 'poll', channel, customer, dueAt };
    try {
      await ctx.conversations.send(
        [
          {
            body,
            messageId: conversationMessageId(channel, `poll:${state.conversationId}:${dueAt}`),
            sessionId: this.#session.sessionId,
            scheduledAt: dueAt,
          },
        ],
        batch.signal,
      );
    } catch (err) {
      this.#log.warn('scheduling the next poll failed: the messages waiting for it are handed back', {
        conversationId: state.conversationId,
        err: errorMessage(err),
      });
      return false;
    }
    state.pollDueAt = dueAt;
    this.#dirty = true;
    return true;
  }

  // --- the conversation --------------------------------------------------------------------------------------------

  #client(state: ConversationState): DirectLinePort {
    return this.#ctx.directLine(state.account);
  }

  /** Counts the saved conversation as resumed, once, when this process had not held it before. */
  #countResumed(channel: string): void {
    if (!this.#resumable || this.#state === undefined) return;
    this.#resumable = false;
    if (this.#ctx.hold(this.#state.conversationId)) this.#ctx.conversation(channel, 'resumed');
  }

  /**
   * The customer's conversation, usable now: started when there is none (or it belongs to another account), its token
   * renewed with the secret when it expired or refreshed when it expires within the margin; started over (and said
   * so) when Direct Line no longer knows it.
   */
  async #ensure(bridge: Bridge, batch: Batch, log: Logger): Promise<ConversationState> {
    const ctx = this.#ctx;
    let state = this.#state;
    if (state !== undefined && state.account !== bridge.account.name) {
      log.warn('the channel is now bridged through another account: a new conversation is started', {
        previous: state.conversationId,
        account: bridge.account.name,
      });
      state = undefined;
    }
    if (state === undefined) {
      state = await this.#start(bridge, batch);
      ctx.conversation(bridge.channel.name, 'started');
      log.info('conversation started', { conversationId: state.conversationId });
      return state;
    }
    this.#countResumed(bridge.channel.name);
    try {
      return await this.#ensureToken(state, batch, log);
    } catch (err) {
      if (!isGone(err)) throw err;
      return this.#restart(bridge, batch, log);
    }
  }

  /** Direct Line no longer knows the conversation: starts a new one, and says so. */
  async #restart(bridge: Bridge, batch: Batch, log: Logger): Promise<ConversationState> {
    const previous = this.#state?.conversationId;
    const state = await this.#start(bridge, batch);
    this.#ctx.conversation(bridge.channel.name, 'restarted');
    log.info('conversation expired: started a new one', { previous, conversationId: state.conversationId });
    return state;
  }

  /** Renews an expired token (with the secret) or refreshes one that expires within the margin. */
  async #ensureToken(state: ConversationState, batch: Batch, log: Logger): Promise<ConversationState> {
    const ctx = this.#ctx;
    const now = ctx.now();
    if (now >= state.tokenExpiresAt) {
      log.info('the conversation token expired: renewing it with the secret', { conversationId: state.conversationId });
      return this.#renew(state, batch);
    }
    if (state.tokenExpiresAt - now <= ctx.tokenRefreshMarginMs) {
      try {
        const fresh = await this.#retrying(
          state.account,
          () => this.#client(state).refresh(conversationOf(state), batch.signal),
          batch,
        );
        this.#adopt(state, fresh);
        log.debug('conversation token refreshed', { conversationId: state.conversationId });
        return state;
      } catch (err) {
        if (!isDirectLineError(err) || err.code !== 'DirectLineTokenExpired') throw err;
        return this.#renew(state, batch);
      }
    }
    return state;
  }

  async #renew(state: ConversationState, batch: Batch): Promise<ConversationState> {
    const fresh = await this.#retrying(
      state.account,
      () => this.#client(state).renew(state.conversationId, batch.signal),
      batch,
    );
    this.#adopt(state, fresh);
    return state;
  }

  #adopt(state: ConversationState, fresh: DirectLineConversation): void {
    state.token = fresh.token;
    state.tokenExpiresAt = fresh.tokenExpiresAt;
    this.#dirty = true;
  }

  /** Starts a conversation and saves it at once (an unsaved conversation would be left to an agent with no one in it). */
  async #start(bridge: Bridge, batch: Batch): Promise<ConversationState> {
    const ctx = this.#ctx;
    const account = bridge.account.name;
    const conv = await this.#retrying(account, () => ctx.directLine(account).start(batch.signal), batch);
    const now = ctx.now();
    const state: ConversationState = {
      v: 1,
      account,
      conversationId: conv.conversationId,
      token: conv.token,
      tokenExpiresAt: conv.tokenExpiresAt,
      userId: `relay-${randomUUID()}`,
      startedAt: now,
      lastActivityAt: now,
      idlePolls: 0,
      posted: [],
      ...(this.#previous.length === 0 ? {} : { previous: [...this.#previous] }),
    };
    this.#state = state;
    this.#resumable = false;
    ctx.hold(state.conversationId);
    this.#markPosting(batch);
    if (!(await this.#save())) {
      this.#state = undefined;
      throw new Ending({
        kind: 'abandon',
        waitMs: 0,
        why: `conversation ${conv.conversationId} was started but could not be saved in the session state`,
      });
    }
    return state;
  }

  /**
   * Runs `call` on the conversation with the stage's retries; a token found expired is renewed with the secret and
   * the call made again.
   */
  async #withConversation<T>(
    call: (conv: DirectLineConversation, state: ConversationState, attempt: number) => Promise<T>,
    batch: Batch,
  ): Promise<T> {
    const state = this.#state;
    if (state === undefined) throw new Error('no conversation in the session state');
    const run = (): Promise<T> =>
      this.#retrying(state.account, (attempt) => call(conversationOf(state), state, attempt), batch);
    try {
      return await run();
    } catch (err) {
      if (!isDirectLineError(err) || err.code !== 'DirectLineTokenExpired') throw err;
      this.#log.info('the conversation token expired: renewing it with the secret', {
        conversationId: state.conversationId,
      });
      await this.#renew(state, batch);
      return run();
    }
  }

  /**
   * One Direct Line call with the stage's retries within the batch (`retry`; a `Retry-After` longer than its longest
   * wait ends them): rejects with the last error, or an `Ending` (handed back) when no attempt fits before the
   * session lock's deadline or the stage stops.
   */
  async #retrying<T>(account: string, call: (attempt: number) => Promise<T>, batch: Batch): Promise<T> {
    const ctx = this.#ctx;
    const result = await retryWithinBatch<T>({
      retry: ctx.retry,
      deadline: batch.deadline,
      callTimeoutMs: ctx.callTimeoutMs,
      signal: batch.signal,
      waits: batch.waits,
      sleep: delayUnlessAborted,
      attempt: async (attempt) => {
        try {
          const value = await call(attempt);
          ctx.unauthorized.delete(account);
          return value;
        } catch (err) {
          if (isDirectLineError(err)) ctx.directLineError(account, err.code);
          throw err;
        }
      },
      judge: (failure, { delayMs }) => {
        const err = failedWith(failure);
        if (!isDirectLineError(err) || !err.retryable || err.code === 'DirectLineTokenExpired') return false;
        const after = err.retryAfterMs ?? 0;
        if (after > ctx.retry.maxDelayMs) return 'throttled';
        return { waitMs: Math.max(delayMs, after) };
      },
      onRetry: (failure, { failures, waitMs }) => {
        const err = failedWith(failure);
        this.#log.debug('Direct Line call failed: trying again', {
          failures,
          waitMs,
          code: isDirectLineError(err) ? err.code : undefined,
        });
      },
    });
    if (result.ok) return result.value;
    const err = failedWith(result.failure);
    if (err !== undefined) throw err;
    throw new Ending({
      kind: 'abandon',
      waitMs: 0,
      why:
        result.end === 'noRoom' ? 'no Direct Line call fits before the session lock deadline' : 'the stage is stopping',
    });
  }
}

function isGone(err: unknown): boolean {
  return isDirectLineError(err) && err.code === 'DirectLineConversationGone';
}

function conversationOf(state: ConversationState): DirectLineConversation {
  return { conversationId: state.conversationId, token: state.token, tokenExpiresAt: state.tokenExpiresAt };
}

function relayIdOf(activity: DirectLineActivity): string | undefined {
  const id = activity.channelData?.['relayMessageId'];
  return typeof id === 'string' ? id : undefined;
}

/**
 * `channelData.customercontext`: who the customer is, for Omnichannel to find the contact: the phone number on an SMS
 * (Twilio) channel, the chat id on Telegram, the address on a contract channel.
 */
export function customerContext(channel: Channel, customer: string): Record<string, string> {
  switch (channel.provider.type) {
    case 'twilio':
      return { phone: customer };
    case 'telegram':
      return { telegram: customer };
    default:
      return { address: customer };
  }
}
