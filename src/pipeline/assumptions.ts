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
