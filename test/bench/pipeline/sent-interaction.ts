/**
 * The `sent` interaction a Functions-style implementation writes for an activity event, as its own action call: the
 * same CreateInteraction body the relay's recorder writes (`interactionRequest`).
 */
import { interactionRequest, type ActivityEvent } from '../../../src/dataverse/index.js';
import { MESSAGE_VERSION } from '../../../src/pipeline/index.js';

export function sentInteraction(event: ActivityEvent): { actionName: string; action: Record<string, unknown> } {
  const request = interactionRequest({
    v: MESSAGE_VERSION,
    context: {
      kind: 'marketing',
      activityId: event.activityId,
      activityRowId: event.activityRowId,
      contactId: event.contactId,
      journeyId: event.journeyId,
      iterationId: event.iterationId,
      entityType: event.entityType,
      entityId: event.entityId,
    },
    responseType: 'sent',
    channel: 'sms',
    occurredAt: Date.now(),
  });
  if (request.kind !== 'action') throw new Error(`no interaction to write: ${request.reason}`);
  return { actionName: request.actionName, action: request.action };
}
