/**
 * What each stage needs from the configuration, so that a process holds only what its stages use (least privilege),
 * and the loading of one process's configuration and channels by those needs: for the workers and for
 * `channel-relay config check --stage`.
 */
import {
  loadChannels,
  type Channel,
  type ChannelRegistry,
  type MessagingReading,
  type ProviderReading,
} from '../channels/index.js';
import { loadConfig, type LoadedConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { CallbackKeys } from '../correlation/index.js';

/** The stages a process can run. */
export const STAGES = ['intake', 'dispatch', 'recorder', 'callbacks', 'conversations'] as const;
export type StageName = (typeof STAGES)[number];
/** The stages `workers/all.ts` runs in one process (and `config check --stage all` checks). */
export const ALL_IN_ONE_STAGES: readonly StageName[] = ['intake', 'dispatch', 'recorder'];

/** What a stage reads. Every stage needs the Service Bus connection. */
export interface StageNeeds {
  /** The Dataverse org: `dataverse.url` and its identity. */
  readonly dataverse: boolean;
  /** The channels file. */
  readonly channels: boolean;
  /** Which channels' provider settings (secrets, URLs) it reads. */
  readonly providers: ProviderReading;
  /** The secrets of the channels' `callbacks` blocks (`webhookSecretToken`, `previousAuthToken`, `sharedKeySecret`). */
  readonly callbackSecrets: boolean;
  /**
   * Which secrets and URLs of the `messaging` accounts it reads: the conversations stage opens Direct Line
   * conversations and validates its accounts (`all`); the others read neither (`none`; the callbacks service only
   * looks up which relay channels are bridged).
   */
  readonly messaging: MessagingReading;
}

/**
 * Each stage's needs: intake reads Dataverse and routes and renders by the channels without their secrets; dispatch
 * calls the providers and never Dataverse; the recorder writes Dataverse and needs no channel; the callbacks service
 * reads Dataverse and verifies what the providers post to the channels that have callbacks; the conversations stage
 * talks to Direct Line with the messaging accounts' secrets, fetches customer attachments from the providers, and
 * never calls Dataverse. Callback signing keys:
 * see `callbackKeysFor`.
 */
export const STAGE_NEEDS: Readonly<Record<StageName, StageNeeds>> = {
  intake: { dataverse: true, channels: true, providers: 'none', callbackSecrets: false, messaging: 'none' },
  dispatch: { dataverse: false, channels: true, providers: 'all', callbackSecrets: false, messaging: 'none' },
  recorder: { dataverse: true, channels: false, providers: 'none', callbackSecrets: false, messaging: 'none' },
  callbacks: { dataverse: true, channels: true, providers: 'callbacks', callbackSecrets: true, messaging: 'none' },
  // The media fetchers of customer attachments use the providers' credentials (Twilio media, Telegram getFile); the
  // messaging accounts' Direct Line secrets open conversations and their client secrets are validated (readiness).
  conversations: { dataverse: false, channels: true, providers: 'all', callbackSecrets: false, messaging: 'all' },
};

/**
 * What a process running `stages` needs: the union of theirs. Stages whose provider readings differ and which both
 * load channels (intake and callbacks without dispatch, which no entry point runs) read every provider's settings.
 */
export function needsOf(stages: readonly StageName[]): StageNeeds {
  const needs = stages.map((s) => STAGE_NEEDS[s]);
  const readings = new Set(needs.filter((n) => n.channels).map((n) => n.providers));
  return {
    dataverse: needs.some((n) => n.dataverse),
    channels: needs.some((n) => n.channels),
    providers: readings.size === 0 ? 'none' : readings.size === 1 ? ([...readings][0] as ProviderReading) : 'all',
    callbackSecrets: needs.some((n) => n.callbackSecrets),
    messaging: messagingUnion(needs.map((n) => n.messaging)),
  };
}

/** The messaging reading that covers every one of `readings`. */
function messagingUnion(readings: readonly MessagingReading[]): MessagingReading {
  const directLine = readings.some((r) => r === 'directLine' || r === 'all');
  const identity = readings.some((r) => r === 'identity' || r === 'all');
  return directLine && identity ? 'all' : directLine ? 'directLine' : identity ? 'identity' : 'none';
}

export interface LoadStageConfigOptions {
  /** A configuration file merged over the defaults. @defaultValue env CHANNEL_RELAY_CONFIG, else none */
  file?: string;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue process.cwd() */
  cwd?: string;
}

/**
 * The keys of the callback tokens and tracked-link codes, as the configuration loader parsed them
 * (`LoadedConfig.callbackKeys`); undefined when none are configured and none of `stages` needs them. Needed by the
 * callbacks service always (it verifies every token and link code with them), by intake for a channel that tracks
 * links (`callbacks.trackLinks`), by dispatch for a Twilio channel with callbacks (its status callback URLs). Throws a
 * `ConfigError` when they are needed but not set.
 */
export function callbackKeysFor(
  keys: CallbackKeys | undefined,
  channels: ChannelRegistry | undefined,
  stages: readonly StageName[],
): CallbackKeys | undefined {
  if (keys !== undefined) return keys;
  const all = channels?.all() ?? [];
  const some = (list: readonly Channel[], has: string, have: string): string =>
    `channel${list.length > 1 ? 's' : ''} ${list.map((c) => c.name).join(', ')} in ${channels?.file ?? 'the channels file'} ${list.length > 1 ? have : has}`;
  const reasons: string[] = [];
  const withCallbacks = all.filter((c) => c.callbacks !== undefined);
  const tracking = all.filter((c) => c.callbacks?.trackLinks === true);
  const twilio = withCallbacks.filter((c) => c.provider.type === 'twilio');
  if (stages.includes('callbacks'))
    reasons.push(
      withCallbacks.length > 0
        ? some(withCallbacks, 'has callbacks', 'have callbacks')
        : 'the callbacks service verifies its tokens and link codes with them',
    );
  else {
    if (stages.includes('intake') && tracking.length > 0)
      reasons.push(`${some(tracking, 'tracks links', 'track links')} (callbacks.trackLinks)`);
    if (stages.includes('dispatch') && twilio.length > 0)
      reasons.push(`${some(twilio, 'gets', 'get')} Twilio status callbacks`);
  }
  if (reasons.length === 0) return undefined;
  throw new ConfigError('ConfigInvalid', [
    {
      source: 'configuration',
      path: 'callbacks.signingKeys',
      expected: `the callback signing keys (set CALLBACK_SIGNING_KEYS), because ${reasons.join(' and ')}`,
      found: 'nothing',
    },
  ]);
}

/** A process's configuration and, when its stages use channels, its channels. */
export interface StageConfig {
  loaded: LoadedConfig;
  /** Undefined when no stage of the process uses channels (the recorder). */
  channels: ChannelRegistry | undefined;
}

/**
 * Loads and checks what `stages` need and nothing else: the configuration (the bus; Dataverse unless only dispatch),
 * then the channels (unless only the recorder) with the provider settings and callback secrets the stages use, then
 * the callback signing keys where they need them. Throws a `ConfigError` naming every problem of the configuration,
 * or else of the channels file, or else the keys'.
 */
export function loadStageConfig(stages: readonly StageName[], options: LoadStageConfigOptions = {}): StageConfig {
  const needs = needsOf(stages);
  const env = options.env ?? process.env;
  const loaded = loadConfig({
    ...options,
    env,
    forWorkers: true,
    needsDataverse: needs.dataverse,
    needsChannels: needs.channels,
  });
  const channels = needs.channels
    ? loadChannels(loaded.config.channelsFile, {
        env,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        providers: needs.providers,
        callbackSecrets: needs.callbackSecrets,
        messaging: needs.messaging,
      })
    : undefined;
  callbackKeysFor(loaded.callbackKeys, channels, stages);
  return { loaded, channels };
}
