import type { Command } from 'commander';
import { describeConfig, loadConfig } from '../../config/index.js';
import { formatConfigProblem, isConfigError } from '../../errors.js';
import type { CliIo } from '../io.js';

/** `channel-relay config check [FILE]`: every problem and exit 1, or a summary and exit 0. */
export function registerConfigCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const config = program.command('config').description('work with the configuration');
  config
    .command('check')
    .description('validate a configuration (defaults + FILE + environment) and show what it would run with')
    .argument('[file]', 'a configuration file merged over the embedded defaults')
    .action((file: string | undefined) => {
      try {
        const loaded = loadConfig({ file, env: io.env, cwd: io.cwd });
        io.out('configuration is valid; it would run with:');
        for (const line of describeConfig(loaded)) io.out(`  ${line}`);
        setExitCode(0);
      } catch (err) {
        if (!isConfigError(err)) throw err;
        io.err(`configuration has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:`);
        for (const p of err.problems) io.err(`  - ${formatConfigProblem(p)}`);
        setExitCode(1);
      }
    });
}
