/**
 * Fetching a customer's attachment from its provider, for the conversations stage to upload to Direct Line
 * (`mediaFetcher(settings)`; its results are the stage's `UploadFile`s):
 *
 * - Twilio: an inbound MMS's `MediaUrl` with the account's basic auth, on the account's own base URL only (the
 *   credentials go nowhere else); Twilio answers with a redirect to a short-lived URL (support article 223183748,
 *   "Protect Media Access with HTTP Basic Authentication"), followed without the credentials (a pre-signed URL refuses
 *   a second auth mechanism), at most {@link MAX_MEDIA_REDIRECTS} times, http(s) only.
 * - Telegram: `getFile` for the `telegram-file:<file_id>` URL, then `GET {baseUrl}/file/bot<token>/<file_path>`
 *   (core.telegram.org/bots/api#getfile); the token is in both URLs, so neither appears in an error or a log line.
 *
 * - The contract: a plain GET of the media part's URL (no credentials), redirects followed as Twilio's are.
 *
 * All stop at `maxBytes` ({@link MAX_MEDIA_BYTES} by default: Telegram's own download limit). Failures are
 * `ProviderError`s: `ProviderRejected` (gone, refused, too large: fetching again does not help), `ProviderUnauthorized`
 * (credentials), `ProviderUnavailable` / `ProviderTimeout` / `ProviderRateLimited` (try again later).
 */
import { isProviderError, ProviderError } from '../errors.js';
import { httpGetBytes, postAndMap, type BytesResponse, type HttpResponse } from './http.js';
import { adapterCall, adapterOptions, type AdapterCall, type CreateProviderOptions } from './options.js';
import type { ProviderSettings, SendAttachment } from './provider.js';
import { TELEGRAM_BASE_URL } from './telegram/adapter.js';
import { telegramFileId } from './telegram/media.js';
import { mapTelegramResponse } from './telegram/map-response.js';
import { TWILIO_BASE_URL } from './twilio/adapter.js';
import { MAX_MEDIA_REDIRECTS } from './twilio/assumptions.js';
import { contractSecrets } from './contract/adapter.js';

/** The largest file fetched by default: 20 MB, the most Telegram's getFile lets a bot download. */
export const MAX_MEDIA_BYTES = 20 * 1024 * 1024;

/** A fetched file, as Direct Line's upload takes it (the conversations stage's `UploadFile`). */
export interface MediaFile {
  name: string;
  contentType: string;
  data: Buffer;
}

/** Fetches a customer's attachment from its provider (the conversations stage's `MediaFetcher`). */
export interface ProviderMediaFetcher {
  fetch(attachment: SendAttachment, signal?: AbortSignal): Promise<MediaFile>;
}

export interface MediaFetcherOptions extends CreateProviderOptions {
  /** The largest file fetched; a larger one is `ProviderRejected`. @defaultValue {@link MAX_MEDIA_BYTES} */
  maxBytes?: number;
}

/** The error of a download's answer that is not a 2xx (or a redirect where none is followed). */
function downloadError(
  provider: 'twilio' | 'telegram' | 'contract',
  what: string,
  response: BytesResponse,
): ProviderError {
  const { status } = response;
  const upstream = { status, headers: response.headers, body: response.body.toString('utf8').slice(0, 500) };
  if (status === 401 || status === 403)
    return new ProviderError('ProviderUnauthorized', `${provider} refused the ${what} (HTTP ${status})`, { upstream });
  if (status === 429)
    return new ProviderError('ProviderRateLimited', `${provider} throttled the ${what} (HTTP 429)`, { upstream });
  if (status >= 500)
    return new ProviderError('ProviderUnavailable', `${provider} failed the ${what} (HTTP ${status})`, { upstream });
  return new ProviderError('ProviderRejected', `${provider} has no ${what} to give (HTTP ${status})`, { upstream });
}

/** A name for a file that came without one: its URL's last segment, with the extension its type suggests. */
function fallbackName(url: string, contentType: string): string {
  const last =
    new URL(url).pathname
      .split('/')
      .filter((p) => p !== '')
      .pop() ?? 'file';
  const ext = /^image\/(jpeg|png|gif|webp)$/.exec(contentType)?.[1]?.replace('jpeg', 'jpg');
  return ext === undefined || last.includes('.') ? last : `${last}.${ext}`;
}

class TwilioMediaFetcher implements ProviderMediaFetcher {
  readonly #prefix: URL;
  readonly #authorization: string;
  readonly #call: AdapterCall;
  readonly #maxBytes: number;

  constructor(
    settings: { accountSid: string; authToken: string; baseUrl?: string },
    call: AdapterCall,
    maxBytes: number,
  ) {
    const base = (settings.baseUrl ?? TWILIO_BASE_URL).replace(/\/+$/, '');
    this.#prefix = new URL(`${base}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/`);
    const basic = Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString('base64');
    this.#authorization = `Basic ${basic}`;
    this.#call = call;
    this.#maxBytes = maxBytes;
  }

  async fetch(attachment: SendAttachment, signal?: AbortSignal): Promise<MediaFile> {
    let url: URL;
    try {
      url = new URL(attachment.url);
    } catch {
      throw new ProviderError('ProviderRejected', 'twilio media: the URL does not parse');
    }
    // The account's credentials go to its own media URLs only.
    if (url.origin !== this.#prefix.origin || !url.pathname.startsWith(this.#prefix.pathname))
      throw new ProviderError(
        'ProviderRejected',
        `twilio media: not a media URL of this account (${url.origin}${url.pathname.slice(0, 40)}…)`,
      );
    // The redirect target is a pre-signed URL: no credentials (they would also leave the account's origin).
    const response = await getFollowing('twilio', this.#call, url, this.#authorization, this.#maxBytes, signal);
    if (response.status < 200 || response.status >= 300) throw downloadError('twilio', 'media', response);
    return mediaFile(attachment, response);
  }
}

/**
 * `GET url`, following at most {@link MAX_MEDIA_REDIRECTS} redirects to http(s) URLs; `authorization` goes with the
 * first request only. The last answer, whatever its status.
 */
async function getFollowing(
  provider: 'twilio' | 'contract',
  call: AdapterCall,
  start: URL,
  authorization: string | undefined,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<BytesResponse> {
  const started = Date.now();
  let url = start;
  let headers: Record<string, string> = { ...(authorization === undefined ? {} : { authorization }), accept: '*/*' };
  for (let hop = 0; ; hop++) {
    const response = await httpGetBytes({
      ...call,
      url: url.toString(),
      headers,
      maxBytes,
      ...(signal === undefined ? {} : { signal }),
    });
    const location = response.headers['location'];
    if (response.status < 300 || response.status >= 400 || location === undefined) {
      call.log.debug('media fetched', {
        status: response.status,
        bytes: response.body.length,
        durationMs: Date.now() - started,
      });
      return response;
    }
    if (hop >= MAX_MEDIA_REDIRECTS)
      throw new ProviderError('ProviderBadResponse', `${provider} media: more than ${MAX_MEDIA_REDIRECTS} redirects`);
    const next = new URL(location, url);
    if (next.protocol !== 'https:' && next.protocol !== 'http:')
      throw new ProviderError('ProviderBadResponse', `${provider} media: a redirect to ${next.protocol}`);
    url = next;
    headers = { accept: '*/*' };
  }
}

/** The file of a download: its type from the answer, else the attachment's; its name from the attachment, else the URL. */
function mediaFile(attachment: SendAttachment, response: BytesResponse): MediaFile {
  const contentType = response.headers['content-type']?.split(';')[0]?.trim() || attachment.contentType;
  const type = contentType || 'application/octet-stream';
  return { name: attachment.name ?? fallbackName(attachment.url, type), contentType: type, data: response.body };
}

/**
 * The contract's files: a plain GET of the media part's URL, no credentials (the provider's files are reachable by
 * URL: src/providers/contract/assumptions.ts), redirects followed as Twilio's are.
 */
class ContractMediaFetcher implements ProviderMediaFetcher {
  readonly #call: AdapterCall;
  readonly #maxBytes: number;

  constructor(call: AdapterCall, maxBytes: number) {
    this.#call = call;
    this.#maxBytes = maxBytes;
  }

  async fetch(attachment: SendAttachment, signal?: AbortSignal): Promise<MediaFile> {
    let url: URL;
    try {
      url = new URL(attachment.url);
    } catch {
      throw new ProviderError('ProviderRejected', 'contract media: the URL does not parse');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new ProviderError('ProviderRejected', `contract media: not an http(s) URL (${url.protocol})`);
    const response = await getFollowing('contract', this.#call, url, undefined, this.#maxBytes, signal);
    if (response.status < 200 || response.status >= 300) throw downloadError('contract', 'media', response);
    return mediaFile(attachment, response);
  }
}

/** What getFile answers: the file's path for the download, and its size when Telegram says. */
function mapGetFile(response: HttpResponse): { path: string; size?: number } | ProviderError {
  const body = response.body as { ok?: unknown; result?: { file_path?: unknown; file_size?: unknown } } | undefined;
  // A failure is read as a send's is (the status decides); a success has a File, not a Message.
  if (response.status < 200 || response.status >= 300 || body?.ok !== true) {
    const mapped = mapTelegramResponse(response);
    return isProviderError(mapped)
      ? mapped
      : new ProviderError('ProviderAnswerUnreadable', 'telegram getFile answered without ok: true');
  }
  const result = body.result;
  const path = result?.file_path;
  if (typeof path !== 'string' || path === '')
    return new ProviderError('ProviderAnswerUnreadable', 'telegram getFile answered without a file_path');
  return { path, ...(typeof result?.file_size === 'number' ? { size: result.file_size } : {}) };
}

class TelegramMediaFetcher implements ProviderMediaFetcher {
  readonly #bot: string;
  readonly #files: string;
  readonly #call: AdapterCall;
  readonly #maxBytes: number;

  constructor(settings: { botToken: string; baseUrl?: string }, call: AdapterCall, maxBytes: number) {
    const base = (settings.baseUrl ?? TELEGRAM_BASE_URL).replace(/\/+$/, '');
    this.#bot = `${base}/bot${settings.botToken}`;
    this.#files = `${base}/file/bot${settings.botToken}`;
    this.#call = call;
    this.#maxBytes = maxBytes;
  }

  async fetch(attachment: SendAttachment, signal?: AbortSignal): Promise<MediaFile> {
    const fileId = telegramFileId(attachment.url);
    if (fileId === undefined) throw new ProviderError('ProviderRejected', 'telegram media: not a telegram-file: URL');
    const file = await postAndMap({
      ...this.#call,
      url: `${this.#bot}/getFile`,
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ file_id: fileId }),
      ...(signal === undefined ? {} : { signal }),
      map: mapGetFile,
      message: 'provider answered getFile',
      outcome: (f) => `${f.size ?? '?'} bytes`,
    });
    if (file.size !== undefined && file.size > this.#maxBytes)
      throw new ProviderError(
        'ProviderRejected',
        `telegram media is larger than the limit of ${this.#maxBytes} bytes (${file.size})`,
      );
    const response = await httpGetBytes({
      ...this.#call,
      url: `${this.#files}/${file.path.split('/').map(encodeURIComponent).join('/')}`,
      headers: { accept: '*/*' },
      maxBytes: this.#maxBytes,
      ...(signal === undefined ? {} : { signal }),
    });
    if (response.status < 200 || response.status >= 300) throw downloadError('telegram', 'file', response);
    // Telegram serves files as application/octet-stream: the type the update gave wins.
    const contentType =
      attachment.contentType ?? response.headers['content-type']?.split(';')[0]?.trim() ?? 'application/octet-stream';
    const name = attachment.name ?? file.path.split('/').pop() ?? 'file';
    return { name, contentType, data: response.body };
  }
}

/**
 * The media fetcher of a channel's provider settings (Twilio, Telegram, the contract). Settings are checked as
 * `createProvider` checks them.
 */
export function mediaFetcher(
  settings: ProviderSettings,
  options: MediaFetcherOptions = {},
): ProviderMediaFetcher | undefined {
  const adapter = adapterOptions(options);
  const maxBytes = options.maxBytes ?? MAX_MEDIA_BYTES;
  if (!Number.isInteger(maxBytes) || maxBytes < 1)
    throw new TypeError(`mediaFetcher: maxBytes must be a positive integer, found ${String(options.maxBytes)}`);
  switch (settings.type) {
    case 'twilio': {
      const basic = Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString('base64');
      return new TwilioMediaFetcher(settings, adapterCall('twilio', adapter, [settings.authToken, basic]), maxBytes);
    }
    case 'telegram':
      return new TelegramMediaFetcher(
        settings,
        adapterCall('telegram', adapter, [settings.botToken, encodeURIComponent(settings.botToken)]),
        maxBytes,
      );
    case 'contract':
      // No credentials go with the GET; the signing secret is redacted all the same, should a URL ever carry it.
      return new ContractMediaFetcher(
        adapterCall('contract', adapter, contractSecrets(settings.signingSecret)),
        maxBytes,
      );
    default:
      return undefined;
  }
}
