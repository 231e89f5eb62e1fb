/**
 * Telegram: webhook updates (`POST /callbacks/:channel/telegram`) carrying `X-Telegram-Bot-Api-Secret-Token`, the
 * `secret_token` given to setWebhook (the channel's `callbacks.webhookSecretToken`; during a rotation also
 * `previousWebhookSecretToken`). Missing → 401, wrong → 403. A text message is a reply from its chat id (the
 * contact's address field holds the chat id), and so is a photo, document, voice or video message (its caption the
 * text; its files forwarded to a bridged channel's conversation); any other update is acknowledged and ignored.
 * Answer: 200.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { telegramFileUrl, verifySecretToken } from '../../providers/index.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings } from './settings.js';
import type { Attachment } from '../messages.js';

/** A file of a message as the Bot API gives it (PhotoSize, Document, Voice, Video: the fields read here). */
interface TelegramFile {
  file_id?: unknown;
  file_name?: unknown;
  mime_type?: unknown;
}

interface TelegramUpdate {
  update_id?: unknown;
  message?: {
    message_id?: unknown;
    date?: unknown;
    text?: unknown;
    caption?: unknown;
    chat?: { id?: unknown };
    photo?: unknown;
    document?: TelegramFile;
    voice?: TelegramFile;
    video?: TelegramFile;
  };
}

/**
 * The files of a message (core.telegram.org/bots/api#message): `photo` (the sizes of one photo, smallest first: the
 * last, largest, is taken; Telegram stores photos as JPEG), `document` (its `mime_type` and `file_name` when given),
 * `voice` (OGG/Opus unless it says), `video` (MP4 unless it says). Each as a `telegram-file:<file_id>` URL.
 */
export function telegramAttachments(message: NonNullable<TelegramUpdate['message']>): Attachment[] {
  const out: Attachment[] = [];
  const add = (file: TelegramFile | undefined, contentType: string, name: string): void => {
    if (typeof file !== 'object' || file === null || typeof file.file_id !== 'string' || file.file_id === '') return;
    out.push({
      url: telegramFileUrl(file.file_id),
      contentType: typeof file.mime_type === 'string' && file.mime_type !== '' ? file.mime_type : contentType,
      name: typeof file.file_name === 'string' && file.file_name !== '' ? file.file_name : name,
    });
  };
  if (Array.isArray(message.photo) && message.photo.length > 0)
    add(message.photo[message.photo.length - 1] as TelegramFile, 'image/jpeg', 'photo.jpg');
  add(message.document, 'application/octet-stream', 'document');
  add(message.voice, 'audio/ogg', 'voice.ogg');
  add(message.video, 'video/mp4', 'video.mp4');
  return out;
}

async function update(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const channel = routeChannel(request, service, 'telegram');
  const settings = channel === undefined ? undefined : callbackSettings(channel);
  if (channel === undefined || settings === undefined) return refusal('unknown-channel');
  const header = request.headers['x-telegram-bot-api-secret-token'];
  if (typeof header !== 'string' || header === '') {
    service.log.warn('telegram update refused: no secret token', { channel: channel.name });
    return refusal('unauthorized');
  }
  if (settings.telegramSecretTokens.length === 0 || !verifySecretToken(header, settings.telegramSecretTokens)) {
    service.log.warn('telegram update refused: secret token not matching', {
      channel: channel.name,
      configured: settings.telegramSecretTokens.length > 0,
    });
    return refusal('forbidden');
  }
  let body: TelegramUpdate;
  try {
    body = JSON.parse(rawBody(request)) as TelegramUpdate;
  } catch {
    return refusal('bad-request');
  }
  if (typeof body !== 'object' || body === null || typeof body.update_id !== 'number') return refusal('bad-request');
  const message = typeof body.message === 'object' && body.message !== null ? body.message : undefined;
  const chatId = message?.chat?.id;
  if (message === undefined || (typeof chatId !== 'number' && typeof chatId !== 'string'))
    return { outcome: 'ignored', status: 200 };
  // A file's text is its caption.
  const text =
    typeof message.text === 'string' ? message.text : typeof message.caption === 'string' ? message.caption : '';
  const attachments = telegramAttachments(message);
  if (typeof message.text !== 'string' && attachments.length === 0) return { outcome: 'ignored', status: 200 };
  const outcome = await service.reply(
    channel,
    // message.date (Unix seconds): an opt-in older than callbacks.optInMaxAgeMs is refused (the secret token is
    // static, so a captured update can be replayed).
    {
      address: String(chatId),
      text,
      replyId: `tg${body.update_id}`,
      proof: { kind: 'sent-at', sentAt: typeof message.date === 'number' ? message.date * 1000 : undefined },
      ...(typeof message.message_id === 'number' ? { messageId: `${String(chatId)}:${message.message_id}` } : {}),
      ...(attachments.length === 0 ? {} : { attachments }),
    },
    service.log.child({ channel: channel.name, route: 'telegram' }),
  );
  return { outcome, status: 200 };
}

export function registerTelegram(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'POST', '/callbacks/:channel/telegram', 'telegram', update);
}
