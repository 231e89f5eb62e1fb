/**
 * The journey engine's part, for `/_emulator/journeys/{id}/run`: one Custom Channel Activity per contact whose
 * tile compliance field allows it (the field is false or empty), created like any other row so that the
 * registered steps post it; the others are skipped and reported. Every row of a run has the same
 * `msdyncrm_activityid` (the tile's, see `journeyActivityId`).
 */
import { DataverseFault, isGuid } from './faults.js';
import type { SeedJourney } from './seed.js';
import type { OrganizationService } from './service.js';
import { Tx, type Row } from './store.js';
import { journeyActivityId } from './assumptions.js';
import { randomUUID } from 'node:crypto';

export interface JourneyRunRequest {
  /** Contacts to run, by id. */
  contactIds?: string[];
  /** Or: the first `count` contacts in creation order (refused when fewer exist, unless `generateContacts`). */
  count?: number;
  /**
   * With `count`: create the contacts missing to reach `count` first (`Generated Contact <n>`, a mobile number,
   * the compliance field false), through the same path as any create. @defaultValue false
   */
  generateContacts?: boolean;
}

/** Most contacts one run may touch (the whole run is one transaction held in memory). */
export const MAX_RUN_CONTACTS = 100_000;

export interface JourneyRunResult {
  journeyId: string;
  iterationId: string;
  /** When the run created its activities (one transaction), ms since the epoch: for the benchmark's latency figures. */
  createdAtMs: number;
  created: Array<{ contactId: string; activityRowId: string; activityId: string }>;
  skipped: Array<{ contactId: string; reason: string }>;
}

export function runJourney(
  service: OrganizationService,
  journeys: readonly SeedJourney[],
  journeyId: string,
  request: JourneyRunRequest,
  userId: string,
): JourneyRunResult {
  const journey = journeys.find((j) => j.journeyId.toLowerCase() === journeyId.toLowerCase());
  if (!journey)
    throw new DataverseFault('RowNotFound', `No journey '${journeyId}' is declared in the seed's "journeys".`);
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new DataverseFault(
      'InvalidArgument',
      'The body must be a JSON object: {"contactIds": ["<guid>", …]} or {"count": <n>}.',
    );
  }
  const tile = service.tiles.get(journey.entityType);
  const messages = service.catalog.byLogicalName(journey.entityType);
  // Checked here as well as at start: the tile and the table may come from a solution imported since.
  if (!tile || !messages)
    throw new DataverseFault(
      'InvalidArgument',
      `The journey's EntityType '${journey.entityType}' has no ${tile ? 'table' : 'tile'} in the organization (import the channel's solution first).`,
    );
  if (!service.store.get(messages, journey.entityId.toLowerCase()))
    throw new DataverseFault('RowNotFound', `${journey.entityType} With Id = ${journey.entityId} Does Not Exist`);
  const contacts = service.table('contact');
  let rows: Row[];
  if (Array.isArray(request.contactIds)) {
    if (request.contactIds.length > MAX_RUN_CONTACTS) {
      throw new DataverseFault(
        'InvalidArgument',
        `${request.contactIds.length} contactIds is over the emulator's limit of ${MAX_RUN_CONTACTS} contacts per run.`,
      );
    }
    const seen = new Set<string>();
    rows = request.contactIds.map((id) => {
      if (!isGuid(id)) throw new DataverseFault('InvalidArgument', `contactIds: '${id}' is not a GUID.`);
      // A contact passes a tile once per run: its interactions are told from another contact's by the contact.
      if (seen.has(id.toLowerCase()))
        throw new DataverseFault(
          'InvalidArgument',
          `contactIds: '${id}' is given twice (a journey run reaches a contact once).`,
        );
      seen.add(id.toLowerCase());
      const row = service.store.get(contacts, id.toLowerCase());
      if (!row) throw new DataverseFault('RowNotFound', `contact With Id = ${id} Does Not Exist`);
      return row;
    });
  } else if (typeof request.count === 'number' && Number.isInteger(request.count) && request.count >= 0) {
    if (request.count > MAX_RUN_CONTACTS) {
      throw new DataverseFault(
        'InvalidArgument',
        `count ${request.count} is over the emulator's limit of ${MAX_RUN_CONTACTS} contacts per run: run the journey several times.`,
      );
    }
    if (request.generateContacts !== undefined && typeof request.generateContacts !== 'boolean') {
      throw new DataverseFault(
        'InvalidArgument',
        `generateContacts must be true or false, found ${JSON.stringify(request.generateContacts)}.`,
      );
    }
    const available = service.store.count(contacts);
    if (request.count > available && request.generateContacts !== true) {
      throw new DataverseFault(
        'InvalidArgument',
        `count ${request.count} asks for more contacts than the organization holds (${available}): send {"count": ${request.count}, "generateContacts": true} to create the ${request.count - available} missing ones, or a smaller count.`,
      );
    }
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
  const result: JourneyRunResult = {
    journeyId: journey.journeyId,
    iterationId: journey.iterationId,
    createdAtMs: Date.now(),
    created: [],
    skipped: [],
  };
  const activityId = journeyActivityId();
  const tx = new Tx();
  try {
    if (typeof request.count === 'number' && rows.length < request.count) {
      const first = service.store.count(contacts);
      for (let i = first; rows.length < request.count; i += 1) {
        const n = i + 1;
        rows.push(
          service.insertRow(
            contacts,
            {
              firstname: 'Generated',
              lastname: `Contact ${n}`,
              mobilephone: `+1555${String(n).padStart(7, '0')}`,
              [tile.complianceField]: false,
            },
            userId,
            tx,
          ),
        );
      }
    }
    for (const contact of rows) {
      const contactId = contact['contactid'] as string;
      if (contact[tile.complianceField] === true) {
        result.skipped.push({ contactId, reason: `${tile.complianceField} is true` });
        continue;
      }
      const rowId = randomUUID();
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
          msdyncrm_customerjourneyiteration: {
            id: journey.iterationId.toLowerCase(),
            table: 'msdyncrm_customerjourneyiteration',
          },
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
