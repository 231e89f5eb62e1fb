/** The funnel as a person reads it at the end of `channel-relay demo`. */
import type { DemoSummary } from './records.js';

const COLUMNS = ['Activities', 'Skipped (compliance)', 'Sent', 'Failed', 'Dead-lettered'] as const;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A table with one row per journey (and a total row when there are several), then throughput and Dataverse use. */
export function formatFunnel(summary: DemoSummary): string {
  const rows = summary.journeys.map((j) => [j.name ?? j.journeyId, j.activities, j.skippedByCompliance, j.sent, j.failed, j.deadLettered] as const);
  if (rows.length > 1) rows.push(['All journeys', summary.activities, summary.skippedByCompliance, summary.sent, summary.failed, summary.deadLettered]);
  const header = ['Journey', ...COLUMNS];
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const perActivity = summary.activities > 0 ? (summary.dataverseRequests / summary.activities).toFixed(3) : '0';
  const reasons = Object.entries(summary.deadLetterReasons).flatMap(([queue, byReason]) => Object.entries(byReason).map(([reason, n]) => `${queue}: ${reason} × ${n}`));
  return [
    '',
    line(cells[0] ?? []),
    ...cells.slice(1).map(line),
    '',
    ...(summary.optedOutAfterCreation > 0
      ? [`${summary.optedOutAfterCreation} of the skipped contacts opted out after their activity was created: the relay re-checked and sent them nothing.`, '']
      : []),
    `Provider messages: ${summary.providerMessages} (duplicates: ${summary.duplicates})`,
    `Throughput: ${summary.activities} activities in ${seconds(summary.durationMs)} (${summary.activitiesPerSecond} per second)`,
    `Dataverse requests by the workers: ${summary.dataverseRequests} (${perActivity} per activity; a $batch counts once)`,
    ...(reasons.length > 0 ? [`Dead letters: ${reasons.join(', ')} (channel-relay dead-letters list <queue> shows them)`] : []),
  ].join('\n');
}
