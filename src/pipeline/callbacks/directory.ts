/**
 * What the callbacks service reads and writes in Dataverse, as a narrow port (`CallbackDirectory`), and its
 * implementation over the Web API client (structurally typed: this folder imports no SDK; the relay hands in
 * src/dataverse's client and the governor's `run`).
 *
 * Requests: a reply costs one contact query (`<addressField> eq '<address>'`) and one activity query (the contact's
 * activities of the tile's message table, newest first); an opt-out one PATCH; a click one activity query and one
 * message record read (cached).
 */
import type { Row } from '../ports.js';
import { ACTIVITY_COLUMNS_FOR_CALLBACKS, ACTIVITY_SET_NAME } from './activity.js';

/** A contact found by its address. */
export interface FoundContact {
  contactId: string;
  row: Row;
}

export interface CallbackDirectory {
  /** Contacts whose `addressField` equals `address` (at most 2 are read: more than one is ambiguous). */
  contactsByAddress(addressField: string, address: string, columns: readonly string[], signal?: AbortSignal): Promise<FoundContact[]>;
  /** The contact's most recent activity rows of one message table, newest first (at most `top`). */
  latestActivities(contactId: string, entityType: string, top: number, signal?: AbortSignal): Promise<Row[]>;
  /** The activity row whose `msdyncrm_activityid` is `activityId`; undefined when none. */
  activityByActivityId(activityId: string, signal?: AbortSignal): Promise<Row | undefined>;
  /** A message record's columns (cached); undefined when it does not exist. */
  messageRecord(entitySetName: string, id: string, columns: readonly string[], signal?: AbortSignal): Promise<Row | undefined>;
  /** Sets one column of a contact (the compliance field). */
  updateContact(contactId: string, values: Row, signal?: AbortSignal): Promise<void>;
}

/** The calls of dynamics-web-api the directory makes (a subset of `DynamicsWebApi`). */
export interface DirectoryClient {
  retrieveMultiple(request: { collection: string; select?: string[]; filter?: string; orderBy?: string[]; top?: number; signal?: AbortSignal }): Promise<{ value: unknown[] }>;
  update(request: { collection: string; key: string; data: Row; signal?: AbortSignal }): Promise<unknown>;
}

export interface DirectoryOptions {
  client: DirectoryClient;
  /** Runs one call (the governor of the identity, with its timeout). @defaultValue the call as is */
  run?: <T>(call: (signal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined, operation: string) => Promise<T>;
  /** The message record reads (intake's cached `DataverseReads.messageRecord` fits). */
  messageRecord: CallbackDirectory['messageRecord'];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An OData string literal: single quotes doubled. */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function createCallbackDirectory(options: DirectoryOptions): CallbackDirectory {
  const run = options.run ?? (<T>(call: (signal: AbortSignal | undefined) => Promise<T>, signal: AbortSignal | undefined) => call(signal));
  const client = options.client;
  return {
    async contactsByAddress(addressField, address, columns, signal) {
      if (!COLUMN.test(addressField)) throw new TypeError(`address field must be a column name, found ${JSON.stringify(addressField)}`);
      const select = [...new Set(['contactid', addressField, ...columns])];
      const res = await run(
        (s) => client.retrieveMultiple({ collection: 'contacts', select, filter: `${addressField} eq ${odataString(address)}`, top: 2, ...(s ? { signal: s } : {}) }),
        signal,
        'find a contact by address',
      );
      return (res.value as Row[]).flatMap((row) => (typeof row['contactid'] === 'string' ? [{ contactId: row['contactid'], row }] : []));
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
    async activityByActivityId(activityId, signal) {
      if (!GUID.test(activityId)) return undefined;
      const res = await run(
        (s) =>
          client.retrieveMultiple({
            collection: ACTIVITY_SET_NAME,
            select: [...ACTIVITY_COLUMNS_FOR_CALLBACKS],
            filter: `msdyncrm_activityid eq ${odataString(activityId)}`,
            top: 1,
            ...(s ? { signal: s } : {}),
          }),
        signal,
        'read an activity by its activity id',
      );
      return res.value[0] as Row | undefined;
    },
    messageRecord: options.messageRecord,
    async updateContact(contactId, values, signal) {
      if (!GUID.test(contactId)) throw new TypeError('contact id must be a GUID');
      await run((s) => client.update({ collection: 'contacts', key: contactId, data: values, ...(s ? { signal: s } : {}) }), signal, 'update a contact');
    },
  };
}
