/**
 * The options every adapter takes, validated once when the provider is created, and the checks of its settings: a
 * setting the adapter refuses is a `ConfigError` naming its key, never its value.
 */
import { ConfigError } from '../errors.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import type { FetchLike, MappedCall } from './http.js';
import type { ProviderType } from './provider.js';

export interface CreateProviderOptions {
  /** Each provider call's timeout, including reading the answer. @defaultValue 10000 (the channel's `timeoutMs` default) */
  timeoutMs?: number;
  /** A fetch to call instead of the built-in node:http(s) client with its keep-alive agent per origin (tests, proxies). @defaultValue none: node:http(s) */
  fetch?: FetchLike;
  /** Debug lines per call (provider, status, idempotency key, duration); never tokens, URLs or full numbers. @defaultValue silentLogger() */
  log?: Logger;
}

/** What an adapter's constructor receives: the options with their defaults applied. */
export interface AdapterOptions {
  timeoutMs: number;
  fetch?: FetchLike;
  log: Logger;
}

/** What every call of one adapter passes to `postAndMap` besides its request: provider, timeout, fetch, secrets, logger. */
export type AdapterCall = Pick<MappedCall<unknown>, 'provider' | 'timeoutMs' | 'fetch' | 'secrets' | 'log'>;

/** An adapter's {@link AdapterCall}, made once in its constructor (its logger: area `provider`, field `provider`). */
export function adapterCall(provider: ProviderType, options: AdapterOptions, secrets: readonly string[]): AdapterCall {
  return {
    provider,
    timeoutMs: options.timeoutMs,
    fetch: options.fetch,
    secrets,
    log: areaLogger(options.log, 'provider', { provider }),
  };
}

export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

/** Applies the defaults; a `timeoutMs` that is not a positive integer is a `ConfigError` (source `provider options`). */
export function adapterOptions(options: CreateProviderOptions = {}): AdapterOptions {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw settingError('provider options', 'timeoutMs', 'a positive integer (milliseconds)', String(timeoutMs));
  return {
    timeoutMs,
    log: options.log ?? silentLogger(),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  };
}

/**
 * A setting the adapter refuses: a `ConfigError` (`ConfigInvalid`) with one problem. `source` says whose settings
 * (`twilio provider settings`; the relay puts the channel and its file there), `key` is the key within a channel of
 * the channels file (`provider.authToken`, `timeoutMs`); `found` never holds a secret.
 */
export function settingError(source: string, key: string, expected: string, found: string): ConfigError {
  return new ConfigError('ConfigInvalid', [{ source, path: key, expected, found }]);
}

/** Checks a non-empty string setting; the error names the setting, never its value. */
export function requireText(value: unknown, source: string, key: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    const found =
      value === undefined
        ? 'nothing'
        : typeof value !== 'string'
          ? typeof value
          : value === ''
            ? 'an empty string'
            : 'only whitespace';
    throw settingError(source, key, 'a non-empty string', found);
  }
  return value;
}

/** Checks an http(s) URL setting and returns it as given. */
export function requireHttpUrl(value: unknown, source: string, key: string): string {
  const text = requireText(value, source, key);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw settingError(source, key, 'an absolute http(s) URL', 'a value that does not parse as one');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw settingError(source, key, 'an absolute http(s) URL', `protocol ${url.protocol}`);
  return text;
}
