/**
 * The callbacks service's Dataverse port (`CallbackDirectory`, src/pipeline) over the Web API client. A reply costs
 * one contact query (every page: all the contacts holding the address) and, for a keyword, one activity query (the
 * contact's activities of the tile's message table, newest first); an opt-out one PATCH per contact holding the
 * address; a click whose tile the service does not know yet (or a contract report) one activity query by row id
 * (cached by row id in a `TtlCache`: the columns read never change once the journey created the row; an activity not
 * found is not cached) and one message record read (cached).
 *
 * The contact queries and the activity-by-row queries of concurrent callbacks are coalesced (loader.ts): one asked
 * alone goes at once (`<addressField> eq '<address>'`, `<row key> eq <id>`), those asked while one is in flight go
 * together within {@link DIRECTORY_DEFAULTS}.`windowMs` as one query with a `Microsoft.Dynamics.CRM.In` filter
 * (PropertyValues is `Collection(Edm.String)`: learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607541(v=crm.8)).
 * Nothing about a contact is cached: who holds a number changes in Dataverse without the relay seeing it, and an
 * opt-out must reach every holder of now. The latest-activities queries of a keyword's contact are coalesced the same
 * way into the GETs of one `$batch` ("the newest N of each contact" is no single OData query).
 */
import { TtlCache } from '../cache.js';
import { BatchLoader, LOADER_DEFAULTS } from './loader.js';
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
  /** Starts a `$batch`: the calls up to `executeBatch` are its operations. */
  startBatch(): void;
  /** Sends the `$batch`: one result per operation, in order, an `Error` for an operation that failed. */
  executeBatch(request: { inChangeSet?: boolean; signal?: AbortSignal }): Promise<unknown[]>;
}

export interface DirectoryOptions {
  client: DirectoryClient;
  /**
   * Runs one call (the governor of the identity, with its timeout); `operations`: the operations of a `$batch`, for
   * the execution-time budget. @defaultValue the call as is
   */
  run?: <T>(
    call: (signal: AbortSignal | undefined) => Promise<T>,
    signal: AbortSignal | undefined,
    operation: string,
    operations?: number,
  ) => Promise<T>;
  /** The message record reads (intake's cached `DataverseReads.messageRecord` fits). */
  messageRecord: CallbackDirectory['messageRecord'];
  /** The activity cache (by row id). `max: 0` or `ttlMs: 0`: none. @defaultValue `{ max: 10000, ttlMs: 600000 }` */
  activityCache?: { max?: number; ttlMs?: number };
  /** Clock of the activity cache (tests). @defaultValue Date.now */
  now?: () => number;
  /**
   * Coalescing of concurrent contact and activity-by-row queries (loader.ts): the longest a lookup waits for others
   * while one is in flight, and lookups per query. @defaultValue `{ windowMs: 5, maxBatch: 50 }`
   */
  coalesce?: { windowMs?: number; maxBatch?: number };
}

export const DIRECTORY_DEFAULTS = {
  activityCacheMax: 10_000,
  activityCacheTtlMs: 600_000,
  windowMs: LOADER_DEFAULTS.windowMs,
  maxBatch: LOADER_DEFAULTS.maxBatch,
} as const;

/** Contacts read for one address at most (pages of the query). */
export const MAX_CONTACTS_PER_ADDRESS = 5_000;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An OData string literal: single quotes doubled. */
function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A string as Dataverse's `eq` and `In` compare it (SQL Server's default collation: case-insensitive, trailing spaces
 * ignored), so that the rows of an `In` query are given back to the address that matched them.
 */
function comparable(value: string): string {
  return value.toLowerCase().replace(/ +$/, '');
}

/** `column` equal to the one value, or `In` the several (string literals, quotes doubled). */
function oneOf(column: string, values: readonly string[], literal: (v: string) => string): string {
  return values.length === 1
    ? `${column} eq ${literal(values[0]!)}`
    : `Microsoft.Dynamics.CRM.In(PropertyName='${column}',PropertyValues=[${values.map(odataString).join(',')}])`;
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
  const coalesce = {
    windowMs: options.coalesce?.windowMs ?? DIRECTORY_DEFAULTS.windowMs,
    maxBatch: options.coalesce?.maxBatch ?? DIRECTORY_DEFAULTS.maxBatch,
  };
  /** The rows `filter` finds (at most `top`). */
  const queryActivities = async (
    filter: string,
    top: number | undefined,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<ActivityRecord[]> => {
    const res = await run(
      (s) =>
        client.retrieveMultiple({
          collection: ACTIVITY_SET,
          select: COLUMNS,
          filter,
          ...(top === undefined ? {} : { top }),
          ...(s ? { signal: s } : {}),
        }),
      signal,
      operation,
    );
    return (res.value as Row[]).map(activityRecord);
  };
  /** Activity rows by lower-case row id, the lookups of concurrent callbacks in one query. */
  const rows = new BatchLoader<ActivityRecord>({
    name: 'createCallbackDirectory: coalesce',
    ...coalesce,
    load: async (ids, signal) => {
      const found = await queryActivities(
        oneOf(ACTIVITY_KEY, ids, (id) => id),
        ids.length,
        signal,
        ids.length === 1 ? 'read an activity by its row id' : `read ${ids.length} activities by their row ids`,
      );
      return new Map(found.map((a) => [(a.activityRowId ?? '').toLowerCase(), a]));
    },
  });
  /** Contacts by address, one loader per address field and columns read. */
  const holders = new Map<string, BatchLoader<FoundContact[]>>();
  /** Every contact whose `addressField` is one of `addresses` (all pages, up to the bound per address), by address. */
  const readHolders = async (
    addressField: string,
    select: string[],
    addresses: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<Map<string, FoundContact[]>> => {
    const request = { collection: 'contacts', select, filter: oneOf(addressField, addresses, odataString) };
    const bound = MAX_CONTACTS_PER_ADDRESS * addresses.length;
    const byAddress = new Map<string, FoundContact[]>(addresses.map((a) => [comparable(a), []]));
    let read = 0;
    let next: string | undefined;
    do {
      const link = next;
      const res = await run(
        (s) => client.retrieveMultiple({ ...request, ...(s ? { signal: s } : {}) }, link),
        signal,
        addresses.length === 1
          ? 'find the contacts holding an address'
          : `find the contacts holding ${addresses.length} addresses`,
      );
      for (const row of res.value as Row[]) {
        const contactId = row['contactid'];
        const address = row[addressField];
        const list =
          addresses.length === 1
            ? byAddress.get(comparable(addresses[0]!))
            : byAddress.get(comparable(String(address)));
        if (typeof contactId === 'string' && list !== undefined) list.push({ contactId, row });
        read++;
      }
      next = res.oDataNextLink;
    } while (next !== undefined && next !== '' && read < bound);
    if (next !== undefined && next !== '' && addresses.length > 1) {
      // Stopped at the bound with rows left: an address may be missing holders; each is read alone instead.
      const alone = await Promise.all(addresses.map((a) => readHolders(addressField, select, [a], signal)));
      return new Map(alone.flatMap((m) => [...m]));
    }
    for (const [address, list] of byAddress) byAddress.set(address, list.slice(0, MAX_CONTACTS_PER_ADDRESS));
    return byAddress;
  };
  /** The query of one contact's newest activities of a message table. */
  const latestQuery = (contactId: string, entityType: string, top: number) => ({
    collection: ACTIVITY_SET,
    select: COLUMNS,
    filter: `${FIELDS.contactId} eq ${contactId} and ${FIELDS.entityType} eq ${odataString(entityType)}`,
    orderBy: ['createdon desc'],
    top,
  });
  /** Newest activities by contact, one loader per message table and count: several contacts as one `$batch`. */
  const latest = new Map<string, BatchLoader<ActivityRecord[]>>();
  const latestLoader = (entityType: string, top: number): BatchLoader<ActivityRecord[]> => {
    const key = `${entityType}\u0000${top}`;
    let loader = latest.get(key);
    if (loader === undefined) {
      loader = new BatchLoader<ActivityRecord[]>({
        name: 'createCallbackDirectory: coalesce',
        ...coalesce,
        load: async (contactIds, signal) => {
          if (contactIds.length === 1) {
            const res = await run(
              (s) =>
                client.retrieveMultiple({
                  ...latestQuery(contactIds[0]!, entityType, top),
                  ...(s ? { signal: s } : {}),
                }),
              signal,
              "read the contact's latest activities",
            );
            return new Map([[contactIds[0]!, (res.value as Row[]).map(activityRecord)]]);
          }
          // "The newest N of each contact" is no single OData query: one GET per contact, in one $batch (one request
          // toward the limit; each GET its own operation, its own result or error).
          const parts = await run(
            (s) => {
              // startBatch … executeBatch without an await in between: the client's batch state is per instance.
              client.startBatch();
              for (const id of contactIds)
                client.retrieveMultiple(latestQuery(id, entityType, top)).catch(() => undefined);
              return client.executeBatch({ inChangeSet: false, ...(s ? { signal: s } : {}) });
            },
            signal,
            `read the latest activities of ${contactIds.length} contacts in a $batch`,
            contactIds.length,
          );
          return new Map(
            contactIds.map((id, n): [string, ActivityRecord[] | Error] => {
              const part = parts[n];
              if (part instanceof Error) return [id, part];
              const value = (part as { value?: unknown } | undefined)?.value;
              return Array.isArray(value)
                ? [id, (value as Row[]).map(activityRecord)]
                : [id, new Error(`the $batch answered no result for contact ${id}'s activities`)];
            }),
          );
        },
      });
      latest.set(key, loader);
    }
    return loader;
  };
  const holdersLoader = (addressField: string, select: string[]): BatchLoader<FoundContact[]> => {
    const key = `${addressField}\u0000${select.join(',')}`;
    let loader = holders.get(key);
    if (loader === undefined) {
      loader = new BatchLoader<FoundContact[]>({
        name: 'createCallbackDirectory: coalesce',
        ...coalesce,
        load: async (addresses, signal) => {
          const found = await readHolders(addressField, select, addresses, signal);
          return new Map(addresses.map((a) => [a, found.get(comparable(a)) ?? []]));
        },
      });
      holders.set(key, loader);
    }
    return loader;
  };
  return {
    async contactsByAddress(addressField, address, columns, signal) {
      if (!COLUMN.test(addressField))
        throw new TypeError(`address field must be a column name, found ${JSON.stringify(addressField)}`);
      const select = [...new Set(['contactid', addressField, ...columns])];
      return (await holdersLoader(addressField, select).load(address, signal)) ?? [];
    },
    async latestActivities(contactId, entityType, top, signal) {
      if (!GUID.test(contactId)) return [];
      return (await latestLoader(entityType, top).load(contactId.toLowerCase(), signal)) ?? [];
    },
    async activityByRowId(rowId, signal) {
      if (!GUID.test(rowId)) return undefined;
      const key = `row:${rowId.toLowerCase()}`;
      const hit = activities.get(key);
      if (hit !== undefined) return hit;
      const found = await rows.load(rowId.toLowerCase(), signal);
      if (found !== undefined) activities.set(key, found);
      return found;
    },
    async activitiesByActivityId(activityId, signal) {
      if (!GUID.test(activityId)) return [];
      const key = `activity:${activityId.toLowerCase()}`;
      const hit = activities.get(key);
      if (hit !== undefined) return [hit];
      const found = await queryActivities(
        `${ACTIVITY_TILE_ID} eq ${odataString(activityId)}`,
        2,
        signal,
        'read the activities of an activity id',
      );
      if (found.length === 1) activities.set(key, found[0]!);
      return found;
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
