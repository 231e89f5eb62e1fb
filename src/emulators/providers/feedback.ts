/**
 * What happens after a provider accepted a message: its fate (delivered, not delivered, read), drawn per message
 * from a seeded generator, and what its recipient does (opens links, replies with a keyword or the opt-out word),
 * turned into each provider's callbacks:
 *
 * - Twilio: form-encoded status callbacks to the message's `StatusCallback`, signed with `X-Twilio-Signature`
 *   (the auth token the send authenticated with, or `twilio.signing.sharedKey`); inbound SMS to `twilio.inboundUrls[<sender>]`, signed with the
 *   account's newest auth token. Each status is applied to the fetchable Message resource before its callback
 *   (at once when no callback is sent), and each inbound SMS is remembered (TwilioApi `received`).
 * - Telegram: `Update` objects POSTed to the bot's webhook (`setWebhook`), with `X-Telegram-Bot-Api-Secret-Token`
 *   when a secret token was set; `update_id` increasing per bot.
 * - Contract: JSON delivery reports and inbound messages, signed with Standard Webhooks (src/providers' signer)
 *   with `contract.callbackSecrets` (default: `contract.secrets`).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';
import type { Callback, CallbackEngine, ResolvedRecipients } from './callbacks.js';
import { seededRandom } from './faults.js';
import { signStandardWebhook } from './standard-webhooks.js';
import type { SimulatedMessage } from './records.js';
import type { ResolvedContract } from './contract.js';
import type { TelegramApi } from './telegram.js';
import { smsSegments, type ResolvedTwilio, type TwilioApi, type TwilioSigning } from './twilio.js';

/**
 * `X-Twilio-Signature` of a form POST: base64(HMAC(secret, URL + each parameter's name and value, sorted by name)),
 * HMAC-SHA1 unless `algorithm` says otherwise. Written here, apart from the relay's verifier, so that each checks the
 * other. The parameters are grouped in one pass; the simulator never repeats a name.
 */
export function signTwilio(
  secret: string,
  url: string,
  params: URLSearchParams,
  algorithm: 'HMAC_SHA1' | 'HMAC_SHA256' = 'HMAC_SHA1',
): string {
  const byName = new Map<string, string[]>();
  for (const [name, value] of params) byName.set(name, [...(byName.get(name) ?? []), value]);
  let data = url;
  for (const name of [...byName.keys()].sort()) for (const value of byName.get(name)!.sort()) data += name + value;
  return createHmac(algorithm === 'HMAC_SHA256' ? 'sha256' : 'sha1', secret)
    .update(data, 'utf8')
    .digest('base64');
}

/** The URL a signature covers, in the form `twilio.signing.url` picks (see TwilioSigning in twilio.ts). */
function signedUrlForm(url: string, form: NonNullable<TwilioSigning['url']>): string {
  const u = new URL(url);
  const rest = `${u.pathname}${u.search}`;
  switch (form) {
    case 'as-called':
      return url;
    case 'port-removed':
      return `${u.protocol}//${u.hostname}${rest}`;
    case 'default-port-added':
      return u.port === '' ? `${u.protocol}//${u.hostname}:${u.protocol === 'https:' ? 443 : 80}${rest}` : url;
    case 'legacy-query':
      return u.search === ''
        ? url
        : `${u.protocol}//${u.host}${u.pathname}?${stringifyQuery(parseQuery(u.search.slice(1)))}`;
  }
}

/** The signature headers of a Twilio callback, as `signing` says (the auth token, or a SharedKey with its settings header). */
function twilioSignatureHeaders(
  signing: TwilioSigning,
  authToken: string,
  url: string,
  params: URLSearchParams,
): Record<string, string> {
  const signed = signedUrlForm(url, signing.url ?? 'as-called');
  const key = signing.sharedKey;
  if (key === undefined) return { 'X-Twilio-Signature': signTwilio(authToken, signed, params) };
  return {
    'X-Twilio-Signature': signTwilio(key.secret, signed, params, key.algorithm),
    'X-Twilio-Webhooks-Signature-Settings': `key=${key.sid},algorithm=${key.algorithm}`,
  };
}

const LINK = /https?:\/\/[^\s<>"']+/g;

/** The http(s) links of a text, in order, without trailing punctuation. */
export function linksOf(text: string): string[] {
  return [...text.matchAll(LINK)].map((m) => m[0].replace(/[.,;:!?)\]}]+$/, ''));
}

/** What a recipient does with one delivered message. */
interface RecipientPlan {
  clicks: Array<{ index: number; url: string }>;
  reply?: { text: string; intent: 'keyword' | 'stop' };
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.min(items.length - 1, Math.floor(random() * items.length))]!;
}

export interface FeedbackDeps {
  engine: CallbackEngine;
  recipients: ResolvedRecipients;
  twilio: { options: ResolvedTwilio; api: TwilioApi };
  telegram: TelegramApi;
  contract: ResolvedContract;
  clock: () => number;
  seed: number;
  /** Recipients who do not act on what they receive as `recipients` says (simulated customers act on their own). @defaultValue none */
  actsOnItsOwn?: (recipient: string) => boolean;
  onError: (err: unknown) => void;
}

/** A file of a Telegram message a simulated customer writes (from `addMedia`). */
export interface CustomerTelegramFile {
  kind: 'photo' | 'document' | 'voice' | 'video';
  fileId: string;
  size: number;
  mimeType?: string;
  fileName?: string;
}

/**
 * A message a simulated customer writes on their own, not a reply to a message sent (a customer starting or going
 * on with a conversation): Twilio, an inbound SMS or MMS to the inbound URL of `to` (`twilio.inboundUrls`), signed
 * like the replies; Telegram, a message update to the bot's webhook.
 */
export type CustomerMessage =
  | {
      provider: 'twilio';
      account: string;
      from: string;
      to: string;
      text: string;
      media?: Array<{ url: string; contentType: string }>;
      /** The MessageSid (the media's URLs name it). @defaultValue a new `SM…`, `MM…` with media */
      sid?: string;
      /** The auth token that signs it. @defaultValue the account's (`twilio.authTokens`, else its newest send's) */
      authToken?: string;
    }
  | { provider: 'telegram'; botId: string; chatId: string; text: string; files?: CustomerTelegramFile[] };

/** Plans and starts the callbacks of each accepted message. */
export class Feedback {
  readonly #deps: FeedbackDeps;
  #sequence = 0;
  readonly #updateIds = new Map<string, number>();
  readonly #pendingUpdates = new Map<string, number>();
  readonly #ids: () => number;

  constructor(deps: FeedbackDeps) {
    this.#deps = deps;
    this.#ids = seededRandom(deps.seed ^ 0x5eed);
  }

  /**
   * Sends a {@link CustomerMessage} at once (through the callbacks engine: its retries and repeats apply; kind
   * `inbound` or `update`). Its provider id (Twilio `MessageSid`, Telegram `chat_id:message_id`), or undefined when
   * it has nowhere to go (no inbound URL for `to`, no auth token for the account, no webhook: counted unroutable).
   */
  customerMessage(c: CustomerMessage): string | undefined {
    const engine = this.#deps.engine;
    this.#sequence += 1;
    const random = seededRandom((Math.imul(this.#deps.seed, 0x9e3779b1) + this.#sequence) >>> 0);
    const summary = { text: c.text, intent: 'customer' };
    if (c.provider === 'twilio') {
      const url = this.#deps.twilio.options.inboundUrls[c.to];
      const token = c.authToken ?? this.#deps.twilio.api.authTokenOf(c.account);
      if (url === undefined || token === undefined) {
        engine.unroutable('inbound');
        return undefined;
      }
      const media = c.media ?? [];
      const sid = c.sid ?? `${media.length > 0 ? 'MM' : 'SM'}${randomBytes(16).toString('hex')}`;
      const params = new URLSearchParams({
        AccountSid: c.account,
        ApiVersion: '2010-04-01',
        Body: c.text,
        From: c.from,
        MessageSid: sid,
        NumMedia: String(media.length),
        NumSegments: String(smsSegments(c.text)),
        SmsMessageSid: sid,
        SmsSid: sid,
        SmsStatus: 'received',
        To: c.to,
      });
      media.forEach((m, n) => {
        params.set(`MediaContentType${n}`, m.contentType);
        params.set(`MediaUrl${n}`, m.url);
      });
      if (/^MG[0-9a-fA-F]{32}$/.test(c.to)) params.set('MessagingServiceSid', c.to);
      this.#deps.twilio.api.received({
        sid,
        accountSid: c.account,
        from: c.from,
        to: c.to,
        body: c.text,
        time: this.#deps.clock(),
        intent: 'customer',
        ...(media.length > 0 ? { media } : {}),
      });
      const target = url.replace(/#.*$/, '');
      const signature = twilioSignatureHeaders(this.#deps.twilio.options.signing, token, target, params);
      const cb: Callback = {
        provider: 'twilio',
        kind: 'inbound',
        method: 'POST',
        url: target,
        headers: () => ({ 'Content-Type': 'application/x-www-form-urlencoded', ...signature }),
        body: params.toString(),
        retry: 'connection',
        providerMessageId: sid,
        recipient: c.to,
        summary,
      };
      engine.run(() => engine.deliver(cb, random), this.#deps.onError);
      return sid;
    }
    const chatId = /^-?\d+$/.test(c.chatId) ? Number(c.chatId) : c.chatId;
    const fileFields: Record<string, unknown> = {};
    for (const f of c.files ?? []) {
      const base = { file_id: f.fileId, file_unique_id: f.fileId.slice(-16), file_size: f.size };
      const typed = { ...base, ...(f.mimeType === undefined ? {} : { mime_type: f.mimeType }) };
      if (f.kind === 'photo') fileFields['photo'] = [{ ...base, width: 1280, height: 960 }];
      else if (f.kind === 'document')
        fileFields['document'] = { ...typed, ...(f.fileName === undefined ? {} : { file_name: f.fileName }) };
      else if (f.kind === 'voice') fileFields['voice'] = { ...typed, duration: 3 };
      else fileFields['video'] = { ...typed, duration: 3, width: 640, height: 480 };
    }
    const files = Object.keys(fileFields).length > 0;
    const made = this.#telegramUpdate(
      c.botId,
      c.chatId,
      () => ({
        from: { id: typeof chatId === 'number' ? chatId : 700_000_001, is_bot: false, first_name: 'Customer' },
        chat: { id: chatId, first_name: 'Customer', type: 'private' },
        content: files ? { ...fileFields, ...(c.text === '' ? {} : { caption: c.text }) } : { text: c.text },
      }),
      (messageId) => ({ providerMessageId: `${c.chatId}:${messageId}`, recipient: c.chatId }),
      summary,
    );
    if (made === undefined) return undefined;
    engine.run(() => engine.deliver(made.callback, random), this.#deps.onError);
    return `${c.chatId}:${made.messageId}`;
  }

  /**
   * A Telegram update from a chat to a bot's webhook, as Telegram delivers it: `update_id` increasing per bot, the
   * next `message_id` of the chat, the secret token header when the webhook set one, counted in the bot's pending
   * updates until delivered or given up. Undefined (counted as unroutable) when the bot has no webhook. `message` is
   * called after the update id is drawn (the seeded ids come in the same order as before).
   */
  #telegramUpdate(
    botId: string,
    chatKey: string,
    message: () => { from: unknown; chat: unknown; content: Record<string, unknown> },
    belongs: (messageId: number) => Pick<Callback, 'providerMessageId' | 'idempotencyKey' | 'recipient'>,
    summary: Record<string, string>,
  ): { callback: Callback; messageId: number } | undefined {
    const hook = this.#deps.telegram.webhookOf(botId);
    if (hook === undefined) {
      this.#deps.engine.unroutable('update');
      return undefined;
    }
    const updateId = (this.#updateIds.get(botId) ?? 100_000_000 + Math.floor(this.#ids() * 800_000_000)) + 1;
    this.#updateIds.set(botId, updateId);
    const { from, chat, content } = message();
    const messageId = this.#deps.telegram.nextMessageId(botId, chatKey);
    const date = Math.floor(this.#deps.clock() / 1000);
    const update = { update_id: updateId, message: { message_id: messageId, from, chat, date, ...content } };
    const pending = (d: number): void => {
      const n = (this.#pendingUpdates.get(botId) ?? 0) + d;
      if (n <= 0) this.#pendingUpdates.delete(botId);
      else this.#pendingUpdates.set(botId, n);
    };
    pending(1);
    const secret = hook.secretToken;
    const callback: Callback = {
      provider: 'telegram',
      kind: 'update',
      method: 'POST',
      url: hook.url,
      headers: () => ({
        'Content-Type': 'application/json',
        ...(secret === undefined ? {} : { 'X-Telegram-Bot-Api-Secret-Token': secret }),
      }),
      body: JSON.stringify(update),
      retry: 'any',
      ...belongs(messageId),
      summary: { ...summary, updateId: String(updateId) },
      onFinal: (ok, error, time) => {
        pending(-1);
        if (!ok) this.#deps.telegram.webhookFailed(botId, time, error ?? 'failed');
      },
    };
    return { callback, messageId };
  }

  /** Telegram updates scheduled or in flight for a bot (getWebhookInfo's `pending_update_count`). */
  pendingUpdates(botId: string): number {
    return this.#pendingUpdates.get(botId) ?? 0;
  }

  #recipientPlan(text: string, random: () => number): RecipientPlan {
    const r = this.#deps.recipients;
    const clicks = linksOf(text)
      .map((url, index) => ({ url, index, click: random() < r.clickRate }))
      .filter((c) => c.click)
      .map(({ url, index }) => ({ url, index }));
    const draw = random();
    const keyword = r.keywords.length > 0 ? pick(r.keywords, random) : undefined;
    if (draw < r.stopRate) return { clicks, reply: { text: r.stopWord, intent: 'stop' } };
    if (draw < r.stopRate + r.replyRate && keyword !== undefined)
      return { clicks, reply: { text: keyword, intent: 'keyword' } };
    return { clicks };
  }

  #click(m: SimulatedMessage, link: { index: number; url: string }): Callback {
    return {
      provider: m.provider,
      kind: 'click',
      method: 'GET',
      url: link.url,
      headers: () => ({ 'User-Agent': 'Mozilla/5.0 (channel-relay simulated recipient)' }),
      retry: 'none',
      ...this.#belongs(m),
      summary: { link: String(link.index) },
    };
  }

  #belongs(m: SimulatedMessage): Pick<Callback, 'providerMessageId' | 'idempotencyKey' | 'recipient'> {
    return {
      providerMessageId: m.providerMessageId,
      recipient: m.recipient,
      ...(m.idempotencyKey === undefined ? {} : { idempotencyKey: m.idempotencyKey }),
    };
  }

  /** Starts the callbacks of an accepted message; `authToken` is the Twilio password its send carried. */
  accepted(m: SimulatedMessage, authToken?: string): void {
    const engine = this.#deps.engine;
    if (engine.closed) return;
    this.#sequence += 1;
    // One generator per message, seeded from the seed and the acceptance order: a message's fate does not depend
    // on how other messages' callbacks interleave.
    const random = seededRandom((Math.imul(this.#deps.seed, 0x9e3779b1) + this.#sequence) >>> 0);
    const o = engine.options;
    const delivered = !(random() < o.undeliveredRate);
    const read = delivered && random() < o.readRate;
    const plan: RecipientPlan = this.#deps.actsOnItsOwn?.(m.recipient)
      ? { clicks: [] }
      : this.#recipientPlan(m.text, random);
    const acts = delivered && (plan.clicks.length > 0 || plan.reply !== undefined);
    const run = (script: () => Promise<void>): void => engine.run(script, this.#deps.onError);
    if (m.provider === 'twilio') {
      const t = this.#deps.twilio.options;
      const statuses = m.statusCallback !== undefined && t.statusCallbacks;
      const drawnFailure = !delivered && random() < t.failedShare;
      const drawnCode = pick(t.errorCodes, random);
      // Past its ValidityPeriod in the sender's queue: never sent, failed with 30001 (twilio.com/docs/api/errors/30001).
      const expired = m.expiresAfterMs !== undefined;
      const failed = expired || drawnFailure;
      const errorCode = expired ? 30001 : drawnCode;
      const sequence = this.#twilioStatuses(m, failed, delivered && !expired, read && !expired);
      if (!statuses) {
        // No status callbacks to pace it: the fetched status is the message's final one at once.
        const now = this.#deps.clock();
        for (const status of sequence) this.#deps.twilio.api.advance(m.providerMessageId, status, now, errorCode);
        if (!acts || expired) return;
      }
      const waitMs = m.expiresAfterMs ?? m.queuedMs ?? 0;
      run(() =>
        this.#twilio(m, {
          statuses,
          sequence,
          delivered: delivered && !expired,
          errorCode,
          waitMs,
          plan,
          random,
          ...(authToken === undefined ? {} : { authToken }),
        }),
      );
    } else if (m.provider === 'telegram') {
      if (!plan.reply && plan.clicks.length === 0) return;
      run(() => this.#telegram(m, plan, random));
    } else {
      const c = this.#deps.contract;
      const reportsUrl = c.channelUrls[m.channel]?.reportsUrl ?? c.reportsUrl;
      if (reportsUrl === undefined && !acts) return;
      run(() =>
        this.#contract(m, { delivered, read, plan, random, ...(reportsUrl === undefined ? {} : { reportsUrl }) }),
      );
    }
  }

  async #recipient(
    m: SimulatedMessage,
    plan: RecipientPlan,
    random: () => number,
    reply: (text: string, intent: string) => Callback | undefined,
  ): Promise<void> {
    const engine = this.#deps.engine;
    for (const link of plan.clicks) {
      await engine.sleep(engine.delay(random));
      await engine.deliver(this.#click(m, link), random);
    }
    if (plan.reply) {
      await engine.sleep(engine.delay(random));
      const cb = reply(plan.reply.text, plan.reply.intent);
      if (cb) await engine.deliver(cb, random);
    }
  }

  /** The statuses a Twilio message goes through after its send (each one a status callback). */
  #twilioStatuses(m: SimulatedMessage, failed: boolean, delivered: boolean, read: boolean): string[] {
    const viaService = m.sender.startsWith('MG');
    const sequence: string[] = [];
    if (this.#deps.twilio.options.initialStatusCallback) sequence.push(viaService ? 'accepted' : 'queued');
    if (viaService) sequence.push('queued');
    if (failed) sequence.push('failed');
    else sequence.push('sent', delivered ? 'delivered' : 'undelivered');
    if (read) sequence.push('read');
    return sequence;
  }

  async #twilio(
    m: SimulatedMessage,
    f: {
      statuses: boolean;
      sequence: string[];
      delivered: boolean;
      errorCode: number;
      waitMs: number;
      plan: RecipientPlan;
      random: () => number;
      authToken?: string;
    },
  ): Promise<void> {
    const engine = this.#deps.engine;
    const api = this.#deps.twilio.api;
    const viaService = m.sender.startsWith('MG');
    const token = f.authToken ?? api.authTokenOf(m.channel);
    let queued = f.waitMs;
    for (const status of f.statuses ? f.sequence : []) {
      // The first status after the send also waits the message's time in the sender's queue.
      await engine.sleep(engine.delay(f.random) + queued);
      queued = 0;
      // The resource changes first, then Twilio calls back: a fetch on the callback sees the status it reports.
      api.advance(m.providerMessageId, status, this.#deps.clock(), f.errorCode);
      if (token === undefined) {
        engine.unroutable('status');
        continue;
      }
      const params = new URLSearchParams({
        AccountSid: m.channel,
        ApiVersion: '2010-04-01',
        MessageSid: m.providerMessageId,
        MessageStatus: status,
        SmsSid: m.providerMessageId,
        SmsStatus: status,
        To: m.recipient,
      });
      if (viaService) params.set('MessagingServiceSid', m.sender);
      else params.set('From', m.sender);
      const failure = status === 'failed' || status === 'undelivered';
      if (failure) params.set('ErrorCode', String(f.errorCode));
      const url = m.statusCallback!.replace(/#.*$/, '');
      const body = params.toString();
      const signature = twilioSignatureHeaders(this.#deps.twilio.options.signing, token, url, params);
      await engine.deliver(
        {
          provider: 'twilio',
          kind: 'status',
          method: 'POST',
          url,
          headers: () => ({
            'Content-Type': 'application/x-www-form-urlencoded',
            ...signature,
            'User-Agent': 'TwilioProxy/1.1',
          }),
          body,
          retry: 'connection',
          ...this.#belongs(m),
          summary: { status, ...(failure ? { errorCode: String(f.errorCode) } : {}) },
        },
        f.random,
      );
    }
    if (!f.delivered) return;
    await this.#recipient(m, f.plan, f.random, (text, intent) => {
      const url = this.#deps.twilio.options.inboundUrls[m.sender];
      const inboundToken = api.authTokenOf(m.channel) ?? f.authToken;
      if (url === undefined || inboundToken === undefined) {
        engine.unroutable('inbound');
        return undefined;
      }
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const params = new URLSearchParams({
        AccountSid: m.channel,
        ApiVersion: '2010-04-01',
        Body: text,
        From: m.recipient,
        MessageSid: sid,
        NumMedia: '0',
        NumSegments: String(smsSegments(text)),
        SmsMessageSid: sid,
        SmsSid: sid,
        SmsStatus: 'received',
        To: m.sender,
      });
      if (viaService) params.set('MessagingServiceSid', m.sender);
      api.received({
        sid,
        accountSid: m.channel,
        from: m.recipient,
        to: m.sender,
        body: text,
        time: this.#deps.clock(),
        inReplyTo: m.providerMessageId,
        intent: intent === 'stop' ? 'stop' : 'keyword',
      });
      const target = url.replace(/#.*$/, '');
      const signature = twilioSignatureHeaders(this.#deps.twilio.options.signing, inboundToken, target, params);
      return {
        provider: 'twilio',
        kind: 'inbound',
        method: 'POST',
        url: target,
        headers: () => ({
          'Content-Type': 'application/x-www-form-urlencoded',
          ...signature,
          'User-Agent': 'TwilioProxy/1.1',
        }),
        body: params.toString(),
        retry: 'connection',
        ...this.#belongs(m),
        summary: { text, intent },
      };
    });
  }

  async #telegram(m: SimulatedMessage, plan: RecipientPlan, random: () => number): Promise<void> {
    await this.#recipient(m, plan, random, (text, intent) => {
      const chatId = /^-?\d+$/.test(m.recipient) ? Number(m.recipient) : m.recipient;
      const privateChat = typeof chatId === 'number' && chatId > 0;
      return this.#telegramUpdate(
        m.sender,
        m.recipient,
        () => ({
          from: {
            id: privateChat ? chatId : 700_000_000 + Math.floor(this.#ids() * 100_000_000),
            is_bot: false,
            first_name: 'Contact',
            language_code: 'en',
          },
          chat: privateChat
            ? { id: chatId, first_name: 'Contact', type: 'private' }
            : { id: chatId, title: 'Group', type: 'group' },
          content: { text },
        }),
        () => this.#belongs(m),
        { text, intent },
      )?.callback;
    });
  }

  #contractCallback(
    m: SimulatedMessage,
    kind: 'report' | 'inbound',
    url: string,
    payload: Record<string, unknown>,
    summary: Record<string, string>,
  ): Callback {
    const c = this.#deps.contract;
    const body = JSON.stringify(payload);
    const id = `msg_${randomUUID().replace(/-/g, '')}`;
    const secrets = c.callbackSecrets ?? c.secrets ?? [];
    return {
      provider: 'contract',
      kind,
      method: 'POST',
      url,
      // A retry or a repeat keeps the webhook-id and is stamped and signed anew, as Standard Webhooks senders do.
      headers: () => ({
        'Content-Type': 'application/json',
        ...signStandardWebhook(secrets, id, body, this.#deps.clock() / 1000),
      }),
      body,
      retry: 'any',
      ...this.#belongs(m),
      summary,
    };
  }

  async #contract(
    m: SimulatedMessage,
    f: { reportsUrl?: string; delivered: boolean; read: boolean; plan: RecipientPlan; random: () => number },
  ): Promise<void> {
    const engine = this.#deps.engine;
    const echo = m.channelDefinitionId === undefined ? {} : { ChannelDefinitionId: m.channelDefinitionId };
    const report = async (status: string, details: Record<string, unknown>): Promise<void> => {
      await engine.sleep(engine.delay(f.random));
      if (f.reportsUrl === undefined) return;
      const payload = {
        ...echo,
        RequestId: m.idempotencyKey,
        MessageId: m.providerMessageId,
        From: m.sender,
        Status: status,
        StatusDetails: details,
      };
      await engine.deliver(this.#contractCallback(m, 'report', f.reportsUrl, payload, { status }), f.random);
    };
    if (f.reportsUrl === undefined) engine.unroutable('report');
    await report(f.delivered ? 'Delivered' : 'NotDelivered', f.delivered ? {} : { reason: 'RecipientUnreachable' });
    if (!f.delivered) return;
    if (f.read) await report('Read', {});
    await this.#recipient(m, f.plan, f.random, (text, intent) => {
      const c = this.#deps.contract;
      const url = c.channelUrls[m.channel]?.inboundUrl ?? c.inboundUrl;
      if (url === undefined) {
        engine.unroutable('inbound');
        return undefined;
      }
      const payload = { ...echo, MessageId: randomUUID(), From: m.recipient, To: m.sender, Message: { text } };
      return this.#contractCallback(m, 'inbound', url, payload, { text, intent });
    });
  }
}
