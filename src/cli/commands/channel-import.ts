/**
 * `channel-relay channel import FILE.zip`: the solution into the org (`ImportSolutionAsync`, followed to its end with
 * its progress and, on failure, the import log's failed components), then `register` for the channels it carries.
 * Dataverse and Service Bus settings come from the environment, as for `register`.
 * Exit codes: 0 imported (and registered), 1 the import failed or Dataverse refused a call, 2 bad usage or input.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { ChannelRegistry } from '../../channels/index.js';
import { isHttpUrl, type RelayConfig } from '../../config/index.js';
import { closeDataverseClient, dataverseClientFromConfig } from '../../dataverse/index.js';
import { errorMessage, isConfigError } from '../../errors.js';
import { exitCodeOf } from '../../lifecycle.js';
import { redactString } from '../../log.js';
import {
  formatRegistrationError,
  formatRegistrationReport,
  registerRelay,
  serviceBusFromEnv,
  type RealtimeTarget,
  type ServiceBusSas,
} from '../../registration/index.js';
import {
  importSolution,
  solutionContents,
  type ImportProgress,
  type SolutionContents,
  type SolutionImportResult,
} from '../../solution/index.js';
import { loadCommandConfig, problemsOf, reportProblems } from '../command-config.js';
import type { CliIo } from '../io.js';
import { channelsForRegistration } from './register.js';

const HELP = `
Imports FILE.zip (what 'channel pack' writes) into the org at --dataverse-url with ImportSolutionAsync, shows the
job's progress until it ends and, when it fails, each failed component with Dataverse's message. Then registers the
relay for the channels the solution carries (as 'channel-relay register' does, with --realtime for its channel
definitions): the channels of the channels file whose tile's table or channelDefinitionId is in the solution, or
those named with --channel. --no-register imports only.

Environment: as for 'register' (DATAVERSE_AUTH, DATAVERSE_URL, SERVICEBUS_CONNECTION_STRING or SERVICEBUS_NAMESPACE
+ SERVICEBUS_SAS_KEY_NAME + SERVICEBUS_SAS_KEY, CHANNELS_FILE). The identity needs the privileges to import solutions
(System Customizer or System Administrator).

Exit codes: 0 imported (and registered), 1 the import failed or Dataverse refused a call, 2 bad usage or input.`;

interface ImportCliOptions {
  dataverseUrl?: string;
  channel?: string[];
  register: boolean;
  config?: string;
  maxWait: string;
}

export function addChannelImportCommand(channel: Command, io: CliIo, setExitCode: (code: number) => void): void {
  channel
    .command('import')
    .description('import a packed solution into the org, then register the relay for its channels')
    .argument('<file>', 'the solution zip (channel pack --out)')
    .option('--dataverse-url <url>', 'the org URL, e.g. https://contoso.crm.dynamics.com (default: DATAVERSE_URL)')
    .option(
      '--channel <name...>',
      'register for these channels of the channels file (default: all the solution carries)',
    )
    .option('--no-register', 'import only')
    .option('--max-wait <seconds>', 'follow the import job this long at most', '900')
    .option('--config <file>', 'a configuration file merged over the embedded defaults')
    .addHelpText('after', HELP)
    .action(async (file: string, options: ImportCliOptions) => setExitCode(await channelImport(io, file, options)));
}

function usage(io: CliIo, problems: string[]): number {
  return reportProblems(io, 'channel import', problems);
}

function kB(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} kB`;
}

/** The channels of the file that the solution carries: a tile on one of its tables, or one of its channel definitions. */
export function carriedChannels(channels: ChannelRegistry, contents: SolutionContents): string[] {
  const tables = new Set(contents.tables);
  const definitions = new Set(contents.channelDefinitions.map((d) => d.id));
  return channels
    .all()
    .filter(
      (c) =>
        (c.tile !== undefined && tables.has(c.tile.entityType.toLowerCase())) ||
        (c.channelDefinitionId !== undefined && definitions.has(c.channelDefinitionId.toLowerCase())),
    )
    .map((c) => c.name);
}

/** asyncoperation.statuscode from 20 on, for a person (PA-docs asyncoperation). */
const ASYNC_STATUS: Record<number, string> = {
  20: 'in progress',
  21: 'pausing',
  22: 'canceling',
  30: 'succeeded',
  31: 'failed',
  32: 'canceled',
};

function stateOf(p: ImportProgress): string {
  return p.status === undefined || p.status < 20 ? 'waiting' : (ASYNC_STATUS[p.status] ?? `status ${p.status}`);
}

interface ProgressView {
  onProgress: (p: ImportProgress) => void;
  /** Ends the bar (idempotent), before anything else is written to its stream. */
  stop: () => void;
}

/**
 * The job's progress: on a terminal, a bar redrawn in place (`import  ████░░ 40% | in progress | 3.1 s`); otherwise
 * one line per job reading that changed what it says (`import: 40 % (in progress, 3.1 s)`), for logs and CI.
 */
export function importProgressView(io: CliIo): ProgressView {
  const stream = io.progressStream;
  if (stream?.isTTY !== true) {
    let last = '';
    return {
      onProgress: (p) => {
        const now = `${Math.round(p.percent)} % (${stateOf(p)}`;
        if (now === last) return;
        last = now;
        io.err(`import: ${now}, ${(p.elapsedMs / 1000).toFixed(1)} s)`);
      },
      stop: () => undefined,
    };
  }
  const bar = new SingleBar(
    { format: 'import  {bar} {percentage}% | {state} | {seconds} s', stream, hideCursor: true },
    Presets.shades_classic,
  );
  bar.start(100, 0, { state: 'waiting', seconds: '0.0' });
  let stopped = false;
  return {
    onProgress: (p) =>
      bar.update(Math.round(p.percent), { state: stateOf(p), seconds: (p.elapsedMs / 1000).toFixed(1) }),
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** The outcome's lines: the verdict, then each failed or warned component with Dataverse's code and message. */
export function formatImportResult(name: string, result: SolutionImportResult): string[] {
  const s = (result.durationMs / 1000).toFixed(1);
  const ids = `asyncoperation ${result.asyncOperationId}, importjob ${result.importJobId}`;
  const lines =
    result.outcome === 'succeeded'
      ? [`imported ${name}: 100 % in ${s} s (${ids})`]
      : [
          `the import of ${name} ${result.outcome === 'canceled' ? 'was canceled' : 'failed'} after ${s} s${result.message === undefined ? '' : `: ${redactString(result.message)}`} (${ids})`,
        ];
  for (const e of result.log)
    lines.push(`  ${e.level} in ${e.component}: ${e.code === undefined ? '' : `${e.code} `}${redactString(e.message)}`);
  return lines;
}

interface Prepared {
  config: RelayConfig;
  zip: Uint8Array;
  contents: SolutionContents;
  bus?: ServiceBusSas;
  realtime: RealtimeTarget[];
  channels: string[];
  warnings: string[];
}

/** Everything checked before any call: the file, the configuration, the channels to register. */
function prepare(io: CliIo, file: string, options: ImportCliOptions, url: string): Prepared | string[] {
  const problems: string[] = [];
  let zip: Uint8Array;
  let contents: SolutionContents;
  const where = path.resolve(io.cwd, file);
  try {
    zip = readFileSync(where);
  } catch (err) {
    return [`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`];
  }
  try {
    contents = solutionContents(zip);
  } catch (err) {
    return [`${file}: ${errorMessage(err)}`];
  }
  const env = { ...io.env, DATAVERSE_URL: url };
  const { config, problems: configProblems } = loadCommandConfig(io, { env, file: options.config });
  if (config === undefined) return configProblems;
  const prepared: Prepared = { config, zip, contents, realtime: [], channels: [], warnings: [] };
  if (!options.register) return prepared;
  try {
    prepared.bus = serviceBusFromEnv(env);
    const registry = channelsForRegistration(config, io);
    const carried = carriedChannels(registry, contents);
    const named = options.channel ?? carried;
    for (const name of options.channel ?? []) {
      if (registry.byName(name) === undefined)
        problems.push(`--channel ${name}: the channels file ${config.channelsFile} has no channel named '${name}'`);
      else if (!carried.includes(name))
        problems.push(
          `--channel ${name}: the solution ${contents.uniqueName} does not carry it (neither its tile's table nor its channelDefinitionId is in the solution)`,
        );
    }
    prepared.channels = named;
    const byDefinition = new Map(
      named.flatMap((n) => {
        const id = registry.byName(n)?.channelDefinitionId?.toLowerCase();
        return id === undefined ? [] : [[id, n] as const];
      }),
    );
    for (const d of contents.channelDefinitions) {
      const channel = byDefinition.get(d.id);
      if (channel !== undefined) prepared.realtime.push({ channelDefinitionId: d.id, channel });
      else if (options.channel === undefined) {
        prepared.realtime.push({ channelDefinitionId: d.id });
        prepared.warnings.push(
          `the channel definition ${d.id} has no channel in ${config.channelsFile}: the relay would dead-letter its calls; add the entry 'channel new' printed`,
        );
      }
    }
    if (named.length === 0 && contents.channelDefinitions.length === 0)
      prepared.warnings.push(
        `no channel of ${config.channelsFile} uses a table of ${contents.uniqueName} (${contents.tables.join(', ') || 'none'}): add the entry 'channel new' printed`,
      );
  } catch (err) {
    return problemsOf(err);
  }
  return problems.length > 0 ? problems : prepared;
}

async function channelImport(io: CliIo, file: string, options: ImportCliOptions): Promise<number> {
  const url = options.dataverseUrl ?? io.env['DATAVERSE_URL'];
  if (url === undefined || url === '')
    return usage(io, [
      '--dataverse-url: expected the org URL (https://<org>.crm.dynamics.com), found nothing (nor DATAVERSE_URL)',
    ]);
  if (!isHttpUrl(url))
    return usage(io, [
      `--dataverse-url: expected an http(s) URL such as https://<org>.crm.dynamics.com, found '${url}'`,
    ]);
  const maxWait = Number(options.maxWait);
  if (!/^\d+$/.test(options.maxWait) || maxWait < 1)
    return usage(io, [`--max-wait: expected a whole number of seconds >= 1, found '${options.maxWait}'`]);
  const prepared = prepare(io, file, options, url);
  if (Array.isArray(prepared)) return usage(io, prepared);
  const { contents, zip } = prepared;
  let api;
  try {
    api = dataverseClientFromConfig(prepared.config);
  } catch (err) {
    return usage(io, problemsOf(err));
  }
  const name = `${contents.uniqueName}${contents.version === undefined ? '' : ` ${contents.version}`}`;
  try {
    io.err(`importing ${name} (${kB(zip.byteLength)}) into ${url}`);
    let result: SolutionImportResult;
    const progress = importProgressView(io);
    try {
      result = await importSolution(api, zip, { onProgress: progress.onProgress, maxWaitMs: maxWait * 1000 });
    } catch (err) {
      progress.stop();
      io.err(`channel import: ${formatRegistrationError(err)}`);
      return exitCodeOf(err);
    }
    progress.stop();
    const lines = formatImportResult(name, result);
    if (result.outcome !== 'succeeded') {
      for (const l of lines) io.err(l);
      return 1;
    }
    io.out(lines.join('\n'));
    if (!options.register) return 0;
    for (const w of prepared.warnings) io.err(`warning: ${w}`);
    try {
      const report = await registerRelay(api, {
        serviceBus: prepared.bus as ServiceBusSas,
        realtime: prepared.realtime,
      });
      io.out(
        `registering for ${prepared.channels.length === 0 ? 'no channel of the channels file' : `channel${prepared.channels.length === 1 ? '' : 's'} ${prepared.channels.join(', ')}`}:`,
      );
      io.out(formatRegistrationReport(report));
      return 0;
    } catch (err) {
      if (isConfigError(err)) return usage(io, problemsOf(err));
      io.err(`channel import: register: ${formatRegistrationError(err)}`);
      return exitCodeOf(err);
    }
  } finally {
    closeDataverseClient(api);
  }
}
