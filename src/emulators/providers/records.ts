/** The simulators' message log and statistics. */
import { PROVIDERS, type SimulatedProvider } from './faults.js';
import { SlidingWindows } from './window.js';

/** One accepted message, as `GET /_simulator/messages` lists it. */
export interface SimulatedMessage {
  /** When the simulator accepted it, ms since the epoch (the simulator's clock). */
  time: number;
  provider: SimulatedProvider;
  /** Twilio: the AccountSid; Telegram: the bot id (the token's public part); contract: the `{channel}` path segment. */
  channel: string;
  /** The request path (a Telegram token's secret part replaced by `***`). */
  path: string;
  /** Twilio: `From` or `MessagingServiceSid`; Telegram: the bot id; contract: `From`. */
  sender: string;
  /** Twilio: `To`; Telegram: `chat_id`; contract: `To`. */
  recipient: string;
  /** Twilio: `Body`; Telegram: `text`; contract: the `Message` parts' values joined by a newline (media parts left out). */
  text: string;
  /**
   * Twilio: `I-Twilio-Idempotency-Token` (a key only with `honourIdempotencyToken`); Telegram: `X-Idempotency-Key`
   * (bookkeeping only, never a key); contract: `RequestId`.
   */
  idempotencyKey?: string;
  /** Twilio: the segments it counts (`num_segments`). */
  segments?: number;
  /** Twilio: how much later its last segment goes than from an idle sender (> 0: queued behind the sender's MPS). */
  queuedMs?: number;
  /** Twilio: it would wait in the queue past its ValidityPeriod: never sent, `failed` with ErrorCode 30001 this long after creation. */
  expiresAfterMs?: number;
  /** Twilio: the SID (`SM…`); Telegram: `message_id` as a string; contract: `MessageId`. */
  providerMessageId: string;
  /** Twilio: the `StatusCallback` URL given. */
  statusCallback?: string;
  /** Contract: `ChannelDefinitionId` and the `Message` parts. */
  channelDefinitionId?: string;
  parts?: Record<string, string>;
  /**
   * Files sent with it: Twilio, each `MediaUrl`; Telegram, the `photo` or `document` of a sendPhoto / sendDocument
   * (each its own message, `text` its caption); contract, the value of each of its `mediaParts`.
   */
  attachments?: Array<{ url: string; kind?: 'photo' | 'document' }>;
  /** Contract: whether the request carried Standard Webhooks headers, and whether they were verified (secrets configured). */
  signed?: boolean;
  verified?: boolean;
}

export interface MessageFilter {
  provider?: SimulatedProvider;
  sender?: string;
  recipient?: string;
}

/** Counts for one provider or one sender. */
export interface TrafficStats {
  /** Calls that reached the provider's API (every answer, including faults). */
  requests: number;
  /** New messages accepted (log entries). */
  accepted: number;
  /** Repeats answered from the idempotency record (contract RequestId; Twilio token only with `honourIdempotencyToken`): no new log entry. */
  duplicates: number;
  /** Accepted messages whose idempotency key an earlier log entry already had (Telegram, Twilio): sent again. */
  repeatedKeys: number;
  /** Refusals by the provider's code: Twilio `21211`…, Telegram `error_code`, contract `NotSent`, `400`, `401`. */
  rejected: Record<string, number>;
  /** 429 answers from the provider's limits (Telegram 30/s, 1/s per chat and 20/min per group, Twilio 20429, contract per sender). */
  rateLimited: number;
  /**
   * Twilio: segments of the messages that had to wait in the sender's queue (they arrived over its MPS, counted in
   * segments per 1000 ms window); a client within the limit causes none.
   */
  rateViolations: number;
  /** Twilio: segments of the messages accepted. */
  segments: number;
  /** Most messages accepted in any 1000 ms sliding window. */
  maxInAnyWindow: number;
  /** Most calls in flight at once, and how many are now. */
  concurrencyPeak: number;
  inFlight: number;
}

export interface ProviderStats extends TrafficStats {
  /** Injected faults: 5xx errors, 429s of a burst, held calls. */
  faults: { errors: number; rateLimitBursts: number; timeouts: number };
  senders: Record<string, TrafficStats>;
}

export type SimulatorStats = Record<SimulatedProvider, ProviderStats>;

function emptyTraffic(): TrafficStats {
  return {
    requests: 0,
    accepted: 0,
    duplicates: 0,
    repeatedKeys: 0,
    rejected: {},
    rateLimited: 0,
    rateViolations: 0,
    segments: 0,
    maxInAnyWindow: 0,
    concurrencyPeak: 0,
    inFlight: 0,
  };
}

function emptyProvider(): ProviderStats {
  return { ...emptyTraffic(), faults: { errors: 0, rateLimitBursts: 0, timeouts: 0 }, senders: {} };
}

export class Records {
  #messages: SimulatedMessage[] = [];
  #stats: SimulatorStats = this.#empty();
  #keys = new Map<SimulatedProvider, Set<string>>();
  readonly #windows: SlidingWindows;

  constructor(windowMs: number) {
    this.#windows = new SlidingWindows(windowMs);
  }

  #empty(): SimulatorStats {
    return Object.fromEntries(PROVIDERS.map((p) => [p, emptyProvider()])) as SimulatorStats;
  }

  provider(p: SimulatedProvider): ProviderStats {
    return this.#stats[p];
  }

  sender(p: SimulatedProvider, sender: string): TrafficStats {
    const senders = this.#stats[p].senders;
    return (senders[sender] ??= emptyTraffic());
  }

  /** Both counters a call touches: its provider's and (when known) its sender's. */
  both(p: SimulatedProvider, sender: string | undefined): TrafficStats[] {
    return sender === undefined ? [this.provider(p)] : [this.provider(p), this.sender(p, sender)];
  }

  reject(p: SimulatedProvider, sender: string | undefined, code: string | number): void {
    for (const s of this.both(p, sender)) s.rejected[String(code)] = (s.rejected[String(code)] ?? 0) + 1;
  }

  /** Marks a call in flight; returns the function that ends it. */
  enter(p: SimulatedProvider, sender?: string): () => void {
    for (const s of this.both(p, sender)) {
      s.inFlight += 1;
      if (s.inFlight > s.concurrencyPeak) s.concurrencyPeak = s.inFlight;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // Looked up again: a reset in between carried the counts in flight over to fresh counters.
      for (const s of this.both(p, sender)) s.inFlight = Math.max(0, s.inFlight - 1);
    };
  }

  /** Logs an accepted message and counts it (windows per provider and per sender). */
  accept(message: SimulatedMessage): void {
    this.#messages.push(message);
    const { provider, sender, time } = message;
    const providerMax = this.#windows.get(`${provider}\u0000*`).add(time);
    const senderMax = this.#windows.get(`${provider}\u0000${sender}`).add(time);
    const p = this.provider(provider);
    const s = this.sender(provider, sender);
    p.maxInAnyWindow = Math.max(p.maxInAnyWindow, providerMax);
    s.maxInAnyWindow = Math.max(s.maxInAnyWindow, senderMax);
    let repeated = false;
    if (message.idempotencyKey !== undefined) {
      let keys = this.#keys.get(provider);
      if (!keys) this.#keys.set(provider, (keys = new Set()));
      repeated = keys.has(message.idempotencyKey);
      keys.add(message.idempotencyKey);
    }
    for (const c of [p, s]) {
      c.accepted += 1;
      c.segments += message.segments ?? 0;
      if (repeated) c.repeatedKeys += 1;
    }
  }

  messages(filter: MessageFilter = {}): SimulatedMessage[] {
    return this.#messages
      .filter(
        (m) =>
          (filter.provider === undefined || m.provider === filter.provider) &&
          (filter.sender === undefined || m.sender === filter.sender) &&
          (filter.recipient === undefined || m.recipient === filter.recipient),
      )
      .map((m) => structuredClone(m));
  }

  /** A snapshot of the statistics. */
  stats(): SimulatorStats {
    return structuredClone(this.#stats);
  }

  /** Empties the log and the statistics (calls in flight stay counted in `inFlight`). */
  reset(): void {
    const before = this.#stats;
    this.#messages = [];
    this.#stats = this.#empty();
    this.#keys.clear();
    this.#windows.clear();
    for (const p of PROVIDERS) {
      this.#stats[p].inFlight = before[p].inFlight;
      for (const [sender, s] of Object.entries(before[p].senders))
        if (s.inFlight > 0) this.sender(p, sender).inFlight = s.inFlight;
    }
  }
}
