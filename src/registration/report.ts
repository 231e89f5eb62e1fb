/** The lines `channel-relay register` prints for a {@link RegistrationReport}. */
import { isDataverseError } from '../errors.js';
import { redactString } from '../log.js';
import { registrationHint, type RegistrationItem, type RegistrationReport } from './register.js';

function verb(item: RegistrationItem, dryRun: boolean): string {
  const columns = item.changed.length === 0 ? '' : `: ${item.changed.join(', ')}`;
  if (item.action === 'unchanged') return 'unchanged';
  if (item.action === 'create') return dryRun ? `would create${columns}` : `created${columns}`;
  return dryRun ? `would update${columns}` : `updated${columns}`;
}

/** One line per row (what was done, or would be done, with the column names), the warnings, then a summary. */
export function formatRegistrationReport(report: RegistrationReport): string {
  const lines: string[] = [];
  if (report.dryRun) lines.push('dry run: reading only, nothing is written');
  for (const item of report.items) {
    const id = item.id === undefined ? '' : ` [${item.id}]`;
    const target = item.name.includes(item.target) ? '' : ` (${item.target})`;
    lines.push(`${item.kind} '${item.name}'${target}${id}: ${verb(item, report.dryRun)}`);
  }
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  const count = (action: RegistrationItem['action']): number => report.items.filter((i) => i.action === action).length;
  const calls = `${report.requests.reads} read${report.requests.reads === 1 ? '' : 's'}, ${report.requests.writes} write${report.requests.writes === 1 ? '' : 's'}`;
  if (!report.changed) lines.push(`nothing to change: the org already has this registration (${calls})`);
  else if (report.dryRun)
    lines.push(
      `would create ${count('create')}, update ${count('update')}, leave ${count('unchanged')} unchanged; nothing was changed (${calls})`,
    );
  else lines.push(`created ${count('create')}, updated ${count('update')}, unchanged ${count('unchanged')} (${calls})`);
  return lines.join('\n');
}

/**
 * The lines for an error `registerRelay` threw: Dataverse's status, code and message, then what to check. Secrets
 * in the message (a connection string echoed back) are redacted.
 */
export function formatRegistrationError(error: unknown): string {
  if (!isDataverseError(error)) return `error: ${redactString(error instanceof Error ? error.message : String(error))}`;
  const u = error.upstream;
  const code = [
    u?.status === undefined ? undefined : `HTTP ${u.status}`,
    u?.code === undefined ? undefined : String(u.code),
  ]
    .filter(Boolean)
    .join(' ');
  const lines = [`Dataverse error ${error.code}${code === '' ? '' : ` (${code})`}: ${redactString(error.message)}`];
  const hint = registrationHint(error);
  if (hint !== undefined) lines.push(`check: ${hint}`);
  return lines.join('\n');
}
