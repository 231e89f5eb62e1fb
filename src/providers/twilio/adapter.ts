/**
 * Twilio Programmable Messaging: one `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json` per message,
 * form-encoded, HTTP basic auth (AccountSid:AuthToken).
 *
 * - `To`, `Body`, and `From`, or `MessagingServiceSid` when the sender is a Messaging Service SID (`MG…`);
 * - `StatusCallback` when the request has a `statusCallbackUrl` (per-message status webhooks);
 * - `I-Twilio-Idempotency-Token: <idempotencyKey>`. Twilio documents this header on the webhooks it sends, not as
 *   a deduplication key of message creation; real Twilio ignores it on this request. It is sent so that the
 *   provider simulator (and any idempotent proxy in front of Twilio) can recognise a repeated send of the same
 *   activity. Deduplication of real sends rests on the pipeline (one session per sender, the outbound queue's
 *   duplicate detection), not on Twilio.
 *
 * And `fetchMessage`: `GET {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json` with the same
 * credentials, client, timeout and error mapping, so that the callbacks service can check that an inbound reply is
 * one Twilio really received, and when.
 */
import { postAndMap } from '../http.js';
import { adapterCall, type AdapterCall, type AdapterOptions } from '../options.js';
import type { Provider, SendRequest, SendResult } from '../provider.js';
import { mapTwilioFetchResponse, mapTwilioResponse, type TwilioMessage } from './map-response.js';

export const TWILIO_BASE_URL = 'https://api.twilio.com';

export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  /** @defaultValue {@link TWILIO_BASE_URL} */
  baseUrl?: string;
}

export class TwilioProvider implements Provider {
  readonly type = 'twilio' as const;
  readonly #url: string;
  readonly #messagesUrl: string;
  readonly #authorization: string;
  readonly #call: AdapterCall;

  constructor(settings: TwilioSettings, options: AdapterOptions) {
    const base = (settings.baseUrl ?? TWILIO_BASE_URL).replace(/\/+$/, '');
    this.#messagesUrl = `${base}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/Messages`;
    this.#url = `${this.#messagesUrl}.json`;
    const basic = Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString('base64');
    this.#authorization = `Basic ${basic}`;
    this.#call = adapterCall('twilio', options, [settings.authToken, basic]);
  }

  async send(request: SendRequest): Promise<SendResult> {
    const form = new URLSearchParams();
    form.set('To', request.to);
    form.set(request.from.startsWith('MG') ? 'MessagingServiceSid' : 'From', request.from);
    form.set('Body', request.text);
    if (request.statusCallbackUrl !== undefined) form.set('StatusCallback', request.statusCallbackUrl);
    return postAndMap({
      ...this.#call,
      url: this.#url,
      headers: {
        authorization: this.#authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'i-twilio-idempotency-token': request.idempotencyKey,
      },
      body: form.toString(),
      signal: request.signal,
      map: mapTwilioResponse,
      fields: { idempotencyKey: request.idempotencyKey },
    });
  }

  /**
   * The Message resource `sid` of this account, or undefined when Twilio answers 404 (no such message here). Throws
   * a `ProviderError` for any other failure (`ProviderUnavailable`/`ProviderTimeout` for the network,
   * `ProviderRateLimited` for 429, `ProviderUnauthorized` for the credentials …), or the signal's reason on abort.
   * Logs (debug) the status and duration only: never the token, the sid's message or its numbers.
   */
  async fetchMessage(sid: string, signal?: AbortSignal): Promise<TwilioMessage | undefined> {
    if (!/^[A-Za-z0-9]{2,64}$/.test(sid)) throw new TypeError('twilio fetchMessage: a message sid is letters and digits');
    return postAndMap({
      ...this.#call,
      method: 'GET',
      url: `${this.#messagesUrl}/${sid}.json`,
      headers: { authorization: this.#authorization, accept: 'application/json' },
      body: '',
      signal,
      map: mapTwilioFetchResponse,
      message: 'provider answered a message fetch',
      outcome: (message) => (message === undefined ? 'not-found' : 'found'),
    });
  }
}
