/**
 * The secrets a channel's callbacks accept, read in one place from its resolved `callbacks` block (src/channels
 * fills in the defaults and reads the secrets from the environment): two at once while a secret is rotated.
 */
import type { Channel, ChannelCallbacks } from '../../channels/index.js';

/** What the callbacks service uses of a channel beyond its `callbacks` block. */
export interface CallbackSettings {
  readonly callbacks: ChannelCallbacks;
  /** Twilio auth tokens accepted for signatures: the channel's, and `previousAuthToken` while rotating. */
  readonly twilioAuthTokens: readonly string[];
  /** Twilio SharedKey secrets accepted when a request names its signing (`callbacks.sharedKeySecret`, split on whitespace). */
  readonly twilioSharedKeys: readonly string[];
  /** Telegram secret tokens accepted (`webhookSecretToken`: one, or two separated by a space while rotating); empty: every update refused. */
  readonly telegramSecretTokens: readonly string[];
  /** Standard Webhooks secrets accepted on a contract channel (its `signingSecret`: several separated by whitespace while rotating). */
  readonly contractSecrets: readonly string[];
}

const cache = new WeakMap<Channel, CallbackSettings>();

/** The channel's callback settings (computed once per channel object); undefined when the channel has no `callbacks` block. */
export function callbackSettings(channel: Channel): CallbackSettings | undefined {
  const callbacks = channel.callbacks;
  if (callbacks === undefined) return undefined;
  let s = cache.get(channel);
  if (s !== undefined) return s;
  const nonEmpty = (list: Array<string | undefined>): string[] =>
    list.filter((t): t is string => typeof t === 'string' && t !== '');
  // A provider whose settings were not read (a Telegram channel's, in the callbacks service) gives no secret.
  const provider = 'unread' in channel.provider ? undefined : channel.provider;
  s = {
    callbacks,
    twilioAuthTokens: provider?.type === 'twilio' ? nonEmpty([provider.authToken, callbacks.previousAuthToken]) : [],
    twilioSharedKeys: provider?.type === 'twilio' ? nonEmpty((callbacks.sharedKeySecret ?? '').split(/\s+/)) : [],
    telegramSecretTokens: nonEmpty((callbacks.webhookSecretToken ?? '').split(/\s+/)),
    contractSecrets: provider?.type === 'contract' ? nonEmpty(provider.signingSecret.split(/\s+/)) : [],
  };
  cache.set(channel, s);
  return s;
}

/** The URL the provider called, as it signed it: the channel's public base URL and the request's path and query. */
export function publicUrl(settings: CallbackSettings, requestUrl: string): string {
  return `${settings.callbacks.publicBaseUrl.replace(/\/+$/, '')}${requestUrl}`;
}
