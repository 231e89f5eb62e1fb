/**
 * Twilio Programmable Messaging: `send` (one form-encoded `POST …/Messages.json` per message, HTTP basic auth
 * AccountSid:AuthToken), `findSent` (the Messages list, for a send whose answer was lost or whose replica died) and
 * `fetchMessage` (one message by its SID, for the callbacks service), all with the same credentials, client, timeout
 * and error mapping.
 *
 * Invariant: deduplication of real sends never rests on Twilio, which ignores idempotency headers on message creation;
 * it rests on the pipeline (one session per sender, the outbound queue's duplicate detection, `findSent` before a
 * message that may have been created is sent again).
 */
import { ProviderError } from '../../errors.js';
import { postAndMap } from '../http.js';
import { adapterCall, type AdapterCall, type AdapterOptions } from '../options.js';
import type { Provider, SendRequest, SendResult, SentQuery } from '../provider.js';
import {
  mapTwilioFetchResponse,
  mapTwilioListResponse,
  mapTwilioResponse,
  type TwilioListedMessage,
  type TwilioMessage,
  type TwilioMessagePage,
} from './map-response.js';

export const TWILIO_BASE_URL = 'https://api.twilio.com';

/**
 * The most `MediaUrl`s of one message: "up to 10 media files that have a total size of up to 5MB"
 * (twilio.com/docs/messaging/api/media-resource).
 */
export const TWILIO_MAX_MEDIA = 10;

/** Messages per list page a lookup asks for (Twilio's maximum `PageSize`). */
const TWILIO_LIST_PAGE_SIZE = 1000;
/** Pages a lookup reads at most: past them it cannot tell, and rejects. */
const TWILIO_LIST_MAX_PAGES = 5;
/**
 * Allowed difference between our clock and Twilio's `date_created` (whole seconds, RFC 2822) when a listed message
 * is matched to the span of a call.
 */
export const TWILIO_LOOKUP_SKEW_MS = 60_000;

export interface TwilioSettings {
  accountSid: string;
  authToken: string;
  /** @defaultValue {@link TWILIO_BASE_URL} */
  baseUrl?: string;
}

export class TwilioProvider implements Provider {
  readonly type = 'twilio' as const;
  readonly maxAttachments = TWILIO_MAX_MEDIA;
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

  /**
   * `POST {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages.json` with `To`, `Body`, and `From`, or
   * `MessagingServiceSid` when the sender is a Messaging Service SID (`MG…`); `StatusCallback` when the request has a
   * `statusCallbackUrl` (per-message status webhooks); and `I-Twilio-Idempotency-Token: <idempotencyKey>`. Twilio
   * documents that header on the webhooks it sends, not as a deduplication key of message creation: real Twilio
   * ignores it here. It is sent so that the provider simulator (and any idempotent proxy in front of Twilio) can
   * recognise a repeated send of the same activity. Attachments go as one `MediaUrl` each (an MMS; at most
   * {@link TWILIO_MAX_MEDIA}: more throw a `TypeError` before the call), Twilio fetches them from their URLs.
   */
  async send(request: SendRequest): Promise<SendResult> {
    const media = request.attachments ?? [];
    if (media.length > TWILIO_MAX_MEDIA)
      throw new TypeError(`twilio: a message carries at most ${TWILIO_MAX_MEDIA} media, this one has ${media.length}`);
    const form = new URLSearchParams();
    form.set('To', request.to);
    form.set(request.from.startsWith('MG') ? 'MessagingServiceSid' : 'From', request.from);
    form.set('Body', request.text);
    for (const file of media) form.append('MediaUrl', file.url);
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
   * The message this account sent `query.to` from `query.from` with exactly `query.text`, created within the query's
   * span (± {@link TWILIO_LOOKUP_SKEW_MS}), whose sid is not excluded; `undefined` when the list holds none. Reads
   * `GET …/Messages.json?To=&From=&PageSize=1000` (a Messaging Service sender: `To` only, matched on
   * `messaging_service_sid`), following `next_page_uri` (on this base URL only) for at most
   * {@link TWILIO_LIST_MAX_PAGES} pages; a longer list rejects (`ProviderBadResponse`: it cannot tell).
   *
   * No `DateSent` filter: it filters on `date_sent`, which Twilio sets only when the message leaves its queue, so a
   * message still `queued`/`accepted` (exactly what a send made just before a crash may be) could be missing from a
   * `DateSent>=` list; and the list is sorted by `DateSent` without saying where unsent messages go, so the pages are
   * read without stopping early. The match is on the body and the span, because the Message resource
   * does not echo the `StatusCallback` URL nor the idempotency header (UNVERIFIED: that `body` is stored as sent; a
   * body Twilio rewrote, such as a trial account's prefix or Smart Encoding, is not found). Sources: twilio.com/docs/messaging/api/message-resource
   * ("Read multiple Message resources": `To`, `From`, `DateSent`, `PageSize` up to 1000, `next_page_uri`).
   */
  async findSent(query: SentQuery): Promise<SendResult | undefined> {
    const service = query.from.startsWith('MG');
    const params = new URLSearchParams({ To: query.to });
    if (!service) params.set('From', query.from);
    params.set('PageSize', String(TWILIO_LIST_PAGE_SIZE));
    const since = query.since - TWILIO_LOOKUP_SKEW_MS;
    const until = query.until + TWILIO_LOOKUP_SKEW_MS;
    const matches = (m: TwilioListedMessage): boolean =>
      m.direction.startsWith('outbound') &&
      m.to === query.to &&
      (service ? m.messagingServiceSid === query.from : m.from === query.from) &&
      m.body === query.text &&
      m.dateCreated >= since &&
      m.dateCreated <= until &&
      !(query.exclude?.has(m.sid) ?? false);
    let url = `${this.#url}?${params.toString()}`;
    for (let page = 1; ; page++) {
      const result: TwilioMessagePage = await postAndMap({
        ...this.#call,
        method: 'GET',
        url,
        headers: { authorization: this.#authorization, accept: 'application/json' },
        body: '',
        signal: query.signal,
        map: mapTwilioListResponse,
        message: 'provider answered a message lookup',
        fields: { page },
        outcome: (p) => `${p.messages.length} listed`,
      });
      const found = result.messages.find(matches);
      if (found !== undefined) return { providerMessageId: found.sid, status: found.status || 'queued' };
      if (result.nextPageUri === undefined) return undefined;
      if (page >= TWILIO_LIST_MAX_PAGES) {
        throw new ProviderError(
          'ProviderBadResponse',
          `twilio lookup: no match in ${page} pages of ${TWILIO_LIST_PAGE_SIZE} messages and more pages follow: cannot tell whether the message was sent`,
          {
            context: { pages: page },
          },
        );
      }
      const next = new URL(result.nextPageUri, this.#messagesUrl);
      // The credentials go nowhere but the configured base URL.
      if (next.origin !== new URL(this.#messagesUrl).origin)
        throw new ProviderError(
          'ProviderBadResponse',
          `twilio lookup: next_page_uri points to another origin (${next.origin})`,
        );
      url = next.toString();
    }
  }

  /**
   * The Message resource `sid` of this account (`GET {baseUrl}/2010-04-01/Accounts/{AccountSid}/Messages/{sid}.json`),
   * so that the callbacks service can check that an inbound reply is one Twilio really received, and when; undefined
   * when Twilio answers 404 (no such message here). Throws
   * a `ProviderError` for any other failure (`ProviderUnavailable`/`ProviderTimeout` for the network,
   * `ProviderRateLimited` for 429, `ProviderUnauthorized` for the credentials …), or the signal's reason on abort.
   * Logs (debug) the status and duration only: never the token, the sid's message or its numbers.
   */
  async fetchMessage(sid: string, signal?: AbortSignal): Promise<TwilioMessage | undefined> {
    if (!/^[A-Za-z0-9]{2,64}$/.test(sid))
      throw new TypeError('twilio fetchMessage: a message sid is letters and digits');
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
