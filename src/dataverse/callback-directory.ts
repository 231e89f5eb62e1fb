/**
 * The callbacks service's Dataverse port (`CallbackDirectory`, src/pipeline) over the Web API client. A reply costs
 * one contact query (`<addressField> eq '<address>'`, every page: all the contacts holding the address) and one
 * activity query (the contact's activities of the tile's message table, newest first); an opt-out one PATCH per
 * contact holding the address; a click one activity query (cached by row id in a `TtlCache`: the columns read never
 * change once the journey created the row; an activity not found is not cached) and one message record read (cached).
 */
import { TtlCache } from '../cache.js';
import type { ActivityRecord, CallbackDirectory, FoundContact, Row } from '../pipeline/index.js';
import { ACTIVITY_TILE_ID } from './assumptions.js';
import { ACTIVITY_KEY, ACTIVITY_SET } from './remote-context.js';

/** The activity columns the callbacks read, by the field of `ActivityRecord` each fills. */
const FIELDS = {
  activityRowId: ACTIVITY_KEY,
  activityId: ACTIVITY_TILE_ID,
  entityType: 'msdyncrm_entitytype',
  entityId: 'msdyncrm_entityid',
  contactId: '_msdyncrm_contact_value',
  journeyId: '_msdyncrm_customerjourney_value',
  iterationId: '_msdyncrm_customerjourneyiteration_value',
} as const satisfies Record<keyof ActivityRecord, string>;
const COLUMNS = Object.values(FIELDS);

/** An activity row as the callbacks read it: each column that holds a non-empty string, under its field's name. */
export function activityRecord(row: Row): ActivityRecord {
  const record: ActivityRecord = {};
  for (const [field, column] of Object.entries(FIELDS) as Array<[keyof ActivityRecord, string]>) {
    const value = row[column];
    if (typeof value === 'string' && value !== '') record[field] = value;
  }
  return record;
}

/** The calls of dynamics-web-api the directory makes (a subset of `DynamicsWebApi`). */
export interface DirectoryClient {
  retrieveMultiple(
    request: {
      collection: string;
      select?: string[];
      filter?: string;
      orderBy?: string[];
      top?: number;
      signal?: AbortSignal;
    },
    nextPageLink?: string,
  ): Promise<{ value: unknown[]; oDataNextLink?: string }>;
  update(request: { collection: string; key: string; data: Row; signal?: AbortSignal }): Promise<unknown>;
}

export interface DirectoryOptions {
  client: DirectoryClient;
  /** Runs one call (the governor of the identity, with its timeout). @defaultValue the call as is */
  run?: <T>(
    call: (signal: AbortSignal | undefined) => Promise<T>,
    signal: AbortSignal | undefined,
    operation: string,
  ) => Promise<T>;
  /** The message record reads (intake's cached `DataverseReads.messageRecord` fits). */
  messageRecord: CallbackDirectory['messageRecord'];
  /** The activity cache (by row id). `max: 0` or `ttlMs: 0`: none. @defaultValue `{ max: 10000, ttlMs: 600000 }` */
  activityCache?: { max?: number; ttlMs?: number };
  /** Clock of the activity cache (tests). @defaultValue Date.now */
  now?: () => number;
}

export const DIRECTORY_DEFAULTS = { activityCacheMax: 10_000, activityCacheTtlMs: 600_000 } as const;

/** Contacts read for one address at most (pages of the query). */
export const MAX_CONTACTS_PER_ADDRESS = 5_000;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An OData string literal: single quotes doubled. */
function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function createCallbackDirectory(options: DirectoryOptions): CallbackDirectory {
  const run =
    options.run ??
    (<T>(call: (signal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined) => call(signal));
  const client = options.client;
  /** Activity rows by `row:<row id>` and, found alone, `activity:<msdyncrm_activityid>` (lower case). */
  const activities = new TtlCache<string, ActivityRecord>({
    max: options.activityCache?.max ?? DIRECTORY_DEFAULTS.activityCacheMax,
    ttlMs: options.activityCache?.ttlMs ?? DIRECTORY_DEFAULTS.activityCacheTtlMs,
    now: options.now,
    name: 'createCallbackDirectory: activityCache',
  });
  /** The rows `filter` finds (at most `top`); a single row found is cached under `key`. */
  const findActivities = async (
    key: string,
    filter: string,
    top: number,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<ActivityRecord[]> => {
    const hit = activities.get(key);
    if (hit !== undefined) return [hit];
    const res = await run(
      (s) =>
        client.retrieveMultiple({
          collection: ACTIVITY_SET,
          select: COLUMNS,
          filter,
          top,
          ...(s ? { signal: s } : {}),
        }),
      signal,
      operation,
    );
    const found = (res.value as Row[]).map(activityRecord);
    if (found.length === 1) activities.set(key, found[0]!);
    return found;
  };
  return {
    async contactsByAddress(addressField, address, columns, signal) {
      if (!COLUMN.test(addressField))
        throw new TypeError(`address field must be a column name, found ${JSON.stringify(addressField)}`);
      const select = [...new Set(['contactid', addressField, ...columns])];
      const request = { collection: 'contacts', select, filter: `${addressField} eq ${odataString(address)}` };
      const found: FoundContact[] = [];
      let next: string | undefined;
      do {
        const link = next;
        const res = await run(
          (s) => client.retrieveMultiple({ ...request, ...(s ? { signal: s } : {}) }, link),
          signal,
          'find the contacts holding an address',
        );
        for (const row of res.value as Row[])
          if (typeof row['contactid'] === 'string') found.push({ contactId: row['contactid'], row });
        next = res.oDataNextLink;
      } while (next !== undefined && next !== '' && found.length < MAX_CONTACTS_PER_ADDRESS);
      return found.slice(0, MAX_CONTACTS_PER_ADDRESS);
    },
    async latestActivities(contactId, entityType, top, signal) {
      if (!GUID.test(contactId)) return [];
      const res = await run(
        (s) =>
          client.retrieveMultiple({
            collection: ACTIVITY_SET,
            select: COLUMNS,
            filter: `${FIELDS.contactId} eq ${contactId} and ${FIELDS.entityType} eq ${odataString(entityType)}`,
            orderBy: ['createdon desc'],
            top,
            ...(s ? { signal: s } : {}),
          }),
        signal,
        "read the contact's latest activities",
      );
      return (res.value as Row[]).map(activityRecord);
    },
    async activityByRowId(rowId, signal) {
      if (!GUID.test(rowId)) return undefined;
      const rows = await findActivities(
        `row:${rowId.toLowerCase()}`,
        `${ACTIVITY_KEY} eq ${rowId}`,
        1,
        signal,
        'read an activity by its row id',
      );
      return rows[0];
    },
    async activitiesByActivityId(activityId, signal) {
      if (!GUID.test(activityId)) return [];
      return findActivities(
        `activity:${activityId.toLowerCase()}`,
        `${ACTIVITY_TILE_ID} eq ${odataString(activityId)}`,
        2,
        signal,
        'read the activities of an activity id',
      );
    },
    messageRecord: options.messageRecord,
    async updateContact(contactId, values, signal) {
      if (!GUID.test(contactId)) throw new TypeError('contact id must be a GUID');
      await run(
        (s) => client.update({ collection: 'contacts', key: contactId, data: values, ...(s ? { signal: s } : {}) }),
        signal,
        'update a contact',
      );
    },
  };
}
