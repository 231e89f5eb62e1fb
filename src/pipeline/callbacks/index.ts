/**
 * The callbacks service (the feedback path): provider delivery reports, inbound replies and tracked-link clicks,
 * verified, correlated without a lookup table, and turned into interactions on `interactions`, compliance changes in
 * Dataverse and confirmations on `outbound`.
 */
export { CallbacksStage, CALLBACKS_STAGE_DEFAULTS, type CallbacksStageOptions } from './stage.js';
export { createCallbacksServer, type CallbacksServer } from './server.js';
export {
  CALLBACKS_DEFAULTS,
  REFUSALS,
  type CallbacksDeps,
  type CallbackOutcome,
  type CallbackRoute,
  type InboundReply,
  type OptInProof,
  type TwilioMessageFetcher,
} from './service.js';
export { matchReply, firstWord, type ReplyIntent, type ReplyWords } from './keywords.js';
export { responseTypeOfStatus, EMPTY_TWIML } from './twilio.js';
export { MAX_TWILIO_PARAMETERS } from './assumptions.js';
export {
  sealContext,
  openContext,
  sealLink,
  openLink,
  parseCallbackKeys,
  type CallbackKeys,
  type CallbackKey,
} from '../../correlation/index.js';
