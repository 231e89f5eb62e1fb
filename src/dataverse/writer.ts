/**
 * The interaction writer (`InteractionWriter`): InteractionMessages become `$batch` requests of unbound actions,
 * `msdyncrm_CustomChannelActivityCreateInteraction` (outbound marketing), `msdyn_D365ChannelsNotification`
 * (real-time journeys delivery reports) or `msdyn_D365ChannelsInbound` (real-time journeys inbound messages,
 * responseType `Inbound`), `batchSize` operations a batch, continue-on-error and no change set, so that every item
 * gets its own result. Batches go through the governor (several in flight when it allows).
 *
 * Results, one per item in order: `{ ok: true }` for a 204 part or a 200 part with the action's output (the real-time
 * APIs answer `responseMessage`; nothing in it is needed) and for items with nothing to write; a failed part
 * → that item's `DataverseError` (Dataverse's code and message kept); a failure of the whole `$batch` (429, 5xx,
 * timeout) → that error for every item of the batch. The writer never retries: the recorder decides from the codes.
 */
import type { DynamicsWebApi } from 'dynamics-web-api';
import { DataverseError } from '../errors.js';
import type { InteractionMessage, InteractionWriter, WriteResult } from '../pipeline/index.js';
import { INBOUND_RESPONSE_TYPE } from '../pipeline/index.js';
import { toDataverseError } from './errors.js';
import { clientTimeoutMs } from './client.js';
import type { Governor } from './governor.js';
import { REALTIME_INBOUND, REALTIME_NOTIFICATION } from './assumptions.js';

export const CREATE_INTERACTION_ACTION = 'msdyncrm_CustomChannelActivityCreateInteraction';
export const MAX_BATCH_SIZE = 1000;

export interface InteractionWriterOptions {
  /** Actions per `$batch` (Dataverse allows 1,000). @defaultValue 100 */
  batchSize?: number;
}

/** What one interaction becomes: an action call, or nothing to write. */
export type InteractionRequest =
  { kind: 'action'; actionName: string; action: Record<string, unknown> } | { kind: 'none'; reason: string };

/** The action call for one interaction (pure; see docs/emulators/dataverse.md for the bodies). */
export function interactionRequest(m: InteractionMessage): InteractionRequest {
  const c = m.context;
  if (c.kind === 'marketing') {
    return {
      kind: 'action',
      actionName: CREATE_INTERACTION_ACTION,
      action: {
        ActivityId: c.activityId,
        CustomerJourney: {
          '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourney',
          msdyncrm_customerjourneyid: c.journeyId,
        },
        CustomerJourneyIteration: {
          '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourneyiteration',
          msdyncrm_customerjourneyiterationid: c.iterationId,
        },
        Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: c.contactId },
        EntityType: c.entityType,
        EntityId: c.entityId,
        ResponseType: m.responseType,
        ...(m.triggerKeyword === undefined ? {} : { TriggerKeyword: m.triggerKeyword }),
      },
    };
  }
  if (m.responseType === INBOUND_RESPONSE_TYPE) {
    if (m.inbound === undefined)
      return { kind: 'none', reason: `an '${INBOUND_RESPONSE_TYPE}' interaction without its message` };
    const inbound = {
      ChannelDefinitionId: c.channelDefinitionId,
      From: c.from,
      To: m.inbound.to,
      OrganizationId: c.organizationId,
      // Dictionary<string, string>: the message parts by name, never a bare string (REALTIME_INBOUND).
      Message: { ...m.inbound.parts, [REALTIME_INBOUND.textPart]: m.inbound.text },
      MessageId: m.providerMessageId ?? c.requestId,
    };
    return {
      kind: 'action',
      actionName: REALTIME_INBOUND.action,
      action: { [REALTIME_INBOUND.parameter]: JSON.stringify(inbound) },
    };
  }
  if (REALTIME_NOTIFICATION.nothingToWrite.includes(m.responseType)) {
    return {
      kind: 'none',
      reason: `real-time status '${m.responseType}' has no notification (UNVERIFIED, see assumptions.ts)`,
    };
  }
  const status = REALTIME_NOTIFICATION.statusMap[m.responseType] ?? m.responseType;
  const payload: Record<string, unknown> = {
    ChannelDefinitionId: c.channelDefinitionId,
    RequestId: c.requestId,
    MessageId: m.providerMessageId ?? c.requestId,
    From: c.from,
    OrganizationId: c.organizationId,
    Status: status,
  };
  payload['StatusDetails'] = statusDetails(m);
  return {
    kind: 'action',
    actionName: REALTIME_NOTIFICATION.action,
    action: { [REALTIME_NOTIFICATION.parameter]: JSON.stringify(payload) },
  };
}

/** `StatusDetails`, a `Dictionary<string, object>`: always an object, with what the relay knows (REALTIME_NOTIFICATION). */
function statusDetails(m: InteractionMessage): Record<string, unknown> {
  const k = REALTIME_NOTIFICATION.statusDetails;
  const details: Record<string, unknown> = { [k.channel]: m.channel };
  if (m.providerMessageId !== undefined) details[k.providerMessageId] = m.providerMessageId;
  if (m.detail?.code !== undefined) details[k.code] = m.detail.code;
  if (m.detail !== undefined) details[k.message] = m.detail.message;
  return details;
}

export function createInteractionWriter(
  client: DynamicsWebApi,
  governor: Governor,
  options: InteractionWriterOptions = {},
): InteractionWriter {
  const batchSize = options.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new TypeError(
      `createInteractionWriter: batchSize must be an integer 1-${MAX_BATCH_SIZE}, found ${String(options.batchSize)}`,
    );
  }

  const timeoutMs = clientTimeoutMs(client);

  async function writeBatch(
    batch: Array<{ index: number; request: Extract<InteractionRequest, { kind: 'action' }> }>,
    results: WriteResult[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let parts: unknown[];
    try {
      parts = (await governor.run(
        (s) => {
          // startBatch … executeBatch without an await in between: the client's batch state is per instance.
          client.startBatch();
          for (const { request } of batch)
            client.callAction({ actionName: request.actionName, action: request.action }).catch(() => undefined);
          return client.executeBatch({ continueOnError: true, inChangeSet: false, signal: s });
        },
        {
          signal,
          operation: `$batch of ${batch.length} interactions`,
          operations: batch.length,
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        },
      )) as unknown[];
    } catch (err) {
      // Aborted (stopping) or failed as a whole: no item of this batch is known to be written. A retryable error
      // either way, so the caller hands them back while keeping the results of the batches that did answer.
      const error =
        signal?.aborted === true
          ? new DataverseError(
              'DataverseUnavailable',
              `$batch of ${batch.length} interactions: stopped before Dataverse answered`,
              { cause: err },
            )
          : toDataverseError(err);
      for (const { index } of batch) results[index] = { ok: false, error };
      return;
    }
    batch.forEach(({ index, request }, i) => {
      const part = parts[i];
      if (i >= parts.length) {
        results[index] = {
          ok: false,
          error: toDataverseError(
            Object.assign(new Error(`the $batch answered ${parts.length} parts for ${batch.length} operations`), {
              status: 502,
            }),
          ),
        };
      } else if (
        part instanceof Error ||
        (typeof part === 'object' &&
          part !== null &&
          typeof (part as { status?: unknown }).status === 'number' &&
          (part as { status: number }).status >= 400)
      ) {
        const error: DataverseError = toDataverseError(part, { operation: request.actionName });
        results[index] = { ok: false, error };
      } else {
        results[index] = { ok: true };
      }
    });
  }

  return {
    async write(items, signal) {
      if (signal?.aborted === true) throw signal.reason;
      const results: WriteResult[] = new Array<WriteResult>(items.length);
      const pending: Array<{ index: number; request: Extract<InteractionRequest, { kind: 'action' }> }> = [];
      items.forEach((item, index) => {
        const request = interactionRequest(item);
        if (request.kind === 'none') results[index] = { ok: true };
        else pending.push({ index, request });
      });
      const batches = [];
      for (let i = 0; i < pending.length; i += batchSize) batches.push(pending.slice(i, i + batchSize));
      // Aborted while writing: the batches that answered keep their results, the others are retryable failures.
      await Promise.all(batches.map((b) => writeBatch(b, results, signal)));
      return results;
    },
  };
}
