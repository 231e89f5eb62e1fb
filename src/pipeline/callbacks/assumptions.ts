/**
 * The callbacks service's choices where no primary source settles the contract. Each says what it rests on and what
 * would change if it were wrong; the provider simulators read the same contracts for themselves
 * (docs/emulators/providers.md). Twilio's request signing is src/providers/twilio/assumptions.ts.
 */

/**
 * The most form parameters a Twilio callback body may have; more → 400 before any signature is computed. No Twilio
 * page lists a maximum. The richest messaging webhook counted from Twilio's parameter lists (an inbound message: 12
 * base fields, 8 geographic ones, `MediaUrl0-9` and `MediaContentType0-9`, about 15 WhatsApp/RCS fields) is about 60.
 * If Twilio ever sent more, those callbacks would be refused (400, counted `bad-request`, logged "more parameters than
 * Twilio sends"): raise this number.
 */
export const MAX_TWILIO_PARAMETERS = 100;

/**
 * The most media of one inbound MMS the relay reads (`MediaUrl0` … `MediaUrl9`): Twilio's Media resource page says a
 * message carries "up to 10 media files" (twilio.com/docs/messaging/api/media-resource), and its webhook page lists
 * `MediaUrl{N}` / `MediaContentType{N}` with `NumMedia` (twilio.com/docs/messaging/guides/webhook-request). If an
 * inbound message ever carried more, those past the tenth would not reach the agent (the text and the first ten do).
 */
export const MAX_TWILIO_MEDIA = 10;

/**
 * The parameter of a Twilio status callback that names the message's recipient, which the reply cache keys on
 * (replies.ts). Twilio's status callback guide lists `To` among a status callback's parameters
 * (twilio.com/docs/messaging/guides/track-outbound-message-status), and its Message resource gives `to` as "the
 * recipient's phone number in E.164 format (for SMS/MMS) or channel address" (`whatsapp:+1…`), as it gives an inbound
 * message's `From` (twilio.com/docs/messaging/api/message-resource). That the two forms agree for one number is read
 * from those pages, not seen in a capture. If they differed, the cache would never serve that number: its keyword
 * replies would read as before (no reply attributed wrongly, only the reads kept).
 */
export const STATUS_CALLBACK_RECIPIENT = 'To';
