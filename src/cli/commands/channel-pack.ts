/**
 * `channel-relay channel pack DIR --out FILE.zip` and `channel-relay channel check DIR|FILE.zip [--channels FILE]`
 * (src/solution/). Exit codes: 0 packed / no problem, 1 the solution has problems (each listed with its file, element
 * and line), 2 bad usage or an unreadable channels file.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { loadChannels, type ChannelRegistry } from '../../channels/index.js';
import { formatConfigProblem, isConfigError } from '../../errors.js';
import {
  checkSolution,
  formatSolutionProblem,
  isSolutionPackageError,
  packSolution,
  type SolutionProblem,
} from '../../solution/index.js';
import type { CliIo } from '../io.js';

function reportProblems(io: CliIo, what: string, problems: readonly SolutionProblem[]): void {
  io.err(`${what} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:`);
  for (const p of problems) io.err(`  - ${formatSolutionProblem(p)}`);
}

export function registerChannelPack(channel: Command, io: CliIo, setExitCode: (code: number) => void): void {
  channel
    .command('pack')
    .description("pack an unpacked solution folder into the zip Dataverse imports (the layout of 'pac solution pack')")
    .argument('<dir>', 'the unpacked solution folder (Other/Solution.xml, Other/Customizations.xml, Entities/, …)')
    .requiredOption('--out <file>', 'the zip to write (replaced if it exists)')
    .action(async (dir: string, options: { out: string }) => {
      const out = path.resolve(io.cwd, options.out);
      try {
        const zip = await packSolution(path.resolve(io.cwd, dir));
        await writeFile(out, zip);
        io.out(`packed ${dir} into ${options.out} (${zip.byteLength} bytes)`);
        setExitCode(0);
      } catch (err) {
        if (!isSolutionPackageError(err)) throw err;
        reportProblems(io, dir, err.problems);
        setExitCode(1);
      }
    });
}

export function registerChannelCheck(channel: Command, io: CliIo, setExitCode: (code: number) => void): void {
  channel
    .command('check')
    .description(
      'check a solution folder or zip: well-formed XML, required fields, lowercase GUIDs, the tile, channel definitions and message parts, and with --channels the agreement with a channels file',
    )
    .argument('<source>', 'an unpacked solution folder, or a solution zip')
    .option('--channels <file>', "the relay's channels file the solution must agree with (e.g. config/channels.json)")
    .action(async (source: string, options: { channels?: string }) => {
      let channels: ChannelRegistry | undefined;
      if (options.channels !== undefined) {
        try {
          // Only names are compared: no provider secret, callback secret or messaging account is read.
          channels = loadChannels(options.channels, {
            env: io.env,
            cwd: io.cwd,
            providers: 'none',
            callbackSecrets: false,
            messaging: 'none',
          });
        } catch (err) {
          if (!isConfigError(err)) throw err;
          io.err(`the channels file has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:`);
          for (const p of err.problems) io.err(`  - ${formatConfigProblem(p)}`);
          setExitCode(2);
          return;
        }
      }
      const absolute = path.resolve(io.cwd, source);
      const info = await stat(absolute).catch(() => undefined);
      if (info === undefined) {
        io.err(`${source}: no such folder or file`);
        setExitCode(2);
        return;
      }
      const problems = await checkSolution(
        info.isDirectory() ? { dir: absolute } : { zip: new Uint8Array(await readFile(absolute)), name: source },
        channels === undefined ? {} : { channels },
      );
      if (problems.length > 0) {
        reportProblems(io, source, problems);
        setExitCode(1);
        return;
      }
      io.out(`${source}: OK${channels === undefined ? '' : ` (agrees with ${options.channels})`}`);
      setExitCode(0);
    });
}
