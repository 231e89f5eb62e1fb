/**
 * Interactions recorded through the actions (CreateInteraction, the real-time journeys notification and inbound
 * APIs), indexed by activity, journey, response type and contact so that `/_emulator/interactions` never scans.
 */
import type { Tx } from './store.js';

export type InteractionKind = 'interaction' | 'notification' | 'inbound';

export interface Interaction {
  /** Order of recording, from 1. */
  seq: number;
  kind: InteractionKind;
  /** ISO time the interaction was stored. */
  createdOn: string;
  /** Caller identity (bearer token text is never stored; this is the derived user id). */
  userId: string;
  activityId?: string;
  /** Primary key of the Custom Channel Activity row. */
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
}

export interface InteractionFilter {
  kind?: InteractionKind;
  activityId?: string;
  journeyId?: string;
  responseType?: string;
  contactId?: string;
}

type IndexedField = 'activityId' | 'journeyId' | 'responseType' | 'contactId' | 'kind';
const INDEXED: readonly IndexedField[] = ['activityId', 'journeyId', 'responseType', 'contactId', 'kind'];

export class InteractionLog {
  #items: Interaction[] = [];
  readonly #indexes = new Map<IndexedField, Map<string, number[]>>(INDEXED.map((f) => [f, new Map()]));

  get size(): number {
    return this.#items.length;
  }

  add(item: Omit<Interaction, 'seq'>, tx?: Tx): Interaction {
    const stored: Interaction = { seq: this.#items.length + 1, ...item };
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
    if (!best) return [...this.#items];
    return best.map((i) => this.#items[i]!).filter((item) => checks.every(([f, v]) => item[f]?.toLowerCase() === v));
  }
}
