/** Shared set-up for the Direct Line emulator tests: an emulator on port 0, a manual clock, plain-fetch and ws callers. */
import WebSocket from 'ws';
import {
  startDirectLineEmulator,
  type ActivitySet,
  type DirectLineEmulator,
  type DirectLineEmulatorOptions,
} from '../../../../src/emulators/directline/index.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import { waitFor } from '../../../helpers/wait.js';

export const SECRET = 'emulated-directline-secret';

/** A clock the test moves by hand: token and conversation expiry without waiting. */
export class ManualClock {
  constructor(public now: number = Date.UTC(2026, 0, 1, 12, 0, 0)) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Returns a starter of emulators closed after each test of the `describe` block (agents answer after 5 ms). */
export function emulators(): (options?: DirectLineEmulatorOptions) => Promise<DirectLineEmulator> {
  const track = closedAfterEach();
  return async (options = {}) =>
    track(
      await startDirectLineEmulator({
        port: 0,
        identityPort: 0,
        ...options,
        agents: { replyDelayMs: 5, ...options.agents },
      }),
    );
}

export interface Answer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

/** One Direct Line call with `Authorization: Bearer <auth>` and a JSON body. */
export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  auth: string | undefined,
  body?: unknown,
): Promise<Answer<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(auth === undefined ? {} : { Authorization: `Bearer ${auth}` }),
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

export interface Started {
  conversationId: string;
  token: string;
  expires_in: number;
  streamUrl: string;
}

export async function startConversation(base: string, auth = SECRET): Promise<Started> {
  const a = await call<Started>(base, 'POST', '/v3/directline/conversations', auth);
  if (a.status !== 201) throw new Error(`start conversation answered ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body;
}

/** A customer message with the routing channelData of the bring-your-own-channel sample. */
export function customerMessage(text: string, channeltype = 'sms', from = 'customer-1'): Record<string, unknown> {
  return {
    type: 'message',
    from: { id: from },
    text,
    channelData: {
      channeltype,
      conversationcontext: { source: 'test' },
      customercontext: { phonenumber: '+15550000001' },
    },
  };
}

export function post(base: string, c: Started, activity: unknown, auth = c.token): Promise<Answer<{ id: string }>> {
  return call<{ id: string }>(
    base,
    'POST',
    `/v3/directline/conversations/${c.conversationId}/activities`,
    auth,
    activity,
  );
}

export function activities(base: string, c: Started, watermark?: string, auth = c.token): Promise<Answer<ActivitySet>> {
  const q = watermark === undefined ? '' : `?watermark=${encodeURIComponent(watermark)}`;
  return call<ActivitySet>(base, 'GET', `/v3/directline/conversations/${c.conversationId}/activities${q}`, auth);
}

/** Reads every page from `watermark` on; returns the activities and the last watermark. */
export async function readAll(base: string, c: Started, watermark?: string): Promise<ActivitySet> {
  const all: ActivitySet['activities'] = [];
  let w = watermark;
  for (;;) {
    const page = await activities(base, c, w);
    if (page.status !== 200) throw new Error(`get activities answered ${page.status}`);
    w = page.body.watermark;
    if (page.body.activities.length === 0) return { activities: all, ...(w === undefined ? {} : { watermark: w }) };
    all.push(...page.body.activities);
  }
}

/** A WebSocket on a stream URL, with every message it received (empty keep-alives counted apart). */
export class Stream {
  readonly sets: ActivitySet[] = [];
  empty = 0;
  closed?: { code: number; reason: string };
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => {
      const text = String(data);
      if (text === '') this.empty += 1;
      else this.sets.push(JSON.parse(text) as ActivitySet);
    });
    this.ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  activities(): ActivitySet['activities'] {
    return this.sets.flatMap((s) => s.activities);
  }

  until(what: string, test: (s: Stream) => boolean, timeoutMs = 5000): Promise<true> {
    return waitFor(what, () => (test(this) ? true : undefined), timeoutMs);
  }

  close(): void {
    this.ws.close();
  }
}
