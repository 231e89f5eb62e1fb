/**
 * Media that simulated customers send, served as each provider serves them, so that a media fetcher meets the worst
 * plausible reading:
 *
 * - Twilio: an inbound MMS's media at `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`,
 *   always behind HTTP basic auth (the Media resource page: "Twilio enforces HTTP Basic Authentication for all media
 *   URLs"), answered 307 to a short-lived URL elsewhere (Twilio redirects to a secure URL valid 4 hours: support article
 *   223183748). That URL refuses a request that still carries an `Authorization` header (400), as pre-signed storage
 *   URLs do ("Only one auth mechanism allowed"): a client must drop the credentials when it follows the redirect.
 * - Telegram: `getFile` (`file_id` → `file_path`; a file over 20 MB is "Bad Request: file is too big", the Bot API's
 *   download limit) and `GET /file/bot<token>/<file_path>` (core.telegram.org/bots/api#getfile).
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Reply } from './exchange.js';

/** `[, AccountSid, MessageSid, MediaSid]`. */
export const TWILIO_MEDIA_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\/Media\/([^/.]+)$/;
/** The short-lived download URL a Twilio media URL redirects to: `[, token]`. */
export const MEDIA_DOWNLOAD_PATH = /^\/_media\/([A-Za-z0-9_-]+)$/;
/** A Telegram file download: `[, token, file_path]`. */
export const TELEGRAM_FILE_PATH = /^\/file\/bot([^/]+)\/(.+)$/;
/** The largest file `getFile` lets a bot download (Bot API: "files of up to 20MB in size"). */
export const TELEGRAM_GETFILE_MAX_BYTES = 20 * 1024 * 1024;
/** How long a Twilio media redirect target stays valid (Twilio: 4 hours). */
export const MEDIA_LINK_TTL_MS = 4 * 3600_000;

/** A file a simulated customer sends. */
export interface MediaItem {
  contentType: string;
  data: Buffer;
  /** Telegram: the document's `file_name`; also the tail of its `file_path`. */
  name?: string;
}

/** What `addMedia` answers: where the relay finds the file. */
export type AddedMedia =
  | { provider: 'twilio'; url: string; accountSid: string; messageSid: string; mediaSid: string }
  | { provider: 'telegram'; fileId: string; filePath: string; size: number };

/** A binary answer. */
export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export function writeRaw(res: ServerResponse, reply: RawReply): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(reply.status, { 'Content-Length': String(reply.body.length), ...reply.headers });
  res.end(reply.body);
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): RawReply => ({
  status,
  headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
  body: Buffer.from(JSON.stringify(body)),
});

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

export class MediaStore {
  readonly #clock: () => number;
  /** Twilio media by MediaSid. */
  readonly #twilio = new Map<string, { accountSid: string; messageSid: string; item: MediaItem }>();
  /** Redirect targets: token → MediaSid and expiry. */
  readonly #links = new Map<string, { mediaSid: string; expiresAt: number }>();
  /** Telegram files by `botId\0file_id`, and their ids by `botId\0file_path`. */
  readonly #telegram = new Map<string, { fileId: string; path: string; item: MediaItem }>();
  readonly #paths = new Map<string, string>();
  /** Downloads served (the redirect targets and Telegram files), for tests. */
  downloads = 0;

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  /** A Twilio media item of an inbound message of `accountSid` (a new `MM…` message unless `messageSid`). */
  addTwilio(baseUrl: string, accountSid: string, item: MediaItem, messageSid = `MM${hex(16)}`): AddedMedia {
    const mediaSid = `ME${hex(16)}`;
    this.#twilio.set(mediaSid, { accountSid, messageSid, item });
    const url = `${baseUrl}/2010-04-01/Accounts/${accountSid}/Messages/${messageSid}/Media/${mediaSid}`;
    return { provider: 'twilio', url, accountSid, messageSid, mediaSid };
  }

  /** A Telegram file sent to bot `botId`. */
  addTelegram(botId: string, item: MediaItem): AddedMedia {
    const fileId = `BQAC${randomBytes(24).toString('base64url')}`;
    const path = `documents/file_${this.#telegram.size}${item.name === undefined ? '' : `_${item.name.replace(/[^\w.-]/g, '_')}`}`;
    this.#telegram.set(`${botId}\u0000${fileId}`, { fileId, path, item });
    this.#paths.set(`${botId}\u0000${path}`, fileId);
    return { provider: 'telegram', fileId, filePath: path, size: item.data.length };
  }

  /**
   * The media URL: 401 (20003) without valid credentials, 404 (20404) for a media sid this account and message do not
   * hold, else 307 to the short-lived download URL.
   */
  twilioMedia(
    authenticated: boolean,
    accountSid: string,
    messageSid: string,
    mediaSid: string,
    path: string,
  ): RawReply {
    if (!authenticated)
      return json(
        401,
        { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 },
        { 'WWW-Authenticate': 'Basic realm="Twilio API"' },
      );
    const media = this.#twilio.get(mediaSid);
    if (media === undefined || media.accountSid !== accountSid || media.messageSid !== messageSid)
      return json(404, {
        code: 20404,
        message: `The requested resource ${path} was not found`,
        more_info: 'https://www.twilio.com/docs/errors/20404',
        status: 404,
      });
    const token = randomBytes(24).toString('base64url');
    this.#links.set(token, { mediaSid, expiresAt: this.#clock() + MEDIA_LINK_TTL_MS });
    return {
      status: 307,
      headers: { Location: `/_media/${token}`, 'Content-Type': 'text/plain' },
      body: Buffer.alloc(0),
    };
  }

  /** The redirect target: the bytes; 400 when the request carries `Authorization`, 403 when unknown or expired. */
  download(token: string, authorization: string | undefined): RawReply {
    if (authorization !== undefined)
      return json(400, {
        error: 'InvalidArgument',
        message: 'Only one auth mechanism allowed; only the signed URL may be used, not an Authorization header',
      });
    const link = this.#links.get(token);
    const media = link === undefined ? undefined : this.#twilio.get(link.mediaSid);
    if (link === undefined || media === undefined || link.expiresAt < this.#clock())
      return json(403, { error: 'AccessDenied', message: 'Request has expired or the signature does not match' });
    this.downloads++;
    return { status: 200, headers: { 'Content-Type': media.item.contentType }, body: media.item.data };
  }

  /** `getFile`: the File object, 400 for an unknown file id or a file over 20 MB. */
  getFile(botId: string, fileId: string | undefined): Reply {
    const file = fileId === undefined ? undefined : this.#telegram.get(`${botId}\u0000${fileId}`);
    if (file === undefined)
      return { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: invalid file_id' } };
    if (file.item.data.length > TELEGRAM_GETFILE_MAX_BYTES)
      return { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: file is too big' } };
    return {
      status: 200,
      body: {
        ok: true,
        result: {
          file_id: file.fileId,
          file_unique_id: file.fileId.slice(-16),
          file_size: file.item.data.length,
          file_path: file.path,
        },
      },
    };
  }

  /** `GET /file/bot<token>/<file_path>`: the bytes, 404 for a path this bot has no file at. */
  telegramFile(botId: string, path: string): RawReply {
    const fileId = this.#paths.get(`${botId}\u0000${path}`);
    const file = fileId === undefined ? undefined : this.#telegram.get(`${botId}\u0000${fileId}`);
    if (file === undefined) return json(404, { ok: false, error_code: 404, description: 'Not Found' });
    this.downloads++;
    return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: file.item.data };
  }
}
