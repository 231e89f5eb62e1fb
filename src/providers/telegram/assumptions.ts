/**
 * How Telegram takes an agent's files, where no primary source settles it. Each says what it rests on and what would
 * change if it were wrong; the Telegram simulator reads the same pages for itself (docs/emulators/providers.md).
 */

/**
 * The spacing between the messages of one send (an agent's text and files) to a private chat. The Bot FAQ asks to
 * "avoid sending more than one message per second" in one chat and says short bursts are tolerated, without saying how
 * short (core.telegram.org/bots/faq). The relay reads it strictly, as the simulator enforces it; if bursts of a few
 * messages were fine, a message with files would only arrive a little slower than it could.
 */
export const TELEGRAM_CHAT_SPACING_MS = 1000;

/**
 * The images sent with `sendPhoto` (by URL); anything else goes with `sendDocument`. The Bot API says a photo sent
 * by URL is at most 5 MB and Telegram re-encodes it; it names no types. JPEG, PNG and WebP are what Telegram shows as
 * photos; a GIF would become a still image (it goes as a document), and if Telegram refused one of these three as a
 * photo the send would be `ProviderRejected` (sent as a document it would have gone).
 */
export const TELEGRAM_PHOTO_TYPES = /^image\/(jpeg|png|webp)$/i;
