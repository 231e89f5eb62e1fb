/**
 * Correlation without state: the signed context tokens in provider callback URLs, the short codes of tracked links,
 * and the routes they are served on. Used by config (the keys), intake (links), dispatch (status callback URLs) and
 * the callbacks service (opening them).
 */
export type { MarketingContext } from './context.js';
export {
  parseCallbackKeys,
  sealContext,
  openContext,
  sealLink,
  openLink,
  tileDigest,
  MAX_TRACKED_LINKS,
  type CallbackKey,
  type CallbackKeys,
  type TokenRefusal,
  type OpenedContext,
  type OpenedLink,
  type TileFields,
} from './token.js';
export { findLinks, trackableLinks, rewriteLinks, linkAt, redirectTarget, type FoundLink } from './links.js';
export {
  twilioStatusPath,
  statusCallbackUrls,
  type StatusCallbackChannel,
  type StatusCallbackMessage,
} from './status-callback.js';
