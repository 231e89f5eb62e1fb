/**
 * The demo's channels the way a partner ships them: the sample channel's Dataverse solution generated
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
 * The sample's channel solution: the message table `sample_specialmessage` and its tile, which the committed channels
 * file and seed use (config/solutions/special/, kept equal to this by a test).
 */
export const DEMO_SOLUTION: Omit<NewChannelOptions, 'out'> = {
  name: 'special',
  contract: 'outbound-marketing',
  publisherPrefix: 'sample',
  provider: 'twilio',
};

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
 * Generates, packs, checks, imports and registers {@link DEMO_SOLUTION} in the embedded system. Throws with the step
 * and its reason when one fails (a check problem, a failed import with its log).
 */
export async function provisionDemoChannels(system: EmbeddedSystem, options: ProvisionOptions): Promise<void> {
  const { out } = options;
  const started = (): (() => string) => {
    const t = Date.now();
    return () => `${((Date.now() - t) / 1000).toFixed(1)} s`;
  };
  const spec = DEMO_SOLUTION;
  const what = `${spec.name} --contract ${spec.contract} --publisher-prefix ${spec.publisherPrefix ?? ''}`;
  const generated = await newChannelSolution({ ...spec, out: path.join(system.dir, 'solutions', spec.name) });
  out(`channel new ${what} … ok (${generated.files.length} files)`);
  const zip = await packSolution(generated.dir);
  out(`channel pack ${spec.name} … ${kB(zip.byteLength)}`);
  const name = `${generated.uniqueName}.zip`;
  const problems = await checkSolution({ zip, name }, { channels: system.channels });
  if (problems.length > 0)
    throw new Error(`channel check ${name}: ${problems.map((p) => formatSolutionProblem(p)).join('; ')}`);
  out(`channel check ${name} … ok`);
  const elapsed = started();
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
  out(`channel import ${name} … 100 % in ${elapsed()}`);
  try {
    const report = await registerRelay(system.admin, {
      serviceBus: serviceBusFromConnectionString(system.sb.connectionString),
    });
    const count = (a: string): number => report.items.filter((i) => i.action === a).length;
    out(`register … ok (${count('create')} created, ${count('update')} updated, ${count('unchanged')} unchanged)`);
  } catch (err) {
    throw new Error(`register: ${errorMessage(err)}`, { cause: err });
  }
}
