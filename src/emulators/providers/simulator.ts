/** Starting and stopping the provider simulators: one `node:http` server for Twilio, Telegram and the contract. */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { CONTRACT_DEFAULTS, CONTRACT_PATH, ContractApi, type ContractOptions } from './contract.js';
import { lowerHeaders } from '../../http/index.js';
import {
  CALLBACK_DEFAULTS,
  CALLBACK_KINDS,
  callbackOptionsProblems,
  CallbackEngine,
  RECIPIENT_DEFAULTS,
  recipientOptionsProblems,
  type CallbackFilter,
  type CallbackKind,
  type CallbackOptions,
  type CallbackRecord,
  type CallbackStats,
  type RecipientOptions,
} from './callbacks.js';
import { Customers, type ConversationsOptions, type CustomerStats, type SimulatedCustomer } from './customers.js';
import { Feedback } from './feedback.js';
import {
  BodyTooLarge,
  readBody,
  runCall,
  writeReply,
  type CallDeps,
  type Exchange,
  type Prepared,
  type Reply,
} from './exchange.js';
import { FaultPlan, faultsSpecProblems, PROVIDERS, type FaultsSpec, type SimulatedProvider } from './faults.js';
import { Records, type MessageFilter, type SimulatedMessage, type SimulatorStats } from './records.js';
import {
  MEDIA_DOWNLOAD_PATH,
  MediaStore,
  TELEGRAM_FILE_PATH,
  TWILIO_MEDIA_PATH,
  writeRaw,
  type AddedMedia,
  type MediaItem,
} from './media.js';
import { secretKey } from './standard-webhooks.js';
import { TELEGRAM_DEFAULTS, TELEGRAM_PATH, TelegramApi, type TelegramOptions } from './telegram.js';
import {
  TWILIO_DEFAULTS,
  TWILIO_MESSAGE_PATH,
  TWILIO_PATH,
  TWILIO_SIGNED_URLS,
  TWILIO_SIGNING_ALGORITHMS,
  TwilioApi,
  type InboundReply,
  type TwilioOptions,
} from './twilio.js';

export interface ProviderSimulatorsOptions {
  /** Port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** Address to listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /** Latency added to every provider call (before any fault latency), ms. @defaultValue 0 */
  latencyMs?: number;
  /** Twilio credentials, unsubscribed recipients, MPS and concurrency limits. @defaultValue TWILIO_DEFAULTS */
  twilio?: TwilioOptions;
  /** Telegram tokens, blocked/unknown chats, 30/s per bot, 1/s per chat and 20/min per group. @defaultValue TELEGRAM_DEFAULTS */
  telegram?: TelegramOptions;
  /** Contract secrets, per-sender limit, refused recipients. @defaultValue CONTRACT_DEFAULTS */
  contract?: ContractOptions;
  /**
   * The callbacks' timing and the messages' fate: delays, undelivered and read rates, repeats, timeouts, retries.
   * @defaultValue CALLBACK_DEFAULTS
   */
  callbacks?: CallbackOptions;
  /** What simulated recipients do with delivered messages: click links, reply with keywords or STOP. @defaultValue RECIPIENT_DEFAULTS (nothing) */
  recipients?: RecipientOptions;
  /** Fault settings from the start (the same as a first `setFaults`). @defaultValue {} (no faults) */
  faults?: FaultsSpec;
  /** Seed of the generators behind random faults and behind each message's fate and recipient. @defaultValue a random seed */
  seed?: number;
  /**
   * Milliseconds taken off the 1000 ms rate windows, for clients pacing at exactly their limit whose calls arrive
   * with network jitter (sent 1000 ms apart, received 997 ms apart). Counts and limits then use windows of
   * `1000 - windowToleranceMs`. @defaultValue 0
   */
  windowToleranceMs?: number;
  /** The simulators' clock (message times, rate windows, signature timestamps), ms since the epoch. @defaultValue Date.now */
  clock?: () => number;
  /** @defaultValue silentLogger() */
  log?: Logger;
}

/** What `customerMessage` sends (see there). */
export type CustomerWrites =
  | {
      provider: 'twilio';
      account: string;
      from: string;
      to: string;
      text: string;
      files?: MediaItem[];
      /** @defaultValue the account's auth token (`twilio.authTokens`, else its newest send's) */
      authToken?: string;
    }
  | {
      provider: 'telegram';
      account: string;
      chatId: string;
      text: string;
      files?: Array<MediaItem & { kind?: 'photo' | 'document' | 'voice' | 'video' }>;
    };

export interface ProviderSimulators {
  /** `http://<host>:<port>`: the base URL of all three APIs and of `/_simulator/`. */
  url: string;
  port: number;
  /** Base URLs per provider: Twilio's API root, Telegram's API root (`…/bot<token>/sendMessage` follows), the contract root (`…/{channel}/messages` follows). */
  urls: { twilio: string; telegram: string; contract: string };
  /** The accepted messages, oldest first, optionally filtered. */
  messages(filter?: MessageFilter): SimulatedMessage[];
  /** Statistics per provider and per sender (a snapshot). */
  stats(): SimulatorStats;
  /** Replaces the fault settings of each scope named (`all`, `twilio`, `telegram`, `contract`); `seed` reseeds. Throws a TypeError for bad settings. */
  setFaults(faults: FaultsSpec): void;
  /** The fault settings as they stand (counters show what is left). */
  faults(): FaultsSpec;
  /** Removes every fault setting. */
  clearFaults(): void;
  /** Makes a recipient refuse: Twilio 21610 (unsubscribed), Telegram 403 (bot blocked), contract `NotSent`. */
  block(provider: SimulatedProvider, recipient: string | number): void;
  unblock(provider: SimulatedProvider, recipient: string | number): void;
  /** Empties the logs (messages and callbacks) and statistics and forgets rate windows and idempotency records; configuration, webhooks, faults and scheduled callbacks stay. */
  reset(): void;
  /** Every callback, click and reply the simulators sent (one entry per attempt), oldest first, optionally filtered. */
  callbacks(filter?: CallbackFilter): CallbackRecord[];
  /** Callback counts per kind, and what is pending or in flight now (a snapshot). */
  callbackStats(): CallbackStats;
  /** Resolves when no callback is scheduled or in flight (at once when none is, and after `close()`). */
  callbacksIdle(): Promise<void>;
  /**
   * Starts simulated customers who each write to `sender`'s inbound URL and hold a conversation (see customers.ts);
   * also `POST /_simulator/customers`. Throws a TypeError naming each bad option.
   */
  startConversations(options: ConversationsOptions): SimulatedCustomer[];
  /** Every simulated customer, what it wrote and received, in order (also `GET /_simulator/customers`). */
  customers(): SimulatedCustomer[];
  customerStats(): CustomerStats;
  /** Resolves when no simulated customer is writing, waiting or thinking. */
  customersIdle(): Promise<void>;
  /**
   * The replies simulated recipients sent to Twilio inbound URLs (`twilio.inboundUrls`), oldest first: each one's
   * `MessageSid`, from, to, body and time, also fetchable with `GET …/Messages/{MessageSid}.json`. Kept across `reset()`.
   */
  inboundReplies(): InboundReply[];
  /**
   * A file a simulated customer sends, served as the provider serves it: Twilio, a media item of an inbound MMS of
   * `account` (an AccountSid), its URL behind basic auth redirecting to a short-lived download; Telegram, a file of
   * bot `account` (a bot token or its id), for `getFile` and `/file/bot<token>/<file_path>`. Also
   * `POST /_simulator/media` `{provider, account, contentType, name?, base64}`.
   */
  addMedia(provider: 'twilio' | 'telegram', account: string, item: MediaItem): AddedMedia;
  /** Media downloads served (Twilio redirect targets and Telegram files). */
  mediaDownloads(): number;
  /**
   * A simulated customer writes on their own (not a reply): Twilio, an inbound SMS (an MMS with `files`, each served
   * as a media item of the message) from `from` to the inbound URL of `to`, signed with the account's auth token;
   * Telegram, a message update from chat `chatId` to the webhook of bot `account` (a token or its id), `text` the
   * caption when there are files (`kind`: photo, document, voice, video). Sent at once through the callbacks engine
   * (`callbacks()` lists it, kind `inbound` or `update`). Returns the provider's message id (Twilio `MessageSid`,
   * Telegram `chat_id:message_id`), or undefined when it has nowhere to go. Also `POST /_simulator/customer-messages`
   * with the same fields and files as `{contentType, base64, name?, kind?}`.
   */
  customerMessage(message: CustomerWrites): string | undefined;
  /** Calls held without an answer right now (timeouts). */
  heldCalls(): number;
  /** Cancels scheduled callbacks (and aborts those in flight), stops listening and ends every connection (held calls included). Idempotent. */
  close(): Promise<void>;
}

function positive(v: unknown): boolean {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/** Limits count messages in 1000 ms windows: whole numbers. */
function limit(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

const isHttpUrl = (v: unknown): boolean => {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
};
const shown = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v));

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Problems of `twilio.signing`, each naming its key. */
function twilioSigningProblems(value: unknown): string[] {
  if (!isRecord(value)) return [`twilio.signing: expected an object {sharedKey?, url?}, found ${shown(value)}`];
  const problems: string[] = [];
  const { sharedKey, url, ...rest } = value;
  for (const key of Object.keys(rest)) problems.push(`twilio.signing.${key}: unknown option (known: sharedKey, url)`);
  if (url !== undefined && !TWILIO_SIGNED_URLS.some((u) => u === url))
    problems.push(`twilio.signing.url: expected one of ${TWILIO_SIGNED_URLS.join(', ')}, found ${shown(url)}`);
  if (sharedKey !== undefined) {
    const k = sharedKey as Record<string, unknown>;
    const ok =
      isRecord(sharedKey) &&
      typeof k['sid'] === 'string' &&
      k['sid'] !== '' &&
      typeof k['secret'] === 'string' &&
      k['secret'] !== '' &&
      TWILIO_SIGNING_ALGORITHMS.some((a) => a === k['algorithm']);
    if (!ok)
      problems.push(
        `twilio.signing.sharedKey: expected {sid, secret, algorithm: ${TWILIO_SIGNING_ALGORITHMS.join(' | ')}} with non-empty sid and secret, found ${isRecord(sharedKey) ? shown({ ...sharedKey, secret: '***' }) : shown(sharedKey)}`,
      );
  }
  return problems;
}

function resolveOptions(options: ProviderSimulatorsOptions) {
  const problems: string[] = [];
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push(`port: expected an integer 0-65535, found ${String(options.port)}`);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '')
    problems.push(`host: expected a host name or address, found ${String(options.host)}`);
  const latencyMs = options.latencyMs ?? 0;
  if (!(typeof latencyMs === 'number' && Number.isFinite(latencyMs) && latencyMs >= 0))
    problems.push(`latencyMs: expected ms >= 0, found ${String(options.latencyMs)}`);
  const tolerance = options.windowToleranceMs ?? 0;
  if (!(typeof tolerance === 'number' && tolerance >= 0 && tolerance < 1000))
    problems.push(`windowToleranceMs: expected 0 <= ms < 1000, found ${String(options.windowToleranceMs)}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed))
    problems.push(`seed: expected an integer, found ${String(options.seed)}`);

  const twilio = { ...TWILIO_DEFAULTS, ...options.twilio };
  for (const key of ['longCodeMps', 'tollFreeMps', 'shortCodeMps', 'otherMps', 'concurrency'] as const)
    if (!limit(twilio[key])) problems.push(`twilio.${key}: expected an integer >= 1, found ${String(twilio[key])}`);
  for (const [sender, mps] of Object.entries(twilio.mpsBySender))
    if (!limit(mps)) problems.push(`twilio.mpsBySender.${sender}: expected an integer >= 1, found ${String(mps)}`);
  if (!Array.isArray(twilio.unsubscribed)) problems.push('twilio.unsubscribed: expected an array of phone numbers');
  if (twilio.authTokens !== undefined && (typeof twilio.authTokens !== 'object' || twilio.authTokens === null))
    problems.push('twilio.authTokens: expected an object AccountSid → AuthToken');
  if (!positive(twilio.queueSeconds))
    problems.push(`twilio.queueSeconds: expected seconds > 0, found ${shown(twilio.queueSeconds)}`);
  const validity = twilio.validityPeriodSeconds;
  if (!(Number.isInteger(validity) && validity >= 1 && validity <= 36_000))
    problems.push(`twilio.validityPeriodSeconds: expected an integer from 1 to 36000, found ${shown(validity)}`);
  for (const key of ['statusCallbacks', 'initialStatusCallback', 'honourIdempotencyToken'] as const)
    if (typeof twilio[key] !== 'boolean')
      problems.push(`twilio.${key}: expected a boolean, found ${shown(twilio[key])}`);
  if (!(typeof twilio.failedShare === 'number' && twilio.failedShare >= 0 && twilio.failedShare <= 1))
    problems.push(`twilio.failedShare: expected a fraction from 0 to 1, found ${shown(twilio.failedShare)}`);
  if (
    !Array.isArray(twilio.errorCodes) ||
    twilio.errorCodes.length === 0 ||
    !twilio.errorCodes.every((c) => Number.isInteger(c) && c > 0)
  ) {
    problems.push(
      `twilio.errorCodes: expected a non-empty array of Twilio error codes (e.g. 30003), found ${shown(twilio.errorCodes)}`,
    );
  }
  if (!isRecord(twilio.inboundUrls))
    problems.push(`twilio.inboundUrls: expected an object sender → http(s) URL, found ${shown(twilio.inboundUrls)}`);
  else
    for (const [sender, u] of Object.entries(twilio.inboundUrls))
      if (!isHttpUrl(u)) problems.push(`twilio.inboundUrls.${sender}: expected an http(s) URL, found ${shown(u)}`);
  problems.push(...twilioSigningProblems(twilio.signing));

  const telegram = { ...TELEGRAM_DEFAULTS, ...options.telegram };
  for (const key of ['perBot', 'perChat', 'perGroupPerMinute'] as const)
    if (!limit(telegram[key]))
      problems.push(`telegram.${key}: expected an integer >= 1, found ${String(telegram[key])}`);
  if (telegram.tokens !== undefined && !Array.isArray(telegram.tokens))
    problems.push('telegram.tokens: expected an array of bot tokens');
  for (const key of ['blockedChats', 'unknownChats'] as const)
    if (!Array.isArray(telegram[key])) problems.push(`telegram.${key}: expected an array of chat ids`);

  const contract = { ...CONTRACT_DEFAULTS, ...options.contract };
  if (!limit(contract.perSender))
    problems.push(`contract.perSender: expected an integer >= 1, found ${String(contract.perSender)}`);
  if (!positive(contract.toleranceSeconds))
    problems.push(`contract.toleranceSeconds: expected a number > 0, found ${String(contract.toleranceSeconds)}`);
  for (const [sender, n] of Object.entries(contract.perSenderBySender))
    if (!limit(n)) problems.push(`contract.perSenderBySender.${sender}: expected an integer >= 1, found ${String(n)}`);
  const checkSecrets = (key: 'secrets' | 'callbackSecrets'): void => {
    const secrets: unknown = contract[key];
    if (secrets === undefined) return;
    if (!Array.isArray(secrets) || secrets.length === 0)
      problems.push(`contract.${key}: expected a non-empty array of whsec_… secrets`);
    else
      secrets.forEach((s: unknown, i) => {
        try {
          if (typeof s !== 'string') throw new TypeError('not a string');
          secretKey(s);
        } catch {
          problems.push(`contract.${key}[${i}]: expected 'whsec_' followed by base64`);
        }
      });
  };
  checkSecrets('secrets');
  if (!Array.isArray(contract.notSentRecipients))
    problems.push('contract.notSentRecipients: expected an array of recipients');
  if (
    !Array.isArray(contract.mediaParts) ||
    contract.mediaParts.some((n: unknown) => typeof n !== 'string' || n === '')
  )
    problems.push(`contract.mediaParts: expected an array of message part names, found ${shown(contract.mediaParts)}`);
  for (const key of ['reportsUrl', 'inboundUrl'] as const)
    if (contract[key] !== undefined && !isHttpUrl(contract[key]))
      problems.push(`contract.${key}: expected an http(s) URL, found ${shown(contract[key])}`);
  let contractCallbackUrls = contract.reportsUrl !== undefined || contract.inboundUrl !== undefined;
  if (!isRecord(contract.channelUrls))
    problems.push(
      `contract.channelUrls: expected an object channel → {reportsUrl?, inboundUrl?}, found ${shown(contract.channelUrls)}`,
    );
  else
    for (const [channel, urls] of Object.entries(contract.channelUrls)) {
      if (!isRecord(urls)) {
        problems.push(`contract.channelUrls.${channel}: expected {reportsUrl?, inboundUrl?}, found ${shown(urls)}`);
        continue;
      }
      for (const [key, u] of Object.entries(urls)) {
        if (key !== 'reportsUrl' && key !== 'inboundUrl')
          problems.push(`contract.channelUrls.${channel}.${key}: unknown option (known: reportsUrl, inboundUrl)`);
        else if (!isHttpUrl(u))
          problems.push(`contract.channelUrls.${channel}.${key}: expected an http(s) URL, found ${shown(u)}`);
        else contractCallbackUrls = true;
      }
    }
  checkSecrets('callbackSecrets');
  if (contractCallbackUrls && contract.callbackSecrets === undefined && contract.secrets === undefined) {
    problems.push(
      'contract.callbackSecrets: expected whsec_… secrets to sign reports and inbound messages with (or contract.secrets), found none',
    );
  }
  problems.push(...callbackOptionsProblems(options.callbacks), ...recipientOptionsProblems(options.recipients));
  const callbacks = { ...CALLBACK_DEFAULTS, ...options.callbacks };
  const recipients = { ...RECIPIENT_DEFAULTS, ...options.recipients };
  if (options.faults !== undefined) problems.push(...faultsSpecProblems(options.faults, 'faults'));
  if (problems.length > 0) throw new TypeError(`startProviderSimulators: ${problems.join('; ')}`);
  return { port, host, latencyMs, windowMs: 1000 - tolerance, twilio, telegram, contract, callbacks, recipients };
}

const NOT_FOUND_HINT =
  'routes: POST and GET /2010-04-01/Accounts/{AccountSid}/Messages.json, GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json, GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}, POST /bot{token}/sendMessage (and sendPhoto, sendDocument, getFile, setWebhook, deleteWebhook, getWebhookInfo), GET /file/bot{token}/{file_path}, POST /contract/{channel}/messages, /_simulator/{messages,stats,faults,blocked,callbacks,callbacks/stats,inbound,media,customer-messages}';

function simulatorError(status: number, code: string, message: string): Reply {
  return { status, body: { error: { code, message } } };
}

function isProvider(value: unknown): value is SimulatedProvider {
  return typeof value === 'string' && (PROVIDERS as readonly string[]).includes(value);
}

export async function startProviderSimulators(options: ProviderSimulatorsOptions = {}): Promise<ProviderSimulators> {
  const resolved = resolveOptions(options);
  const clock = options.clock ?? Date.now;
  const log = areaLogger(options.log ?? silentLogger(), 'provider-simulators');
  const debug = log.isDebugEnabled();
  const records = new Records(resolved.windowMs);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const faults = new FaultPlan(seed);
  if (options.faults) faults.set(options.faults);
  const twilio = new TwilioApi(resolved.twilio, resolved.windowMs);
  const telegram = new TelegramApi(resolved.telegram, resolved.windowMs);
  const contract = new ContractApi(resolved.contract, resolved.windowMs);
  const held = new Set<ServerResponse>();
  const media = new MediaStore(clock);
  /** The simulators' base URL, known once listening (media URLs are absolute). */
  let baseUrl = '';
  const addMedia = (provider: 'twilio' | 'telegram', account: string, item: MediaItem): AddedMedia => {
    if (provider === 'twilio') return media.addTwilio(baseUrl, account, item);
    const botId = /^\d+$/.test(account) ? account : telegram.botIdOf(account);
    if (botId === undefined)
      throw new TypeError('addMedia: a Telegram account is a bot token the simulator accepts, or a bot id');
    return media.addTelegram(botId, item);
  };
  const engine = new CallbackEngine(resolved.callbacks, clock);
  const customerMessage = (m: CustomerWrites): string | undefined => {
    if (m.provider === 'twilio') {
      const files = m.files ?? [];
      const sid = `${files.length > 0 ? 'MM' : 'SM'}${randomBytes(16).toString('hex')}`;
      const added = files.map((f) => ({ item: f, media: media.addTwilio(baseUrl, m.account, f, sid) }));
      return feedback.customerMessage({
        provider: 'twilio',
        account: m.account,
        from: m.from,
        to: m.to,
        text: m.text,
        sid,
        ...(m.authToken === undefined ? {} : { authToken: m.authToken }),
        media: added.map(({ item, media: a }) => ({
          url: a.provider === 'twilio' ? a.url : '',
          contentType: item.contentType,
        })),
      });
    }
    const botId = /^\d+$/.test(m.account) ? m.account : telegram.botIdOf(m.account);
    if (botId === undefined)
      throw new TypeError('customerMessage: a Telegram account is a bot token the simulator accepts, or a bot id');
    const files = (m.files ?? []).map((f) => {
      const added = media.addTelegram(botId, f);
      return {
        kind: f.kind ?? 'document',
        fileId: added.provider === 'telegram' ? added.fileId : '',
        size: f.data.length,
        mimeType: f.contentType,
        ...(f.name === undefined ? {} : { fileName: f.name }),
      };
    });
    return feedback.customerMessage({ provider: 'telegram', botId, chatId: m.chatId, text: m.text, files });
  };
  const feedback = new Feedback({
    engine,
    recipients: resolved.recipients,
    twilio: { options: resolved.twilio, api: twilio },
    telegram,
    contract: resolved.contract,
    clock,
    seed,
    actsOnItsOwn: (recipient) => customers.isCustomer(recipient),
    onError: (err) => log.error('simulated callback failed', { err }),
  });
  telegram.pendingUpdates = (botId) => feedback.pendingUpdates(botId);
  const customers = new Customers({
    engine,
    twilio: { options: resolved.twilio, api: twilio },
    clock,
    send: (m) => customerMessage({ provider: 'twilio', ...m }),
    onError: (err) => log.error('simulated customer failed', { err }),
  });

  const deps = (provider: SimulatedProvider, api: { renderFault: CallDeps['renderFault'] }): CallDeps => ({
    provider,
    records,
    faults,
    baseLatencyMs: resolved.latencyMs,
    now: clock,
    renderFault: (a) => api.renderFault(a),
    held,
    onAccepted: (m: SimulatedMessage, outcome) => {
      if (debug)
        log.debug('message accepted', {
          provider: m.provider,
          channel: m.channel,
          from: m.sender,
          to: m.recipient,
          providerMessageId: m.providerMessageId,
        });
      feedback.accepted(m, outcome.authToken);
      customers.accepted(m);
    },
  });
  const callDeps = {
    twilio: deps('twilio', twilio),
    telegram: deps('telegram', telegram),
    contract: deps('contract', contract),
  };

  function reset(): void {
    records.reset();
    engine.reset();
    twilio.reset();
    telegram.reset();
    contract.reset();
  }
  function block(provider: SimulatedProvider, recipient: string | number): void {
    if (provider === 'twilio') twilio.unsubscribe(String(recipient));
    else if (provider === 'telegram') telegram.block(recipient);
    else contract.refuse(String(recipient));
  }
  function unblock(provider: SimulatedProvider, recipient: string | number): void {
    if (provider === 'twilio') twilio.resubscribe(String(recipient));
    else if (provider === 'telegram') telegram.unblock(recipient);
    else contract.accept(String(recipient));
  }
  const blocked = () => ({
    twilio: twilio.unsubscribedNumbers(),
    telegram: telegram.blockedChats(),
    contract: contract.refusedRecipients(),
  });

  /** `/_simulator/…`: the log, the statistics, the faults, the blocked recipients. */
  function control(ex: Exchange): Reply {
    const route = `${ex.method} ${ex.path}`;
    const jsonBody = (): unknown => {
      try {
        return JSON.parse(ex.body);
      } catch {
        throw simulatorError(400, 'InvalidJson', 'the body must be JSON');
      }
    };
    try {
      switch (route) {
        case 'GET /_simulator/messages': {
          const provider = ex.query.get('provider') ?? undefined;
          if (provider !== undefined && !isProvider(provider))
            return simulatorError(
              400,
              'InvalidFilter',
              `provider must be one of ${PROVIDERS.join(', ')}, found '${provider}'`,
            );
          const sender = ex.query.get('sender') ?? undefined;
          const recipient = ex.query.get('recipient') ?? undefined;
          return {
            status: 200,
            body: records.messages({
              ...(provider ? { provider } : {}),
              ...(sender ? { sender } : {}),
              ...(recipient ? { recipient } : {}),
            }),
          };
        }
        case 'DELETE /_simulator/messages':
          reset();
          return { status: 200, body: { reset: true } };
        case 'GET /_simulator/callbacks': {
          const provider = ex.query.get('provider') ?? undefined;
          if (provider !== undefined && !isProvider(provider))
            return simulatorError(
              400,
              'InvalidFilter',
              `provider must be one of ${PROVIDERS.join(', ')}, found '${provider}'`,
            );
          const kind = ex.query.get('kind') ?? undefined;
          if (kind !== undefined && !(CALLBACK_KINDS as readonly string[]).includes(kind))
            return simulatorError(
              400,
              'InvalidFilter',
              `kind must be one of ${CALLBACK_KINDS.join(', ')}, found '${kind}'`,
            );
          return {
            status: 200,
            body: engine.records({
              ...(provider ? { provider } : {}),
              ...(kind ? { kind: kind as CallbackKind } : {}),
            }),
          };
        }
        case 'POST /_simulator/media': {
          const b = jsonBody() as Record<string, unknown> | null;
          const provider = b?.['provider'];
          const account = b?.['account'];
          const contentType = b?.['contentType'];
          const base64 = b?.['base64'];
          const name = b?.['name'];
          if (
            (provider !== 'twilio' && provider !== 'telegram') ||
            typeof account !== 'string' ||
            account === '' ||
            typeof contentType !== 'string' ||
            contentType === '' ||
            typeof base64 !== 'string' ||
            (name !== undefined && typeof name !== 'string')
          )
            return simulatorError(
              400,
              'InvalidMedia',
              'expected {provider: twilio|telegram, account: AccountSid or bot token, contentType, name?, base64}',
            );
          try {
            const item = { contentType, data: Buffer.from(base64, 'base64'), ...(name === undefined ? {} : { name }) };
            return { status: 201, body: addMedia(provider, account, item) };
          } catch (err) {
            return simulatorError(400, 'InvalidMedia', err instanceof Error ? err.message : String(err));
          }
        }
        case 'POST /_simulator/customer-messages': {
          const b = jsonBody() as Record<string, unknown> | null;
          const text = (k: string): string | undefined => (typeof b?.[k] === 'string' ? (b[k] as string) : undefined);
          const rawFiles = b?.['files'] ?? [];
          const files = Array.isArray(rawFiles)
            ? rawFiles.map((f: unknown) => {
                const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
                if (typeof o['contentType'] !== 'string' || typeof o['base64'] !== 'string') return undefined;
                const kind = o['kind'];
                const file: MediaItem & { kind?: 'photo' | 'document' | 'voice' | 'video' } = {
                  contentType: o['contentType'],
                  data: Buffer.from(o['base64'], 'base64'),
                  ...(typeof o['name'] === 'string' ? { name: o['name'] } : {}),
                  ...(kind === 'photo' || kind === 'document' || kind === 'voice' || kind === 'video' ? { kind } : {}),
                };
                return file;
              })
            : [undefined];
          const account = text('account');
          const body = text('text') ?? '';
          const bad = (): Reply =>
            simulatorError(
              400,
              'InvalidCustomerMessage',
              'expected {provider: twilio, account, from, to, text, files?} or {provider: telegram, account, chatId, text, files?}, files as [{contentType, base64, name?, kind?}]',
            );
          if (account === undefined || files.some((f) => f === undefined)) return bad();
          const ok = files as NonNullable<(typeof files)[number]>[];
          let id: string | undefined;
          try {
            if (b?.['provider'] === 'twilio') {
              const from = text('from');
              const to = text('to');
              if (from === undefined || to === undefined) return bad();
              id = customerMessage({ provider: 'twilio', account, from, to, text: body, files: ok });
            } else if (b?.['provider'] === 'telegram') {
              const chatId = text('chatId') ?? (typeof b['chatId'] === 'number' ? String(b['chatId']) : undefined);
              if (chatId === undefined) return bad();
              id = customerMessage({ provider: 'telegram', account, chatId, text: body, files: ok });
            } else return bad();
          } catch (err) {
            return simulatorError(400, 'InvalidCustomerMessage', err instanceof Error ? err.message : String(err));
          }
          if (id === undefined)
            return simulatorError(409, 'Unroutable', 'no inbound URL (twilio.inboundUrls) or webhook for it');
          return { status: 202, body: { messageId: id } };
        }
        case 'GET /_simulator/inbound':
          return { status: 200, body: twilio.inboundReplies() };
        case 'GET /_simulator/callbacks/stats':
          return { status: 200, body: engine.stats() };
        case 'GET /_simulator/stats':
          return { status: 200, body: records.stats() };
        case 'GET /_simulator/faults':
          return { status: 200, body: faults.current() };
        case 'PUT /_simulator/faults': {
          const spec = jsonBody();
          const problems = faultsSpecProblems(spec);
          if (problems.length > 0) return simulatorError(400, 'InvalidFaults', problems.join('; '));
          faults.set(spec as FaultsSpec);
          return { status: 200, body: faults.current() };
        }
        case 'DELETE /_simulator/faults':
          faults.clear();
          return { status: 200, body: faults.current() };
        case 'GET /_simulator/customers':
          return { status: 200, body: { stats: customers.stats(), customers: customers.list() } };
        case 'POST /_simulator/customers': {
          const spec = jsonBody() as Record<string, unknown> | null;
          const pattern = spec?.['surveyPattern'];
          try {
            const options = {
              ...spec,
              ...(typeof pattern === 'string' ? { surveyPattern: new RegExp(pattern) } : {}),
            } as unknown as ConversationsOptions;
            return { status: 201, body: customers.start(options) };
          } catch (err) {
            return simulatorError(400, 'InvalidCustomers', err instanceof Error ? err.message : String(err));
          }
        }
        case 'GET /_simulator/blocked':
          return { status: 200, body: blocked() };
        case 'POST /_simulator/blocked':
        case 'DELETE /_simulator/blocked': {
          const b = (
            ex.method === 'POST'
              ? jsonBody()
              : { provider: ex.query.get('provider'), recipient: ex.query.get('recipient') }
          ) as { provider?: unknown; recipient?: unknown };
          if (
            !isProvider(b?.provider) ||
            !(typeof b.recipient === 'string' || typeof b.recipient === 'number') ||
            b.recipient === ''
          ) {
            return simulatorError(
              400,
              'InvalidRecipient',
              `expected {provider: ${PROVIDERS.join('|')}, recipient: string}, found ${JSON.stringify(b)}`,
            );
          }
          if (ex.method === 'POST') block(b.provider, b.recipient);
          else unblock(b.provider, b.recipient);
          return { status: 200, body: blocked() };
        }
        default:
          return simulatorError(404, 'NotFound', `no simulator route for ${route}; ${NOT_FOUND_HINT}`);
      }
    } catch (err) {
      if (typeof err === 'object' && err !== null && 'status' in err && 'body' in err) return err as Reply;
      throw err;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const ex: Exchange = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: lowerHeaders(req),
      body: '',
    };
    try {
      ex.body = await readBody(req);
    } catch (err) {
      if (err instanceof BodyTooLarge) writeReply(res, simulatorError(413, 'PayloadTooLarge', err.message));
      else res.destroy();
      return;
    }
    if (ex.path.startsWith('/_simulator/')) {
      writeReply(res, control(ex));
      return;
    }
    let prepared: Prepared | undefined;
    let provider: SimulatedProvider | undefined;
    // Media downloads: answered at once, outside the faults, the statistics and the limits.
    const mediaMatch = TWILIO_MEDIA_PATH.exec(ex.path);
    if (mediaMatch && ex.method === 'GET') {
      const accountSid = decodeURIComponent(mediaMatch[1]!);
      return writeRaw(
        res,
        media.twilioMedia(
          twilio.authenticated(ex, accountSid),
          accountSid,
          decodeURIComponent(mediaMatch[2]!),
          decodeURIComponent(mediaMatch[3]!),
          ex.path,
        ),
      );
    }
    const downloadMatch = MEDIA_DOWNLOAD_PATH.exec(ex.path);
    if (downloadMatch && ex.method === 'GET')
      return writeRaw(res, media.download(downloadMatch[1]!, ex.headers['authorization']));
    const fileMatch = TELEGRAM_FILE_PATH.exec(ex.path);
    if (fileMatch && ex.method === 'GET') {
      const botId = telegram.botIdOf(decodeURIComponent(fileMatch[1]!));
      if (botId === undefined)
        return writeReply(res, { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
      return writeRaw(res, media.telegramFile(botId, decodeURIComponent(fileMatch[2]!)));
    }
    const fetchMatch = TWILIO_MESSAGE_PATH.exec(ex.path);
    if (fetchMatch) {
      // The Message fetch: answered at once, outside the faults, the statistics and the concurrency limit.
      if (ex.method !== 'GET')
        return writeReply(res, {
          status: 405,
          body: {
            code: 20004,
            message: 'Method not allowed',
            more_info: 'https://www.twilio.com/docs/errors/20004',
            status: 405,
          },
          headers: { Allow: 'GET' },
        });
      writeReply(res, twilio.fetch(ex, decodeURIComponent(fetchMatch[1]!), decodeURIComponent(fetchMatch[2]!)));
      return;
    }
    const twilioMatch = TWILIO_PATH.exec(ex.path);
    const telegramMatch = TELEGRAM_PATH.exec(ex.path);
    const contractMatch = CONTRACT_PATH.exec(ex.path);
    if (twilioMatch && ex.method === 'GET') {
      // The Messages list: like the fetch, answered at once, outside the faults, the statistics and the concurrency limit.
      writeReply(res, twilio.list(ex, decodeURIComponent(twilioMatch[1]!)));
      return;
    }
    if (twilioMatch) {
      if (ex.method !== 'POST')
        return writeReply(res, {
          status: 405,
          body: {
            code: 20004,
            message: 'Method not allowed',
            more_info: 'https://www.twilio.com/docs/errors/20004',
            status: 405,
          },
          headers: { Allow: 'GET, POST' },
        });
      provider = 'twilio';
      prepared = twilio.prepare(ex, decodeURIComponent(twilioMatch[1]!));
    } else if (telegramMatch && telegramMatch[2]!.toLowerCase() === 'getfile') {
      // getFile: answered at once (not a message), outside the faults and the limits.
      const botId = telegram.botIdOf(decodeURIComponent(telegramMatch[1]!));
      if (botId === undefined)
        return writeReply(res, { status: 401, body: { ok: false, error_code: 401, description: 'Unauthorized' } });
      const params = TelegramApi.params(ex);
      if (!(params instanceof Map)) return writeReply(res, params);
      return writeReply(res, media.getFile(botId, params.get('file_id')));
    } else if (telegramMatch) {
      if (ex.method !== 'POST' && ex.method !== 'GET')
        return writeReply(res, {
          status: 405,
          body: { ok: false, error_code: 405, description: 'Method Not Allowed' },
        });
      provider = 'telegram';
      prepared = telegram.prepare(ex, decodeURIComponent(telegramMatch[1]!), telegramMatch[2]!);
    } else if (contractMatch) {
      if (ex.method !== 'POST')
        return writeReply(res, {
          ...simulatorError(405, 'MethodNotAllowed', 'the contract endpoint accepts POST'),
          headers: { Allow: 'POST' },
        });
      provider = 'contract';
      prepared = contract.prepare(ex, decodeURIComponent(contractMatch[1]!), clock());
    }
    if (!provider || !prepared) {
      writeReply(
        res,
        simulatorError(404, 'NotFound', `no simulator route for ${ex.method} ${ex.path}; ${NOT_FOUND_HINT}`),
      );
      return;
    }
    await runCall(callDeps[provider], res, prepared);
    if (debug)
      log.debug('provider call', {
        provider,
        path: provider === 'telegram' ? `/bot***/${telegramMatch?.[2] ?? ''}` : ex.path,
        status: res.headersSent ? res.statusCode : 'held',
      });
  }

  const server = createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('simulator request failed', { err });
      writeReply(res, simulatorError(500, 'SimulatorError', err instanceof Error ? err.message : String(err)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPart = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  const url = `http://${hostPart}:${port}`;
  baseUrl = url;
  log.info('provider simulators listening', { url, latencyMs: resolved.latencyMs, windowMs: resolved.windowMs });

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    urls: { twilio: url, telegram: url, contract: `${url}/contract` },
    messages: (filter) => records.messages(filter),
    stats: () => records.stats(),
    setFaults: (spec) => faults.set(spec),
    faults: () => faults.current(),
    clearFaults: () => faults.clear(),
    startConversations: (o) => customers.start(o),
    customers: () => customers.list(),
    customerStats: () => customers.stats(),
    customersIdle: () => customers.idle(),
    block,
    unblock,
    reset,
    callbacks: (filter) => engine.records(filter),
    callbackStats: () => engine.stats(),
    callbacksIdle: () => engine.idle(),
    inboundReplies: () => twilio.inboundReplies(),
    addMedia,
    mediaDownloads: () => media.downloads,
    customerMessage,
    heldCalls: () => held.size,
    close() {
      engine.close();
      customers.close();
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        held.clear();
      }).then(() => {
        log.info('provider simulators closed', { url });
      });
      return closing;
    },
  };
}
