/**
 * The demo's figures, read from the emulators' own records, never from the workers' counters: the Dataverse
 * emulator's interactions and request statistics, the provider simulators' message log, and the dead-letter queues
 * of the Service Bus emulator.
 */
import type { ServiceBusClient } from '@azure/service-bus';
import type { ProviderSimulators } from '../emulators/providers/index.js';
import type { Interaction, JourneyRunResult } from '../emulators/dataverse/index.js';
import { peekDeadLetters } from '../servicebus/index.js';

/** One journey's funnel. */
export interface JourneyFunnel {
  journeyId: string;
  /** The journey's name in the seed, when it has one. */
  name?: string;
  /** Activities the journey created (one per contact it reached). */
  activities: number;
  /** Contacts the journey did not reach because their compliance field was set. */
  skippedByCompliance: number;
  /** Activities with a `sent` interaction. */
  sent: number;
  /** Activities with a failure interaction (the provider refused the recipient). */
  failed: number;
  /** Activities whose event, message or interaction is in a dead-letter queue. */
  deadLettered: number;
}

/** What `--summary-json` writes. */
export interface DemoSummary {
  activities: number;
  skippedByCompliance: number;
  sent: number;
  failed: number;
  deadLettered: number;
  /** Messages the provider simulators accepted. */
  providerMessages: number;
  /** Repeats anyone would notice: a second provider message for an activity, a second interaction for the same outcome. */
  duplicates: number;
  /** Requests of the workers' Dataverse identity, as the service protection limits count them (a `$batch` is one). */
  dataverseRequests: number;
  /** From the journey run to the last final outcome. */
  durationMs: number;
  /** Activities per second over {@link DemoSummary.durationMs}. */
  activitiesPerSecond: number;
  /** Dead letters per queue and reason. */
  deadLetterReasons: Record<string, Record<string, number>>;
  journeys: JourneyFunnel[];
}

/** The queues whose dead letters count as an activity that did not get through. */
export const DEMO_QUEUES = ['activities', 'outbound', 'interactions'] as const;

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** Reads the Dataverse emulator's `/_emulator/…` endpoints. */
export class DataverseRecords {
  constructor(private readonly url: string) {}

  async #get<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${this.url}${pathAndQuery}`);
    if (res.status !== 200) throw new Error(`the Dataverse emulator answered ${res.status} to GET ${pathAndQuery}: ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Interactions recorded so far, duplicates included (cheap: from the statistics). */
  async interactionCount(): Promise<{ recorded: number; duplicates: number }> {
    const stats = await this.#get<{ interactions: number; interactionDuplicates: number }>('/_emulator/stats');
    return { recorded: stats.interactions, duplicates: stats.interactionDuplicates };
  }

  async interactions(journeyId: string): Promise<Interaction[]> {
    return (await this.#get<{ value: Interaction[] }>(`/_emulator/interactions?journeyId=${encodeURIComponent(journeyId)}`)).value;
  }

  /** Web API requests made with the bearer token `token` (the emulator's caller identity), a `$batch` counted once. */
  async requestsOf(token: string): Promise<{ requests: number; reads: number; writes: number }> {
    const stats = await this.#get<{ traffic: { identities: Record<string, { requests: number; reads: number; writes: number }> } }>('/_emulator/stats');
    return stats.traffic.identities[token] ?? { requests: 0, reads: 0, writes: 0 };
  }

  async runJourney(journeyId: string, contacts: number): Promise<JourneyRunResult> {
    const res = await fetch(`${this.url}/_emulator/journeys/${encodeURIComponent(journeyId)}/run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ count: contacts, generateContacts: true }),
    });
    if (res.status !== 200) throw new Error(`running journey ${journeyId} failed: the Dataverse emulator answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as JourneyRunResult;
  }
}

/** The activities each dead letter names, by queue and reason; an activity is found by any GUID of the message. */
export async function deadLetteredActivities(
  bus: ServiceBusClient,
  activityIds: ReadonlySet<string>,
): Promise<{ activities: Set<string>; reasons: Record<string, Record<string, number>> }> {
  const activities = new Set<string>();
  const reasons: Record<string, Record<string, number>> = {};
  for (const queue of DEMO_QUEUES) {
    const read = await peekDeadLetters(bus, queue);
    if (read.scanned > 0) reasons[queue] = read.byReason;
    for (const letter of read.matching) {
      const text = Buffer.isBuffer(letter.body) ? letter.body.toString('utf8') : JSON.stringify(letter.body ?? null);
      for (const id of [letter.messageId ?? '', ...(text.match(GUID) ?? [])]) {
        const lower = id.toLowerCase();
        if (activityIds.has(lower)) activities.add(lower);
      }
    }
  }
  return { activities, reasons };
}

export interface FunnelInput {
  runs: ReadonlyArray<JourneyRunResult & { name?: string }>;
  interactionsByJourney: ReadonlyMap<string, readonly Interaction[]>;
  deadLettered: ReadonlySet<string>;
  /** The tile's failure response types (anything not `sent` counts as failed only when named here). */
  failureTypes: ReadonlySet<string>;
}

/** Every activity's id (activity id and row id, lower case) → its journey. */
export function activityIndex(runs: readonly JourneyRunResult[]): Map<string, string> {
  const index = new Map<string, string>();
  for (const run of runs) {
    for (const a of run.created) {
      index.set(a.activityId.toLowerCase(), run.journeyId);
      index.set(a.activityRowId.toLowerCase(), run.journeyId);
    }
  }
  return index;
}

/** One funnel per journey run: each activity counted once, by its first final outcome (sent, failed, dead-lettered). */
export function funnels(input: FunnelInput): JourneyFunnel[] {
  return input.runs.map((run) => {
    const interactions = input.interactionsByJourney.get(run.journeyId) ?? [];
    const sent = new Set<string>();
    const failed = new Set<string>();
    for (const i of interactions) {
      const id = (i.activityId ?? '').toLowerCase();
      if (i.responseType === 'sent') sent.add(id);
      else if (i.responseType !== undefined && input.failureTypes.has(i.responseType)) failed.add(id);
    }
    let deadLettered = 0;
    for (const a of run.created) {
      const ids = [a.activityId.toLowerCase(), a.activityRowId.toLowerCase()];
      if (!ids.some((id) => sent.has(id) || failed.has(id)) && ids.some((id) => input.deadLettered.has(id))) deadLettered += 1;
    }
    return {
      journeyId: run.journeyId,
      ...(run.name === undefined ? {} : { name: run.name }),
      activities: run.created.length,
      skippedByCompliance: run.skipped.length,
      sent: sent.size,
      failed: [...failed].filter((id) => !sent.has(id)).length,
      deadLettered,
    };
  });
}

/** Provider messages for the same activity beyond the first (the activity id is every call's idempotency key). */
export function repeatedProviderMessages(sim: Pick<ProviderSimulators, 'messages'>): { messages: number; repeats: number } {
  const seen = new Set<string>();
  let repeats = 0;
  const messages = sim.messages();
  for (const m of messages) {
    if (m.idempotencyKey === undefined) continue;
    if (seen.has(m.idempotencyKey)) repeats += 1;
    else seen.add(m.idempotencyKey);
  }
  return { messages: messages.length, repeats };
}
