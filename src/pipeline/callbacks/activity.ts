/**
 * The Custom Channel Activity row as the callbacks service reads it (Web API names; the same table and columns as
 * src/dataverse's `ACTIVITY_SET`/`ACTIVITY_COLUMNS`, repeated here because the pipeline does not import src/dataverse),
 * and the MarketingContext it gives.
 */
import type { MarketingContext } from '../messages.js';
import type { Row } from '../ports.js';

export const ACTIVITY_SET_NAME = 'msdyncrm_customerjourneycustomchannelactivities';
export const ACTIVITY_ROW_KEY = 'msdyncrm_customerjourneycustomchannelactivityid';
export const ACTIVITY_COLUMNS_FOR_CALLBACKS = [
  ACTIVITY_ROW_KEY,
  'msdyncrm_activityid',
  'msdyncrm_entitytype',
  'msdyncrm_entityid',
  '_msdyncrm_contact_value',
  '_msdyncrm_customerjourney_value',
  '_msdyncrm_customerjourneyiteration_value',
] as const;

/** The context of an activity row; undefined when a column is missing (such a row cannot be recorded against). */
export function contextFromActivityRow(row: Row): MarketingContext | undefined {
  const col = (k: string): string | undefined => (typeof row[k] === 'string' && row[k] !== '' ? (row[k] as string) : undefined);
  const activityRowId = col(ACTIVITY_ROW_KEY);
  const activityId = col('msdyncrm_activityid');
  const contactId = col('_msdyncrm_contact_value');
  const journeyId = col('_msdyncrm_customerjourney_value');
  const iterationId = col('_msdyncrm_customerjourneyiteration_value');
  const entityType = col('msdyncrm_entitytype');
  const entityId = col('msdyncrm_entityid');
  if (!activityRowId || !activityId || !contactId || !journeyId || !iterationId || !entityType || !entityId) return undefined;
  return { kind: 'marketing', activityId, activityRowId, contactId, journeyId, iterationId, entityType, entityId };
}
