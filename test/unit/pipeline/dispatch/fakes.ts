/**
 * Fakes for the dispatch stage's unit tests: channels, a provider that records every call (time, recipient, key)
 * and answers as a test says, deliveries that record their settlement, an interactions sender, a session.
 */
import { getEventListeners } from 'node:events';
import { DEFAULT_OPT_IN_MAX_AGE_MS } from '../../../../src/channels/index.js';
import type { Channel, ChannelCallbacks } from '../../../../src/channels/types.js';
import { ProviderError } from '../../../../src/errors.js';
import type { ChannelLookup } from '../../../../src/pipeline/ports.js';
import { channelLookup } from '../../../helpers/channels.js';
import type { InteractionMessage, OutboundMessage } from '../../../../src/pipeline/messages.js';
import type { AcceptedSession, Delivery, InteractionSender } from '../../../../src/pipeline/ports.js';
import type { Provider, ProviderType, SendRequest, SendResult, SentQuery } from '../../../../src/providers/provider.js';

export const PHONE = '+15551234567';

export function channel(
  overrides: Partial<Omit<Channel, 'rateLimit'>> & { rateLimit?: Partial<Channel['rateLimit']> } = {},
): Channel {
  const { rateLimit, ...rest } = overrides;
  return {
    name: 'sms',
    provider: { type: 'twilio', accountSid: 'AC123', authToken: 'secret-token' },
    sender: '+15550000000',
    senderKey: 'twilio:+15550000000',
    addressField: 'mobilephone',
    textField: 'sample_text',
    failureResponseType: 'failed',
    timeoutMs: 10_000,
    ...rest,
    rateLimit: { messages: 5, intervalMs: 1000, concurrency: 10, perRecipientMs: 0, perGroupMs: 0, ...rateLimit },
  };
}

/** A channel's resolved `callbacks` settings (no link tracking, no keywords), with `overrides`. */
export function channelCallbacks(overrides: Partial<ChannelCallbacks> = {}): ChannelCallbacks {
  return {
    publicBaseUrl: 'https://relay.example/cb',
    trackLinks: false,
    optInMaxAgeMs: DEFAULT_OPT_IN_MAX_AGE_MS,
    keywords: {},
    optOutWords: ['STOP'],
    optInWords: ['START'],
    optOutConfirmation: '',
    optInConfirmation: '',
    deliveredResponseType: 'delivered',
    openedResponseType: 'opened',
    ...overrides,
  };
}

export function lookup(...channels: Channel[]): ChannelLookup {
  return channelLookup(channels);
}

let seq = 0;
export function outbound(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  seq++;
  const key = overrides.key ?? `row-${seq}`;
  return {
    v: 1,
    key,
    channel: 'sms',
    to: PHONE,
    text: 'hello',
    purpose: 'journey',
    context: {
      kind: 'marketing',
      // The tile's id, shared by the rows of a journey run; the key is the row id.
      activityId: 'tile-1',
      activityRowId: key,
      contactId: 'c-1',
      journeyId: 'j-1',
      iterationId: 'i-1',
      entityType: 'sample_message',
      entityId: 'm-1',
    },
    acceptedAt: 0,
    ...overrides,
  };
}

export type Settled =
  { kind: 'complete' } | { kind: 'abandon' } | { kind: 'deadLetter'; reason: string; description: string };

export interface FakeDelivery extends Delivery {
  settled: Settled[];
  /** Fake time of the first settlement. */
  settledAt?: number;
}

export function delivery(body: unknown, sessionId = 'twilio:+15550000000', deliveryCount = 1): FakeDelivery {
  const d: FakeDelivery = {
    body,
    messageId:
      typeof body === 'object' && body !== null && 'key' in body ? String((body as { key: unknown }).key) : undefined,
    contentType: 'application/json',
    applicationProperties: {},
    deliveryCount,
    sessionId,
    settled: [],
    complete: async () => settle({ kind: 'complete' }),
    abandon: async () => settle({ kind: 'abandon' }),
    deadLetter: async (reason, description) => settle({ kind: 'deadLetter', reason, description }),
  };
  function settle(s: Settled): void {
    d.settledAt ??= Date.now();
    d.settled.push(s);
  }
  return d;
}

export interface ProviderCall {
  /** When the call started and ended (fake time). */
  at: number;
  end: number;
  request: SendRequest;
}

/** Answers call `n` (1-based, per provider) with `answer(request, n)`; `latencyMs` of fake time per call. */
export class FakeProvider implements Provider {
  readonly calls: ProviderCall[] = [];
  #ids = 0;
  constructor(
    readonly type: ProviderType = 'twilio',
    private readonly answer: (request: SendRequest, n: number) => SendResult | Error | Promise<SendResult> = () => ({
      providerMessageId: '',
      status: 'queued',
    }),
    private readonly latencyMs = 30,
  ) {}

  async send(request: SendRequest): Promise<SendResult> {
    const call: ProviderCall = { at: Date.now(), end: Date.now(), request };
    this.calls.push(call);
    const n = this.calls.length;
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    call.end = Date.now();
    const answer = await this.answer(request, n);
    if (answer instanceof Error) throw answer;
    return { providerMessageId: answer.providerMessageId || `SM${++this.#ids}`, status: answer.status };
  }
}

/**
 * A provider that can be asked for a sent message (as Twilio): `find` answers each lookup as the list stands when it
 * is asked, 10 ms (fake time) before the answer arrives; `answer` answers each call.
 */
export class LookupProvider extends FakeProvider {
  readonly lookups: Array<SentQuery & { at: number }> = [];
  constructor(
    private readonly find: (q: SentQuery) => SendResult | undefined | Error,
    answer?: (request: SendRequest, n: number) => SendResult | Error | Promise<SendResult>,
  ) {
    super('twilio', answer);
  }
  async findSent(query: SentQuery): Promise<SendResult | undefined> {
    this.lookups.push({ ...query, at: Date.now() });
    const answer = this.find(query);
    await new Promise((r) => setTimeout(r, 10));
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

export const errors = {
  unavailable: (message = 'Service Unavailable') =>
    new ProviderError('ProviderUnavailable', message, { upstream: { status: 503, code: 20500 } }),
  timeout: () => new ProviderError('ProviderTimeout', 'twilio did not answer within 10000 ms'),
  rateLimited: (retryAfterMs?: number) =>
    new ProviderError('ProviderRateLimited', 'Too Many Requests', {
      upstream: { status: 429, code: 20429 },
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    }),
  rejected: () =>
    new ProviderError('ProviderRejected', `The 'To' number ${PHONE} is not a valid phone number.`, {
      upstream: { status: 400, code: 21211 },
    }),
  unauthorized: () =>
    new ProviderError('ProviderUnauthorized', 'Authenticate', { upstream: { status: 401, code: 20003 } }),
  /** What an adapter makes of an answer it cannot read: `status` 2xx (the provider took the request) or not. */
  badResponse: (status: number, body: unknown) =>
    new ProviderError(
      status >= 200 && status < 300 ? 'ProviderAnswerUnreadable' : 'ProviderBadResponse',
      `twilio answered ${status} without a message sid`,
      {
        upstream: { status, headers: { 'content-type': 'application/json' }, body },
      },
    ),
};

/** An interactions sender that records every send; `fail(n)` makes send number n (1-based) throw. */
export class FakeInteractions implements InteractionSender {
  readonly sends: Array<{ at: number; messages: Array<{ body: InteractionMessage; messageId: string }> }> = [];
  attempts = 0;
  constructor(private readonly fail: (n: number) => boolean = () => false) {}
  async send(
    messages: ReadonlyArray<{ body: InteractionMessage; messageId: string; sessionId?: string }>,
  ): Promise<void> {
    this.attempts++;
    if (this.fail(this.attempts)) throw new Error(`interactions unavailable (attempt ${this.attempts})`);
    this.sends.push({ at: Date.now(), messages: messages.map((m) => ({ body: m.body, messageId: m.messageId })) });
  }
  get all(): Array<{ body: InteractionMessage; messageId: string }> {
    return this.sends.flatMap((s) => s.messages);
  }
}

export function session(sessionId = 'twilio:+15550000000', state?: Buffer): AcceptedSession & { saved: Buffer[] } {
  const saved: Buffer[] = [];
  return {
    sessionId,
    state,
    saved,
    setState: async (s: Buffer) => {
      saved.push(s);
    },
  };
}

/**
 * The most calls a provider could count in one window of `windowMs`, wherever between its start and its end each
 * call's request arrived: the most calls whose [start, end] meets one window.
 */
export function worstCaseInWindow(calls: ReadonlyArray<{ at: number; end: number }>, windowMs: number): number {
  const points = calls.flatMap((c) => [c.at, c.end]);
  return Math.max(0, ...points.map((t) => calls.filter((c) => c.at < t + windowMs && c.end >= t).length));
}

/**
 * What a signal keeps of the work that used it: its `abort` listeners, and (Node 20 internals, 0 where absent) the
 * signals `AbortSignal.any` made from it, which it keeps for as long as it lives.
 */
export function signalTraces(signal: AbortSignal): { listeners: number; dependants: number } {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set =
    symbol === undefined ? undefined : (signal as unknown as Record<symbol, { size?: number } | undefined>)[symbol];
  return { listeners: getEventListeners(signal, 'abort').length, dependants: set?.size ?? 0 };
}
