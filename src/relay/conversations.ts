/**
 * Wiring of the conversations stage on the real clients: its senders (`conversations` for the scheduled polls,
 * `outbound` for the agents' messages), one Direct Line client per messaging account that bridges a channel (made up
 * front, so that a missing secret stops start-up), the media fetchers of the relay channels, and its session loop on
 * `queues.conversations` (one session per customer). It never calls Dataverse.
 */
import type { Channel, ChannelRegistry, MessagingAccount } from '../channels/index.js';
import { ConfigError } from '../errors.js';
import type { ReadinessCheck } from '../health/index.js';
import type { Logger } from '../log.js';
import { AccountValidator } from '../messaging/index.js';
import {
  ConversationsStage,
  type ConversationMessage,
  type ConversationsStats,
  type DirectLinePort,
  type MediaFetcher,
  type OutboundMessage,
} from '../pipeline/index.js';
import { createQueueSender, startSessionLoop } from '../servicebus/index.js';
import { counting, type RelayParts, type WiredStage } from './wiring.js';

/** Makes the Direct Line client of one account (src/directline's `createDirectLineClient`). */
export type DirectLineClientFactory = (options: {
  baseUrl: string;
  secret: string;
  timeoutMs: number;
  log: Logger;
}) => DirectLinePort & { close?(): void };

export interface ConversationsWiring extends RelayParts {
  channels: ChannelRegistry;
  /** The Direct Line client of an account, made once per account. */
  directLineClient: DirectLineClientFactory;
  /** The fetcher of a relay channel's customer attachments (Twilio media, Telegram files); undefined: none. */
  media: (channel: Channel) => MediaFetcher | undefined;
  /** Certificates (PEM) trusted for the identity platform when validating the accounts. @defaultValue the system's */
  identityCa?: string;
  /** Validates the accounts (tests inject a fake). @defaultValue an `AccountValidator` of src/messaging */
  accountValidator?: (accounts: readonly MessagingAccount[]) => AccountValidation;
}

/** What the wiring uses of an `AccountValidator`. */
export type AccountValidation = Pick<AccountValidator, 'start' | 'readiness' | 'close'>;

/**
 * A customer session with nothing more to handle is released this soon, ms: a customer's messages come seconds apart
 * and its polls one at a time, so holding the session longer would only keep a slot from the other customers (a
 * broker may hand out the sessions that have messages in a fixed order: see docs/conversations.md, "Guarantees").
 */
const SESSION_IDLE_MS = 100;

export function wireConversations(
  w: ConversationsWiring,
): WiredStage<ConversationsStats> & { readiness(stopping: boolean): ReadinessCheck[] } {
  const { config, channels, registry } = w;
  const settings = config.conversations;
  const queues = config.serviceBus.queues;
  const messaging = channels.messaging;
  // One client per account that bridges a channel, made up front: a missing secret stops start-up.
  const clients = new Map<string, DirectLinePort>();
  messaging.accounts.forEach((account, i) => {
    if (account.channels.length === 0) return;
    if (account.directLineSecret === undefined || account.directLineSecret === '') {
      throw new ConfigError('ConfigInvalid', [
        {
          source: channels.file,
          path: `messaging.accounts[${i}].directLineSecret`,
          expected: `the Direct Line secret of account "${account.name}" as env:NAME, with NAME set (the conversations stage opens its conversations with it)`,
          found: 'nothing',
        },
      ]);
    }
    const client = w.directLineClient({
      baseUrl: account.directLineUrl,
      secret: account.directLineSecret,
      timeoutMs: settings.timeoutMs,
      log: w.log,
    });
    clients.set(account.name, client);
    if (client.close !== undefined) w.closer.add(`direct line client ${account.name}`, () => client.close?.());
  });
  const conversations = createQueueSender<ConversationMessage>(w.bus, queues.conversations, {
    log: w.log,
    ...counting(w),
  });
  w.closer.add('conversations sender', conversations);
  const outbound = createQueueSender<OutboundMessage>(w.bus, queues.outbound, { log: w.log, ...counting(w) });
  w.closer.add('conversations outbound sender', outbound);
  const stage = new ConversationsStage({
    channels,
    messaging,
    directLine: (account) => {
      const client = clients.get(account);
      if (client === undefined) throw new TypeError(`conversations: no Direct Line client for account "${account}"`);
      return client;
    },
    media: w.media,
    conversations,
    outbound,
    log: w.log,
    pollIntervalMs: settings.pollIntervalMs,
    maxPollIntervalMs: settings.maxPollIntervalMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    tokenRefreshMarginMs: settings.tokenRefreshMarginMs,
    callTimeoutMs: settings.timeoutMs,
    retry: settings.retry,
    ...(registry ? { registry } : {}),
  });
  // The admin centre's "Validate app ID + secret", at start and every 30 minutes: an account whose app cannot get a
  // token is not ready (its agents' bot is not reachable through Omnichannel either).
  const bridging = messaging.accounts.filter((a) => a.channels.length > 0);
  const validator =
    w.accountValidator?.(bridging) ??
    new AccountValidator({
      accounts: bridging,
      log: w.log,
      ...(registry ? { registry } : {}),
      ...(w.identityCa === undefined ? {} : { ca: w.identityCa }),
    });
  void validator.start();
  w.closer.add('messaging account validator', () => validator.close());
  return {
    stats: () => stage.stats(),
    stop: () => stage.stop(),
    readiness: (stopping) => [
      ...stage.accounts().map(({ account, ok, detail }) => {
        const name = `direct line account ${account}`;
        if (stopping) return { name, ok: false, detail: 'shutting down' };
        return ok ? { name, ok } : { name, ok, ...(detail === undefined ? {} : { detail }) };
      }),
      ...validator.readiness(),
    ],
    loop: () =>
      startSessionLoop({
        client: w.bus,
        queue: queues.conversations,
        maxSessions: settings.concurrency,
        sessionIdleMs: SESSION_IDLE_MS,
        maxBatch: settings.batchSize,
        maxWaitMs: 200,
        // A Direct Line call in flight when the drain budget runs out is let finish (its timeout bounds it).
        closeGraceMs: settings.timeoutMs + 2_000,
        createSessionHandler: stage.sessionHandler,
        log: w.log,
        ...counting(w),
      }),
  };
}
