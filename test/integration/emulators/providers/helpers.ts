/** Shared set-up for the provider simulator tests: a simulator on port 0, a manual clock, plain-fetch callers. */
import { createHmac } from 'node:crypto';
import {
  startProviderSimulators,
  type ProviderSimulators,
  type ProviderSimulatorsOptions,
} from '../../../../src/emulators/providers/index.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

export const ACCOUNT = 'AC0123456789abcdef0123456789abcdef';
export const TOKEN = 'auth-token-1';
export const LONG_CODE = '+4915100000001';
export const BOT_TOKEN = '123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ab';
export const BOT_ID = '123456789';
export const SECRET = `whsec_${Buffer.from('a contract signing secret, 32 b!').toString('base64')}`;

/**
 * A clock the test moves by hand: rate windows and signature timestamps without waiting. Start it at the real time
 * when something it is compared with is stamped from the real clock (the adapters' `webhook-timestamp`).
 */
export class ManualClock {
  constructor(public now: number = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Returns a starter of simulators closed after each test of the `describe` block. */
export function simulators(): (options?: ProviderSimulatorsOptions) => Promise<ProviderSimulators> {
  const track = closedAfterEach();
  return async (options = {}) => track(await startProviderSimulators({ port: 0, ...options }));
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

async function answer<T>(res: Response): Promise<Answer<T>> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

export type TwilioParams = Record<string, string>;

/** `POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded with basic auth. */
export async function twilioSend(
  url: string,
  params: TwilioParams,
  opts: { account?: string; token?: string | null; idempotencyToken?: string; signal?: AbortSignal } = {},
): Promise<Answer<Record<string, unknown>>> {
  const account = opts.account ?? ACCOUNT;
  const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (opts.token !== null)
    headers['Authorization'] = `Basic ${Buffer.from(`${account}:${opts.token ?? TOKEN}`).toString('base64')}`;
  if (opts.idempotencyToken) headers['I-Twilio-Idempotency-Token'] = opts.idempotencyToken;
  const res = await fetch(`${url}/2010-04-01/Accounts/${account}/Messages.json`, {
    method: 'POST',
    headers,
    body: new URLSearchParams(params).toString(),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return answer(res);
}

export function sms(to: string, body = 'Hello', from = LONG_CODE): TwilioParams {
  return { To: to, From: from, Body: body };
}

/** `POST /bot{token}/sendMessage` with a JSON body (or form with `form: true`). */
export async function telegramSend(
  url: string,
  params: Record<string, unknown>,
  opts: { token?: string; form?: boolean; idempotencyKey?: string; signal?: AbortSignal } = {},
): Promise<Answer<Record<string, unknown>>> {
  const headers: Record<string, string> = {
    'Content-Type': opts.form ? 'application/x-www-form-urlencoded' : 'application/json',
  };
  if (opts.idempotencyKey) headers['X-Idempotency-Key'] = opts.idempotencyKey;
  const body = opts.form
    ? new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString()
    : JSON.stringify(params);
  const res = await fetch(`${url}/bot${opts.token ?? BOT_TOKEN}/sendMessage`, {
    method: 'POST',
    headers,
    body,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return answer(res);
}

/** Standard Webhooks headers for a body, computed here independently of the simulator's verifier. */
export function signed(body: string, secret: string, id: string, timestampSeconds: number): Record<string, string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const sig = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampSeconds), 'webhook-signature': `v1,${sig}` };
}

export function contractPayload(
  requestId: string,
  to = '+4915112340001',
  from = 'sender-1',
  text = 'Hello',
): Record<string, unknown> {
  return {
    ChannelDefinitionId: '44444444-4444-4444-8444-444444444444',
    RequestId: requestId,
    From: from,
    To: to,
    Message: { text },
  };
}

/** `POST /contract/{channel}/messages`; `sign` adds Standard Webhooks headers. */
export async function contractSend(
  url: string,
  payload: unknown,
  opts: {
    channel?: string;
    headers?: Record<string, string>;
    sign?: { secret: string; id?: string; timestampSeconds: number };
    signal?: AbortSignal;
  } = {},
): Promise<Answer<Record<string, unknown>>> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...opts.headers };
  if (opts.sign)
    Object.assign(headers, signed(body, opts.sign.secret, opts.sign.id ?? 'msg_1', opts.sign.timestampSeconds));
  const res = await fetch(`${url}/contract/${opts.channel ?? 'sms'}/messages`, {
    method: 'POST',
    headers,
    body,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return answer(res);
}

/** A simulator endpoint under `/_simulator/`. */
export async function control<T = unknown>(
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer<T>> {
  const res = await fetch(`${url}/_simulator/${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
  });
  return answer(res);
}
