/**
 * How Twilio signs its requests to the relay and serves media, where no primary source settles it. Each says what it rests on and what
 * would change if it were wrong; the Twilio simulator reads the same pages for itself (docs/emulators/providers.md).
 */

/**
 * Signing with a SharedKey (Twilio Webhooks configuration API, Public Beta): when a Webhooks Rule matches the URL,
 * Twilio signs with the Setting's SharedKey secret and algorithm and adds `X-Twilio-Webhooks-Signature-Settings:
 * key=<SharedKey>,algorithm=HMAC_SHA256`; "only the hash changes. The signed string is still the full URL followed by
 * the sorted POST parameters" (twilio/twilio-node examples/WebhookSignatureValidation.md; twilio.com/docs/usage/
 * webhooks/webhook-shared-keys). UNVERIFIED, from those two pages only (the twilio-node source read, of July 2026, has
 * no SHA-256 code yet): that the signature stays base64 in `X-Twilio-Signature`; the header's exact syntax (parts
 * separated by `,`, `name=value`, names compared case-insensitively here); that a request with the header is never
 * signed with the auth token (twilio-node's middleware then validates only with the SharedKey secret; so does the
 * relay). If the encoding were hex, every SHA-256 callback would be refused (403, reason `mismatch`).
 */
export const TWILIO_SIGNATURE_ALGORITHMS = ['HMAC_SHA1', 'HMAC_SHA256'] as const;

/**
 * A repeated form parameter (`MediaUrl=a&MediaUrl=b&MediaUrl=a`) is signed as its name followed by each distinct value,
 * sorted: twilio-node's `toFormUrlEncodedParam` (`Array.from(new Set(values)).sort()`). UNVERIFIED: what Twilio's
 * back end does (no Twilio page says); messaging webhooks send no repeated names today. Were Twilio to sign every
 * value, twilio-node would refuse those requests as the relay does.
 */
export const TWILIO_REPEATED_VALUES = 'distinct-sorted' as const;

/**
 * Redirects followed from a media URL. Twilio answers a media URL with a redirect to "a secure URL that is only valid
 * for 4 hours" (support article 223183748, "Protect Media Access with HTTP Basic Authentication"); how many hops, and
 * whether that URL accepts the account's credentials too, no page says. The relay follows up to this many, without
 * the credentials (a pre-signed storage URL refuses a second auth mechanism, and the credentials must not leave the
 * account's origin). If the target wanted the credentials, every media fetch would be refused (`ProviderUnauthorized`
 * or `ProviderRejected`), and the customer's file would not reach the agent.
 */
export const MAX_MEDIA_REDIRECTS = 3;
