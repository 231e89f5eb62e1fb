/**
 * The demo's figures, read from the emulators' own records, never from the workers' counters: the Dataverse
 * emulator's interactions and request statistics, the provider simulators' message log, and the dead-letter queues
 * of the Service Bus emulator.
 */
import type { ServiceBusClient } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import type { ConversationRecord } from '../emulators/directline/index.js';
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
  /**
   * Contacts skipped because their compliance field was set: by the journey (no activity created), or by the relay
   * (the contact opted out after the activity was created: the activity gets no message).
   */
  skippedByCompliance: number;
  /** Of {@link JourneyFunnel.skippedByCompliance}: activities whose contact opted out after creation. */
  optedOutAfterCreation: number;
  /** Activities with a `sent` interaction. */
  sent: number;
  /** Activities with a failure interaction (the provider refused the recipient). */
  failed: number;
  /** Activities whose event, message or interaction is in a dead-letter queue. */
  deadLettered: number;
  /** With the feedback path: what came back, from the interactions and the contacts in Dataverse. */
  feedback?: FeedbackFunnel;
}

/** What came back for a journey's messages. */
export interface FeedbackFunnel {
  /** Activities with a delivery report. */
  delivered: number;
  /** Activities read or with a tracked link clicked (one `opened` each). */
  opened: number;
  /** Keyword replies recorded (the tile's custom response type with a TriggerKeyword). */
  keywordReplies: number;
  /** Contacts of the journey who replied with an opt-out word (their compliance field is now set). */
  optOuts: number;
}

/** The response types that mean each kind of feedback, from the channels. */
export interface FeedbackTypes {
  delivered: ReadonlySet<string>;
  opened: ReadonlySet<string>;
  keyword: ReadonlySet<string>;
}

/**
 * Feedback interactions of these activities (row ids, lower case): distinct activities delivered and opened, every
 * keyword reply. An interaction is the row's that the emulator resolved it to (`activityRowId`): `activityId` is the
 * tile's id, shared by the rows of a journey run.
 */
export function feedbackCounts(
  interactions: Iterable<Interaction>,
  activityRowIds: ReadonlySet<string>,
  types: FeedbackTypes,
): Omit<FeedbackFunnel, 'optOuts'> {
  const delivered = new Set<string>();
  const opened = new Set<string>();
  let keywordReplies = 0;
  for (const i of interactions) {
    const id = i.activityRowId?.toLowerCase();
    if (id === undefined || !activityRowIds.has(id) || i.responseType === undefined || i.duplicateOf !== undefined)
      continue;
    if (types.delivered.has(i.responseType)) delivered.add(id);
    else if (types.opened.has(i.responseType)) opened.add(id);
    else if (types.keyword.has(i.responseType)) keywordReplies += 1;
  }
  return { delivered: delivered.size, opened: opened.size, keywordReplies };
}

/** An identity's Web API requests as the Dataverse emulator counts them (`/_emulator/stats` `traffic.identities`). */
export interface IdentityTraffic {
  /** A `$batch` once. */
  requests: number;
  reads: number;
  writes: number;
  /** By method and entity set or action (`GET contacts`, `PATCH contacts`, `$batch`). */
  kinds: Record<string, number>;
}

/**
 * The callbacks service's Dataverse figures of a run: its identity's requests (a `$batch` once), the writes among them
 * (opt-out and opt-in PATCHes), the requests by kind and, with the feedback recorded, the requests per feedback event.
 */
export function callbacksFigures(
  traffic: Pick<IdentityTraffic, 'requests' | 'writes'> & { kinds?: Record<string, number> },
  feedback: FeedbackFunnel | undefined,
): Pick<
  DemoSummary,
  | 'callbacksDataverseRequests'
  | 'callbacksDataverseWrites'
  | 'callbacksDataverseRequestKinds'
  | 'feedbackEvents'
  | 'callbacksRequestsPerEvent'
> {
  const events =
    feedback === undefined ? 0 : feedback.delivered + feedback.opened + feedback.keywordReplies + feedback.optOuts;
  return {
    callbacksDataverseRequests: traffic.requests,
    callbacksDataverseWrites: traffic.writes,
    ...(traffic.kinds === undefined || Object.keys(traffic.kinds).length === 0
      ? {}
      : { callbacksDataverseRequestKinds: traffic.kinds }),
    ...(events === 0
      ? {}
      : { feedbackEvents: events, callbacksRequestsPerEvent: Math.round((traffic.requests / events) * 1000) / 1000 }),
  };
}

/** What `--summary-json` writes: the funnel's figures over every journey, and the run's. */
export interface DemoSummary extends Omit<JourneyFunnel, 'journeyId' | 'name'> {
  /** Messages the provider simulators accepted. */
  providerMessages: number;
  /** Repeats anyone would notice: a second provider message for an activity, a second interaction for the same outcome. */
  duplicates: number;
  /** Requests of the send path's Dataverse identity, as the service protection limits count them (a `$batch` is one). */
  dataverseRequests: number;
  /** With the feedback path: requests of the callbacks service's identity (contacts and activities looked up, opt-outs). */
  callbacksDataverseRequests?: number;
  /** With the feedback path: of those, the PATCHes of opt-outs and opt-ins (the rest are reads). */
  callbacksDataverseWrites?: number;
  /** With the feedback path: those requests by method and entity set (`GET contacts`, `PATCH contacts`, `$batch`). */
  callbacksDataverseRequestKinds?: Record<string, number>;
  /** With the feedback path: the feedback events recorded (delivered + opened + keyword replies + opt-outs). */
  feedbackEvents?: number;
  /** With the feedback path: `callbacksDataverseRequests` per feedback event, 3 decimals (#15's goal: at most 0.05). */
  callbacksRequestsPerEvent?: number;
  /** From the journey run to the last final outcome. */
  durationMs: number;
  /** Activities per second over {@link DemoSummary.durationMs}. */
  activitiesPerSecond: number;
  /** Dead letters per queue and reason. */
  deadLetterReasons: Record<string, Record<string, number>>;
  journeys: JourneyFunnel[];
  /** With simulated customers: their conversations. */
  conversations?: ConversationFigures;
}

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** Every read of the emulators' records ends within this, ms. */
const RECORDS_TIMEOUT_MS = 30_000;

/** Contact ids per In filter. */
const CONTACTS_PER_READ = 40;

/** Reads the Dataverse emulator's `/_emulator/…` endpoints, and contacts through the Web API as an administrator. */
export class DataverseRecords {
  constructor(
    private readonly url: string,
    private readonly admin: DynamicsWebApi,
  ) {}

  async #get<T>(pathAndQuery: string): Promise<T> {
    const res = await fetch(`${this.url}${pathAndQuery}`, { signal: AbortSignal.timeout(RECORDS_TIMEOUT_MS) });
    if (res.status !== 200)
      throw new Error(`the Dataverse emulator answered ${res.status} to GET ${pathAndQuery}: ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Interactions recorded so far, duplicates included (cheap: from the statistics). */
  async interactionCount(): Promise<{ recorded: number; duplicates: number }> {
    const stats = await this.#get<{ interactions: number; interactionDuplicates: number }>('/_emulator/stats');
    return { recorded: stats.interactions, duplicates: stats.interactionDuplicates };
  }

  async interactions(journeyId: string): Promise<Interaction[]> {
    return (
      await this.#get<{ value: Interaction[] }>(`/_emulator/interactions?journeyId=${encodeURIComponent(journeyId)}`)
    ).value;
  }

  /** Web API requests made with the bearer token `token` (the emulator's caller identity), a `$batch` counted once. */
  async requestsOf(token: string): Promise<IdentityTraffic> {
    const stats = await this.#get<{ traffic: { identities: Record<string, IdentityTraffic> } }>('/_emulator/stats');
    return stats.traffic.identities[token] ?? { requests: 0, reads: 0, writes: 0, kinds: {} };
  }

  async runJourney(journeyId: string, contacts: number): Promise<JourneyRunResult> {
    const res = await fetch(`${this.url}/_emulator/journeys/${encodeURIComponent(journeyId)}/run`, {
      method: 'POST',
      signal: AbortSignal.timeout(RECORDS_TIMEOUT_MS * 4),
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ count: contacts, generateContacts: true }),
    });
    if (res.status !== 200)
      throw new Error(
        `running journey ${journeyId} failed: the Dataverse emulator answered ${res.status}: ${await res.text()}`,
      );
    return (await res.json()) as JourneyRunResult;
  }

  /** Those of `contactIds` whose compliance field `field` is set now. */
  async optedOut(contactIds: readonly string[], field: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < contactIds.length; i += CONTACTS_PER_READ) {
      const ids = contactIds.slice(i, i + CONTACTS_PER_READ);
      const filter = `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=[${ids.map((id) => `'${id}'`).join(',')}])`;
      const rows = (await this.admin.retrieveMultiple({ collection: 'contacts', select: ['contactid', field], filter }))
        .value as Array<Record<string, unknown>>;
      for (const row of rows) if (row[field] === true) out.add(String(row['contactid']).toLowerCase());
    }
    return out;
  }

  /** Sets `field` on these contacts, in one `$batch`: contacts opting out after their activity was created. */
  async optOut(contactIds: readonly string[], field: string): Promise<void> {
    if (contactIds.length === 0) return;
    this.admin.startBatch();
    for (const id of contactIds) void this.admin.update({ collection: 'contacts', key: id, data: { [field]: true } });
    const results = await this.admin.executeBatch({ inChangeSet: true });
    const failed = results.find((r) => r instanceof Error);
    if (failed !== undefined) throw new Error(`opting ${contactIds.length} contacts out failed: ${String(failed)}`);
  }
}

/**
 * The activities each dead letter names, by queue and reason; an activity is found by any GUID of the message that is
 * one of `activityRowIds` (its message id, or its row id in the body).
 */
export async function deadLetteredActivities(
  bus: ServiceBusClient,
  queues: readonly string[],
  activityRowIds: ReadonlySet<string>,
): Promise<{ activities: Set<string>; reasons: Record<string, Record<string, number>> }> {
  const activities = new Set<string>();
  const reasons: Record<string, Record<string, number>> = {};
  for (const queue of queues) {
    const read = await peekDeadLetters(bus, queue);
    if (read.scanned > 0) reasons[queue] = read.byReason;
    for (const letter of read.matching) {
      const text = Buffer.isBuffer(letter.body) ? letter.body.toString('utf8') : JSON.stringify(letter.body ?? null);
      for (const id of [letter.messageId ?? '', ...(text.match(GUID) ?? [])]) {
        const lower = id.toLowerCase();
        if (activityRowIds.has(lower)) activities.add(lower);
      }
    }
  }
  return { activities, reasons };
}

/**
 * Every activity's row id (lower case) → its journey. Not `msdyncrm_activityid`: the rows of a run share it (the
 * tile's id), so a dead letter naming it would name every contact of the tile.
 */
export function activityIndex(runs: readonly JourneyRunResult[]): Map<string, string> {
  const index = new Map<string, string>();
  for (const run of runs) for (const a of run.created) index.set(a.activityRowId.toLowerCase(), run.journeyId);
  return index;
}

/** Activity row ids (lower case) with each final outcome, as read from the records. */
export interface Outcomes {
  sent: ReadonlySet<string>;
  failed: ReadonlySet<string>;
  deadLettered: ReadonlySet<string>;
  /** Activities without another outcome whose contact's compliance field is set now. */
  optedOut: ReadonlySet<string>;
}

/** The activity row ids with a `sent` interaction, and with one of `failureTypes`, among `interactions`. */
export function interactionOutcomes(
  interactions: Iterable<Interaction>,
  failureTypes: ReadonlySet<string>,
): { sent: Set<string>; failed: Set<string> } {
  const sent = new Set<string>();
  const failed = new Set<string>();
  for (const i of interactions) {
    if (i.activityRowId === undefined) continue;
    const id = i.activityRowId.toLowerCase();
    if (i.responseType === 'sent') sent.add(id);
    else if (i.responseType !== undefined && failureTypes.has(i.responseType)) failed.add(id);
  }
  return { sent, failed };
}

type Outcome = 'sent' | 'failed' | 'deadLettered' | 'optedOut';

/** An activity's outcome: sent over failed over dead-lettered over opted out. */
function outcomeOf(a: JourneyRunResult['created'][number], o: Outcomes): Outcome | undefined {
  const id = a.activityRowId.toLowerCase();
  if (o.sent.has(id)) return 'sent';
  if (o.failed.has(id)) return 'failed';
  if (o.deadLettered.has(id)) return 'deadLettered';
  if (o.optedOut.has(id)) return 'optedOut';
  return undefined;
}

/** The activities of these runs that have no outcome yet. */
export function withoutOutcome(
  runs: readonly JourneyRunResult[],
  o: Outcomes,
): Array<{ journeyId: string; activityRowId: string; contactId: string }> {
  return runs.flatMap((r) =>
    r.created
      .filter((a) => outcomeOf(a, o) === undefined)
      .map((a) => ({ journeyId: r.journeyId, activityRowId: a.activityRowId.toLowerCase(), contactId: a.contactId })),
  );
}

/** One funnel per journey run: each of its activities counted once, by its outcome. */
export function funnels(runs: ReadonlyArray<JourneyRunResult & { name?: string }>, o: Outcomes): JourneyFunnel[] {
  return runs.map((run) => {
    const counts: Record<Outcome, number> = { sent: 0, failed: 0, deadLettered: 0, optedOut: 0 };
    for (const a of run.created) {
      const outcome = outcomeOf(a, o);
      if (outcome !== undefined) counts[outcome] += 1;
    }
    return {
      journeyId: run.journeyId,
      ...(run.name === undefined ? {} : { name: run.name }),
      activities: run.created.length,
      skippedByCompliance: run.skipped.length + counts.optedOut,
      optedOutAfterCreation: counts.optedOut,
      sent: counts.sent,
      failed: counts.failed,
      deadLettered: counts.deadLettered,
    };
  });
}

/** Provider messages for the same activity beyond the first (the activity row id is every call's idempotency key). */
export function repeatedProviderMessages(sim: Pick<ProviderSimulators, 'messages'>): {
  messages: number;
  repeats: number;
} {
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

/** The conversations part of the demo, from the two emulators' records. */
export interface ConversationFigures {
  /** Simulated customers who wrote. */
  customers: number;
  /** Direct Line conversations the agents saw. */
  started: number;
  /** Customers with more than one conversation: one was started over (none while the relay keeps its state). */
  startedOver: number;
  /** Conversations a customer wrote to again after its first message (the relay found it in its session state). */
  resumed: number;
  /** Customer messages that reached the agents (each counted once). */
  toAgents: number;
  /** Messages from the bridged number that reached the customers (greetings, agents' replies, surveys). */
  toCustomers: number;
  /** Customers' files that reached the agents, and those that did not. */
  attachmentsAccepted: number;
  attachmentsRefused: number;
  /** Conversations the agents ended (`endOfConversation`). */
  ended: number;
  /** Customers who received the survey link. */
  surveysSent: number;
  /** A customer message posted twice to the agents, or an agent message delivered twice to a customer. */
  duplicates: number;
}

function countBy(items: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

/** The figures of the customers' conversations: what they wrote and received (provider simulators) against what the agents saw and said (Direct Line emulator). */
export function conversationFigures(
  sim: Pick<ProviderSimulators, 'customers'>,
  dl: { conversations(): ConversationRecord[] },
): ConversationFigures {
  const customers = sim.customers();
  const records = dl.conversations();
  const byPhone = new Map<string, ConversationRecord[]>();
  for (const r of records) {
    const phone = (r.routing?.customerContext as { phone?: unknown } | undefined)?.phone;
    if (typeof phone === 'string') byPhone.set(phone, [...(byPhone.get(phone) ?? []), r]);
  }
  const figures: ConversationFigures = {
    customers: customers.length,
    started: records.length,
    startedOver: 0,
    resumed: 0,
    toAgents: 0,
    toCustomers: 0,
    attachmentsAccepted: 0,
    attachmentsRefused: 0,
    ended: records.filter((r) => r.ended).length,
    surveysSent: 0,
    duplicates: 0,
  };
  for (const c of customers) {
    const mine = byPhone.get(c.phone) ?? [];
    if (mine.length > 1) figures.startedOver += 1;
    const posted = mine.flatMap((r) => r.activities.filter((a) => a.direction === 'customer' && a.type === 'message'));
    const agents = mine.flatMap((r) => r.activities.filter((a) => a.direction === 'agent' && a.type === 'message'));
    const texts = new Set(posted.map((a) => a.text));
    figures.toAgents += texts.size;
    // An agent message counts as repeated when the customer received its text more often than the agents said it
    // (the relay's own messages, such as an attachment refusal, are no agent's).
    const said = countBy(agents.map((a) => a.text ?? ''));
    const got = countBy(c.received.map((m) => m.text));
    figures.duplicates += posted.length - texts.size;
    for (const [text, n] of said) figures.duplicates += Math.max(0, (got.get(text) ?? 0) - n);
    figures.resumed += mine.filter(
      (r) => r.activities.filter((a) => a.direction === 'customer' && a.type === 'message').length > 1,
    ).length;
    figures.toCustomers += c.received.length;
    const sent = c.written.reduce((n, w) => n + w.files, 0);
    const accepted = posted.reduce((n, a) => n + (a.attachments?.length ?? 0), 0);
    figures.attachmentsAccepted += accepted;
    figures.attachmentsRefused += Math.max(0, sent - accepted);
    const surveys = mine.flatMap((r) => (r.surveyUrl === undefined ? [] : [r.surveyUrl]));
    if (c.received.some((m) => surveys.some((url) => m.text.includes(url)))) figures.surveysSent += 1;
  }
  return figures;
}
