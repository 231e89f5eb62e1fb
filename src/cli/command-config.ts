/**
 * What the operator commands (`register`, `channel import`, `status`, `dead-letters`, `messaging validate`) share:
 * the relay's configuration as a command loads it, and how a command reports what is wrong with its input.
 */
import { loadConfig, type RelayConfig } from '../config/index.js';
import { errorMessage, formatConfigProblem, isConfigError } from '../errors.js';
import { redactString } from '../log.js';
import type { CliIo } from './io.js';

const NO_SERVICE_BUS =
  'no Service Bus connection: set SERVICEBUS_CONNECTION_STRING, or SERVICEBUS_NAMESPACE for identity-based access';

export interface CommandConfigOptions {
  /** `--config FILE`, merged over the defaults; without it, the file CHANNEL_RELAY_CONFIG names, as for the workers. */
  file?: string | undefined;
  /** The environment read. @defaultValue io.env (register and channel import add their --dataverse-url to it) */
  env?: NodeJS.ProcessEnv;
  /** The command talks to the Service Bus namespace: a configuration without a connection to it is a problem. */
  serviceBus?: boolean;
}

/** The configuration, when it loaded (a problem with the Service Bus connection leaves it loaded), and the problems. */
export interface CommandConfig {
  config: RelayConfig | undefined;
  problems: string[];
}

/**
 * The configuration for a command run by an operator: the defaults, the `--config` file and the environment, without
 * a stage's required settings (`forWorkers: false`). Its problems come back one line each, for the command to report
 * with its own (see {@link reportProblems}).
 */
export function loadCommandConfig(io: CliIo, options: CommandConfigOptions = {}): CommandConfig {
  let config: RelayConfig;
  try {
    config = loadConfig({
      env: options.env ?? io.env,
      cwd: io.cwd,
      forWorkers: false,
      ...(options.file === undefined ? {} : { file: options.file }),
    }).config;
  } catch (err) {
    if (!isConfigError(err)) throw err;
    return { config: undefined, problems: err.problems.map(formatConfigProblem) };
  }
  const { connectionString, namespace } = config.serviceBus;
  const noBus = options.serviceBus === true && !connectionString && !namespace;
  return { config, problems: noBus ? [NO_SERVICE_BUS] : [] };
}

/** What an error refusing a command's input says, one line per problem: a configuration error's problems, or the redacted message. */
export function problemsOf(err: unknown): string[] {
  if (isConfigError(err)) return err.problems.map(formatConfigProblem);
  return [redactString(errorMessage(err))];
}

/** Prints `<command>: N problem(s):` and one line per problem on stderr; returns 2, the exit code of bad usage or input. */
export function reportProblems(io: CliIo, command: string, problems: readonly string[]): 2 {
  io.err(`${command}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:`);
  for (const p of problems) io.err(`  - ${p}`);
  return 2;
}
