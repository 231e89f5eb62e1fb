/**
 * The reads intake makes (`DataverseReads`): contacts and activity rows by id, and message records, in as few
 * requests as the Web API allows, every call through the identity's governor and with the caller's signal.
 *
 * Invariants: ids are de-duplicated and read with `In` filters in chunks, one chunk as a GET and several as the GETs
 * of ONE `$batch` (it counts once toward the request limit; each chunk adds one operation's execution time), so a
 * batch of activities costs one request per table whatever its size; a row that does not exist is absent from the
 * answer, never an error; a message record is read once per cache lifetime, and concurrent asks share one request.
 */
import { raceAbort } from '../abort.js';
import { TtlCache } from '../cache.js';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { isDataverseError } from '../errors.js';
import type { DataverseReads, Row } from '../pipeline/index.js';
import { clientTimeoutMs } from './client.js';
import type { Governor, RunOptions } from './governor.js';
import { ACTIVITY_COLUMNS, ACTIVITY_KEY, ACTIVITY_SET } from './remote-context.js';

export interface DataverseReadsOptions {
  /** The governor of the client's identity. */
  governor: Governor;
  /**
   * Contact ids (and activity row ids) per In filter: one GET, or one operation of a `$batch` (up to 1,000 a batch).
   * Measured with the emulator through dynamics-web-api 2.5.0: the percent-encoded In filter costs about 45
   * characters a GUID, so a plain GET stays under the client's 2,000-character threshold up to 45 ids (measured with
   * 1 to 4 columns; 46 go as a $batch); above it the client sends the GET inside a `$batch` by itself. Both are one
   * request, and inside a `$batch` the URL limit is 64 KB, so chunks of 100 (about 4.6 KB) are safe. Requests per
   * `contacts()` call: 1 for up to 100,000 ids. @defaultValue 100
   */
  contactsPerQuery?: number;
  /**
   * Message record cache (a `TtlCache`: LRU, `max` entries, each for `ttlMs`), keyed by entity set, id and columns; a
   * record that does not exist is not cached. @defaultValue `{ max: 1000, ttlMs: 300000 }`
   */
  messageCache?: { max?: number; ttlMs?: number };
  /** Clock for the cache (tests). @defaultValue Date.now */
  now?: () => number;
}

export const READS_DEFAULTS = { contactsPerQuery: 100, messageCacheMax: 1000, messageCacheTtlMs: 300_000 } as const;
/** Operations per `$batch`: Dataverse's limit. */
const MAX_BATCH = 1000;
/** Dataverse's "does not exist" code, as opposed to an unknown entity set (also 404). */
const ROW_NOT_FOUND = '0x80040217';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Cache statistics, for metrics and tests. */
export interface ReadStats {
  /** Requests sent (a `$batch` counts once). */
  requests: number;
  messageCacheHits: number;
  messageCacheMisses: number;
  /** Asks answered by a request already in flight. */
  messageInFlightShared: number;
}

export interface DataverseReadsWithStats extends DataverseReads {
  stats(): ReadStats;
}

function inFilter(key: string, ids: readonly string[]): string {
  return `Microsoft.Dynamics.CRM.In(PropertyName='${key}',PropertyValues=[${ids.map((id) => `'${id}'`).join(',')}])`;
}

function isRowNotFound(err: unknown): boolean {
  return (
    isDataverseError(err) &&
    err.code === 'DataverseNotFound' &&
    (err.upstream?.code === undefined || err.upstream.code === ROW_NOT_FOUND)
  );
}

export function createDataverseReads(client: DynamicsWebApi, options: DataverseReadsOptions): DataverseReadsWithStats {
  const perQuery = options.contactsPerQuery ?? READS_DEFAULTS.contactsPerQuery;
  if (!Number.isInteger(perQuery) || perQuery < 1 || perQuery > 1000)
    throw new TypeError(
      `createDataverseReads: contactsPerQuery must be an integer 1-1000, found ${String(options.contactsPerQuery)}`,
    );
  const cache = new TtlCache<string, Row>({
    max: options.messageCache?.max ?? READS_DEFAULTS.messageCacheMax,
    ttlMs: options.messageCache?.ttlMs ?? READS_DEFAULTS.messageCacheTtlMs,
    now: options.now,
    name: 'createDataverseReads: messageCache',
  });
  const governor = options.governor;
  // The client's `timeoutMs` (createDataverseClient) times every call out; else the governor's own.
  const timeoutMs = clientTimeoutMs(client);
  const run = <T>(
    call: (signal: AbortSignal) => Promise<T>,
    signal: AbortSignal | undefined,
    operation: string,
    operations = 1,
  ): Promise<T> => {
    const o: RunOptions = { signal, operation, operations };
    if (timeoutMs !== undefined) o.timeoutMs = timeoutMs;
    return governor.run(call, o);
  };
  const inFlight = new Map<string, Promise<Row | undefined>>();
  const stats: ReadStats = { requests: 0, messageCacheHits: 0, messageCacheMisses: 0, messageInFlightShared: 0 };

  /** The rows of `collection` whose `key` is one of the ids of `chunks`: one GET, or one `$batch` of GETs. */
  async function inChunks(
    collection: string,
    key: string,
    chunks: string[][],
    select: string[],
    signal: AbortSignal | undefined,
  ): Promise<Row[]> {
    if (chunks.length === 1) {
      const ids = chunks[0]!;
      stats.requests++;
      const res = await run(
        (s) => client.retrieveMultiple({ collection, select, filter: inFilter(key, ids), signal: s }),
        signal,
        `read ${ids.length} ${collection}`,
      );
      return res.value as Row[];
    }
    stats.requests++;
    const parts = await run(
      (s) => {
        // startBatch … executeBatch without an await in between: the client's batch state is per instance.
        client.startBatch();
        for (const ids of chunks)
          client.retrieveMultiple({ collection, select, filter: inFilter(key, ids) }).catch(() => undefined);
        return client.executeBatch({ inChangeSet: false, signal: s });
      },
      signal,
      `read ${collection} in a $batch of ${chunks.length} queries`,
      chunks.length,
    );
    const rows: Row[] = [];
    for (const part of parts as unknown[]) {
      if (part instanceof Error) throw part;
      rows.push(...((part as { value?: Row[] } | undefined)?.value ?? []));
    }
    return rows;
  }

  /** Rows by id (as asked, any case) in as few requests as {@link inChunks} needs; ids not found are absent. */
  async function byIds(
    collection: string,
    key: string,
    ids: readonly string[],
    columns: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<Map<string, Row>> {
    // Requested spelling by lower-case id; ids that are not GUIDs cannot exist.
    const wanted = new Map<string, string[]>();
    for (const id of ids) {
      if (!GUID.test(id)) continue;
      const lower = id.toLowerCase();
      const list = wanted.get(lower);
      if (list === undefined) wanted.set(lower, [id]);
      else if (!list.includes(id)) list.push(id);
    }
    const result = new Map<string, Row>();
    if (wanted.size === 0) return result;
    const select = [key, ...columns.filter((c) => c !== key)];
    const unique = [...wanted.keys()];
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += perQuery) chunks.push(unique.slice(i, i + perQuery));
    const groups: string[][][] = [];
    for (let i = 0; i < chunks.length; i += MAX_BATCH) groups.push(chunks.slice(i, i + MAX_BATCH));
    const rows = (await Promise.all(groups.map((g) => inChunks(collection, key, g, select, signal)))).flat();
    for (const row of rows) {
      const id = typeof row[key] === 'string' ? row[key].toLowerCase() : undefined;
      for (const asked of (id === undefined ? undefined : wanted.get(id)) ?? []) result.set(asked, row);
    }
    return result;
  }

  async function retrieve(
    collection: string,
    id: string,
    select: readonly string[],
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<Row | undefined> {
    stats.requests++;
    try {
      return (await run(
        (s) => client.retrieve({ collection, key: id, select: [...select], signal: s }),
        signal,
        operation,
      )) as Row | undefined;
    } catch (err) {
      if (isRowNotFound(err)) return undefined;
      throw err;
    }
  }

  function messageRecord(
    entitySetName: string,
    id: string,
    columns: readonly string[],
    signal?: AbortSignal,
  ): Promise<Row | undefined> {
    const key = `${entitySetName}(${id.toLowerCase()})?${[...columns].sort().join(',')}`;
    const hit = cache.get(key);
    if (hit !== undefined) {
      stats.messageCacheHits++;
      return Promise.resolve(hit);
    }
    const shared = inFlight.get(key);
    if (shared !== undefined) {
      stats.messageInFlightShared++;
      return shared;
    }
    stats.messageCacheMisses++;
    // The shared request is not tied to the first caller's signal: one caller giving up must not fail the others.
    const pending = retrieve(entitySetName, id, columns, undefined, `read ${entitySetName}(${id})`)
      .then((row) => {
        if (row !== undefined) cache.set(key, row);
        return row;
      })
      .finally(() => inFlight.delete(key));
    inFlight.set(key, pending);
    return raceAbort(pending, signal);
  }

  return {
    // `GET contacts?$select=…&$filter=Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=[…])` per chunk.
    contacts: (ids, columns, signal) => byIds('contacts', 'contactid', ids, columns, signal),
    messageRecord,
    // For events Dataverse truncated or whose Target lacked attributes: the same In-filter queries on
    // msdyncrm_customerjourneycustomchannelactivityid as the contacts.
    activities: (ids, signal) => byIds(ACTIVITY_SET, ACTIVITY_KEY, ids, ACTIVITY_COLUMNS, signal),
    stats: () => ({ ...stats }),
  };
}
