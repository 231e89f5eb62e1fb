/**
 * The relay's Service Bus layer on `@azure/service-bus`: the client factory, the receive loops (batches; sessions),
 * settle-once deliveries, queue senders and their counters. Stages never import this folder: they see the ports in
 * `src/pipeline/ports.ts` (`Delivery`, `QueueSender`), which these implement; entry points wire them.
 */
export {
  createServiceBusClient,
  serviceBusClientFromConfig,
  normalizeNamespace,
  DEFAULT_RETRY_OPTIONS,
  type CreateServiceBusClientOptions,
} from './client.js';
export {
  toDelivery,
  abandonUnsettled,
  isLockLostError,
  truncateText,
  isDeliverySettlementError,
  DeliverySettlementError,
  DEAD_LETTER_REASON_MAX_CHARS,
  DEAD_LETTER_DESCRIPTION_MAX_CHARS,
  type SettleableDelivery,
  type SettlementOutcome,
  type Settler,
  type DeliveryOptions,
} from './delivery.js';
export {
  startBatchLoop,
  type BatchLoopOptions,
  type BatchHandler,
  type ReceiveLoop,
  type ReceiveLoopCommonOptions,
  type LoopErrorContext,
  type LoopErrorSource,
} from './batch-loop.js';
export type { LoopHealth } from './loop-health.js';
export {
  startSessionLoop,
  type SessionReceiveLoop,
  type SessionLoopOptions,
  type SessionHandler,
  type SessionHandlerFactory,
  type SessionCloseReason,
  type SessionRelease,
} from './session-loop.js';
export {
  createQueueSender,
  type ClosableQueueSender,
  type QueueSenderOptions,
  type OutgoingMessage,
} from './sender.js';
export { serviceBusMetrics, watchLoopHealth, type ServiceBusMetrics, type ConsumedOutcome } from './metrics.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export {
  peekDeadLetters,
  replayDeadLetters,
  NO_REASON,
  type DeadLetter,
  type DeadLetterFilter,
  type PeekDeadLettersOptions,
  type PeekDeadLettersResult,
  type ReplayDeadLettersOptions,
  type ReplayDeadLettersResult,
  type ReplayProgress,
  type ReplayFailure,
  type SkippedDeadLetter,
} from './dead-letters.js';
export {
  serviceBusAdministrationClientFromConfig,
  isDevelopmentEmulatorConnectionString,
  EMULATOR_MANAGEMENT_PORT,
  type AdministrationClientOptions,
} from './admin.js';
export { readQueueStatus, type QueueStatus, type QueueStatusOptions, type OldestMessage } from './queue-status.js';
