/**
 * The embedded system: the Service Bus, Dataverse and provider emulators on free loopback ports, the service
 * endpoint and step registered in the Dataverse emulator through the same code as `channel-relay register`, and a
 * channels file and configuration pointing the workers at them. `channel-relay demo` runs on it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadChannels, type ChannelRegistry } from '../channels/index.js';
import { loadConfig, type RelayConfig } from '../config/index.js';
import type { CallbackKeys } from '../correlation/index.js';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { closeDataverseClient, createDataverseClient } from '../dataverse/index.js';
import {
  startDataverseEmulator,
  type DataverseEmulator,
  type LimitsConfig,
  type PartialTargets,
  type SeedDocument,
} from '../emulators/dataverse/index.js';
import {
  startProviderSimulators,
  type CallbackOptions,
  type ProviderSimulators,
  type RecipientOptions,
} from '../emulators/providers/index.js';
import {
  BOT_FRAMEWORK_TENANT,
  startDirectLineEmulator,
  type AgentOptions,
  type DirectLineEmulator,
} from '../emulators/directline/index.js';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../emulators/servicebus/index.js';
import { freePort } from '../http/index.js';
import { Closer, type Closeable } from '../lifecycle.js';
import { silentLogger, type Logger } from '../log.js';
import { configPath } from '../paths.js';
import { registerRelay, serviceBusFromConnectionString, type RegistrationReport } from '../registration/index.js';

/** Secrets the simulators accept (any Twilio token, any well-formed bot token, a `whsec_` contract secret). */
export const DEMO_SECRETS = {
  TWILIO_AUTH_TOKEN: 'demo0a1b2c3d4e5f60718293a4b5c6d7e',
  TELEGRAM_BOT_TOKEN: '7000000001:AAEdemoTokenForTheSimulatorOnly01234',
  CONTRACT_SIGNING_SECRET: 'whsec_ZGVtby1jb250cmFjdC1zaWduaW5nLXNlY3JldA==',
  /** The Direct Line secret of the embedded bot (the Direct Line emulator's). */
  DIRECTLINE_SECRET: 'demo-directline-secret',
  /** The client secret of the embedded bot's app (the emulated identity platform's). */
  MESSAGING_CLIENT_SECRET: 'demo-messaging-client-secret',
} as const;

/** The Microsoft app ID of the embedded bot, registered in the emulated identity platform. */
export const DEMO_APP_ID = '5b0e2c1a-7d3f-4e9b-8a61-0c2d4e6f8a10';

/** The token the embedded system registers the endpoint and step with (another identity than the workers'). */
export const ADMIN_TOKEN = 'channel-relay-admin';

export interface EmbeddedSystemOptions {
  /**
   * Messages per second of every Twilio channel, replacing the channels file's rate. The Twilio simulator enforces
   * each sender's channel rate either way. @defaultValue the channels file's rates
   */
  smsPerSecond?: number;
  /** The seed document. @defaultValue config/dataverse-seed.json with absolute tile and solution paths */
  seed?: SeedDocument;
  /** The channels file the workers' channels are derived from (tile paths resolved, Twilio rates set). @defaultValue config/channels.json */
  channelsFile?: string;
  /** Service Bus emulator configuration (Microsoft's Config.json shape). @defaultValue config/servicebus-emulator.json */
  serviceBusConfig?: unknown;
  /** Dataverse service protection limits. @defaultValue 'off' */
  limits?: 'off' | 'realistic' | Partial<LimitsConfig>;
  /** Latency added to every provider call, ms. @defaultValue 0 */
  providerLatencyMs?: number;
  /** Latency added to every Dataverse Web API response, ms. @defaultValue 0 */
  dataverseLatencyMs?: number;
  /** Creates whose posted Target leaves columns out (the Dataverse emulator's `partialTargets`). @defaultValue none */
  partialTargets?: PartialTargets;
  /** Extra simulator options by provider (e.g. more Twilio senders' limits). */
  twilioMpsBySender?: Record<string, number>;
  /**
   * The feedback path: the SMS channels get a callbacks block (tracked links, the keyword YES), the callbacks stage a
   * free loopback port, and the simulators post delivery reports, clicks, keyword replies and STOPs to it at the
   * rates given, or those of {@link FEEDBACK_RATES} for `true`. @defaultValue false
   */
  feedback?: boolean | FeedbackRates;
  /**
   * Conversations: the Direct Line emulator (with its simulated Omnichannel agents and identity platform) starts, and
   * the channels file gets a `messaging` account bridging the first Twilio channel (unless the file has its own
   * section), with a callbacks block on that channel for customers' messages. `true` or the agents' options.
   * @defaultValue false
   */
  conversations?: boolean | { agents?: AgentOptions };
  /** Environment entries for the workers on top of the embedded ones. */
  env?: Record<string, string>;
  /** The emulators' logger (the workers get theirs from whoever starts them). @defaultValue silentLogger() */
  log?: Logger;
}

/** What the simulated providers and recipients do with the messages: the simulators' own options. */
export interface FeedbackRates {
  callbacks: CallbackOptions;
  /** `keywords` are also the channels' keywords. */
  recipients: RecipientOptions & { keywords: string[] };
  /** Seeds each message's fate, so that a run is repeatable. */
  seed: number;
}

/** What the simulated recipients and providers do with the demo's messages. */
export const FEEDBACK_RATES: FeedbackRates = {
  callbacks: { undeliveredRate: 0.02, readRate: 0.2, repeatRate: 0.05, delayMs: { min: 20, max: 200 } },
  recipients: { clickRate: 0.3, replyRate: 0.1, keywords: ['YES'], stopRate: 0.03 },
  seed: 7,
};

export interface EmbeddedSystem extends Closeable {
  sb: ServiceBusEmulator;
  dv: DataverseEmulator;
  sim: ProviderSimulators;
  /** With `conversations`: the Direct Line emulator, its agents and identity platform. */
  dl?: DirectLineEmulator;
  /** With `conversations`: the identity platform's self-signed certificate (PEM), for an in-process validator. */
  identityCa?: string;
  /** What registering the endpoint and step did. */
  registration: RegistrationReport;
  /** A Web API client with {@link ADMIN_TOKEN}: what an administrator or a journey does, apart from the workers. */
  admin: DynamicsWebApi;
  /** The environment a worker runs with against this system (connection string, URLs, channels file, secrets). */
  env: Record<string, string>;
  /** The workers' configuration, loaded from {@link EmbeddedSystem.env}. */
  config: RelayConfig;
  /** The callback keys the configuration loader parsed (`LoadedConfig.callbackKeys`), when configured (with `feedback`). */
  callbackKeys?: CallbackKeys;
  channels: ChannelRegistry;
  /** The seed the Dataverse emulator was started with. */
  seed: SeedDocument;
  /** The folder holding the generated channels file; removed on close. */
  dir: string;
  /** With `feedback`: the callbacks service's base URL. */
  callbacksUrl?: string;
}

/** config/dataverse-seed.json with its tile and solution paths made absolute, so that it loads from any working directory. */
export function sampleSeed(): SeedDocument {
  const doc = JSON.parse(readFileSync(configPath('dataverse-seed.json'), 'utf8')) as SeedDocument;
  doc.tiles = (doc.tiles ?? []).map((t) => (typeof t === 'string' ? configPath(t) : t));
  doc.solutions = (doc.solutions ?? []).map((file) => configPath(file));
  return doc;
}

interface ChannelsDocument {
  messaging?: { accounts: Array<Record<string, unknown> & { channels: Array<Record<string, unknown>> }> };
  channels: Array<
    Record<string, unknown> & {
      tile?: string;
      provider: { type: string };
      sender: string;
      rateLimit?: Record<string, unknown>;
    }
  >;
}

/**
 * The channels file with tile paths made absolute and, when given, every Twilio channel's rate set to `smsPerSecond`;
 * with `feedback`, every Twilio channel with a tile gets a callbacks block on `${CALLBACKS_PUBLIC_URL}`.
 */
function embeddedChannels(
  file: string,
  smsPerSecond: number | undefined,
  feedback: FeedbackRates | undefined,
): ChannelsDocument {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as ChannelsDocument & { $schema?: string };
  delete doc.$schema;
  const dir = path.dirname(file);
  for (const channel of doc.channels) {
    if (typeof channel.tile === 'string') channel.tile = path.resolve(dir, channel.tile);
    if (channel.provider.type === 'twilio' && smsPerSecond !== undefined)
      channel.rateLimit = { ...channel.rateLimit, messages: smsPerSecond, intervalMs: 1000 };
    if (feedback !== undefined && channel.provider.type === 'twilio' && channel.tile !== undefined) {
      channel['callbacks'] = {
        publicBaseUrl: '${CALLBACKS_PUBLIC_URL}',
        trackLinks: true,
        keywords: [...feedback.recipients.keywords],
      };
    }
  }
  return doc;
}

/** Starts the three emulators, registers the endpoint and step, and writes the workers' channels file. */
export async function startEmbeddedSystem(options: EmbeddedSystemOptions = {}): Promise<EmbeddedSystem> {
  const log = options.log ?? silentLogger();
  const smsPerSecond = options.smsPerSecond;
  if (smsPerSecond !== undefined && (!Number.isInteger(smsPerSecond) || smsPerSecond < 1))
    throw new TypeError(
      `startEmbeddedSystem: smsPerSecond must be a whole number >= 1, found ${String(options.smsPerSecond)}`,
    );
  const closer = new Closer(log);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'channel-relay-'));
  closer.add('temp dir', () => rmSync(dir, { recursive: true, force: true }));
  try {
    const feedback =
      options.feedback === true ? FEEDBACK_RATES : options.feedback === false ? undefined : options.feedback;
    const channelsDoc = embeddedChannels(options.channelsFile ?? configPath('channels.json'), smsPerSecond, feedback);
    const conversations =
      options.conversations === true ? {} : options.conversations === false ? undefined : options.conversations;
    const dl =
      conversations === undefined
        ? undefined
        : closer.add('directline emulator', await startConversations(channelsDoc, conversations.agents, log));
    const callbacksPort = feedback === undefined && dl === undefined ? undefined : await freePort();
    const callbacksUrl = callbacksPort === undefined ? undefined : `http://127.0.0.1:${callbacksPort}`;
    // Replies to a sender's number go to its channel's inbound route (a Twilio number's messaging webhook).
    const inboundUrls = Object.fromEntries(
      channelsDoc.channels
        .filter((c) => c['callbacks'] !== undefined)
        .map((c) => [c.sender, `${callbacksUrl ?? ''}/callbacks/${String(c['name'])}/twilio/inbound`]),
    );
    // The simulator holds each Twilio sender to its channel's rate, in whole segments per second (rounded up, so that
    // a sender at its channel's rate is never queued).
    const twilioSenders = Object.fromEntries(
      channelsDoc.channels
        .filter((c) => c.provider.type === 'twilio')
        .map((c) => [
          c.sender,
          Math.max(
            1,
            Math.ceil((Number(c.rateLimit?.['messages'] ?? 1) * 1000) / Number(c.rateLimit?.['intervalMs'] ?? 1000)),
          ),
        ]),
    );
    const busConfig =
      options.serviceBusConfig ?? JSON.parse(readFileSync(configPath('servicebus-emulator.json'), 'utf8'));
    const sb = closer.add(
      'servicebus emulator',
      await startServiceBusEmulator({ port: 0, config: busConfig, logger: log }),
    );
    const sim = closer.add(
      'provider simulators',
      await startProviderSimulators({
        latencyMs: options.providerLatencyMs ?? 0,
        twilio: { mpsBySender: { ...twilioSenders, ...options.twilioMpsBySender }, inboundUrls },
        ...(feedback === undefined
          ? {}
          : { callbacks: feedback.callbacks, recipients: feedback.recipients, seed: feedback.seed }),
        log,
      }),
    );
    const seed = options.seed ?? sampleSeed();
    const dv = closer.add(
      'dataverse emulator',
      await startDataverseEmulator({
        port: 0,
        seed,
        limits: options.limits ?? 'off',
        servicebus: sb.connectionString,
        responseDelayMs: options.dataverseLatencyMs ?? 0,
        ...(options.partialTargets === undefined ? {} : { partialTargets: options.partialTargets }),
        log,
      }),
    );

    const admin = createDataverseClient({ url: dv.url, auth: 'emulator', tokenIdentity: ADMIN_TOKEN });
    closer.add('admin client', () => closeDataverseClient(admin));
    const registration = await registerRelay(
      admin,
      { serviceBus: serviceBusFromConnectionString(sb.connectionString) },
      { log },
    );

    const channelsFile = path.join(dir, 'channels.json');
    writeFileSync(channelsFile, JSON.stringify(channelsDoc, null, 2));
    // Spawned workers trust the emulated identity platform's certificate through Node's own variable.
    const caFile = path.join(dir, 'identity-ca.pem');
    if (dl !== undefined) writeFileSync(caFile, dl.identityCa);
    const env: Record<string, string> = {
      SERVICEBUS_CONNECTION_STRING: sb.connectionString,
      DATAVERSE_URL: dv.url,
      DATAVERSE_AUTH: 'emulator',
      CHANNELS_FILE: channelsFile,
      PROVIDERS_URL: sim.url,
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      ...DEMO_SECRETS,
      ...(dl === undefined ? {} : { NODE_EXTRA_CA_CERTS: caFile }),
      ...(callbacksPort === undefined
        ? {}
        : {
            CALLBACKS_PORT: String(callbacksPort),
            CALLBACKS_PUBLIC_URL: callbacksUrl as string,
            CALLBACK_SIGNING_KEYS: `demo:${randomBytes(32).toString('base64')}`,
          }),
      ...options.env,
    };
    const { config, callbackKeys } = loadConfig({ env });
    if (callbacksPort !== undefined) config.callbacks = { ...config.callbacks, host: '127.0.0.1' };
    const channels = loadChannels(channelsFile, { env });
    return {
      sb,
      dv,
      sim,
      ...(dl === undefined ? {} : { dl, identityCa: dl.identityCa }),
      registration,
      admin,
      env,
      config,
      ...(callbackKeys === undefined ? {} : { callbackKeys }),
      channels,
      seed,
      dir,
      ...(callbacksUrl === undefined ? {} : { callbacksUrl }),
      close: () => closer.close(),
    };
  } catch (err) {
    await closer.close();
    throw err;
  }
}

/**
 * Starts the Direct Line emulator for the channels file's `messaging` section, adding one when the file has none: an
 * account of the embedded bot ({@link DEMO_APP_ID}, multi-tenant) bridging the first Twilio channel, which gets a
 * callbacks block for its customers' messages. The account's URLs are pointed at the emulator; its agents serve each
 * messaging channel (channel ID as `channeltype`, workstream, language, attachment toggles).
 */
async function startConversations(
  doc: ChannelsDocument,
  agents: AgentOptions | undefined,
  log: Logger,
): Promise<DirectLineEmulator> {
  if (doc.messaging === undefined) {
    const sms = doc.channels.find((c) => c.provider.type === 'twilio');
    if (sms === undefined) throw new TypeError('startEmbeddedSystem: conversations need a Twilio channel to bridge');
    doc.messaging = {
      accounts: [
        {
          name: 'demo',
          appId: DEMO_APP_ID,
          tenant: 'multi',
          clientSecret: 'env:MESSAGING_CLIENT_SECRET',
          directLineSecret: 'env:DIRECTLINE_SECRET',
          channels: [
            {
              name: 'support-sms',
              channelId: 'sms',
              relayChannel: sms['name'],
              workstream: 'SMS support',
              language: 'en-US',
              conversationContext: { source: 'sms' },
              attachments: { customer: true, agent: true },
              attachmentRefusal: 'Sorry, we cannot receive files on this channel.',
            },
          ],
        },
      ],
    };
  }
  const bridged = new Set(doc.messaging.accounts.flatMap((a) => a.channels.map((c) => String(c['relayChannel']))));
  for (const channel of doc.channels) {
    if (bridged.has(String(channel['name'])) && channel['callbacks'] === undefined)
      channel['callbacks'] = { publicBaseUrl: '${CALLBACKS_PUBLIC_URL}' };
  }
  const dl = await startDirectLineEmulator({
    secrets: [DEMO_SECRETS.DIRECTLINE_SECRET],
    identity: {
      apps: doc.messaging.accounts.map((a) => ({
        clientId: String(a['appId']),
        tenant: a['tenant'] === 'multi' ? BOT_FRAMEWORK_TENANT : String(a['tenant']),
        secrets: [{ value: DEMO_SECRETS.MESSAGING_CLIENT_SECRET }],
      })),
    },
    agents: {
      ...agents,
      channels: doc.messaging.accounts.flatMap((a) =>
        a.channels.map((c) => {
          const attachments = c['attachments'] as { customer?: boolean; agent?: boolean } | undefined;
          return {
            channelType: String(c['channelId']),
            workstream: String(c['workstream']),
            language: String(c['language'] ?? 'en-US'),
            customerAttachments: attachments?.customer ?? false,
            agentAttachments: attachments?.agent ?? false,
            surveyUrl: `https://survey.example.com/s/${encodeURIComponent(String(c['channelId']))}`,
          };
        }),
      ),
    },
    log,
  });
  for (const account of doc.messaging.accounts) {
    account['directLineUrl'] = dl.url;
    account['authorityHost'] = dl.identityUrl;
  }
  return dl;
}
