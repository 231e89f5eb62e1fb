/**
 * Simulated customers who start and hold conversations on a Twilio number: each one (its own phone number) sends the
 * number's inbound URL a first SMS, waits for a message from the number (an agent's reply reaching it through the
 * Messages API), thinks, writes the next, and so on up to its messages or until it receives the survey link. Every
 * k-th message is an MMS whose media the simulators serve. Each message is the simulators' `customerMessage` (signed
 * as every simulated inbound SMS, through the callback engine: its log, retries and repeats).
 */
import type { CallbackEngine } from './callbacks.js';
import type { MediaItem } from './media.js';
import type { SimulatedMessage } from './records.js';
import type { ResolvedTwilio, TwilioApi } from './twilio.js';

export interface ConversationsOptions {
  /** The account (`AccountSid`) the number belongs to: the webhooks' `AccountSid`, and whose auth token signs them. */
  accountSid: string;
  /** The Twilio number (or short code) the customers write to; it needs an inbound URL (`twilio.inboundUrls`). */
  sender: string;
  /** How many customers start a conversation, at once. */
  customers: number;
  /** Messages each customer writes at most (fewer when the conversation ends first). */
  messagesPerCustomer: number;
  /** Every k-th message of a customer is an MMS with one image; 0: none. @defaultValue 0 */
  attachmentEvery?: number;
  /** Wait between receiving a message and writing the next, ms. @defaultValue 100 */
  thinkMs?: number;
  /** How long a customer waits for a message from the number before it gives up (state `stalled`), ms. @defaultValue 60000 */
  replyTimeoutMs?: number;
  /**
   * The auth token that signs the webhooks. @defaultValue the account's (`twilio.authTokens`, else the password of
   * its newest send); one is required
   */
  authToken?: string;
  /** A received message whose text matches this ends the customer's conversation. @defaultValue an http(s) link */
  surveyPattern?: RegExp;
}

/** What a customer is doing. */
export type CustomerState = 'writing' | 'waiting' | 'thinking' | 'done' | 'ended' | 'stalled';

export interface WrittenMessage {
  /** 1, 2, … in the order written. */
  seq: number;
  /** The webhook's `MessageSid` (`SM…`, `MM…` for an MMS; also fetchable as an inbound Message). */
  sid: string;
  text: string;
  /** Files sent with it (an MMS's `NumMedia`). */
  files: number;
  /** When it was sent, ms since the epoch (the simulators' clock). */
  time: number;
}

export interface ReceivedMessage {
  /** The message's `SM…` sid. */
  sid: string;
  text: string;
  /** `MediaUrl`s it carried. */
  media?: string[];
  time: number;
}

/** One simulated customer: what it wrote and what it received, in order. */
export interface SimulatedCustomer {
  /** `c1`, `c2`, … (numbered across every `startConversations`). */
  name: string;
  /** Its phone number (E.164). */
  phone: string;
  accountSid: string;
  sender: string;
  state: CustomerState;
  written: WrittenMessage[];
  received: ReceivedMessage[];
  /** Whether it received the survey link (its conversation ended). */
  ended: boolean;
}

export interface CustomerStats {
  customers: number;
  /** Customers still writing, waiting or thinking. */
  active: number;
  written: number;
  /** Of those, MMS. */
  attachments: number;
  received: number;
  /** Customers who received the survey link. */
  ended: number;
  /** Customers who gave up waiting for a message. */
  stalled: number;
}

export interface CustomersDeps {
  engine: CallbackEngine;
  twilio: { options: ResolvedTwilio; api: TwilioApi };
  clock: () => number;
  /** The simulators' `customerMessage` (Twilio): sends it, answers its `MessageSid` (undefined: nowhere to go). */
  send: (m: {
    account: string;
    from: string;
    to: string;
    text: string;
    files: MediaItem[];
    authToken: string;
  }) => string | undefined;
  onError: (err: unknown) => void;
}

/** Options as `startConversations` checked them. */
type Resolved = Required<Omit<ConversationsOptions, 'authToken'>> & { authToken: string };

/** A 1×1 PNG: the file of every customer MMS. */
const CUSTOMER_PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

const shown = (v: unknown): string =>
  v === undefined ? 'undefined' : v instanceof RegExp ? String(v) : JSON.stringify(v);
const whole = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** The simulated customers of every `startConversations`, and their record. */
export class Customers {
  readonly #deps: CustomersDeps;
  readonly #all: SimulatedCustomer[] = [];
  /** Wakes a customer waiting for a message (true) or stops it (false), by phone. */
  readonly #waiting = new Map<string, (ok: boolean) => void>();
  readonly #phones = new Set<string>();
  readonly #byKey = new Map<string, { c: SimulatedCustomer; surveyPattern: RegExp }>();
  #running = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(deps: CustomersDeps) {
    this.#deps = deps;
  }

  #resolve(options: ConversationsOptions): Resolved {
    const o = (options ?? {}) as Partial<ConversationsOptions>;
    const problems: string[] = [];
    if (typeof o.accountSid !== 'string' || o.accountSid === '')
      problems.push(`accountSid: expected an AccountSid, found ${shown(o.accountSid)}`);
    const inboundUrl = typeof o.sender === 'string' ? this.#deps.twilio.options.inboundUrls[o.sender] : undefined;
    if (inboundUrl === undefined)
      problems.push(`sender: expected a number with an inbound URL (twilio.inboundUrls), found ${shown(o.sender)}`);
    if (!whole(o.customers, 1)) problems.push(`customers: expected an integer >= 1, found ${shown(o.customers)}`);
    if (!whole(o.messagesPerCustomer, 1))
      problems.push(`messagesPerCustomer: expected an integer >= 1, found ${shown(o.messagesPerCustomer)}`);
    const attachmentEvery = o.attachmentEvery ?? 0;
    if (!whole(attachmentEvery, 0))
      problems.push(`attachmentEvery: expected an integer >= 0, found ${shown(o.attachmentEvery)}`);
    const thinkMs = o.thinkMs ?? 100;
    if (!whole(thinkMs, 0)) problems.push(`thinkMs: expected whole ms >= 0, found ${shown(o.thinkMs)}`);
    const replyTimeoutMs = o.replyTimeoutMs ?? 60_000;
    if (!whole(replyTimeoutMs, 1))
      problems.push(`replyTimeoutMs: expected whole ms >= 1, found ${shown(o.replyTimeoutMs)}`);
    const surveyPattern = o.surveyPattern ?? /https?:\/\/\S+/;
    if (!(surveyPattern instanceof RegExp))
      problems.push(`surveyPattern: expected a RegExp, found ${shown(o.surveyPattern)}`);
    const authToken =
      o.authToken ?? (typeof o.accountSid === 'string' ? this.#deps.twilio.api.authTokenOf(o.accountSid) : undefined);
    if (typeof authToken !== 'string' || authToken === '')
      problems.push(
        `authToken: expected the auth token of ${shown(o.accountSid)} (given, in twilio.authTokens, or from a send), found none`,
      );
    if (problems.length > 0) throw new TypeError(`startConversations: ${problems.join('; ')}`);
    return {
      accountSid: o.accountSid!,
      sender: o.sender!,
      customers: o.customers!,
      messagesPerCustomer: o.messagesPerCustomer!,
      attachmentEvery,
      thinkMs,
      replyTimeoutMs,
      surveyPattern,
      authToken: authToken!,
    };
  }

  /** Starts `customers` new customers (each with a new number); throws a TypeError naming each bad option. */
  start(options: ConversationsOptions): SimulatedCustomer[] {
    const o = this.#resolve(options);
    if (this.#deps.engine.closed) return [];
    const started: SimulatedCustomer[] = [];
    for (let i = 0; i < o.customers; i++) {
      const n = this.#all.length + 1;
      const c: SimulatedCustomer = {
        name: `c${n}`,
        phone: `+4917${String(n).padStart(9, '0')}`,
        accountSid: o.accountSid,
        sender: o.sender,
        state: 'writing',
        written: [],
        received: [],
        ended: false,
      };
      this.#all.push(c);
      this.#phones.add(c.phone);
      this.#byKey.set(`${c.sender}\0${c.phone}`, { c, surveyPattern: o.surveyPattern });
      started.push(c);
      this.#running += 1;
      this.#converse(c, o)
        .catch((err: unknown) => {
          if (!this.#deps.engine.closed) this.#deps.onError(err);
        })
        .finally(() => {
          this.#running -= 1;
          this.#checkIdle();
        });
    }
    return started.map((c) => structuredClone(c));
  }

  /** Whether `phone` is a simulated customer's (it neither clicks nor replies as `recipients` says). */
  isCustomer(phone: string): boolean {
    return this.#phones.has(phone);
  }

  /** A message the simulated Twilio accepted: a customer's when it goes from its conversation's number to it. */
  accepted(m: SimulatedMessage): void {
    if (m.provider !== 'twilio') return;
    const entry = this.#byKey.get(`${m.sender}\0${m.recipient}`);
    if (entry === undefined) return;
    const { c, surveyPattern } = entry;
    const media = (m as { attachments?: Array<{ url: string }> }).attachments?.map((a) => a.url);
    c.received.push({
      sid: m.providerMessageId,
      text: m.text,
      ...(media === undefined || media.length === 0 ? {} : { media }),
      time: m.time,
    });
    if (surveyPattern.test(m.text)) {
      c.ended = true;
      // The survey may come after the answer to the last message: it ends the conversation when it does.
      if (c.state === 'done') c.state = 'ended';
    }
    this.#waiting.get(c.phone)?.(true);
  }

  async #converse(c: SimulatedCustomer, o: Resolved): Promise<void> {
    for (let seq = 1; seq <= o.messagesPerCustomer; seq++) {
      const seen = c.received.length;
      c.state = 'writing';
      if (!this.#write(c, o, seq)) {
        c.state = 'stalled';
        return;
      }
      c.state = 'waiting';
      if (!(await this.#received(c, seen, o.replyTimeoutMs))) {
        if (!this.#deps.engine.closed) c.state = 'stalled';
        return;
      }
      if (c.ended) break;
      if (seq < o.messagesPerCustomer && o.thinkMs > 0) {
        c.state = 'thinking';
        await this.#deps.engine.sleep(o.thinkMs);
      }
    }
    c.state = c.ended ? 'ended' : 'done';
  }

  /** Resolves true once `c` has more than `seen` messages, false after `timeoutMs` or when the engine closes. */
  #received(c: SimulatedCustomer, seen: number, timeoutMs: number): Promise<boolean> {
    if (c.received.length > seen) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#waiting.delete(c.phone);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#waiting.set(c.phone, done);
    });
  }

  /** Sends message `seq` of `c`; false when it had nowhere to go (the simulators count it unroutable). */
  #write(c: SimulatedCustomer, o: Resolved, seq: number): boolean {
    const mms = o.attachmentEvery > 0 && seq % o.attachmentEvery === 0;
    const text = `${c.name} #${seq} message ${seq} of customer ${c.name.slice(1)}`;
    const files = mms ? [{ contentType: 'image/png', data: CUSTOMER_PNG, name: `${c.name}-${seq}.png` }] : [];
    const time = this.#deps.clock();
    const sid = this.#deps.send({
      account: o.accountSid,
      from: c.phone,
      to: o.sender,
      text,
      files,
      authToken: o.authToken,
    });
    if (sid === undefined) return false;
    c.written.push({ seq, sid, text, files: files.length, time });
    return true;
  }

  /** Every customer, oldest first (copies). */
  list(): SimulatedCustomer[] {
    return this.#all.map((c) => structuredClone(c));
  }

  stats(): CustomerStats {
    const count = (f: (c: SimulatedCustomer) => number): number => this.#all.reduce((n, c) => n + f(c), 0);
    return {
      customers: this.#all.length,
      active: count((c) => (['writing', 'waiting', 'thinking'].includes(c.state) ? 1 : 0)),
      written: count((c) => c.written.length),
      attachments: count((c) => c.written.filter((w) => w.files > 0).length),
      received: count((c) => c.received.length),
      ended: count((c) => (c.ended ? 1 : 0)),
      stalled: count((c) => (c.state === 'stalled' ? 1 : 0)),
    };
  }

  /** Resolves when no customer is writing, waiting or thinking (at once when none is). */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#running > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops every customer waiting for a message (the engine's close stops the rest). */
  close(): void {
    for (const stop of [...this.#waiting.values()]) stop(false);
  }
}
