/**
 * The dispatch stage's choices where no primary source settles what a provider does. Each says what it rests on and
 * what would change if it were wrong; the provider simulators read the same contracts for themselves
 * (docs/emulators/providers.md).
 */

/**
 * The wait from the end of a Twilio call whose answer was lost (a timeout, a connection lost, a 5xx: `mayHaveSent`)
 * to the Messages list lookup that decides whether to call again. No Twilio page says how long Twilio may go on with
 * a request whose client has gone (the 201 of a message creation is synchronous, "Twilio responds synchronously",
 * twilio.com/docs/messaging/guides/outbound-message-logging, but nothing bounds the time to it), nor how soon a
 * created message shows in the list (Twilio documents no read-after-write guarantee of the list). 5 s is a choice:
 * several times the usual latency of a creation. If Twilio created a message later than this after the relay gave
 * up on its call, or listed it later, the lookup would miss it and the call made again would be a second SMS: raise
 * `retry.lostAnswerLookupDelayMs` (each lost answer then holds its message that much longer).
 */
export const LOST_ANSWER_LOOKUP_DELAY_MS = 5000;

/**
 * The most segments one Twilio call can count against its sender's rate, which bounds how long a successor honours a
 * hold handed over in the session state (`firstSendAt`). Twilio refuses a body of more than 1,600 characters (error
 * 21617, twilio.com/docs/api/errors/21617: "The Body parameter for an outgoing message can be up to 1,600
 * characters"), so a refused body counts nothing, and a segment holds at least one character. What a character is
 * there is not said; the page adds that non-GSM-7 characters "can use more space … and cause the message to exceed
 * the limit sooner", which reads as UTF-16 code units or code points, never more than a code point (the relay's own
 * count keeps a grapheme whole but never counts more segments than code points). If Twilio counted graphemes (a
 * family emoji as one), an accepted body could count more: a successor would honour a handed-over hold for less than
 * its length and could send within the last of its windows.
 */
export const TWILIO_MAX_CALL_SEGMENTS = 1600;

/**
 * What an MMS (a message with `MediaUrl`s) counts against its Twilio sender's rate: at least this, and its body's SMS
 * segments when more. Twilio's MMS rate limits are in messages per second (long code 1 MPS, an account 25 MPS:
 * support article 360034954613, "Twilio Multimedia Messaging (MMS) Account Rate Limits"), not segments, and no page
 * says how a long MMS body counts; the MMS Converter may send an MMS as SMS with a link where the handset cannot take
 * MMS, and then it counts in segments. Counting the body's segments (at least one) is the reading that never exceeds
 * either limit; if Twilio counted an MMS as one message whatever its body, a long MMS would only go slower than it
 * could.
 */
export const TWILIO_MMS_MIN_COST = 1;
