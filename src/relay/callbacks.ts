/**
 * Wiring of the callbacks stage on the real clients: its queue senders (`interactions`, `outbound`), its Dataverse
 * directory (through the identity's governor, with `dataverse.timeoutMs`), the callback keys as given, the server on
 * `callbacks.host:callbacks.port`, and the Twilio message fetch each Twilio channel's opt-ins are checked with (the
 * channel's Twilio adapter: its account's credentials, base URL and `timeoutMs`); when the channels file has a
 * `messaging` section, a sender on `conversations` for the customer messages of the channels it bridges.
 */
import type { ServiceBusClient } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import type { Registry } from 'prom-client';
import type { Channel, ChannelRegistry, MessagingRegistry } from '../channels/index.js';
import type { RelayConfig } from '../config/index.js';
import { createCallbackDirectory, createDataverseReads, type Governor } from '../dataverse/index.js';
import { errorMessage } from '../errors.js';
import type { ReadinessCheck } from '../health/index.js';
import type { Closer } from '../lifecycle.js';
import type { Logger } from '../log.js';
import { CallbacksStage, type CallbackKeys, type TwilioMessageFetcher } from '../pipeline/callbacks/index.js';
import type {
  ConversationMessage,
  ConversationSender,
  InteractionMessage,
  OutboundMessage,
} from '../pipeline/index.js';
import { TwilioProvider, type Provider } from '../providers/index.js';
import { createQueueSender } from '../servicebus/index.js';

export interface CallbacksWiring {
  bus: ServiceBusClient;
  dataverse: DynamicsWebApi;
  governor: Governor;
  /** `callbackKeysFor(keys, channels, stages)`: with the callbacks stage among them, never undefined. */
  keys: CallbackKeys;
  config: RelayConfig;
  channels: ChannelRegistry;
  log: Logger;
  registry?: Registry;
  /** Where the senders and the server are closed (the server first: added last). */
  closer: Closer;
  /**
   * The provider adapter of a channel, made once and kept (the relay's, shared with dispatch); a bad setting throws a
   * `ConfigError` naming the channel.
   */
  provider: (channel: Channel) => Provider;
}

/**
 * The Twilio message fetch of each Twilio channel: its adapter (from `provider`, which should keep what it makes) when
 * that is a `TwilioProvider`; undefined for other channels.
 */
export function twilioMessageFetchers(
  provider: (channel: Channel) => Provider,
): (channel: Channel) => TwilioMessageFetcher | undefined {
  return (channel) => {
    if (channel.provider.type !== 'twilio') return undefined;
    const made = provider(channel);
    return made instanceof TwilioProvider ? made : undefined;
  };
}

/**
 * The bridge to Omnichannel: the channels file's `messaging` section (on the registry) and a sender on the
 * `conversations` queue, only when the section names at least one account; otherwise nothing (no channel is bridged).
 */
function conversationsBridge(
  w: CallbacksWiring,
): { messaging: Pick<MessagingRegistry, 'byRelayChannel'>; conversations: ConversationSender } | Record<string, never> {
  const messaging = w.channels.messaging;
  if (messaging.accounts.length === 0) return {};
  const queue = w.config.serviceBus.queues.conversations;
  const counting = w.registry ? { metrics: w.registry } : {};
  const conversations = createQueueSender<ConversationMessage>(w.bus, queue, { log: w.log, ...counting });
  w.closer.add('callbacks conversations sender', conversations);
  return { messaging, conversations };
}

export interface StartedCallbacks {
  stage: CallbacksStage;
  /** The readiness check: listening and not stopping. */
  check(stopping: boolean): ReadinessCheck;
  /** Why the server could not listen, once it failed; undefined otherwise. */
  failed(): string | undefined;
}

/** Builds the stage and starts listening (in the background: a failure shows in `check` and `failed`). */
export function startCallbacksStage(w: CallbacksWiring): StartedCallbacks {
  const keys = w.keys;
  const counting = w.registry ? { metrics: w.registry } : {};
  const queues = w.config.serviceBus.queues;
  const interactions = createQueueSender<InteractionMessage>(w.bus, queues.interactions, { log: w.log, ...counting });
  w.closer.add('callbacks interactions sender', interactions);
  const outbound = createQueueSender<OutboundMessage>(w.bus, queues.outbound, { log: w.log, ...counting });
  w.closer.add('callbacks outbound sender', outbound);
  const bridging = conversationsBridge(w);
  const reads = createDataverseReads(w.dataverse, { governor: w.governor });
  const timeoutMs = w.config.dataverse.timeoutMs;
  const directory = createCallbackDirectory({
    client: w.dataverse,
    run: (call, signal, operation, operations) =>
      w.governor.run((s) => call(s), { signal, operation, timeoutMs, ...(operations ? { operations } : {}) }),
    messageRecord: reads.messageRecord,
  });
  const twilioMessages = twilioMessageFetchers(w.provider);
  // Made up front (as dispatch makes its adapters): a bad Twilio setting stops start-up instead of the first START.
  for (const channel of w.channels.all()) if (channel.callbacks !== undefined) twilioMessages(channel);
  const stage = new CallbacksStage({
    channels: w.channels,
    keys,
    interactions,
    outbound,
    directory,
    twilioMessages,
    ...bridging,
    log: w.log,
    ...(w.registry ? { registry: w.registry } : {}),
    bodyLimitBytes: w.config.callbacks.bodyLimitBytes,
    requestTimeoutMs: w.config.callbacks.requestTimeoutMs,
    replyCache: { maxAgeMs: w.config.callbacks.replyCacheMaxAgeMs },
    callTimeoutMs: timeoutMs,
    host: w.config.callbacks.host,
    port: w.config.callbacks.port,
  });
  w.closer.add('callbacks server', () => stage.close());
  let failure: string | undefined;
  stage.start().catch((err: unknown) => {
    failure = `cannot listen on ${w.config.callbacks.host}:${w.config.callbacks.port} (callbacks.port / CALLBACKS_PORT): ${errorMessage(err)}`;
    w.log.error('callbacks server failed to start', { error: failure });
  });
  return {
    stage,
    failed: () => failure,
    check: (stopping) => {
      const name = 'callbacks server';
      if (stopping) return { name, ok: false, detail: 'shutting down' };
      if (failure !== undefined) return { name, ok: false, detail: failure };
      return stage.listening ? { name, ok: true } : { name, ok: false, detail: 'starting' };
    },
  };
}
