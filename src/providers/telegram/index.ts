export {
  TelegramProvider,
  TELEGRAM_BASE_URL,
  TELEGRAM_MAX_ATTACHMENTS,
  telegramPartSpacingMs,
  telegramMessagesOf,
  type TelegramSettings,
} from './adapter.js';
export {
  mapTelegramResponse,
  TELEGRAM_STATUS_CODES,
  TELEGRAM_DESCRIPTIONS,
  TELEGRAM_DEFAULT_RETRY_AFTER_MS,
} from './map-response.js';
export { isTelegramGroupChat, TELEGRAM_GROUP_SPACING_MS } from './chats.js';
export { verifySecretToken } from './webhook-secret.js';
export { TELEGRAM_FILE_SCHEME, telegramFileUrl, telegramFileId } from './media.js';
export { TELEGRAM_CHAT_SPACING_MS } from './assumptions.js';
