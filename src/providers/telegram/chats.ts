/**
 * Telegram's flood limits by kind of chat (core.telegram.org/bots/faq "My bot is hitting limits, how do I avoid
 * this?"): about 1 message per second in one chat, and no more than 20 messages per minute in one group. A group or
 * supergroup chat has a negative id (supergroups `-100…`); a public chat addressed by `@username` is a channel or a
 * supergroup. The relay spaces the messages to either as a group (channels are not named by the FAQ: counting them
 * as groups only sends slower).
 */

/** Messages per minute to one group chat. */
export const TELEGRAM_GROUP_MESSAGES_PER_MINUTE = 20;

/** The spacing that keeps one group chat at 20 messages a minute: 3000 ms. */
export const TELEGRAM_GROUP_SPACING_MS = 60_000 / TELEGRAM_GROUP_MESSAGES_PER_MINUTE;

/** Whether a `chat_id` names a group, a supergroup or a public channel (not a private chat with one user). */
export function isTelegramGroupChat(chatId: string): boolean {
  return /^-\d+$/.test(chatId) || chatId.startsWith('@');
}
