import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProviderError, ProviderError } from '../../../src/errors.js';
import type { Logger } from '../../../src/log.js';
import { httpPost, parseRetryAfter, postAndMap, scrubSecrets, type HttpResponse } from '../../../src/providers/http.js';
import { waitFor } from '../../helpers/wait.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { rejection } from './fixtures.js';
import { refusedUrl, startRecordingServer } from './recording-server.js';

const call = { provider: 'twilio' as const, headers: { 'content-type': 'text/plain' }, body: 'hello', timeoutMs: 5000 };

describe('httpPost', () => {
  const track = closedAfterEach();

  /** A server that sends the status line and part of the body, then drops the connection (or, `stall`, sends no more). */
  async function cutOff(status: number, stall = false): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': '200' });
      res.write('{"sid":"SM');
      if (!stall) setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  it('a 2xx whose body is lost is returned with an empty body (the provider took it: not a retryable failure)', async () => {
    const server = track(await cutOff(201));
    const response = await httpPost({ ...call, url: server.url });
    assert.deepEqual([response.status, response.body], [201, '']);
  });

  it('a non-2xx whose body is lost is a retryable failure', async () => {
    const server = track(await cutOff(503));
    const err = await rejection(httpPost({ ...call, url: server.url }));
    assert.ok(isProviderError(err) && err.code === 'ProviderUnavailable' && err.retryable, String(err));
  });

  it('posts the body and headers, and returns status, lower-case headers and parsed JSON', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 201, headers: { 'X-Request-Id': 'abc' }, body: { sid: 'SM1' } });
    const response = await httpPost({ ...call, url: `${server.url}/path?q=1` });
    assert.equal(response.status, 201);
    assert.equal(response.headers['x-request-id'], 'abc');
    assert.deepEqual(response.body, { sid: 'SM1' });
    assert.equal(server.requests[0]?.method, 'POST');
    assert.equal(server.requests[0]?.url, '/path?q=1');
    assert.equal(server.requests[0]?.body, 'hello');
    assert.equal(server.requests[0]?.headers['content-type'], 'text/plain');
  });

  it('keeps one connection alive across calls to the same origin, and sends a multi-byte body whole', async () => {
    let connections = 0;
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
        res.end('{"ok":true}');
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    track({
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    let last: Awaited<ReturnType<typeof httpPost>> | undefined;
    for (let i = 0; i < 5; i++) last = await httpPost({ ...call, url, body: `héllo ✓ ${i}` });
    assert.deepEqual(last?.body, { ok: true });
    assert.equal(last?.headers['set-cookie'], 'a=1, b=2');
    assert.deepEqual(
      bodies,
      [0, 1, 2, 3, 4].map((i) => `héllo ✓ ${i}`),
    );
    assert.equal(connections, 1);
  });

  it('returns a text body as text, and an error status without throwing', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 503, body: 'upstream down' });
    const response = await httpPost({ ...call, url: server.url });
    assert.deepEqual([response.status, response.body], [503, 'upstream down']);
  });

  it('does not follow a redirect (the credentials stay with the provider)', async () => {
    const server = track(await startRecordingServer());
    server.reply((r) =>
      r.url === '/start' ? { status: 307, headers: { location: '/elsewhere' }, body: '' } : { status: 200, body: {} },
    );
    const response = await httpPost({ ...call, url: `${server.url}/start` });
    assert.equal(response.status, 307);
    assert.equal(server.requests.length, 1);
  });

  it('turns a provider that never answers into ProviderTimeout', async () => {
    const server = track(await startRecordingServer());
    server.reply('hang');
    const err = await rejection<unknown>(httpPost({ ...call, url: server.url, timeoutMs: 100 }));
    assert.ok(isProviderError(err), String(err));
    assert.equal(err.code, 'ProviderTimeout');
    assert.equal(err.retryable, true);
    assert.match(err.message, /twilio did not answer within 100 ms/);
  });

  it('a timeout while the body arrives ends the call: ProviderTimeout for a non-2xx, an empty body for a 2xx', async () => {
    const failing = track(await cutOff(503, true));
    const err = await rejection<unknown>(httpPost({ ...call, url: failing.url, timeoutMs: 100 }));
    assert.ok(isProviderError(err) && err.code === 'ProviderTimeout', String(err));
    const taken = track(await cutOff(201, true));
    const response = await httpPost({ ...call, url: taken.url, timeoutMs: 100 });
    assert.deepEqual([response.status, response.body], [201, '']);
  });

  it("rethrows the caller's abort as is, not as a provider fault", async () => {
    const server = track(await startRecordingServer());
    server.reply('hang');
    const controller = new AbortController();
    const pending = rejection<unknown>(httpPost({ ...call, url: server.url, signal: controller.signal }));
    await waitFor('the request to arrive', () => (server.requests.length > 0 ? true : undefined));
    controller.abort();
    const err = await pending;
    assert.equal(isProviderError(err), false);
    assert.equal((err as Error).name, 'AbortError');
  });

  it("rethrows the caller's own abort reason, and an abort before the call", async () => {
    const server = track(await startRecordingServer());
    const reason = new Error('shutting down');
    const controller = new AbortController();
    controller.abort(reason);
    const err = await rejection<unknown>(httpPost({ ...call, url: server.url, signal: controller.signal }));
    assert.equal(err, reason);
    assert.equal(server.requests.length, 0);
  });

  it("leaves nothing on the caller's long-lived signal once a call ends (no listener, however many calls)", async () => {
    const server = track(await startRecordingServer());
    const shutdown = new AbortController();
    for (let i = 0; i < 20; i++) await httpPost({ ...call, url: server.url, signal: shutdown.signal });
    server.reply({ status: 500, body: 'x' });
    await httpPost({ ...call, url: server.url, signal: shutdown.signal });
    await rejection<unknown>(httpPost({ ...call, url: await refusedUrl(), signal: shutdown.signal }));
    assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0);
    assert.equal(server.requests.length, 21);
  });

  it('turns a refused connection into ProviderUnavailable with the socket error as cause', async () => {
    const err = await rejection(httpPost({ ...call, url: await refusedUrl() }));
    assert.ok(isProviderError(err));
    assert.equal(err.code, 'ProviderUnavailable');
    assert.match(err.message, /twilio could not be reached: .*ECONNREFUSED/);
    assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
  });

  it('scrubs secrets out of the answer and never puts the URL in an error', async () => {
    const server = track(await startRecordingServer());
    server.reply({
      status: 401,
      headers: { 'x-echo': 'token s3cr3t-t0ken' },
      body: { message: 'bad token s3cr3t-t0ken' },
    });
    const response = await httpPost({ ...call, url: `${server.url}/bots3cr3t-t0ken/x`, secrets: ['s3cr3t-t0ken'] });
    assert.doesNotMatch(JSON.stringify(response), /s3cr3t-t0ken/);
    assert.match(JSON.stringify(response), /\[REDACTED\]/);
    const refused = await rejection(
      httpPost({ ...call, url: `${await refusedUrl()}/bots3cr3t-t0ken/x`, secrets: ['s3cr3t-t0ken'] }),
    );
    assert.doesNotMatch(
      `${refused.message} ${JSON.stringify(refused)} ${String((refused.cause as Error).message)} ${refused.stack ?? ''}`,
      /s3cr3t-t0ken/,
    );
  });
});

describe('postAndMap', () => {
  /** A logger that keeps its debug lines. */
  function debugLines(enabled = true): { log: Logger; lines: Array<[string, Record<string, unknown>]> } {
    const lines: Array<[string, Record<string, unknown>]> = [];
    const log = {
      isLevelEnabled: (level: string) => enabled && level === 'debug',
      debug: (message: string, fields: Record<string, unknown>) => lines.push([message, fields]),
    } as unknown as Logger;
    return { log, lines };
  }
  const answering = (status: number, body: unknown) => async (): Promise<Response> =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  it('returns the mapped answer and logs status, the fields, duration and outcome', async () => {
    const { log, lines } = debugLines();
    let seen: HttpResponse | undefined;
    const result = await postAndMap({
      ...call,
      url: 'http://127.0.0.1:1/x',
      fetch: answering(201, { sid: 'SM1' }),
      log,
      map: (response) => ((seen = response), { providerMessageId: 'SM1' }),
      fields: { idempotencyKey: 'k-1' },
    });
    assert.deepEqual(result, { providerMessageId: 'SM1' });
    assert.deepEqual(seen?.body, { sid: 'SM1' });
    assert.equal(lines.length, 1);
    const [message, fields] = lines[0]!;
    assert.equal(message, 'provider answered');
    assert.deepEqual(Object.keys(fields), ['status', 'idempotencyKey', 'durationMs', 'outcome']);
    assert.deepEqual(
      { ...fields, durationMs: typeof fields['durationMs'] },
      { status: 201, idempotencyKey: 'k-1', durationMs: 'number', outcome: 'accepted' },
    );
  });

  it("names the outcome of a result with the call's function and message", async () => {
    const { log, lines } = debugLines();
    const result = await postAndMap({
      ...call,
      method: 'GET',
      body: '',
      url: 'http://127.0.0.1:1/x',
      fetch: answering(404, {}),
      log,
      map: () => undefined,
      message: 'provider answered a fetch',
      outcome: (r) => (r === undefined ? 'not-found' : 'found'),
    });
    assert.equal(result, undefined);
    assert.deepEqual(
      [lines[0]?.[0], lines[0]?.[1]['status'], lines[0]?.[1]['outcome']],
      ['provider answered a fetch', 404, 'not-found'],
    );
  });

  it('throws the ProviderError the mapping returns, logged with its code', async () => {
    const { log, lines } = debugLines();
    const refused = new ProviderError('ProviderRateLimited', 'slow down');
    const err = await rejection<unknown>(
      postAndMap({ ...call, url: 'http://127.0.0.1:1/x', fetch: answering(429, {}), log, map: () => refused }),
    );
    assert.equal(err, refused);
    assert.deepEqual([lines[0]?.[1]['status'], lines[0]?.[1]['outcome']], [429, 'ProviderRateLimited']);
  });

  it('with debug lines off, neither logs nor works out the line (its outcome is not asked for)', async () => {
    const { log, lines } = debugLines(false);
    let outcomes = 0;
    const result = await postAndMap({
      ...call,
      url: 'http://127.0.0.1:1/x',
      fetch: answering(201, { sid: 'SM1' }),
      log,
      map: () => 'SM1',
      outcome: () => `${++outcomes}`,
    });
    assert.deepEqual([result, lines.length, outcomes], ['SM1', 0, 0]);
  });

  it('a call that gets no answer throws as httpPost does and logs nothing', async () => {
    const { log, lines } = debugLines();
    const failing = (): Promise<Response> => Promise.reject(new TypeError('fetch failed'));
    const err = await rejection<unknown>(
      postAndMap({ ...call, url: 'http://127.0.0.1:1/x', fetch: failing, log, map: () => 'never' }),
    );
    assert.ok(isProviderError(err) && err.code === 'ProviderUnavailable', String(err));
    assert.equal(lines.length, 0);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-22T01:00:00Z');
  const cases: Array<[string | undefined, number | undefined]> = [
    [undefined, undefined],
    ['', undefined],
    ['0', 0],
    ['3', 3000],
    [' 12 ', 12_000],
    ['1.5', 1500],
    ['Sun, 22 Nov 2026 01:00:30 GMT', 30_000],
    ['Sun, 22 Nov 2026 00:59:00 GMT', 0],
    ['soon', undefined],
    ['-1', undefined],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} → ${String(expected)}`, () => assert.equal(parseRetryAfter(value, now), expected));
  }
});

describe('scrubSecrets', () => {
  it('replaces every occurrence in keys and nested values, and leaves other values alone', () => {
    const out = scrubSecrets(
      { a: 'x TOKEN-123 y TOKEN-123', n: 3, list: ['TOKEN-123'], nested: { 'TOKEN-123': null } },
      ['TOKEN-123', ''],
    );
    assert.deepEqual(out, {
      a: 'x [REDACTED] y [REDACTED]',
      n: 3,
      list: ['[REDACTED]'],
      nested: { '[REDACTED]': null },
    });
  });

  it('copies only what held a secret, and returns an answer that holds none as it is', () => {
    const clean = { sid: 'SM1', list: ['a', { b: 'c' }], nested: { d: 1 } };
    assert.equal(scrubSecrets(clean, ['TOKEN-123']), clean);
    const held = { sid: 'SM1', list: ['a', 'TOKEN-123'], nested: { d: 1 }, after: 'e' };
    const out = scrubSecrets(held, ['TOKEN-123']);
    assert.deepEqual(out, { sid: 'SM1', list: ['a', '[REDACTED]'], nested: { d: 1 }, after: 'e' });
    assert.deepEqual(Object.keys(out), ['sid', 'list', 'nested', 'after']);
    assert.deepEqual(held.list, ['a', 'TOKEN-123'], 'the answer given is not changed');
    assert.equal(out.nested, held.nested);
  });

  it('does not search for a secret too short to be a credential (it would mangle the answer)', () => {
    assert.deepEqual(scrubSecrets({ status: 'accepted' }, ['t']), { status: 'accepted' });
  });
});
