/**
 * What the callbacks service reads and writes in Dataverse, as a narrow port (`CallbackDirectory`), and its
 * implementation over the Web API client (structurally typed: this folder imports no SDK; the relay hands in
 * src/dataverse's client and the governor's `run`).
 *
 * Requests: a reply costs one contact query (`<addressField> eq '<address>'`, every page: all the contacts holding the
 * address) and one activity query (the contact's activities of the tile's message table, newest first); an opt-out
 * one PATCH per contact holding the address; a click one activity query (cached by row id: the columns read never
 * change once the journey created the row) and one message record read (cached).
 *
 * The activity cache is a `TtlCache` (src/cache.ts: LRU with a TTL), like src/dataverse/reads.ts's message record
 * cache; an activity that is not found is not cached.
 */
import { TtlCache } from '../../cache.js';
import type { Row } from '../ports.js';
import { ACTIVITY_COLUMNS_FOR_CALLBACKS, ACTIVITY_ROW_KEY, ACTIVITY_SET_NAME } from './activity.js';

/** A contact found by its address. */
export interface FoundContact {
  contactId: string;
  row: Row;
}

export interface CallbackDirectory {
  /**
   * Every contact whose `addressField` equals `address` (all pages read, up to {@link MAX_CONTACTS_PER_ADDRESS}): an
   * opt-out applies to each of them; a keyword only when there is one.
   */
  contactsByAddress(addressField: string, address: string, columns: readonly string[], signal?: AbortSignal): Promise<FoundContact[]>;
  /** The contact's most recent activity rows of one message table, newest first (at most `top`). */
  latestActivities(contactId: string, entityType: string, top: number, signal?: AbortSignal): Promise<Row[]>;
  /** The activity row whose id (`msdyncrm_customerjourneycustomchannelactivityid`) is `rowId` (cached); undefined when none. */
  activityByRowId(rowId: string, signal?: AbortSignal): Promise<Row | undefined>;
  /**
   * For links and requests written before the relay keyed on the row: the activity rows whose `msdyncrm_activityid` is
   * `activityId`, at most two (two mean that it names a tile shared by several contacts, not one row). A single row
   * is cached.
   */
  activitiesByActivityId(activityId: string, signal?: AbortSignal): Promise<Row[]>;
  /** A message record's columns (cached); undefined when it does not exist. */
  messageRecord(entitySetName: string, id: string, columns: readonly string[], signal?: AbortSignal): Promise<Row | undefined>;
  /** Sets one column of a contact (the compliance field). */
  updateContact(contactId: string, values: Row, signal?: AbortSignal): Promise<void>;
}

/** The calls of dynamics-web-api the directory makes (a subset of `DynamicsWebApi`). */
export interface DirectoryClient {
  retrieveMultiple(
    request: { collection: string; select?: string[]; filter?: string; orderBy?: string[]; top?: number; signal?: AbortSignal },
    nextPageLink?: string,
  ): Promise<{ value: unknown[]; oDataNextLink?: string }>;
  update(request: { collection: string; key: string; data: Row; signal?: AbortSignal }): Promise<unknown>;
}

export interface DirectoryOptions {
  client: DirectoryClient;
  /** Runs one call (the governor of the identity, with its timeout). @defaultValue the call as is */
  run?: <T>(call: (signal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined, operation: string) => Promise<T>;
  /** The message record reads (intake's cached `DataverseReads.messageRecord` fits). */
  messageRecord: CallbackDirectory['messageRecord'];
  /** The activity cache (by row id). `max: 0` or `ttlMs: 0`: none. @defaultValue `{ max: 10000, ttlMs: 600000 }` */
  activityCache?: { max?: number; ttlMs?: number };
  /** Clock of the activity cache (tests). @defaultValue Date.now */
  now?: () => number;
}

export const DIRECTORY_DEFAULTS = { activityCacheMax: 10_000, activityCacheTtlMs: 600_000 } as const;

/** Contacts read for one address at most (pages of the query); more are logged by the caller as a count only. */
export const MAX_CONTACTS_PER_ADDRESS = 5_000;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An OData string literal: single quotes doubled. */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function createCallbackDirectory(options: DirectoryOptions): CallbackDirectory {
  const run = options.run ?? (<T>(call: (signal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined) => call(signal));
  const client = options.client;
  /** Activity rows by `row:<row id>` and, found alone, `activity:<msdyncrm_activityid>` (lower case). */
  const activities = new TtlCache<string, Row>({
    max: options.activityCache?.max ?? DIRECTORY_DEFAULTS.activityCacheMax,
    ttlMs: options.activityCache?.ttlMs ?? DIRECTORY_DEFAULTS.activityCacheTtlMs,
    now: options.now,
    name: 'createCallbackDirectory: activityCache',
  });
  /** The rows `filter` finds (at most `top`); a single row found is cached under `key`. */
  const findActivities = async (key: string, filter: string, top: number, signal: AbortSignal | undefined, operation: string): Promise<Row[]> => {
    const hit = activities.get(key);
    if (hit !== undefined) return [hit];
    const res = await run((s) => client.retrieveMultiple({ collection: ACTIVITY_SET_NAME, select: [...ACTIVITY_COLUMNS_FOR_CALLBACKS], filter, top, ...(s ? { signal: s } : {}) }), signal, operation);
    const rows = res.value as Row[];
    if (rows.length === 1) activities.set(key, rows[0]!);
    return rows;
  };
  return {
    async contactsByAddress(addressField, address, columns, signal) {
      if (!COLUMN.test(addressField)) throw new TypeError(`address field must be a column name, found ${JSON.stringify(addressField)}`);
      const select = [...new Set(['contactid', addressField, ...columns])];
      const request = { collection: 'contacts', select, filter: `${addressField} eq ${odataString(address)}` };
      const found: FoundContact[] = [];
      let next: string | undefined;
      do {
        const link = next;
        const res = await run((s) => client.retrieveMultiple({ ...request, ...(s ? { signal: s } : {}) }, link), signal, 'find the contacts holding an address');
        for (const row of res.value as Row[]) if (typeof row['contactid'] === 'string') found.push({ contactId: row['contactid'], row });
        next = res.oDataNextLink;
      } while (next !== undefined && next !== '' && found.length < MAX_CONTACTS_PER_ADDRESS);
      return found.slice(0, MAX_CONTACTS_PER_ADDRESS);
    },
    async latestActivities(contactId, entityType, top, signal) {
      if (!GUID.test(contactId)) return [];
      const res = await run(
        (s) =>
          client.retrieveMultiple({
            collection: ACTIVITY_SET_NAME,
            select: [...ACTIVITY_COLUMNS_FOR_CALLBACKS],
            filter: `_msdyncrm_contact_value eq ${contactId} and msdyncrm_entitytype eq ${odataString(entityType)}`,
            orderBy: ['createdon desc'],
            top,
            ...(s ? { signal: s } : {}),
          }),
        signal,
        'read the contact\'s latest activities',
      );
      return res.value as Row[];
    },
    async activityByRowId(rowId, signal) {
      if (!GUID.test(rowId)) return undefined;
      const rows = await findActivities(`row:${rowId.toLowerCase()}`, `${ACTIVITY_ROW_KEY} eq ${rowId}`, 1, signal, 'read an activity by its row id');
      return rows[0];
    },
    async activitiesByActivityId(activityId, signal) {
      if (!GUID.test(activityId)) return [];
      return findActivities(`activity:${activityId.toLowerCase()}`, `msdyncrm_activityid eq ${odataString(activityId)}`, 2, signal, 'read the activities of an activity id');
    },
    messageRecord: options.messageRecord,
    async updateContact(contactId, values, signal) {
      if (!GUID.test(contactId)) throw new TypeError('contact id must be a GUID');
      await run((s) => client.update({ collection: 'contacts', key: contactId, data: values, ...(s ? { signal: s } : {}) }), signal, 'update a contact');
    },
  };
}
