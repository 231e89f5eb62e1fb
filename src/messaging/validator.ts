/**
 * The messaging accounts of a process, validated at start and then periodically, as metrics and readiness: a worker
 * whose account cannot get a token is not ready.
 */
import { Gauge, type Registry } from 'prom-client';
import { delayUnlessAborted } from '../abort.js';
import type { MessagingAccount } from '../channels/index.js';
import { errorMessage } from '../errors.js';
import { METRIC_PREFIX, registered, type ReadinessCheck } from '../health/index.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { intOption } from '../options.js';
import { validateAccount, type AccountValidation, type ValidateAccountOptions } from './validate.js';

export interface AccountValidatorOptions extends Pick<
  ValidateAccountOptions,
  'timeoutMs' | 'maxRetries' | 'ca' | 'clock'
> {
  /** The accounts, loaded with their client secrets (`loadChannels` option `messaging`: `identity` or `all`). */
  accounts: readonly MessagingAccount[];
  /** The process's metrics: `channel_relay_messaging_account_valid` and `…_last_validated_seconds`. @defaultValue none */
  registry?: Registry;
  /** Time between two validations of an account, ms. @defaultValue 1800000 (30 minutes) */
  intervalMs?: number;
  /**
   * Time before the next validation after one that found the identity platform unreachable, ms (a refusal waits
   * `intervalMs`: asking again soon will not change the credentials). @defaultValue 60000
   */
  retryIntervalMs?: number;
  /** @defaultValue silentLogger() */
  log?: Logger;
}

const COMPONENT = 'AccountValidator';
const VALID = `${METRIC_PREFIX}messaging_account_valid`;
const LAST_VALIDATED = `${METRIC_PREFIX}messaging_account_last_validated_seconds`;

/**
 * Validates each account (`validateAccount`) when started and every `intervalMs` after, keeps the last result of each,
 * and shows them as the gauges `channel_relay_messaging_account_valid{account}` (1 after a successful validation, 0
 * after a failed one) and `channel_relay_messaging_account_last_validated_seconds{account}` (the Unix time of the last
 * successful validation), and as one readiness check per account, failing until the first validation succeeds and
 * whenever the last one failed.
 */
export class AccountValidator {
  readonly #accounts: readonly MessagingAccount[];
  readonly #intervalMs: number;
  readonly #retryIntervalMs: number;
  readonly #validateOptions: ValidateAccountOptions;
  readonly #log: Logger;
  readonly #last = new Map<string, AccountValidation>();
  readonly #lastValid = new Map<string, string>();
  readonly #valid?: Gauge<'account'>;
  readonly #lastValidated?: Gauge<'account'>;
  readonly #stop = new AbortController();
  #loops?: Promise<void>;
  #first?: Promise<AccountValidation[]>;
  #closing?: Promise<void>;

  constructor(options: AccountValidatorOptions) {
    this.#intervalMs = intOption(COMPONENT, 'intervalMs', options.intervalMs, 1_800_000, 1000);
    this.#retryIntervalMs = intOption(COMPONENT, 'retryIntervalMs', options.retryIntervalMs, 60_000, 100);
    if (!Array.isArray(options.accounts))
      throw new TypeError(
        `${COMPONENT}: accounts must be a list of messaging accounts, found ${typeof options.accounts}`,
      );
    for (const a of options.accounts)
      if (a.clientSecret === undefined)
        throw new TypeError(
          `${COMPONENT}: account "${a.name}" has no client secret (load the channels with messaging 'identity' or 'all')`,
        );
    this.#accounts = options.accounts;
    this.#validateOptions = {
      timeoutMs: intOption(COMPONENT, 'timeoutMs', options.timeoutMs, 30_000, 1),
      maxRetries: intOption(COMPONENT, 'maxRetries', options.maxRetries, 3, 0),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      signal: this.#stop.signal,
    };
    this.#log = areaLogger(options.log ?? silentLogger(), 'messaging');
    const registry = options.registry;
    if (registry !== undefined) {
      const gauge = (name: string, help: string): Gauge<'account'> =>
        registered(registry, name, () => new Gauge({ name, help, labelNames: ['account'], registers: [registry] }));
      this.#valid = gauge(VALID, 'Whether the messaging account validated last time (1) or not (0)');
      this.#lastValidated = gauge(
        LAST_VALIDATED,
        'Unix time of the messaging account’s last successful validation (a token issued for its app ID and secret)',
      );
    }
  }

  /**
   * Validates every account now and then every `intervalMs` until `close()`; resolves with the first results (it
   * never rejects: a failure is a result). A second call returns the same first results.
   */
  start(): Promise<AccountValidation[]> {
    if (this.#loops === undefined) {
      const first: Array<Promise<AccountValidation | undefined>> = [];
      const loops = this.#accounts.map((account) => {
        let resolveFirst!: (v: AccountValidation | undefined) => void;
        first.push(new Promise((resolve) => (resolveFirst = resolve)));
        return this.#loop(account, resolveFirst);
      });
      this.#loops = Promise.all(loops).then(() => undefined);
      this.#first = Promise.all(first).then((r) => r.filter((v): v is AccountValidation => v !== undefined));
    }
    return this.#first as Promise<AccountValidation[]>;
  }

  async #loop(account: MessagingAccount, first: (v: AccountValidation | undefined) => void): Promise<void> {
    let firstDone = false;
    try {
      while (!this.#stop.signal.aborted) {
        const result = await this.#validate(account);
        if (!firstDone) {
          firstDone = true;
          first(result);
        }
        if (result === undefined) break;
        const wait = result.reason === 'unreachable' ? this.#retryIntervalMs : this.#intervalMs;
        await delayUnlessAborted(wait, this.#stop.signal);
      }
    } finally {
      if (!firstDone) first(undefined);
    }
  }

  /** Validates the named account (all of them without a name) now, recording the results. */
  async validateNow(name?: string): Promise<AccountValidation[]> {
    const accounts = this.#accounts.filter((a) => name === undefined || a.name === name);
    const results = await Promise.all(accounts.map((a) => this.#validate(a)));
    return results.filter((r): r is AccountValidation => r !== undefined);
  }

  /** One validation, recorded; undefined when stopped meanwhile. */
  async #validate(account: MessagingAccount): Promise<AccountValidation | undefined> {
    let result: AccountValidation;
    try {
      result = await validateAccount(account, this.#validateOptions);
    } catch (err) {
      if (this.#stop.signal.aborted) return undefined;
      throw err;
    }
    this.#record(result);
    return result;
  }

  #record(result: AccountValidation): void {
    const before = this.#last.get(result.account);
    this.#last.set(result.account, result);
    this.#valid?.set({ account: result.account }, result.valid ? 1 : 0);
    const fields = { account: result.account, appId: result.appId, tenant: result.tenant };
    if (result.valid) {
      this.#lastValid.set(result.account, result.at);
      this.#lastValidated?.set({ account: result.account }, Math.floor(Date.parse(result.at) / 1000));
      if (before?.valid !== true) this.#log.info('messaging account validated', fields);
      return;
    }
    const level = result.reason === 'unreachable' ? 'warn' : 'error';
    this.#log[level]('messaging account did not validate', {
      ...fields,
      reason: result.reason,
      ...(result.aadsts === undefined ? {} : { aadsts: result.aadsts }),
      detail: result.message,
    });
  }

  /** The last validation of each account validated so far. */
  results(): AccountValidation[] {
    return this.#accounts.flatMap((a) => this.#last.get(a.name) ?? []);
  }

  /** One check per account: `messaging account <name>`, passing when its last validation succeeded. */
  readiness(): ReadinessCheck[] {
    return this.#accounts.map((a) => {
      const last = this.#last.get(a.name);
      const name = `messaging account ${a.name}`;
      if (last === undefined) return { name, ok: false, detail: 'not validated yet' };
      if (last.valid) return { name, ok: true, detail: last.message };
      const lastValid = this.#lastValid.get(a.name);
      return { name, ok: false, detail: `${last.message}${lastValid ? `; last validated ${lastValid}` : ''}` };
    });
  }

  /** Stops validating: cuts the wait short and abandons a validation in flight. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stop.abort(new Error(`${COMPONENT} closed`));
      try {
        await this.#loops;
      } catch (err) {
        this.#log.warn('account validation ended with an error', { error: errorMessage(err) });
      }
    })();
    return this.#closing;
  }
}
