/**
 * Telegram files as the relay names them: an inbound message's photo, document, voice or video travels as the URL
 * `telegram-file:<file_id>` (the callbacks service writes it, the media fetcher reads it with getFile).
 */

/** The URL scheme of a Telegram file: `telegram-file:<file_id>`. */
export const TELEGRAM_FILE_SCHEME = 'telegram-file:';

/** The `telegram-file:` URL of a file id. */
export function telegramFileUrl(fileId: string): string {
  return `${TELEGRAM_FILE_SCHEME}${fileId}`;
}

/** The file id of a `telegram-file:` URL; undefined for any other URL. */
export function telegramFileId(url: string): string | undefined {
  if (!url.startsWith(TELEGRAM_FILE_SCHEME)) return undefined;
  const id = url.slice(TELEGRAM_FILE_SCHEME.length);
  return /^[A-Za-z0-9_-]{1,256}$/.test(id) ? id : undefined;
}
