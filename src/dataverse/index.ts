/**
 * Everything the relay does with Dataverse: the client (dynamics-web-api, @azure/identity), the error mapping, the
 * RemoteExecutionContext decoder, the service-protection governor, and the pipeline's ports over them: intake's reads
 * (`DataverseReads`), the recorder's writer (`InteractionWriter`), the callbacks' directory (`CallbackDirectory`).
 * The rest of the folder is internal. Wiring, one identity:
 * ```ts
 * const governor = createGovernor(); // calls are timed out after the client's dataverse.timeoutMs
 * const client = dataverseClientFromConfig(config, { onResponse: governor.observe });
 * const reads = createDataverseReads(client, { governor }); // createInteractionWriter(client, governor) alike
 * // on close: governor.close(); closeDataverseClient(client);
 * ```
 */
export {
  createDataverseClient,
  dataverseClientFromConfig,
  closeDataverseClient,
  clientTimeoutMs,
  cachedTokenSource,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_TOKEN_IDENTITY,
  type DataverseClientOptions,
  type DataverseClientExtras,
  type ObservedResponse,
} from './client.js';
export { toDataverseError, parseRetryAfter, DEFAULT_RETRY_AFTER_MS, type ErrorContext } from './errors.js';
export {
  decodeRemoteContext,
  activityFromRow,
  decodeValue,
  parseWcfDate,
  ACTIVITY_TABLE,
  ACTIVITY_SET,
  ACTIVITY_KEY,
  ACTIVITY_COLUMNS,
  type DecodedEvent,
  type ActivityEvent,
  type TruncatedActivityEvent,
  type RealtimeEvent,
  type EventOrigin,
  type PostedEvent,
  type EntityRef,
  type DecodedEntity,
} from './remote-context.js';
export {
  createGovernor,
  parseTimeRemaining,
  GOVERNOR_DEFAULTS,
  DATAVERSE_MAX_CONCURRENT,
  type Governor,
  type GovernorOptions,
  type GovernorState,
  type RunOptions,
} from './governor.js';
export {
  createDataverseReads,
  READS_DEFAULTS,
  type DataverseReadsOptions,
  type DataverseReadsWithStats,
  type ReadStats,
} from './reads.js';
export {
  createInteractionWriter,
  interactionRequest,
  CREATE_INTERACTION_ACTION,
  MAX_BATCH_SIZE,
  type InteractionWriterOptions,
  type InteractionRequest,
} from './writer.js';
export { REALTIME_OUTBOUND_CALL, REALTIME_NOTIFICATION, TRUNCATED_PROPERTY } from './assumptions.js';
export { registerGovernorMetrics } from './governor-metrics.js';
export { createCallbackDirectory, type DirectoryClient, type DirectoryOptions } from './callback-directory.js';
