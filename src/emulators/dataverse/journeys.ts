/**
 * The journey engine's part, for `/_emulator/journeys/{id}/run`: one Custom Channel Activity per contact whose
 * tile compliance field allows it (the field is false or empty), created like any other row so that the
 * registered steps post it; the others are skipped and reported.
 */
import { DataverseFault, isGuid } from './faults.js';
import type { SeedJourney } from './seed.js';
import type { OrganizationService } from './service.js';
import { Tx, type Row } from './store.js';
import { journeyActivityId } from './unverified.js';
import { randomUUID } from 'node:crypto';

export interface JourneyRunRequest {
  /** Contacts to run, by id. */
  contactIds?: string[];
  /** Or: the first `count` contacts in creation order. */
  count?: number;
}

export interface JourneyRunResult {
  journeyId: string;
  iterationId: string;
  created: Array<{ contactId: string; activityRowId: string; activityId: string }>;
  skipped: Array<{ contactId: string; reason: string }>;
}

export function runJourney(service: OrganizationService, journeys: readonly SeedJourney[], journeyId: string, request: JourneyRunRequest, userId: string): JourneyRunResult {
  const journey = journeys.find((j) => j.journeyId.toLowerCase() === journeyId.toLowerCase());
  if (!journey) throw new DataverseFault('RowNotFound', `No journey '${journeyId}' is declared in the seed's "journeys".`);
  const tile = service.tiles.get(journey.entityType)!;
  const contacts = service.table('contact');
  let rows: Row[];
  if (Array.isArray(request.contactIds)) {
    rows = request.contactIds.map((id) => {
      if (!isGuid(id)) throw new DataverseFault('InvalidArgument', `contactIds: '${id}' is not a GUID.`);
      const row = service.store.get(contacts, id.toLowerCase());
      if (!row) throw new DataverseFault('RowNotFound', `contact With Id = ${id} Does Not Exist`);
      return row;
    });
  } else if (typeof request.count === 'number' && Number.isInteger(request.count) && request.count >= 0) {
    rows = [];
    for (const row of service.store.rows(contacts)) {
      if (rows.length >= request.count) break;
      rows.push(row);
    }
  } else {
    throw new DataverseFault('InvalidArgument', 'The body must be {"contactIds": ["<guid>", …]} or {"count": <n>}.');
  }
  const activities = service.table('msdyncrm_customerjourneycustomchannelactivity');
  const journeyRow = service.store.get(service.table('msdyncrm_customerjourney'), journey.journeyId.toLowerCase());
  const name = journey.activityName ?? String(journeyRow?.['msdyncrm_name'] ?? 'Custom channel activity');
  const result: JourneyRunResult = { journeyId: journey.journeyId, iterationId: journey.iterationId, created: [], skipped: [] };
  const tx = new Tx();
  try {
    for (const contact of rows) {
      const contactId = contact['contactid'] as string;
      if (contact[tile.complianceField] === true) {
        result.skipped.push({ contactId, reason: `${tile.complianceField} is true` });
        continue;
      }
      const rowId = randomUUID();
      const activityId = journeyActivityId(rowId);
      service.insertRow(
        activities,
        {
          msdyncrm_customerjourneycustomchannelactivityid: rowId,
          msdyncrm_activityid: activityId,
          msdyncrm_name: name.slice(0, 100),
          msdyncrm_entitytype: journey.entityType,
          msdyncrm_entityid: journey.entityId.toLowerCase(),
          msdyncrm_contact: { id: contactId, table: 'contact' },
          msdyncrm_customerjourney: { id: journey.journeyId.toLowerCase(), table: 'msdyncrm_customerjourney' },
          msdyncrm_customerjourneyiteration: { id: journey.iterationId.toLowerCase(), table: 'msdyncrm_customerjourneyiteration' },
        },
        userId,
        tx,
      );
      result.created.push({ contactId, activityRowId: rowId, activityId });
    }
  } catch (err) {
    tx.rollback();
    throw err;
  }
  tx.commit();
  return result;
}
