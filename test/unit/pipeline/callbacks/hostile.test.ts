/**
 * Requests that must not stall the callbacks service (issue #18 §3), over real HTTP on loopback: while hostile
 * requests run, a valid signed request is answered about as fast as when the service is idle (the ratio of the two
 * median latencies, measured in the same test), and a request that stops half-way through its body is closed by the server.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { CallbacksStage, sealContext } from '../../../../src/pipeline/callbacks/index.js';
import { twilioSignature, webhookHeaders } from '../../../../src/providers/index.js';
import { AUTH_TOKEN, context, harness, KEYS, PHONE, PUBLIC_BASE, SMS, WHSEC_NEW, type Harness } from './fakes.js';

/** How many times slower than idle a valid request may be while the hostile requests run. Before the fixes: hundreds. */
const MAX_SLOWDOWN = 25;
const HOSTILE_CLIENTS = 6;
const SAMPLES = 9;
/** A bound on each hostile client's requests, so that the test ends by itself whatever happens. */
const MAX_ROUNDS = 500;

const statusPath = `/callbacks/sms/twilio/status?t=${sealContext(context(1), 'sms', KEYS)}`;

/** A valid signed Twilio status callback; resolves to its latency in ms (and checks it was accepted). */
async function validRequest(base: string): Promise<number> {
  const form = new URLSearchParams({ MessageSid: 'SM0001', MessageStatus: 'sent', To: PHONE, From: SMS.sender });
  const started = performance.now();
  const res = await fetch(`${base}${statusPath}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${statusPath}`, form),
    },
    body: form.toString(),
  });
  await res.arrayBuffer();
  assert.equal(res.status, 204, 'the valid request is accepted');
  return performance.now() - started;
}

/**
 * The median latency of `SAMPLES` valid requests: one slow sample (a GC pause, a busy machine) does not move it, a
 * stalled service moves them all. Sampling stops early once more than half the samples took longer than `over` ms:
 * the median is then above `over` whatever the rest would be (on a stalled service the first sample takes seconds).
 */
async function medianLatency(base: string, over = Infinity): Promise<number> {
  const samples: number[] = [];
  while (samples.length < SAMPLES && samples.filter((ms) => ms > over).length <= SAMPLES / 2) {
    samples.push(
      await validRequest(base).catch((err: Error) => {
        throw new Error(
          `a valid request failed (${String(err.cause ?? err)}), after ${samples.length} answered in ${samples.map((ms) => ms.toFixed(0)).join(', ')} ms`,
        );
      }),
    );
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** A hostile request, sent as is by every client (a replayed Standard Webhooks request is answered like the first). */
interface Hostile {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * The clients, in a worker thread so that their own work (building and sending 64 KB bodies) does not run on the
 * service's event loop: `clients` loops of `fetch`, each at most `maxRounds` requests, until told to stop; posts
 * `{ first: true }` once a hostile request has been answered, and at the end the statuses and the count.
 */
const CLIENTS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, headers, body, clients, maxRounds } = workerData;
let running = true;
let sent = 0;
const statuses = new Set();
parentPort.on('message', () => { running = false; });
const client = async () => {
  for (let i = 0; i < maxRounds && running; i += 1) {
    sent += 1;
    const res = await fetch(url, { method: 'POST', headers, body });
    await res.arrayBuffer();
    if (statuses.size === 0) parentPort.postMessage({ first: true });
    statuses.add(res.status);
  }
};
Promise.all(Array.from({ length: clients }, client)).then(
  () => parentPort.postMessage({ done: true, sent, statuses: [...statuses] }),
  (err) => parentPort.postMessage({ done: true, sent, statuses: [...statuses], error: String(err) }),
);
`;

/**
 * The slowdown of a valid request (median latency under load / median latency idle) while `HOSTILE_CLIENTS` clients send
 * `hostile` back to back (from the first answer to one of them until the measurement ends); the statuses they got.
 */
async function slowdownUnder(
  base: string,
  hostile: Hostile,
): Promise<{ ratio: number; idle: number; loaded: number; statuses: number[] }> {
  for (let i = 0; i < 3; i += 1) await validRequest(base); // warm-up: connections, JIT
  const idle = await medianLatency(base);
  const worker = new Worker(CLIENTS_WORKER, {
    eval: true,
    workerData: { ...hostile, url: `${base}${hostile.url}`, clients: HOSTILE_CLIENTS, maxRounds: MAX_ROUNDS },
  });
  const first = new Promise<void>((resolve) => worker.on('message', (m: { first?: boolean }) => m.first && resolve()));
  const done = new Promise<{ sent: number; statuses: number[]; error?: string }>((resolve, reject) => {
    worker.on(
      'message',
      (m: { done?: boolean; sent: number; statuses: number[]; error?: string }) => m.done && resolve(m),
    );
    worker.on('error', reject);
  });
  let loaded: number;
  try {
    await first;
    loaded = await medianLatency(base, idle * MAX_SLOWDOWN);
  } finally {
    worker.postMessage('stop');
  }
  const result = await done;
  await worker.terminate();
  assert.equal(result.error, undefined, 'the hostile clients ran without a network error');
  assert.ok(
    result.sent > HOSTILE_CLIENTS,
    `the hostile requests kept coming during the measurement (${result.sent} sent)`,
  );
  return { ratio: loaded / idle, idle, loaded, statuses: result.statuses };
}

const describeRatio = (r: { ratio: number; idle: number; loaded: number }): string =>
  `${r.ratio.toFixed(1)}x (idle median ${r.idle.toFixed(1)} ms, under load ${r.loaded.toFixed(1)} ms)`;

describe('callbacks: hostile requests do not stall the service', function () {
  // Seconds with the fixes; minutes without them (the stalled service still answers every hostile request in flight).
  this.timeout(300_000);
  let h: Harness;
  let stage: CallbacksStage;
  let base: string;
  beforeEach(async () => {
    h = harness({ bodyLimitBytes: 65_536 });
    stage = new CallbacksStage({ ...h.deps, host: '127.0.0.1', port: 0 });
    base = (await stage.start()).url;
  });
  afterEach(async () => {
    await stage.close();
  });

  it('a forged Twilio form of thousands of distinct names is refused before its signature is computed (400)', async () => {
    const names: string[] = [];
    for (let i = 0; names.join('=&').length < 60_000; i += 1) names.push(i.toString(36));
    const forged = {
      url: '/callbacks/sms/twilio/inbound',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'forged' },
      body: `${names.join('=&')}=`,
    };
    const r = await slowdownUnder(base, forged);
    assert.ok(
      r.ratio < MAX_SLOWDOWN,
      `a valid request is ${describeRatio(r)} slower while ${HOSTILE_CLIENTS} forged forms of ${names.length} names run`,
    );
    assert.deepEqual(r.statuses, [400], 'every forged form is refused as a bad request');
    assert.match(h.logs.text, /more parameters than Twilio sends/);
  });

  it('a signed contract reply of one 64,000-character word of dots is read in linear time', async () => {
    const word = `a${'.'.repeat(64_000)}a`;
    const payload = JSON.stringify({ From: PHONE, Message: word, MessageId: 'm-1' });
    const reply = {
      url: '/callbacks/ct/contract/inbound',
      headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, 'msg_1', payload, Date.now()) },
      body: payload,
    };
    const r = await slowdownUnder(base, reply);
    assert.ok(
      r.ratio < MAX_SLOWDOWN,
      `a valid request is ${describeRatio(r)} slower while ${HOSTILE_CLIENTS} signed replies of ${word.length} characters run`,
    );
    assert.deepEqual(
      r.statuses.filter((s) => s >= 300),
      [],
      'the signed replies are accepted (no keyword: nothing recorded)',
    );
    assert.equal(h.interactions.sent.length, 0);
  });
});

describe('callbacks: a request that stops half-way', function () {
  this.timeout(30_000);
  const requestTimeoutMs = 1000;
  let h: Harness;
  let stage: CallbacksStage;
  let port: number;
  beforeEach(async () => {
    h = harness({ requestTimeoutMs });
    stage = new CallbacksStage({ ...h.deps, host: '127.0.0.1', port: 0 });
    port = (await stage.start()).port;
  });
  afterEach(async () => {
    await stage.close();
  });

  it('is answered 408 and closed by the server once requestTimeoutMs has passed', async () => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    const started = performance.now();
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - started)));
    socket.on('error', () => undefined);
    socket.write(
      `POST /callbacks/sms/twilio/inbound HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nFrom=%2B1555`,
    );
    // The test ends by itself: the socket is destroyed after 10 times the timeout if the server never closes it.
    const bound = setTimeout(() => socket.destroy(new Error('the server kept the socket open')), requestTimeoutMs * 10);
    const elapsed = await closed;
    clearTimeout(bound);
    assert.match(
      answer,
      /^HTTP\/1\.1 408 /,
      `the server answered 408 before closing (got ${JSON.stringify(answer.slice(0, 40))})`,
    );
    assert.match(answer, /\r\n\r\n\{"error":"request timeout"\}$/, 'with the fixed body');
    assert.match(h.logs.text, /request not received in full within requestTimeoutMs/);
    assert.match(
      await h.registry.metrics(),
      /channel_relay_callbacks_received_total\{route="other",outcome="timeout"\} 1/,
    );
    assert.ok(
      elapsed >= requestTimeoutMs * 0.9,
      `closed after ${elapsed.toFixed(0)} ms, not before the ${requestTimeoutMs} ms the client was given`,
    );
    assert.ok(
      elapsed < requestTimeoutMs * 3,
      `closed after ${elapsed.toFixed(0)} ms, within 3 times the ${requestTimeoutMs} ms timeout`,
    );
  });

  it('answers what is not HTTP with the fixed 400 and closes the connection', async () => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    const bound = setTimeout(() => socket.destroy(new Error('the server kept the socket open')), requestTimeoutMs * 10);
    await closed;
    clearTimeout(bound);
    assert.match(answer, /^HTTP\/1\.1 400 [^]*\r\n\r\n\{"error":"bad request"\}$/);
    assert.match(
      await h.registry.metrics(),
      /channel_relay_callbacks_received_total\{route="other",outcome="bad-request"\} 1/,
    );
  });

  it('refuses a requestTimeoutMs that is not a positive integer', () => {
    assert.throws(
      () => new CallbacksStage({ ...harness({ requestTimeoutMs: 0 }).deps }),
      /requestTimeoutMs must be a positive integer, found 0/,
    );
  });
});
