/**
 * The contract adapter's choices about files, where no primary source settles them. Each says what it rests on and
 * what would change if it were wrong; the contract simulator reads the contract for itself
 * (src/emulators/providers/contract.ts, docs/emulators/providers.md).
 *
 * What the sources say: a real-time journeys custom channel declares its message parts as `msdyn_channelmessagepart`
 * rows; `msdyn_type` 192350000 is plaintext, 192350003 media ("a file ID of the msdyncrm_file entity"), 192350004
 * image ("an image ID of the msdyncrm_file entity"), 192350005 record ("Define message parts",
 * learn.microsoft.com/dynamics365/customer-insights/journeys/real-time-marketing-custom-channel-message-parts). The
 * outbound `Message` stays a Dictionary<string, string> keyed by `msdyn_name`.
 *
 * What the relay assumes (unverified):
 * - An agent's file in an Omnichannel conversation goes in a media part as its **URL** (the Direct Line attachment's
 *   `contentUrl`), not as an msdyncrm_file id: the file comes from Omnichannel, not from the marketing file library,
 *   so there is no msdyncrm_file row to name, and the endpoint behind the contract (the operator's own) fetches the
 *   URL. If an endpoint only understands msdyncrm_file ids, it cannot use these parts: the relay would have to create
 *   an msdyncrm_file row per file first (Dataverse write, not done), or the channel is left without `mediaParts`
 *   (agents' files are then dead-lettered by dispatch as before).
 * - One file per part, the i-th attachment in the i-th part of `mediaParts`, the others left out of `Message`: the
 *   docs say nothing about several files in one part. If an endpoint required every declared part, the unused ones
 *   would have to be sent empty.
 * - Customers' files arrive on the contract's inbound callback the same way: a media part whose value is an http(s)
 *   URL the relay can GET without credentials (src/providers/media.ts); any other value is skipped with a log.
 */

/**
 * The most media parts one contract channel may declare (`provider.mediaParts`): the relay's own bound, the docs
 * give none. It matches the other providers' most files per message (Twilio 10 `MediaUrl`s, Telegram 10); raising it
 * is safe if an endpoint takes more.
 */
export const CONTRACT_MAX_MEDIA_PARTS = 10;
