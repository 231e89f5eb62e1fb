/**
 * Validating a messaging account as Omnichannel's "Validate app ID + secret" does: a token for the app from the
 * Microsoft identity platform with the client-credentials grant, through `@azure/identity`.
 */
import { request as httpsRequest } from 'node:https';
import { ClientSecretCredential } from '@azure/identity';
import { abortReason, linkedController, raceAbort } from '../abort.js';
import { MULTI_TENANT, type MessagingAccount } from '../channels/index.js';
import { errorMessage, IdentityError } from '../errors.js';
import { intOption } from '../options.js';
import { AADSTS_REASONS, BOT_FRAMEWORK_SCOPE, BOT_FRAMEWORK_TENANT } from './assumptions.js';

/** Why an account did not validate. */
export type ValidationReason =
  | 'unknown-app'
  | 'wrong-secret'
  | 'expired-secret'
  | 'wrong-tenant'
  /** Another AADSTS refusal (its code in `aadsts`, its words in `message`). */
  | 'refused'
  /** No answer, a connection failure, a 5xx: nothing is known about the credentials. */
  | 'unreachable';

/** One validation of one account. */
export interface AccountValidation {
  account: string;
  appId: string;
  /** The tenant asked: `botframework.com` for a multi-tenant app, else the account's. */
  tenant: string;
  authorityHost: string;
  valid: boolean;
  /** When this validation ended (ISO 8601); for a valid account, its "last validated" time. */
  at: string;
  reason?: ValidationReason;
  /** The AADSTS code of a refusal. */
  aadsts?: number;
  /** One line for a person: `valid, last validated <at>`, or the reason and what to do. Never a secret. */
  message: string;
  /** The failure as the relay's error (`IdentityRefused` or `IdentityUnavailable`). */
  error?: IdentityError;
}

export interface ValidateAccountOptions {
  /** Aborts the validation (the promise then rejects with the signal's reason). */
  signal?: AbortSignal;
  /** The whole validation's timeout, the SDK's retries included, ms. @defaultValue 30000 */
  timeoutMs?: number;
  /** Retries of a token request that failed on the network or with 5xx/429 (the SDK's retry policy). @defaultValue 3 */
  maxRetries?: number;
  /**
   * Certificates (PEM) trusted for the identity platform instead of the system's: an emulator's self-signed one. A
   * process can trust it with `NODE_EXTRA_CA_CERTS` instead. @defaultValue the system's (and NODE_EXTRA_CA_CERTS)
   */
  ca?: string;
  /** @defaultValue Date.now */
  clock?: () => number;
}

/** A validation's outcome, without the account's fields and the time. */
type Outcome = Omit<AccountValidation, 'account' | 'appId' | 'tenant' | 'authorityHost' | 'at'>;

/** The tenant a token for `account` is asked from. */
export function tokenTenant(account: Pick<MessagingAccount, 'tenant'>): string {
  return account.tenant === MULTI_TENANT ? BOT_FRAMEWORK_TENANT : account.tenant;
}

const COMPONENT = 'validateAccount';

/**
 * Asks the identity platform for a Bot Framework token for `account` and says whether it was issued, or why not.
 * Never rejects for what the platform answered or failed to answer (that is the result); rejects when `signal` aborts,
 * and throws a `TypeError` for an account loaded without its client secret.
 */
export async function validateAccount(
  account: MessagingAccount,
  options: ValidateAccountOptions = {},
): Promise<AccountValidation> {
  const timeoutMs = intOption(COMPONENT, 'timeoutMs', options.timeoutMs, 30_000, 1);
  const maxRetries = intOption(COMPONENT, 'maxRetries', options.maxRetries, 3, 0);
  const clock = options.clock ?? Date.now;
  if (account.clientSecret === undefined)
    throw new TypeError(
      `${COMPONENT}: account "${account.name}" was loaded without its client secret (load the channels with messaging 'identity' or 'all')`,
    );
  const tenant = tokenTenant(account);
  const base = { account: account.name, appId: account.appId, tenant, authorityHost: account.authorityHost };
  const link = linkedController(options.signal);
  const timer = setTimeout(
    () => link.abort(new IdentityError('IdentityUnavailable', `no answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const done = (fields: Outcome): AccountValidation => ({
    ...base,
    at: new Date(clock()).toISOString(),
    ...fields,
  });
  try {
    const credential = new ClientSecretCredential(tenant, account.appId, account.clientSecret, {
      authorityHost: account.authorityHost,
      // The authority host is used as given: no instance discovery at login.microsoftonline.com, which a sovereign
      // cloud, a private endpoint or an emulator is not listed in (MSAL "disableInstanceDiscovery").
      disableInstanceDiscovery: true,
      retryOptions: { maxRetries },
      ...(options.ca === undefined ? {} : { tlsOptions: { ca: options.ca } }),
    });
    await raceAbort(credential.getToken(BOT_FRAMEWORK_SCOPE, { abortSignal: link.signal }), link.signal);
    const at = new Date(clock()).toISOString();
    return { ...base, at, valid: true, message: `valid, last validated ${at}` };
  } catch (err) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    const failure = link.signal.aborted ? unreachable(errorMessage(link.signal.reason)) : await classify(err);
    return done(failure);
  } finally {
    clearTimeout(timer);
    link.dispose();
  }

  /** What a failed token request means. */
  async function classify(err: unknown): Promise<Outcome> {
    const text = errorMessage(err);
    const code = aadstsCode(err, text);
    if (code !== undefined) return refusal(code, description(text));
    // An unknown tenant and an unreachable host give the same "Endpoints cannot be resolved": ask the tenant's
    // discovery document directly to tell them apart (assumptions.ts AADSTS_REASONS).
    if (/endpoints_resolution_error|Endpoints cannot be resolved/i.test(text)) {
      const probe = await discover(account.authorityHost, tenant, options.ca, link.signal, timeoutMs);
      if (probe.aadsts !== undefined) return refusal(probe.aadsts, probe.description);
      return unreachable(probe.failure ?? 'its OpenID configuration could not be read');
    }
    return unreachable(firstLine(text));
  }

  function refusal(code: number, detail: string): Outcome {
    const reason = AADSTS_REASONS[code] ?? 'refused';
    const host = account.authorityHost;
    const what: Record<Exclude<ValidationReason, 'unreachable'>, string> = {
      'unknown-app': `unknown app (AADSTS${code}): the identity platform has no app ${account.appId} in tenant '${tenant}'; check the app ID${account.tenant === MULTI_TENANT ? ' and that the app is multi-tenant' : ' and the tenant'}`,
      'wrong-secret': `wrong secret (AADSTS${code}): the client secret is not one of app ${account.appId}'s; give the secret's value, not its ID`,
      'expired-secret': `expired secret (AADSTS${code}): the client secret of app ${account.appId} has expired; create a new one under the app registration's Certificates & secrets`,
      'wrong-tenant': `wrong tenant (AADSTS${code}): the identity platform at ${host} does not know tenant '${tenant}'`,
      refused: `refused (AADSTS${code}): ${detail}`,
    };
    return {
      valid: false,
      reason,
      aadsts: code,
      message: what[reason],
      error: new IdentityError('IdentityRefused', what[reason], { context: { account: account.name, aadsts: code } }),
    };
  }

  function unreachable(why: string): Outcome {
    const message = `unreachable: the identity platform at ${account.authorityHost} failed: ${why}`;
    return {
      valid: false,
      reason: 'unreachable',
      message,
      error: new IdentityError('IdentityUnavailable', message, { context: { account: account.name } }),
    };
  }
}

/** The AADSTS code of a refusal: the SDK's `errorResponse.errorCodes`, else the first `AADSTSnnn` of its message. */
function aadstsCode(err: unknown, text: string): number | undefined {
  const codes = (err as { errorResponse?: { errorCodes?: unknown } } | undefined)?.errorResponse?.errorCodes;
  if (Array.isArray(codes) && typeof codes[0] === 'number') return codes[0];
  const m = /AADSTS(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** The platform's description without the trace lines: `AADSTS7000215: Invalid client secret provided. …`. */
function description(text: string): string {
  const m = /AADSTS\d+:[^\r\n]*/.exec(text);
  return m ? m[0] : firstLine(text);
}

function firstLine(text: string): string {
  return (text.split(/\r?\n/)[0] ?? '').slice(0, 300);
}

/** What the tenant's OpenID discovery document says: an AADSTS refusal, or why it could not be read. */
function discover(
  authorityHost: string,
  tenant: string,
  ca: string | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<{ aadsts?: number; description: string; failure?: string }> {
  const url = `${authorityHost}/${encodeURIComponent(tenant)}/v2.0/.well-known/openid-configuration`;
  return new Promise((resolve) => {
    const req = httpsRequest(url, { signal, timeout: timeoutMs, ...(ca === undefined ? {} : { ca }) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 65_536) body += chunk;
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        let parsed: { error_codes?: unknown; error_description?: unknown } | undefined;
        try {
          parsed = JSON.parse(body) as typeof parsed;
        } catch {
          parsed = undefined;
        }
        const codes = parsed?.error_codes;
        if (status >= 400 && status < 500 && Array.isArray(codes) && typeof codes[0] === 'number')
          resolve({
            aadsts: codes[0],
            description: description(typeof parsed?.error_description === 'string' ? parsed.error_description : ''),
          });
        else resolve({ description: '', failure: `its OpenID configuration answered ${status}` });
      });
      res.on('error', (err) => resolve({ description: '', failure: errorMessage(err) }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ description: '', failure: errorMessage(err) }));
    req.end();
  });
}
