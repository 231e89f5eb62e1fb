/**
 * Interactions recorded through the actions (CreateInteraction, the real-time journeys notification and inbound
 * APIs), indexed by activity (tile id and row), journey, response type and contact so that `/_emulator/interactions`
 * never scans.
 */
import type { Tx } from './store.js';

export type InteractionKind = 'interaction' | 'notification' | 'inbound';

export interface Interaction {
  /** Order of recording, from 1. */
  seq: number;
  kind: InteractionKind;
  /** ISO time the interaction was stored. */
  createdOn: string;
  /**
   * When the emulator stored it, ms since the epoch (`createdOn` has whole seconds, as Dataverse's): for the
   * benchmark's latency figures. Set by {@link InteractionLog.add}.
   */
  recordedAtMs?: number;
  /** Caller identity (bearer token text is never stored; this is the derived user id). */
  userId: string;
  /** `ActivityId` as given (`msdyncrm_activityid`: the tile's id, shared by the rows of a journey run). */
  activityId?: string;
  /** Primary key of the Custom Channel Activity row the interaction was resolved to (see assumptions.ts). */
  activityRowId?: string;
  contactId?: string;
  journeyId?: string;
  iterationId?: string;
  entityType?: string;
  entityId?: string;
  responseType?: string;
  triggerKeyword?: string;
  /** The real-time journeys payload, parsed. */
  payload?: Record<string, unknown>;
  /**
   * Set when an earlier interaction has the same {@link duplicateKey}: the `seq` of the first one. The emulator
   * records duplicates (as Dataverse is believed to; UNVERIFIED) and marks them so that a test can count them.
   */
  duplicateOf?: number;
}

/**
 * What makes two interactions "the same": for CreateInteraction the activity row, the response type and the
 * trigger keyword (case-insensitive); for the real-time notification the channel definition, MessageId and Status.
 * Inbound messages are never duplicates (a contact may send the same text twice).
 */
export function duplicateKey(item: Omit<Interaction, 'seq'>): string | undefined {
  if (item.kind === 'interaction')
    return `i|${item.activityRowId ?? item.activityId ?? ''}|${item.responseType ?? ''}|${(item.triggerKeyword ?? '').toLowerCase()}`;
  if (item.kind === 'notification') {
    const p = item.payload ?? {};
    return `n|${String(p['ChannelDefinitionId'] ?? '').toLowerCase()}|${String(p['MessageId'] ?? '')}|${String(p['Status'] ?? '')}`;
  }
  return undefined;
}

export interface InteractionFilter {
  kind?: InteractionKind;
  activityId?: string;
  activityRowId?: string;
  journeyId?: string;
  responseType?: string;
  contactId?: string;
  /** true: only the duplicates; false: only the first of each. @defaultValue both */
  duplicates?: boolean;
}

type IndexedField = 'activityId' | 'activityRowId' | 'journeyId' | 'responseType' | 'contactId' | 'kind';
const INDEXED: readonly IndexedField[] = [
  'activityId',
  'activityRowId',
  'journeyId',
  'responseType',
  'contactId',
  'kind',
];

export class InteractionLog {
  #items: Interaction[] = [];
  /** {@link duplicateKey} → seq of the first interaction with it. */
  readonly #firstByKey = new Map<string, number>();
  #duplicates = 0;
  readonly #indexes = new Map<IndexedField, Map<string, number[]>>(INDEXED.map((f) => [f, new Map()]));

  get size(): number {
    return this.#items.length;
  }

  /** How many recorded interactions repeat an earlier one. */
  get duplicates(): number {
    return this.#duplicates;
  }

  add(item: Omit<Interaction, 'seq' | 'recordedAtMs'>, tx?: Tx): Interaction {
    const stored: Interaction = { seq: this.#items.length + 1, ...item, recordedAtMs: Date.now() };
    const key = duplicateKey(item);
    if (key !== undefined) {
      const first = this.#firstByKey.get(key);
      if (first === undefined) this.#firstByKey.set(key, stored.seq);
      else {
        stored.duplicateOf = first;
        this.#duplicates += 1;
      }
    }
    const position = this.#items.length;
    this.#items.push(stored);
    for (const field of INDEXED) {
      const value = stored[field];
      if (value === undefined) continue;
      const key = value.toLowerCase();
      const index = this.#indexes.get(field)!;
      let list = index.get(key);
      if (!list) index.set(key, (list = []));
      list.push(position);
    }
    // Change sets run synchronously, so the item to undo is always the last one.
    tx?.undo.push(() => this.#removeLast());
    return stored;
  }

  #removeLast(): void {
    const item = this.#items.pop();
    if (!item) return;
    if (item.duplicateOf !== undefined) this.#duplicates -= 1;
    else {
      const key = duplicateKey(item);
      if (key !== undefined && this.#firstByKey.get(key) === item.seq) this.#firstByKey.delete(key);
    }
    for (const field of INDEXED) {
      const value = item[field];
      if (value !== undefined) this.#indexes.get(field)!.get(value.toLowerCase())?.pop();
    }
  }

  /** Interactions matching every given field, in recording order. */
  query(filter: InteractionFilter): Interaction[] {
    let best: number[] | undefined;
    const checks: Array<[IndexedField, string]> = [];
    for (const field of INDEXED) {
      const value = filter[field];
      if (value === undefined) continue;
      const key = value.toLowerCase();
      checks.push([field, key]);
      const list = this.#indexes.get(field)!.get(key) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    const dup = filter.duplicates;
    const keep = (item: Interaction): boolean => dup === undefined || (item.duplicateOf !== undefined) === dup;
    if (!best) return this.#items.filter(keep);
    return best
      .map((i) => this.#items[i]!)
      .filter((item) => keep(item) && checks.every(([f, v]) => item[f]?.toLowerCase() === v));
  }
}
