/**
 * Telegram: webhook updates (`POST /callbacks/:channel/telegram`) carrying `X-Telegram-Bot-Api-Secret-Token`, the
 * `secret_token` given to setWebhook (the channel's `callbacks.webhookSecretToken`; during a rotation also
 * `previousWebhookSecretToken`). Missing → 401, wrong → 403. A text message is a reply from its chat id (the
 * contact's address field holds the chat id); any other update is acknowledged and ignored. Answer: 200.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifySecretToken } from '../../providers/index.js';
import { addRoute, rawBody, refusal, routeChannel, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { callbackSettings } from './settings.js';

interface TelegramUpdate {
  update_id?: unknown;
  message?: { message_id?: unknown; date?: unknown; text?: unknown; chat?: { id?: unknown } };
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
  const message = body.message;
  const chatId = message?.chat?.id;
  if (
    message === undefined ||
    typeof message.text !== 'string' ||
    (typeof chatId !== 'number' && typeof chatId !== 'string')
  ) {
    return { outcome: 'ignored', status: 200 };
  }
  const outcome = await service.reply(
    channel,
    // message.date (Unix seconds): an opt-in older than callbacks.optInMaxAgeMs is refused (the secret token is
    // static, so a captured update can be replayed).
    {
      address: String(chatId),
      text: message.text,
      replyId: `tg${body.update_id}`,
      proof: { kind: 'sent-at', sentAt: typeof message.date === 'number' ? message.date * 1000 : undefined },
    },
    service.log.child({ channel: channel.name, route: 'telegram' }),
  );
  return { outcome, status: 200 };
}

export function registerTelegram(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'POST', '/callbacks/:channel/telegram', 'telegram', update);
}
