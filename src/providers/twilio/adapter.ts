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
 */
import { areaLogger, type Logger } from '../../log.js';
import { isProviderError } from '../../errors.js';
import { httpPost } from '../http.js';
import type { AdapterOptions } from '../options.js';
import type { Provider, SendRequest, SendResult } from '../provider.js';
import { mapTwilioResponse } from './map-response.js';

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
  readonly #authorization: string;
  readonly #secrets: readonly string[];
  readonly #options: AdapterOptions;
  readonly #log: Logger;

  constructor(settings: TwilioSettings, options: AdapterOptions) {
    const base = (settings.baseUrl ?? TWILIO_BASE_URL).replace(/\/+$/, '');
    this.#url = `${base}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/Messages.json`;
    const basic = Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString('base64');
    this.#authorization = `Basic ${basic}`;
    this.#secrets = [settings.authToken, basic];
    this.#options = options;
    this.#log = areaLogger(options.log, 'provider', { provider: 'twilio' });
  }

  async send(request: SendRequest): Promise<SendResult> {
    const form = new URLSearchParams();
    form.set('To', request.to);
    form.set(request.from.startsWith('MG') ? 'MessagingServiceSid' : 'From', request.from);
    form.set('Body', request.text);
    if (request.statusCallbackUrl !== undefined) form.set('StatusCallback', request.statusCallbackUrl);
    const started = Date.now();
    const response = await httpPost({
      provider: 'twilio',
      url: this.#url,
      headers: {
        authorization: this.#authorization,
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        'i-twilio-idempotency-token': request.idempotencyKey,
      },
      body: form.toString(),
      timeoutMs: this.#options.timeoutMs,
      secrets: this.#secrets,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
      ...(this.#options.fetch === undefined ? {} : { fetch: this.#options.fetch }),
    });
    const outcome = mapTwilioResponse(response);
    this.#log.debug('provider answered', { status: response.status, idempotencyKey: request.idempotencyKey, durationMs: Date.now() - started, outcome: isProviderError(outcome) ? outcome.code : 'accepted' });
    if (isProviderError(outcome)) throw outcome;
    return outcome;
  }
}
