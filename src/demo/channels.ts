/**
 * The demo's channels the way a partner ships them: each sample channel's Dataverse solution generated
 * (`channel new`), packed (`channel pack`), checked against the channels file (`channel check`), imported into the
 * emulated org (`channel import`) and the relay registered for it, one line per step, before the journey runs.
 */
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { registerRelay, serviceBusFromConnectionString } from '../registration/index.js';
import {
  checkSolution,
  formatSolutionProblem,
  importSolution,
  newChannelSolution,
  packSolution,
  type NewChannelOptions,
} from '../solution/index.js';
import type { EmbeddedSystem } from './system.js';

/**
 * The sample's channel solutions, which the committed channels file and seed use (config/solutions/, kept equal to
 * these by a test): `special` (outbound marketing: the message table `sample_specialmessage` and its tile, for the
 * channels `sms` and `telegram`) and `realtime-sms` (real-time journeys: an SMS channel definition with inbound and
 * delivery reports, for the channel `realtime-sms`).
 */
export const DEMO_SOLUTIONS: ReadonlyArray<Omit<NewChannelOptions, 'out'>> = [
  { name: 'special', contract: 'outbound-marketing', publisherPrefix: 'sample', provider: 'twilio' },
  {
    name: 'realtime-sms',
    contract: 'realtime',
    channelType: 'SMS',
    inbound: true,
    deliveryReports: true,
    publisherPrefix: 'sample',
    provider: 'contract',
  },
];

/** The `channel new` command line that generates `spec`. */
export function channelNewCommand(spec: Omit<NewChannelOptions, 'out'>): string {
  return [
    `channel new ${spec.name} --contract ${spec.contract}`,
    spec.channelType === undefined ? '' : ` --channel-type ${spec.channelType}`,
    spec.inbound === true ? ' --inbound' : '',
    spec.deliveryReports === true ? ' --delivery-reports' : '',
    spec.publisherPrefix === undefined ? '' : ` --publisher-prefix ${spec.publisherPrefix}`,
  ].join('');
}

export interface ProvisionOptions {
  /** One line per step. */
  out: (text: string) => void;
  signal?: AbortSignal;
  /** How often the import job is read, ms. @defaultValue 100 */
  pollMs?: number;
}

function kB(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} kB`;
}

/**
 * Generates, packs, checks, imports and registers each of {@link DEMO_SOLUTIONS} in the embedded system, one line per
 * step. Throws with the step and its reason when one fails (a check problem, a failed import with its log).
 */
export async function provisionDemoChannels(system: EmbeddedSystem, options: ProvisionOptions): Promise<void> {
  for (const spec of DEMO_SOLUTIONS) await provisionChannel(system, spec, options);
}

async function provisionChannel(
  system: EmbeddedSystem,
  spec: Omit<NewChannelOptions, 'out'>,
  options: ProvisionOptions,
): Promise<void> {
  const { out } = options;
  const generated = await newChannelSolution({ ...spec, out: path.join(system.dir, 'solutions', spec.name) });
  out(`${channelNewCommand(spec)} … ok (${generated.files.length} files)`);
  const zip = await packSolution(generated.dir);
  out(`channel pack ${spec.name} … ${kB(zip.byteLength)}`);
  const name = `${generated.uniqueName}.zip`;
  const problems = await checkSolution({ zip, name }, { channels: system.channels });
  if (problems.length > 0)
    throw new Error(`channel check ${name}: ${problems.map((p) => formatSolutionProblem(p)).join('; ')}`);
  out(`channel check ${name} … ok`);
  const started = Date.now();
  const result = await importSolution(system.admin, zip, {
    pollMs: options.pollMs ?? 100,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  if (result.outcome !== 'succeeded') {
    const log = result.log.map((e) => `${e.component}: ${e.message}`).join('; ');
    throw new Error(
      `channel import ${name}: ${result.outcome}${result.message === undefined ? '' : `: ${result.message}`}${log === '' ? '' : ` (${log})`}`,
    );
  }
  out(`channel import ${name} … 100 % in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The real-time channel's outbound Custom API takes the relay's step too (as `channel import` registers it).
  const definition = generated.channelDefinitionId;
  try {
    const report = await registerRelay(system.admin, {
      serviceBus: serviceBusFromConnectionString(system.sb.connectionString),
      ...(definition === undefined ? {} : { realtime: [{ channelDefinitionId: definition, channel: spec.name }] }),
    });
    const count = (a: string): number => report.items.filter((i) => i.action === a).length;
    out(
      `register ${spec.name} … ok (${count('create')} created, ${count('update')} updated, ${count('unchanged')} unchanged)`,
    );
  } catch (err) {
    throw new Error(`register ${spec.name}: ${errorMessage(err)}`, { cause: err });
  }
}
