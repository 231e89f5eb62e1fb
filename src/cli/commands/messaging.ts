/**
 * `channel-relay messaging validate [ACCOUNT]`: what the admin centre's "Validate app ID + secret" does, for each
 * messaging account of the channels file (or the one named): a token for its app from the identity platform, or the
 * exact reason why not. Exit codes: 0 every account valid, 1 one or more refused (unknown app, wrong or expired
 * secret, wrong tenant: fix the credentials; this wins over 3), 3 the identity platform unreachable (try again), 2 bad
 * configuration or usage.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadMessaging, type MessagingAccount } from '../../channels/index.js';
import { isConfigError } from '../../errors.js';
import { validateAccount, type AccountValidation } from '../../messaging/index.js';
import { loadCommandConfig, problemsOf, reportProblems } from '../command-config.js';
import type { CliIo } from '../io.js';

/** The exit codes of `messaging validate`. */
export const VALIDATE_EXIT = { valid: 0, refused: 1, usage: 2, unreachable: 3 } as const;

function parseTimeout(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1000 || n > 600_000)
    throw new InvalidArgumentError(`expected milliseconds from 1000 to 600000, found '${value}'`);
  return n;
}

/** The exit code of a set of results: refused (1) over unreachable (3) over valid (0). */
export function validateExitCode(results: readonly AccountValidation[]): number {
  if (results.some((r) => !r.valid && r.reason !== 'unreachable')) return VALIDATE_EXIT.refused;
  if (results.some((r) => r.reason === 'unreachable')) return VALIDATE_EXIT.unreachable;
  return VALIDATE_EXIT.valid;
}

/** A result as `--json` prints it (no secret, no stack). */
function asJson(r: AccountValidation): Record<string, unknown> {
  return {
    account: r.account,
    appId: r.appId,
    tenant: r.tenant,
    authorityHost: r.authorityHost,
    valid: r.valid,
    ...(r.valid ? { lastValidated: r.at } : { at: r.at, reason: r.reason }),
    ...(r.aadsts === undefined ? {} : { aadsts: r.aadsts }),
    message: r.message,
  };
}

export function registerMessagingCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const messaging = program.command('messaging').description('Omnichannel custom messaging accounts');
  messaging
    .command('validate')
    .description(
      "validate each messaging account's app ID and client secret with the identity platform (exit 0 valid, 1 refused, 3 unreachable, 2 bad configuration)",
    )
    .argument('[account]', 'validate this account only (its name in the channels file)')
    .option(
      '--config <file>',
      'a configuration file merged over the defaults (its channelsFile names the channels file)',
    )
    .option('--timeout <ms>', 'time allowed for each account, retries included', parseTimeout, 30_000)
    .option('--json', 'print the results as JSON on stdout')
    .action(async (name: string | undefined, opts: { config?: string; timeout: number; json?: boolean }) => {
      const { config, problems } = loadCommandConfig(io, { file: opts.config });
      let accounts: readonly MessagingAccount[] = [];
      let file = '';
      if (config !== undefined) {
        try {
          ({ accounts, file } = loadMessaging(config.channelsFile, {
            env: io.env,
            cwd: io.cwd,
            messaging: 'identity',
          }));
        } catch (err) {
          if (!isConfigError(err)) throw err;
          problems.push(...problemsOf(err));
        }
      }
      if (problems.length > 0) {
        setExitCode(reportProblems(io, 'messaging validate', problems));
        return;
      }
      if (accounts.length === 0) {
        io.err(`${file} has no messaging accounts (its "messaging" section): nothing to validate`);
        setExitCode(VALIDATE_EXIT.usage);
        return;
      }
      const chosen = name === undefined ? accounts : accounts.filter((a) => a.name === name);
      if (chosen.length === 0) {
        io.err(`no messaging account "${name}" in ${file}; its accounts: ${accounts.map((a) => a.name).join(', ')}`);
        setExitCode(VALIDATE_EXIT.usage);
        return;
      }
      const results = await Promise.all(chosen.map((a) => validateAccount(a, { timeoutMs: opts.timeout })));
      const code = validateExitCode(results);
      if (opts.json === true) io.out(JSON.stringify({ exitCode: code, accounts: results.map(asJson) }, null, 2));
      else for (const r of results) (r.valid ? io.out : io.err)(`${r.account} (app ${r.appId}): ${r.message}`);
      setExitCode(code);
    });
}
