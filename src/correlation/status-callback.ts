/**
 * The per-message status callback URL of a dispatch send (Twilio `StatusCallback`), for `DispatchOptions.statusCallbackUrl`.
 *
 * A journey message (`purpose: 'journey'`, a marketing context) through a Twilio channel with `callbacks` gets
 * `${publicBaseUrl}/callbacks/${channel}/twilio/status?t=${token}`, where the token (`sealContext`) carries the
 * activity, journey, iteration, contact and message record: the callbacks service records `delivered`, `opened`
 * (read) or the failure type from it without any lookup. Twilio signs the full URL, query string included
 * (`X-Twilio-Signature`), so the token cannot be swapped either.
 *
 * No URL (undefined): a channel without callbacks; Telegram (the Bot API has no delivery reports); the contract
 * (its delivery reports name the journey's own `RequestId`, which the contract adapter already sends); an automated
 * confirmation (no activity to record); a real-time journeys message (its reports go to msdyn_D365ChannelsNotification
 * by RequestId, and the token format holds marketing contexts only).
 */
import type { Channel } from '../channels/index.js';
import type { OutboundMessage } from '../pipeline/index.js';
import { sealContext, type CallbackKeys } from './token.js';

/** The route of Twilio status callbacks, relative to the channel's public base URL. */
export function twilioStatusPath(channel: string): string {
  return `/callbacks/${encodeURIComponent(channel)}/twilio/status`;
}

/** A `statusCallbackUrl` option for `DispatchStage` that seals each journey message's context with `keys`. */
export function statusCallbackUrls(keys: CallbackKeys): (channel: Channel, message: OutboundMessage) => string | undefined {
  return (channel, message) => {
    const base = channel.callbacks?.publicBaseUrl;
    if (base === undefined || channel.provider.type !== 'twilio') return undefined;
    if (message.purpose !== 'journey' || message.context?.kind !== 'marketing') return undefined;
    return `${base}${twilioStatusPath(channel.name)}?t=${sealContext(message.context, channel.name, keys)}`;
  };
}
