/**
 * `channel-relay dead-letters list|replay <queue>`: an operator's view of a queue's dead letters (reason, description,
 * a short summary of the body without personal data) and their replay to the queue they came from.
 * Exit codes: 0 ok, 1 a Service Bus failure, 2 bad arguments or configuration (every problem named).
 */
import { formatIsoDuration, parseIsoDuration } from '../../duration.js';
import type { Command } from 'commander';
import type { ServiceBusClient } from '@azure/service-bus';
import type { RelayConfig } from '../../config/index.js';
import { decodeRemoteContext } from '../../dataverse/index.js';
import { errorMessage } from '../../errors.js';
import { redact, redactString } from '../../log.js';
import { exitCodeOf } from '../../lifecycle.js';
import {
  DISPATCH_DEAD_LETTER_REASONS,
  outboundReplay,
  parseInteractionMessage,
  parseOutboundMessage,
  type SendContext,
} from '../../pipeline/index.js';
import {
  NO_REASON,
  peekDeadLetters,
  replayDeadLetters,
  serviceBusClientFromConfig,
  type DeadLetter,
  type DeadLetterFilter,
  type ReplayDeadLettersResult,
} from '../../servicebus/index.js';
import { loadCommandConfig, reportProblems } from '../command-config.js';
import type { CliIo } from '../io.js';

type QueueRole = keyof RelayConfig['serviceBus']['queues'];
const ROLES: readonly QueueRole[] = ['activities', 'outbound', 'interactions'];
/** The relay's queues that require duplicate detection (config/servicebus-emulator.json, docs/architecture.md). */
const DUPLICATE_DETECTING: readonly QueueRole[] = ['outbound', 'interactions'];
const DEFAULT_LIST_LIMIT = 50;
/**
 * The duplicate-detection window replay assumes: the sample configuration's DuplicateDetectionHistoryTimeWindow
 * (config/servicebus-emulator.json). The SDK cannot read a queue's window (only the administration client can), so
 * an operator whose queue has another one states it with --duplicate-window.
 */
const DEFAULT_DUPLICATE_WINDOW_MS = 10 * 60_000;

const DUPLICATE_NOTE =
  "outbound and interactions require duplicate detection (a 10-minute window in config/servicebus-emulator.json): the broker drops, without an error, a replayed message whose id the queue saw within its window, and its dead letter would then be completed and lost. So replay leaves in the dead-letter queue every dead letter enqueued less than --duplicate-window ago (milliseconds or ISO 8601, default PT10M: the SDK cannot read a queue's window, only the administration client can, so give yours if it differs) and shows when each becomes replayable. --force replays them anyway, accepting that those the queue still remembers are lost. On activities, which has no duplicate detection, --duplicate-window applies only when given.";
const INTERACTION_NOT_SENT_NOTE = `${DISPATCH_DEAD_LETTER_REASONS.interactionNotSent} dead letters of outbound are never replayed to outbound: the provider already took the message; send the interaction written in the description to interactions instead.`;
const UNCONFIRMED_NOTE = `${DISPATCH_DEAD_LETTER_REASONS.unconfirmed} dead letters of outbound may have been sent (the provider answered 2xx in a shape the relay could not read): they are replayed only when asked for by name (--reason ${DISPATCH_DEAD_LETTER_REASONS.unconfirmed}), after checking with the provider that they were not sent.`;

/** `text` broken into lines of at most `width` characters, at spaces. */
function wrap(text: string, width = 116): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...lines, line].join('\n');
}

const HELP = `
Usage:
  channel-relay dead-letters list <queue> [--limit 50] [--reason CODE] [--json] [--config FILE]
  channel-relay dead-letters replay <queue> [--reason CODE] [--message-id ID...] [--limit N] [--duplicate-window PT10M]
                                    [--force] [--dry-run] [--config FILE]

<queue> is a configured queue name or one of activities, outbound, interactions. The connection comes from the same
configuration as the workers: SERVICEBUS_CONNECTION_STRING or SERVICEBUS_NAMESPACE (with DefaultAzureCredential),
queue names from serviceBus.queues (CHANNEL_RELAY_CONFIG or --config FILE).

list peeks (never removes): per message its sequence number, enqueued time, message id, delivery count, reason,
description and a summary of the body (phone numbers masked), then a count per reason.
replay sends each matching dead letter back to its queue (same body, content type, application properties, message
id, session id, subject), completes it only after the send succeeded, and leaves every other dead letter in place.
--dry-run lists what would be replayed and what would be skipped (and when it becomes replayable), changing nothing.
${wrap(`Note: ${DUPLICATE_NOTE}`)}
${wrap(`Note: ${INTERACTION_NOT_SENT_NOTE}`)}

Exit codes: 0 ok, 1 a Service Bus failure, 2 bad arguments or configuration.`;

interface CommonOptions {
  config?: string;
  reason?: string;
  limit?: string;
}
interface ListOptions extends CommonOptions {
  json?: boolean;
}
interface ReplayOptions extends CommonOptions {
  messageId?: string[];
  dryRun?: boolean;
  duplicateWindow?: string;
  force?: boolean;
}

export function registerDeadLettersCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const group = program
    .command('dead-letters')
    .description("list a queue's dead letters (reason, description, body summary) and replay them")
    .addHelpText('after', HELP);
  group
    .command('list')
    .description("peek a queue's dead letters (nothing is removed) and count them per reason")
    .argument('<queue>', 'a configured queue name or activities|outbound|interactions')
    .option('--limit <n>', 'show at most this many', String(DEFAULT_LIST_LIMIT))
    .option('--reason <code>', 'only dead letters with this reason')
    .option('--json', 'JSON lines: one per dead letter, then one summary line')
    .option('--config <file>', 'a configuration file merged over the embedded defaults')
    .addHelpText('after', HELP)
    .action(async (queue: string, options: ListOptions) => setExitCode(await list(io, queue, options)));
  group
    .command('replay')
    .description('send dead letters back to their queue and remove them from the dead-letter queue')
    .argument('<queue>', 'a configured queue name or activities|outbound|interactions')
    .option('--reason <code>', 'only dead letters with this reason')
    .option(
      '--message-id <id...>',
      "only dead letters with these message ids (outbound: the activity row id or real-time RequestId; interactions: that id + ':<response type>')",
    )
    .option('--limit <n>', 'replay at most this many (the oldest first)')
    .option(
      '--duplicate-window <duration>',
      "the queue's duplicate-detection window, in milliseconds or ISO 8601 (PT10M): dead letters enqueued less than this ago are skipped (default PT10M on outbound and interactions; the SDK cannot read a queue's window)",
    )
    .option(
      '--force',
      'replay dead letters within the duplicate-detection window too (the broker drops those whose message id the queue still remembers: they are lost)',
    )
    .option('--dry-run', 'only list what would be replayed and what would be skipped')
    .option('--config <file>', 'a configuration file merged over the embedded defaults')
    .addHelpText('after', HELP)
    .action(async (queue: string, options: ReplayOptions) => setExitCode(await replay(io, queue, options)));
}

interface Target {
  config: RelayConfig;
  queue: string;
  role: QueueRole;
  limit: number | undefined;
}

/** The duplicate-detection window replay applies, with the time it is measured against. */
interface Window {
  ms: number;
  now: Date;
  /** --force: nothing is skipped. */
  force: boolean;
}

/** Milliseconds of `text` (an integer of milliseconds or an ISO 8601 duration such as PT10M), undefined when neither. */
function parseDuplicateWindow(text: string): number | undefined {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : parseIsoDuration(t.toUpperCase());
}

/** Time left for people, rounded up to the second: `9 min 58 s`, `1 h 0 min 5 s`. */
function timeLeft(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const parts = [...(h ? [`${h} h`] : []), ...(h || m ? [`${m} min`] : []), `${total % 60} s`];
  return parts.join(' ');
}

/** Loads the configuration and checks the arguments; prints every problem and returns undefined when there are any. */
function resolve(
  io: CliIo,
  command: string,
  queueArg: string,
  options: CommonOptions,
  extra: string[] = [],
): Target | undefined {
  const { config, problems } = loadCommandConfig(io, { file: options.config, serviceBus: true });
  let limit: number | undefined;
  if (options.limit !== undefined) {
    limit = /^\d+$/.test(options.limit.trim()) ? Number(options.limit) : Number.NaN;
    if (!(limit >= 1)) problems.push(`--limit: expected an integer of at least 1, found '${options.limit}'`);
  }
  if (options.reason !== undefined && options.reason.trim() === '')
    problems.push('--reason: expected a reason code such as EventUnknownChannel, found an empty value');
  problems.push(...extra);
  let role: QueueRole | undefined;
  if (config) {
    const queues = config.serviceBus.queues;
    role = ROLES.find((r) => queues[r] === queueArg) ?? ROLES.find((r) => r === queueArg);
    if (role === undefined) {
      const known = ROLES.map((r) => (queues[r] === r ? r : `${queues[r]} (${r})`)).join(', ');
      problems.push(`<queue>: expected one of the configured queues ${known}, found '${queueArg}'`);
    }
  }
  if (problems.length > 0 || config === undefined || role === undefined) {
    reportProblems(io, command, problems);
    return undefined;
  }
  return { config, queue: config.serviceBus.queues[role], role, limit };
}

async function withClient(
  io: CliIo,
  command: string,
  config: RelayConfig,
  run: (client: ServiceBusClient) => Promise<number>,
): Promise<number> {
  let client: ServiceBusClient | undefined;
  try {
    client = serviceBusClientFromConfig(config);
    return await run(client);
  } catch (err) {
    io.err(`${command}: Service Bus failed: ${redactString(errorMessage(err))}`);
    return exitCodeOf(err);
  } finally {
    await client?.close().catch(() => undefined);
  }
}

async function list(io: CliIo, queueArg: string, options: ListOptions): Promise<number> {
  const command = 'dead-letters list';
  const target = resolve(io, command, queueArg, options);
  if (!target) return 2;
  const filter: DeadLetterFilter = options.reason === undefined ? {} : { reason: options.reason };
  const limit = target.limit ?? DEFAULT_LIST_LIMIT;
  return withClient(io, command, target.config, async (client) => {
    const peeked = await peekDeadLetters(client, target.queue, { filter, limit });
    for (const d of peeked.matching) {
      if (options.json)
        io.out(JSON.stringify({ type: 'deadLetter', queue: target.queue, ...deadLetterJson(d, target.role) }));
      else io.out(deadLetterBlock(d, target.role).join('\n'));
    }
    const counts = {
      scanned: peeked.scanned,
      matched: peeked.matched,
      shown: peeked.matching.length,
      byReason: peeked.byReason,
    };
    if (options.json) {
      io.out(JSON.stringify({ type: 'summary', queue: target.queue, ...counts }));
      return 0;
    }
    const which = options.reason === undefined ? '' : ` with reason ${options.reason}`;
    io.out(
      `${target.queue}: ${peeked.scanned} dead letter${plural(peeked.scanned)}; ${peeked.matched}${which} matched, ${peeked.matching.length} shown`,
    );
    for (const [reason, n] of Object.entries(peeked.byReason).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])))
      io.out(`  ${reason}: ${n}`);
    return 0;
  });
}

async function replay(io: CliIo, queueArg: string, options: ReplayOptions): Promise<number> {
  const command = 'dead-letters replay';
  const ids = options.messageId ?? [];
  const extra = ids.some((id) => id.trim() === '') ? ['--message-id: expected message ids, found an empty value'] : [];
  const givenWindow = options.duplicateWindow === undefined ? undefined : parseDuplicateWindow(options.duplicateWindow);
  if (options.duplicateWindow !== undefined && givenWindow === undefined) {
    extra.push(
      `--duplicate-window: expected milliseconds or an ISO 8601 duration such as PT10M, found '${options.duplicateWindow}'`,
    );
  }
  const target = resolve(io, command, queueArg, options, extra);
  if (!target) return 2;
  // outbound and interactions detect duplicates; activities only when the operator says its queue does.
  const window: Window | undefined =
    DUPLICATE_DETECTING.includes(target.role) || givenWindow !== undefined
      ? { ms: givenWindow ?? DEFAULT_DUPLICATE_WINDOW_MS, now: new Date(), force: options.force === true }
      : undefined;
  // Never a second send by accident: dispatch's policy keeps what the provider took (or may have taken).
  const policy = target.role === 'outbound' ? outboundReplay(options.reason) : undefined;
  if (policy?.allowed === false) {
    io.err(`${command}: 1 problem:`);
    io.err(`  - --reason: ${INTERACTION_NOT_SENT_NOTE}`);
    return 2;
  }
  const filter: DeadLetterFilter = {
    ...(options.reason === undefined ? {} : { reason: options.reason }),
    ...(ids.length === 0 ? {} : { messageIds: ids }),
    ...(policy === undefined ? {} : { excludeReasons: policy.excludeReasons }),
  };
  return withClient(io, command, target.config, async (client) => {
    const result = await replayDeadLetters(client, target.queue, {
      filter,
      ...(target.limit === undefined ? {} : { limit: target.limit }),
      dryRun: options.dryRun === true,
      ...(window === undefined || window.force ? {} : { duplicateWindowMs: window.ms, now: window.now }),
      onReplayed: ({ done, total, deadLetter }) =>
        io.out(`replayed ${done} of ${total}: ${deadLetterLine(deadLetter, target.role)}`),
    });
    return options.dryRun
      ? dryRunReport(io, target, window, result)
      : replayReport(io, command, target, window, result);
  });
}

function dryRunReport(io: CliIo, target: Target, window: Window | undefined, result: ReplayDeadLettersResult): number {
  io.out(
    `dry run: would replay ${result.planned.length} of ${result.scanned} dead letter${plural(result.scanned)} to ${target.queue}; nothing was changed`,
  );
  for (const d of result.planned) io.out(`  ${deadLetterLine(d, target.role)}`);
  duplicateReport(io, target, window, result, true);
  notes(io, target, result);
  return 0;
}

/** What the duplicate-detection window did: the dead letters skipped and when each becomes replayable, or --force's risk. */
function duplicateReport(
  io: CliIo,
  target: Target,
  window: Window | undefined,
  result: ReplayDeadLettersResult,
  dryRun: boolean,
): void {
  if (window === undefined) return;
  const span = `less than ${formatIsoDuration(window.ms)} (--duplicate-window) ago`;
  if (window.force) {
    const now = window.now.getTime();
    const risky = (dryRun ? result.planned : result.replayed).filter(
      (d) => d.enqueuedTimeUtc === undefined || d.enqueuedTimeUtc.getTime() + window.ms > now,
    );
    if (risky.length === 0) return;
    const n = `${risky.length} dead letter${plural(risky.length)}`;
    io.err(
      wrap(
        dryRun
          ? `warning: --force: would replay ${n} enqueued ${span}: ${target.queue} drops, without an error, those whose message id it still remembers, and their dead letters are completed all the same (lost)`
          : `warning: --force: replayed ${n} enqueued ${span}: ${target.queue} dropped, without an error, any whose message id it still remembered, and their dead letters were completed all the same; check that they arrived: ${risky.map((d) => `#${d.sequenceNumber} (message id ${d.messageId ?? 'none'})`).join(', ')}`,
      ),
    );
    return;
  }
  if (result.skipped.length === 0) return;
  const n = result.skipped.length;
  io.out(
    `${dryRun ? 'would skip' : 'skipped'} ${n} dead letter${plural(n)} enqueued ${span}, left in the dead-letter queue: ${target.queue} may still remember ${n === 1 ? 'its message id' : 'their message ids'} and would drop the replay without an error`,
  );
  for (const { deadLetter, replayableAt } of result.skipped) {
    const when =
      replayableAt === undefined
        ? 'no enqueued time: replayable only with --force'
        : `replayable from ${replayableAt.toISOString()} (in ${timeLeft(replayableAt.getTime() - window.now.getTime())})`;
    io.out(`  ${deadLetterLine(deadLetter, target.role)}; ${when}`);
  }
  io.out(
    wrap(
      `note: replay ${n === 1 ? 'it' : 'them'} from then on (run replay again), or now with --force, accepting that what the queue still remembers is lost; if the queue's duplicate-detection window is not ${formatIsoDuration(window.ms)}, give it with --duplicate-window (the SDK cannot read it).`,
    ),
  );
}

function replayReport(
  io: CliIo,
  command: string,
  target: Target,
  window: Window | undefined,
  result: ReplayDeadLettersResult,
): number {
  const left = result.scanned - result.replayed.length;
  io.out(
    `replayed ${result.replayed.length} of ${result.planned.length} planned to ${target.queue}; ${left} dead letter${plural(left)} left in the dead-letter queue`,
  );
  const failedSeq = result.failure?.deadLetter?.sequenceNumber;
  const missing = result.notReplayed.filter((d) => d.sequenceNumber !== failedSeq);
  if (missing.length > 0) {
    const why = result.failure ? 'not reached after the failure' : 'no longer there or locked by another receiver';
    io.out(`not replayed (${why}): ${missing.map((d) => `#${d.sequenceNumber}`).join(', ')}`);
  }
  duplicateReport(io, target, window, result, false);
  notes(io, target, result);
  if (!result.failure) return 0;
  const { deadLetter, sent, error } = result.failure;
  const which = deadLetter ? ` at #${deadLetter.sequenceNumber} (message id ${deadLetter.messageId ?? 'none'})` : '';
  io.err(`${command}: Service Bus failed${which}: ${redactString(errorMessage(error))}`);
  if (deadLetter && sent)
    io.err(
      `${command}: that message was sent to ${target.queue} but is still a dead letter (completing it failed): do not replay it again`,
    );
  return 1;
}

function notes(io: CliIo, target: Target, result: ReplayDeadLettersResult): void {
  if (target.role !== 'outbound') return;
  const kept = result.byReason[DISPATCH_DEAD_LETTER_REASONS.interactionNotSent] ?? 0;
  if (kept > 0) io.out(`note: ${kept} ${INTERACTION_NOT_SENT_NOTE}`);
  const unconfirmed = result.byReason[DISPATCH_DEAD_LETTER_REASONS.unconfirmed] ?? 0;
  if (unconfirmed > 0 && !result.planned.some((d) => d.reason === DISPATCH_DEAD_LETTER_REASONS.unconfirmed))
    io.out(`note: ${unconfirmed} ${UNCONFIRMED_NOTE}`);
}

function plural(n: number): string {
  return n === 1 ? '' : 's';
}

function deadLetterLine(d: DeadLetter, role: QueueRole): string {
  const s = summaryText(summarize(d, role));
  return `#${d.sequenceNumber} message id ${d.messageId ?? '(none)'}, reason ${d.reason === undefined ? NO_REASON : redactString(d.reason)}${s ? `: ${s}` : ''}`;
}

function deadLetterBlock(d: DeadLetter, role: QueueRole): string[] {
  return [
    `#${d.sequenceNumber}  enqueued ${d.enqueuedTimeUtc?.toISOString() ?? '(unknown)'}  message id ${d.messageId ?? '(none)'}  delivery count ${d.deliveryCount ?? '?'}`,
    ...(d.sessionId === undefined ? [] : [`  session: ${redactString(d.sessionId)}`]),
    `  reason: ${d.reason === undefined ? NO_REASON : redactString(d.reason)}`,
    `  description: ${d.description === undefined ? '(none)' : redactString(d.description)}`,
    `  body: ${summaryText(summarize(d, role))}`,
    '',
  ];
}

function deadLetterJson(d: DeadLetter, role: QueueRole): Record<string, unknown> {
  return {
    sequenceNumber: d.sequenceNumber,
    enqueuedTimeUtc: d.enqueuedTimeUtc?.toISOString(),
    messageId: d.messageId,
    deliveryCount: d.deliveryCount,
    sessionId: d.sessionId === undefined ? undefined : redactString(d.sessionId),
    subject: d.subject,
    contentType: d.contentType,
    reason: d.reason === undefined ? undefined : redactString(d.reason),
    description: d.description === undefined ? undefined : redactString(d.description),
    body: summarize(d, role),
  };
}

/** What the body is, for a person: identifiers, channel, response type; a recipient only masked; never the text. */
type BodySummary = Record<string, string | number | boolean | undefined>;

function summarize(d: DeadLetter, role: QueueRole): BodySummary {
  const size = Buffer.isBuffer(d.body) ? { bytes: d.body.length } : {};
  try {
    if (role === 'activities') {
      const event = decodeRemoteContext({
        body: d.body,
        contentType: d.contentType,
        applicationProperties: d.applicationProperties,
      });
      if (event.kind === 'activity') {
        return {
          kind: 'activity',
          activityRowId: event.activityRowId,
          activityId: event.activityId,
          entityType: event.entityType,
          entityId: event.entityId,
          contactId: event.contactId,
        };
      }
      if (event.kind === 'activity-truncated')
        return { kind: 'activity-truncated', activityRowId: event.activityRowId };
      return {
        kind: 'realtime',
        requestId: event.requestId,
        channelDefinitionId: event.channelDefinitionId,
        from: masked('from', event.from),
        to: masked('to', event.to),
      };
    }
    if (role === 'outbound') {
      const m = parseOutboundMessage(d.body);
      return {
        kind: 'outbound',
        key: m.key,
        channel: m.channel,
        to: masked('to', m.to),
        purpose: m.purpose,
        ...contextSummary(m.context),
      };
    }
    const m = parseInteractionMessage(d.body);
    return {
      kind: 'interaction',
      ...contextSummary(m.context),
      channel: m.channel,
      responseType: m.responseType,
      providerMessageId: m.providerMessageId,
    };
  } catch (err) {
    return { kind: 'unreadable', ...size, contentType: d.contentType, error: redactString(errorMessage(err)) };
  }
}

function contextSummary(context: SendContext | undefined): BodySummary {
  if (context === undefined) return {};
  return context.kind === 'marketing'
    ? { activityRowId: context.activityRowId, activityId: context.activityId }
    : { requestId: context.requestId };
}

function masked(key: string, value: string): string {
  return String(redact(value, key));
}

function summaryText(s: BodySummary): string {
  const parts = Object.entries(s)
    .filter(([k, v]) => k !== 'kind' && v !== undefined)
    .map(([k, v]) => `${k} ${String(v)}`);
  return `${String(s['kind'])}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}
