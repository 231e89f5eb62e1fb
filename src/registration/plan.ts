/**
 * The pure part of the registration: the rows the relay wants (service endpoint, steps), and the difference between
 * what the org holds and that: create, update these columns, or nothing. No I/O here; `register.ts` reads and writes.
 */
import type { ServiceBusSas } from './servicebus.js';
import {
  ENABLED_STATE,
  ENDPOINT_CONSTANTS,
  namespaceAddress,
  SAS_KEY_SET_COLUMN,
  solutionNamespace,
} from './assumptions.js';

type Row = Record<string, unknown>;

/** The columns of `serviceendpoint` the relay compares and writes (`saskey` aside: it is write-only). */
export const ENDPOINT_COLUMNS = [
  'name',
  'contract',
  'messageformat',
  'authtype',
  'userclaim',
  'connectionmode',
  'namespaceformat',
  'namespaceaddress',
  'solutionnamespace',
  'path',
  'saskeyname',
] as const;
/** The columns of `sdkmessageprocessingstep` the relay compares and writes (the bindings are its identity). */
export const STEP_COLUMNS = [
  'name',
  'mode',
  'stage',
  'rank',
  'supporteddeployment',
  'asyncautodelete',
  'statecode',
] as const;
/** Columns compared without case (Dataverse may store a host in another case). */
const CASE_INSENSITIVE = new Set(['namespaceaddress', 'solutionnamespace']);

export type PlannedAction = 'create' | 'update' | 'unchanged';

/** What to do with one row: the action, the columns that differ (names only) and the Web API body to send. */
export interface RowPlan {
  action: PlannedAction;
  /** Column names that a create sets or an update changes; `saskey` is named, never its value. */
  changed: string[];
  /** The create or PATCH body; empty when unchanged. Holds the SAS key when `changed` names `saskey`. */
  body: Row;
}

/** The endpoint the relay wants, without its key. */
export function desiredEndpoint(name: string, queue: string, bus: ServiceBusSas): Row {
  return {
    name,
    ...ENDPOINT_CONSTANTS,
    namespaceaddress: namespaceAddress(bus.host),
    solutionnamespace: solutionNamespace(bus.host),
    path: queue,
    saskeyname: bus.keyName,
  };
}

function same(column: string, a: unknown, b: unknown): boolean {
  if (CASE_INSENSITIVE.has(column) && typeof a === 'string' && typeof b === 'string')
    return a.toLowerCase() === b.toLowerCase();
  return a === b;
}

/**
 * The plan for the service endpoint. The key is written on create, when the org says none is set
 * (`issaskeyset` not true), when the namespace address or key name change, and when `updateKey` asks for it.
 */
export function planEndpoint(existing: Row | undefined, desired: Row, key: string, updateKey = false): RowPlan {
  if (existing === undefined)
    return { action: 'create', changed: [...Object.keys(desired), 'saskey'], body: { ...desired, saskey: key } };
  const changed: string[] = ENDPOINT_COLUMNS.filter((c) => c in desired && !same(c, existing[c], desired[c]));
  const body: Row = Object.fromEntries(changed.map((c) => [c, desired[c]]));
  const keyStale =
    existing[SAS_KEY_SET_COLUMN] !== true || changed.includes('namespaceaddress') || changed.includes('saskeyname');
  if (updateKey || keyStale) {
    changed.push('saskey');
    body['saskey'] = key;
  }
  return changed.length === 0 ? { action: 'unchanged', changed: [], body: {} } : { action: 'update', changed, body };
}

/** The step columns the relay wants (async, post-operation, rank 1, server, system jobs deleted when they succeed). */
export function desiredStep(name: string): Row {
  return { name, mode: 1, stage: 40, rank: 1, supporteddeployment: 0, asyncautodelete: true };
}

/** The Web API bindings of a step: its service endpoint, message and (when there is one) filter. */
export function stepBindings(endpointId: string, messageId: string, filterId: string | undefined): Row {
  return {
    'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
    'sdkmessageid@odata.bind': `/sdkmessages(${messageId})`,
    ...(filterId === undefined ? {} : { 'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${filterId})` }),
  };
}

/** The plan for one step; a disabled step is enabled (statecode 0, statuscode 1). */
export function planStep(existing: Row | undefined, desired: Row, bindings: Row): RowPlan {
  if (existing === undefined)
    return { action: 'create', changed: Object.keys(desired), body: { ...desired, ...bindings } };
  const wanted: Row = { ...desired, statecode: ENABLED_STATE.statecode };
  const changed: string[] = STEP_COLUMNS.filter((c) => c in wanted && !same(c, existing[c], wanted[c]));
  const body: Row = Object.fromEntries(changed.map((c) => [c, wanted[c]]));
  if (changed.includes('statecode')) body['statuscode'] = ENABLED_STATE.statuscode;
  return changed.length === 0 ? { action: 'unchanged', changed: [], body: {} } : { action: 'update', changed, body };
}

/**
 * The existing steps that ARE the wanted one: same service endpoint, same message, same filter (none when
 * `filterId` is undefined). The step's name is not part of its identity: an operator may rename it, and a second
 * step on the same event would post every event twice. Oldest first.
 */
export function matchingSteps(steps: readonly Row[], messageId: string, filterId: string | undefined): Row[] {
  const id = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.toLowerCase() : undefined);
  return steps
    .filter(
      (s) =>
        id(s['_sdkmessageid_value']) === messageId.toLowerCase() &&
        id(s['_sdkmessagefilterid_value']) === (filterId === undefined ? undefined : filterId.toLowerCase()),
    )
    .sort((a, b) => String(a['createdon'] ?? '').localeCompare(String(b['createdon'] ?? '')));
}
