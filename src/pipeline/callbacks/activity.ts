/** The context the callbacks service records an interaction against, from an activity the directory read. */
import type { MarketingContext } from '../messages.js';
import type { ActivityRecord } from '../ports.js';

/** The context of an activity; undefined when a field is missing (such a row cannot be recorded against). */
export function activityContext(activity: ActivityRecord): MarketingContext | undefined {
  const { activityRowId, activityId, contactId, journeyId, iterationId, entityType, entityId } = activity;
  if (!activityRowId || !activityId || !contactId || !journeyId || !iterationId || !entityType || !entityId)
    return undefined;
  return { kind: 'marketing', activityId, activityRowId, contactId, journeyId, iterationId, entityType, entityId };
}
