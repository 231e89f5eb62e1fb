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
