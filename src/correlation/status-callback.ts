/**
 * The per-message status callback URL of a dispatch send (Twilio `StatusCallback`), for
 * `DispatchOptions.statusCallbackUrl`: `${publicBaseUrl}/callbacks/${channel}/twilio/status?t=${token}`, where the
 * token (`sealContext`) carries the activity, journey, iteration, contact and message record, so the callbacks service
 * records `delivered`, `opened` (read) or the failure type from it without any lookup, and the send time, so that it
 * knows the newest message each recipient was sent (its reply cache). Twilio signs the full URL,
 * query string included (`X-Twilio-Signature`), so the token cannot be swapped either.
 */
import type { MarketingContext } from './context.js';
import { sealContext, type CallbackKeys } from './token.js';

/** What a status callback URL reads of a channel (a `Channel` fits). */
export interface StatusCallbackChannel {
  readonly name: string;
  readonly provider: { readonly type: string };
  readonly callbacks?: { readonly publicBaseUrl: string } | undefined;
}

/** What a status callback URL reads of a message (an `OutboundMessage` fits): why it is sent and its context. */
export interface StatusCallbackMessage {
  readonly purpose: string;
  readonly context?: MarketingContext | { readonly kind: 'realtime' } | undefined;
}

/** The route of Twilio status callbacks, relative to the channel's public base URL. */
export function twilioStatusPath(channel: string): string {
  return `/callbacks/${encodeURIComponent(channel)}/twilio/status`;
}

/**
 * A `statusCallbackUrl` option for `DispatchStage` that seals each journey message's context with `keys` and the time
 * of the send (`now`, when dispatch asks for the URL: just before the provider call; @defaultValue Date.now): a journey
 * message (`purpose: 'journey'`, a marketing context) through a Twilio channel with `callbacks` gets a URL. None
 * (undefined) for a channel without callbacks; Telegram (the Bot API has no delivery reports); the contract (its
 * delivery reports name the journey's own `RequestId`, which the contract adapter already sends); an automated
 * confirmation (no activity to record); a real-time journeys message (its reports go to msdyn_D365ChannelsNotification
 * by RequestId, and the token format holds marketing contexts only).
 */
export function statusCallbackUrls(
  keys: CallbackKeys,
  now: () => number = Date.now,
): (channel: StatusCallbackChannel, message: StatusCallbackMessage) => string | undefined {
  return (channel, message) => {
    const base = channel.callbacks?.publicBaseUrl;
    if (base === undefined || channel.provider.type !== 'twilio') return undefined;
    if (message.purpose !== 'journey' || message.context?.kind !== 'marketing') return undefined;
    return `${base}${twilioStatusPath(channel.name)}?t=${sealContext(message.context, channel.name, keys, Math.floor(now()))}`;
  };
}
