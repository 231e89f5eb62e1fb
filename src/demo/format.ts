/** The funnel as a person reads it at the end of `channel-relay demo`. */
import type { ConversationFigures, DemoSummary, JourneyFunnel } from './records.js';

const COLUMNS = ['Activities', 'Skipped (compliance)', 'Sent', 'Failed', 'Dead-lettered'] as const;
const FEEDBACK_COLUMNS = ['Delivered', 'Opened', 'Keyword replies', 'Opt-outs'] as const;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A table with one row per journey (and a total row when there are several), then throughput and Dataverse use. */
export function formatFunnel(summary: DemoSummary): string {
  const withFeedback = summary.feedback !== undefined;
  const row = (name: string, f: Omit<JourneyFunnel, 'journeyId'>): string[] => [
    name,
    ...[f.activities, f.skippedByCompliance, f.sent, f.failed, f.deadLettered].map(String),
    ...(withFeedback
      ? [f.feedback?.delivered, f.feedback?.opened, f.feedback?.keywordReplies, f.feedback?.optOuts].map((n) =>
          String(n ?? 0),
        )
      : []),
  ];
  const rows = summary.journeys.map((j) => row(j.name ?? j.journeyId, j));
  if (rows.length > 1)
    rows.push(
      row('All journeys', {
        ...summary,
        name: 'All journeys',
        ...(summary.feedback === undefined ? {} : { feedback: summary.feedback }),
      }),
    );
  const header = ['Journey', ...COLUMNS, ...(withFeedback ? FEEDBACK_COLUMNS : [])];
  const cells = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const perActivity = summary.activities > 0 ? (summary.dataverseRequests / summary.activities).toFixed(3) : '0';
  const reasons = Object.entries(summary.deadLetterReasons).flatMap(([queue, byReason]) =>
    Object.entries(byReason).map(([reason, n]) => `${queue}: ${reason} × ${n}`),
  );
  return [
    '',
    ...cells.map(line),
    '',
    ...(summary.optedOutAfterCreation > 0
      ? [
          `${summary.optedOutAfterCreation} of the skipped contacts opted out after their activity was created: the relay re-checked and sent them nothing.`,
          '',
        ]
      : []),
    `Provider messages: ${summary.providerMessages} (duplicates: ${summary.duplicates})`,
    `Throughput: ${summary.activities} activities in ${seconds(summary.durationMs)} (${summary.activitiesPerSecond} per second)`,
    `Dataverse requests by the send path: ${summary.dataverseRequests} (${perActivity} per activity; a $batch counts once)`,
    ...(summary.callbacksDataverseRequests === undefined ? [] : [formatCallbacksRequests(summary)]),
    ...(summary.conversations === undefined ? [] : [formatConversations(summary.conversations)]),
    ...(reasons.length > 0
      ? [`Dead letters: ${reasons.join(', ')} (channel-relay dead-letters list <queue> shows them)`]
      : []),
  ].join('\n');
}

/**
 * The callbacks service's Dataverse line: its requests, per feedback event when there were events, and what they were
 * (the PATCHes of opt-outs and opt-ins; the rest reads: the contacts of opt-outs, opt-ins and keyword replies the reply
 * cache did not know, activity rows), by kind when the figures have them, most first.
 */
export function formatCallbacksRequests(
  summary: Pick<
    DemoSummary,
    | 'callbacksDataverseRequests'
    | 'callbacksDataverseWrites'
    | 'callbacksDataverseRequestKinds'
    | 'feedbackEvents'
    | 'callbacksRequestsPerEvent'
  >,
): string {
  const requests = summary.callbacksDataverseRequests ?? 0;
  const writes = summary.callbacksDataverseWrites ?? 0;
  const perEvent =
    summary.feedbackEvents === undefined
      ? ''
      : ` for ${summary.feedbackEvents} feedback events (${(summary.callbacksRequestsPerEvent ?? 0).toFixed(3)} per event)`;
  const kinds = Object.entries(summary.callbacksDataverseRequestKinds ?? {})
    .sort(([a, m], [b, n]) => n - m || a.localeCompare(b))
    .map(([kind, n]) => `${n} ${kind}`);
  const what = kinds.length === 0 ? '' : ` (by kind: ${kinds.join(', ')})`;
  return `Dataverse requests by the callbacks service: ${requests}${perEvent}: ${writes} opt-out/opt-in writes and ${requests - writes} reads${what}`;
}

/** The conversations line: every figure from the emulators' records. */
export function formatConversations(c: ConversationFigures): string {
  return [
    `Conversations: ${c.customers} customers, ${c.started} started (${c.startedOver} started over), ${c.resumed} resumed,`,
    `${c.toAgents} messages to the agents and ${c.toCustomers} to the customers,`,
    `attachments ${c.attachmentsAccepted} accepted / ${c.attachmentsRefused} refused,`,
    `${c.ended} ended, ${c.surveysSent} surveys sent (duplicates: ${c.duplicates})`,
  ].join(' ');
}
