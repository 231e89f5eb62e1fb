/**
 * The options every adapter takes, validated once when the provider is created.
 */
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
  return { provider, timeoutMs: options.timeoutMs, fetch: options.fetch, secrets, log: areaLogger(options.log, 'provider', { provider }) };
}

export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

export function adapterOptions(options: CreateProviderOptions = {}): AdapterOptions {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`provider timeoutMs must be a positive integer (milliseconds); found ${String(timeoutMs)}`);
  }
  return { timeoutMs, log: options.log ?? silentLogger(), ...(options.fetch === undefined ? {} : { fetch: options.fetch }) };
}

/** Checks a non-empty string setting; the message names the setting, never its value. */
export function requireText(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new TypeError(`${name} must be a non-empty string; found ${value === '' ? 'an empty string' : typeof value}`);
  return value;
}

/** Checks an http(s) URL setting and returns it as given. */
export function requireHttpUrl(value: unknown, name: string): string {
  const text = requireText(value, name);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`${name} must be an absolute http(s) URL; found a value that does not parse as one`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`${name} must be an http(s) URL; found protocol ${url.protocol}`);
  return text;
}
