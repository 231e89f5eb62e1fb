/**
 * The stages of the send path as plain classes (intake, dispatch, recorder), the messages between them, and the
 * ports they need from the outside (implemented by `src/servicebus/` and `src/dataverse/`, faked in tests).
 */
export {
  IntakeStage,
  type IntakeOptions,
  type IntakeStats,
  type IntakeEvent,
  type IntakeDeadLetterReason,
} from './intake/index.js';
export {
  DispatchStage,
  DISPATCH_DEAD_LETTER_REASONS,
  outboundReplay,
  type OutboundReplay,
  type DispatchOptions,
  type DispatchStats,
  type DispatchSessionHandler,
} from './dispatch/index.js';
export {
  ConversationsStage,
  CONVERSATIONS_DEAD_LETTER_REASONS,
  customerContext,
  type AccountHealth,
  type ConversationsOptions,
  type ConversationsStats,
} from './conversations/index.js';
export type { DecodedEvent, ActivityEvent, TruncatedActivityEvent, RealtimeEvent, EventOrigin } from './events.js';
export { RecorderStage, type RecorderOptions, type RecorderStats } from './recorder/index.js';
export { renderText, placeholders } from './intake/index.js';
export {
  MESSAGE_VERSION,
  INBOUND_RESPONSE_TYPE,
  interactionMessageId,
  conversationSessionId,
  conversationMessageId,
  conversationOutboundKey,
  parseConversationMessage,
  type Attachment,
  type ConversationMessage,
  parseOutboundMessage,
  parseInteractionMessage,
  type OutboundMessage,
  type InteractionMessage,
  type SendContext,
  type MarketingContext,
  type RealtimeContext,
} from './messages.js';
export type {
  ChannelLookup,
  Delivery,
  SettlementOutcome,
  QueueSender,
  OutboundSender,
  InteractionSender,
  ConversationSender,
  DirectLineConversation,
  DirectLineActivity,
  DirectLinePort,
  UploadFile,
  MediaFetcher,
  DataverseReads,
  CallbackDirectory,
  ActivityRecord,
  FoundContact,
  InteractionWriter,
  WriteResult,
  Row,
  SessionHandler,
  SessionHandlerFactory,
  AcceptedSession,
  SessionCloseReason,
  SessionRelease,
} from './ports.js';
