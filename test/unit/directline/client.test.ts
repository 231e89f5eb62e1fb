import assert from 'node:assert/strict';
import { createDirectLineClient, type DirectLineClientOptions } from '../../../src/directline/index.js';
import { isDirectLineError, type DirectLineError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import type { DirectLineConversation } from '../../../src/pipeline/index.js';
import { CaptureStream } from '../../helpers/capture.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { startFakeDirectLine, type FakeDirectLine, type Reply } from './server.js';

const SECRET = 'dl-secret-0123456789abcdef';
const TOKEN = 'conversation-token-abcdefghijklmnop';
const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);
const conversation: DirectLineConversation = {
  conversationId: 'conv/1',
  token: TOKEN,
  tokenExpiresAt: NOW + 1_800_000,
};
const customer = { type: 'message', from: { id: 'customer-1' }, text: 'hello' };

async function rejection(promise: Promise<unknown>): Promise<DirectLineError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isDirectLineError(err), `expected a DirectLineError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** The parts of a multipart/form-data body: headers (lower-case names) and raw data. */
function multipart(contentType: string, body: Buffer): Array<{ headers: Record<string, string>; data: Buffer }> {
  const boundary = /boundary=(\S+)/.exec(contentType)?.[1];
  assert.ok(boundary, `no boundary in ${contentType}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Array<{ headers: Record<string, string>; data: Buffer }> = [];
  let at = body.indexOf(delimiter);
  assert.equal(at, 0, 'the body starts with the boundary');
  for (;;) {
    const start = at + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') {
      assert.equal(body.subarray(start + 2).toString(), '\r\n', 'nothing after the closing boundary');
      return parts;
    }
    const next = body.indexOf(delimiter, start);
    assert.ok(next > 0, 'every part is followed by a boundary');
    const part = body.subarray(start + 2, next - 2);
    const split = part.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, split).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, data: part.subarray(split + 4) });
    at = next;
  }
}

describe('Direct Line client', () => {
  const track = closedAfterEach();
  let server: FakeDirectLine;
  const client = (options: Partial<DirectLineClientOptions> = {}) =>
    track(createDirectLineClient({ baseUrl: server.url, secret: SECRET, now: () => NOW, ...options }));

  beforeEach(async () => {
    server = track(await startFakeDirectLine());
  });

  describe('requests', () => {
    it('start: POST /v3/directline/conversations with the secret; tokenExpiresAt is expires_in seconds from the call', async () => {
      server.reply({
        status: 201,
        body: { conversationId: 'c1', token: TOKEN, expires_in: 1800, streamUrl: 'wss://x' },
      });
      const started = await client({ baseUrl: `${server.url}/` }).start();
      assert.deepEqual(started, { conversationId: 'c1', token: TOKEN, tokenExpiresAt: NOW + 1_800_000 });
      const [req] = server.received;
      assert.deepEqual(
        [req!.method, req!.url, req!.headers.authorization],
        ['POST', '/v3/directline/conversations', `Bearer ${SECRET}`],
      );
      assert.equal(req!.headers['content-length'], '0');
    });

    it('calls one after another share one kept-alive connection', async () => {
      server.reply({ status: 200, body: { id: 'x' } });
      const c = client();
      for (let i = 0; i < 10; i++) await c.post(conversation, customer);
      assert.equal(server.received.length, 10);
      assert.equal(server.connections(), 1);
    });

    it('keeps a path prefix of the base URL', async () => {
      server.reply({ status: 201, body: { conversationId: 'c1', token: TOKEN, expires_in: 60 } });
      await client({ baseUrl: `${server.url}/behind/a/proxy//` }).start();
      assert.equal(server.received[0]!.url, '/behind/a/proxy/v3/directline/conversations');
    });

    it('renew: GET the conversation with the secret (its id escaped), a fresh token', async () => {
      server.reply({
        status: 200,
        body: { conversationId: 'conv/1', token: 'fresh-token-0123456789', expires_in: 900 },
      });
      const renewed = await client().renew('conv/1');
      assert.deepEqual(renewed, {
        conversationId: 'conv/1',
        token: 'fresh-token-0123456789',
        tokenExpiresAt: NOW + 900_000,
      });
      const [req] = server.received;
      assert.deepEqual(
        [req!.method, req!.url, req!.headers.authorization],
        ['GET', '/v3/directline/conversations/conv%2F1', `Bearer ${SECRET}`],
      );
    });

    it('renew: an answer without expires_in (the reconnect page example) is completed by a refresh of the new token', async () => {
      server.reply((r) =>
        r.method === 'GET'
          ? { status: 200, body: { conversationId: 'conv/1', token: 'renewed-token-0123456789', streamUrl: 'wss://x' } }
          : { status: 200, body: { conversationId: 'conv/1', token: 'refreshed-token-0123456789', expires_in: 1200 } },
      );
      const renewed = await client().renew('conv/1');
      assert.deepEqual(renewed, {
        conversationId: 'conv/1',
        token: 'refreshed-token-0123456789',
        tokenExpiresAt: NOW + 1_200_000,
      });
      assert.deepEqual(
        server.received.map((r) => [r.method, r.url, r.headers.authorization]),
        [
          ['GET', '/v3/directline/conversations/conv%2F1', `Bearer ${SECRET}`],
          ['POST', '/v3/directline/tokens/refresh', 'Bearer renewed-token-0123456789'],
        ],
      );
    });

    it('renew: an answer for another conversation is unreadable, and the error keeps no token', async () => {
      server.reply({
        status: 200,
        body: { conversationId: 'other', token: 'leaked-token-0123456789', expires_in: 900 },
      });
      const err = await rejection(client().renew('conv/1'));
      assert.equal(err.code, 'DirectLineAnswerUnreadable');
      assert.match(err.message, /names conversation other, not conv\/1/);
      assert.doesNotMatch(JSON.stringify(err.toJSON()), /leaked-token/);
    });

    it('refresh: POST /v3/directline/tokens/refresh with the token', async () => {
      server.reply({
        status: 200,
        body: { conversationId: 'conv/1', token: 'refreshed-0123456789', expires_in: 1800 },
      });
      const refreshed = await client().refresh(conversation);
      assert.equal(refreshed.token, 'refreshed-0123456789');
      assert.equal(refreshed.tokenExpiresAt, NOW + 1_800_000);
      assert.deepEqual(
        [server.received[0]!.method, server.received[0]!.url, server.received[0]!.headers.authorization],
        ['POST', '/v3/directline/tokens/refresh', `Bearer ${TOKEN}`],
      );
    });

    it('post: the activity as JSON with the token; answers the activity id', async () => {
      server.reply({ status: 200, body: { id: 'conv/1|0000001' } });
      const activity = { ...customer, channelData: { channeltype: 'sms', relayMessageId: 'm-1' } };
      assert.equal(await client().post(conversation, activity), 'conv/1|0000001');
      const [req] = server.received;
      assert.equal(req!.url, '/v3/directline/conversations/conv%2F1/activities');
      assert.equal(req!.headers.authorization, `Bearer ${TOKEN}`);
      assert.match(req!.headers['content-type'] ?? '', /^application\/json/);
      assert.deepEqual(JSON.parse(req!.body.toString('utf8')), activity);
    });

    it('upload: multipart/form-data with the activity part first, then each file with its name and type, bytes intact', async () => {
      server.reply({ status: 200, body: { id: 'conv/1|0000002' } });
      const image = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
      const files = [
        { name: 'photo "1".png', contentType: 'image/png', data: image },
        {
          name: 'note.txt',
          contentType: 'text/plain\r\nX-Injected: yes',
          data: Buffer.from('ünïcode\r\n--not a boundary'),
        },
      ];
      const activity = { ...customer, text: 'two files', channelData: { relayMessageId: 'm-2' } };
      assert.equal(await client().upload(conversation, activity, files), 'conv/1|0000002');
      const [req] = server.received;
      assert.equal(req!.url, '/v3/directline/conversations/conv%2F1/upload?userId=customer-1');
      assert.equal(req!.headers.authorization, `Bearer ${TOKEN}`);
      const type = req!.headers['content-type'] ?? '';
      assert.match(type, /^multipart\/form-data; boundary=/);
      const parts = multipart(type, req!.body);
      assert.equal(parts.length, 3);
      assert.deepEqual(parts[0]!.headers, {
        'content-disposition': 'form-data; name="activity"',
        'content-type': 'application/vnd.microsoft.activity',
      });
      assert.deepEqual(JSON.parse(parts[0]!.data.toString('utf8')), activity);
      assert.deepEqual(parts[1]!.headers, {
        'content-disposition': 'form-data; name="file"; filename="photo %221%22.png"',
        'content-type': 'image/png',
      });
      assert.ok(parts[1]!.data.equals(image), 'the image arrives byte for byte');
      assert.deepEqual(parts[2]!.headers, {
        'content-disposition': 'form-data; name="file"; filename="note.txt"',
        'content-type': 'text/plain X-Injected: yes',
      });
      assert.ok(parts[2]!.data.equals(files[1]!.data));
    });

    it('upload: refuses an activity without from.id and an empty file list, before any call', async () => {
      const c = client();
      const file = { name: 'a', contentType: 'text/plain', data: Buffer.from('a') };
      await assert.rejects(c.upload(conversation, { type: 'message', from: { id: '' } }, [file]), /needs a from\.id/);
      await assert.rejects(c.upload(conversation, customer, []), /at least one file/);
      assert.equal(server.received.length, 0);
    });

    it('activities: pages from the watermark (replayed verbatim) until an empty page; returns every activity and the last watermark', async () => {
      const pages: Record<string, { activities: unknown[]; watermark?: string }> = {
        'w 0/a+b': {
          activities: [{ id: 'a1', type: 'message', from: { id: 'bot', name: 'Agent' }, text: 'hi' }],
          watermark: 'w=1',
        },
        'w=1': {
          activities: [
            { id: 'a2', type: 'message', from: { id: 'customer-1', role: 'user' }, text: 'x', extra: true },
            {
              id: 'a3',
              type: 'message',
              from: { id: 'bot' },
              attachments: [{ contentType: 'image/png', contentUrl: 'https://blob/1.png', name: '1.png' }],
              channelData: { k: 1 },
              timestamp: '2026-12-07T12:00:00Z',
            },
          ],
          watermark: 'w=3',
        },
        'w=3': { activities: [{ id: 'a4', type: 'endOfConversation', from: { id: 'bot' } }], watermark: 'w=4' },
      };
      server.reply((r) => {
        const watermark = new URL(r.url, 'http://x').searchParams.get('watermark') ?? '';
        return { status: 200, body: pages[watermark] ?? { activities: [], watermark } };
      });
      const read = await client().activities(conversation, 'w 0/a+b');
      assert.deepEqual(
        read.activities.map((a) => a.id),
        ['a1', 'a2', 'a3', 'a4'],
      );
      assert.deepEqual(read.activities[1], {
        id: 'a2',
        type: 'message',
        from: { id: 'customer-1', role: 'user' },
        text: 'x',
      });
      assert.deepEqual(read.activities[2]!.attachments, [
        { contentType: 'image/png', contentUrl: 'https://blob/1.png', name: '1.png' },
      ]);
      assert.equal(read.watermark, 'w=4');
      assert.deepEqual(
        server.received.map((r) => new URL(r.url, 'http://x').searchParams.get('watermark')),
        ['w 0/a+b', 'w=1', 'w=3', 'w=4'],
      );
      assert.ok(server.received.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
    });

    it('activities: no watermark reads from the start; a page that does not move the watermark (or has none) ends the read; maxPages bounds it', async () => {
      let n = 0;
      server.reply(() => ({
        status: 200,
        body: { activities: [{ id: `a${n}`, type: 'message', from: { id: 'bot' } }], watermark: String(++n) },
      }));
      const bounded = await client({ maxPages: 3 }).activities(conversation, undefined);
      assert.equal(new URL(server.received[0]!.url, 'http://x').searchParams.has('watermark'), false);
      assert.deepEqual([bounded.activities.length, bounded.watermark], [3, '3']);
      server.reply({
        status: 200,
        body: { activities: [{ id: 'same', type: 'message', from: { id: 'bot' } }], watermark: '3' },
      });
      const stuck = await client().activities(conversation, '3');
      assert.deepEqual([stuck.activities.length, stuck.watermark], [1, '3']);
      server.reply({ status: 200, body: { activities: [{ id: 'no-mark', type: 'message', from: { id: 'bot' } }] } });
      const unmarked = await client().activities(conversation, '3');
      assert.deepEqual(
        [unmarked.activities.length, unmarked.watermark],
        [1, '3'],
        'a page without a watermark keeps the one before',
      );
    });

    it('activities: an activity without type or from.id, or a body that is no ActivitySet, is unreadable', async () => {
      for (const body of [
        { activities: [{ id: 'x', from: { id: 'bot' } }] },
        { activities: [{ id: 'x', type: 'message' }] },
        { activities: [{ id: 'x', type: 'message', from: { id: 'b' }, attachments: [{ contentUrl: 'u' }] }] },
        { watermark: '1' },
        '<html>gateway</html>',
      ]) {
        server.reply({ status: 200, body });
        const err = await rejection(client().activities(conversation, undefined));
        assert.equal(err.code, 'DirectLineAnswerUnreadable', JSON.stringify(body));
        assert.equal(err.retryable, true);
      }
    });
  });

  describe('errors', () => {
    const error = (code: string, message = 'm'): { error: { code: string; message: string } } => ({
      error: { code, message },
    });
    const table: Array<{
      name: string;
      op?: 'start' | 'post';
      reply: Exclude<Reply, 'hang' | { cut: number }>;
      code: string;
      retryAfterMs?: number;
    }> = [
      {
        name: '429 with Retry-After in seconds',
        reply: { status: 429, headers: { 'retry-after': '7' }, body: error('Throttled') },
        code: 'DirectLineThrottled',
        retryAfterMs: 7000,
      },
      {
        name: '429 without Retry-After',
        reply: { status: 429, body: error('Throttled') },
        code: 'DirectLineThrottled',
      },
      { name: '500', reply: { status: 500, body: error('ServiceError') }, code: 'DirectLineUnavailable' },
      {
        name: '502 (the bot failed)',
        reply: { status: 502, body: error('BotRejectedActivity') },
        code: 'DirectLineUnavailable',
      },
      {
        name: '503 with Retry-After',
        reply: { status: 503, headers: { 'retry-after': '2' }, body: error('ServiceError') },
        code: 'DirectLineUnavailable',
        retryAfterMs: 2000,
      },
      {
        name: '403 TokenExpired',
        reply: { status: 403, body: error('TokenExpired', 'Token expired') },
        code: 'DirectLineTokenExpired',
      },
      {
        name: '403 other',
        reply: { status: 403, body: error('BadArgument', 'Token not valid for this conversation') },
        code: 'DirectLineUnauthorized',
      },
      { name: '401', reply: { status: 401, body: error('BadArgument') }, code: 'DirectLineUnauthorized' },
      {
        name: '404 on a conversation',
        reply: { status: 404, body: error('BadArgument', 'Unknown conversation') },
        code: 'DirectLineConversationGone',
      },
      {
        name: '404 on Start Conversation (no service at this URL)',
        op: 'start',
        reply: { status: 404, body: 'Not Found' },
        code: 'DirectLineUnauthorized',
      },
      { name: '400', reply: { status: 400, body: error('BadArgument') }, code: 'DirectLineBadRequest' },
      { name: '413', reply: { status: 413, body: error('MessageSizeTooBig') }, code: 'DirectLineBadRequest' },
      {
        name: '302 (never followed)',
        reply: { status: 302, headers: { location: 'https://login.example' } },
        code: 'DirectLineAnswerUnreadable',
      },
      {
        name: '200 that is not JSON',
        reply: { status: 200, body: '<html>proxy</html>' },
        code: 'DirectLineAnswerUnreadable',
      },
      { name: '200 without an id', reply: { status: 200, body: { ok: true } }, code: 'DirectLineAnswerUnreadable' },
      {
        name: '201 start without expires_in',
        op: 'start',
        reply: { status: 201, body: { conversationId: 'c', token: TOKEN } },
        code: 'DirectLineAnswerUnreadable',
      },
    ];
    for (const row of table) {
      it(`${row.name} → ${row.code}`, async () => {
        server.reply(row.reply);
        const c = client();
        const err = await rejection(row.op === 'start' ? c.start() : c.post(conversation, customer));
        assert.equal(err.code, row.code);
        assert.equal(err.retryAfterMs, row.retryAfterMs);
        assert.equal(err.context?.['status'], row.reply.status);
        assert.equal(err.context?.['operation'], row.op ?? 'post');
        const said = (row.reply.body as { error?: { code: string; message: string } } | undefined)?.error;
        if (said) assert.deepEqual([err.context?.['code'], err.context?.['message']], [said.code, said.message]);
      });
    }

    it('never puts the secret or the token in an error or a log line, even when the answer echoes them', async () => {
      const stream = new CaptureStream();
      const log = createLogger({ level: 'debug', stream, pretty: false });
      server.reply((r) => ({
        status: 401,
        body: error('BadArgument', `Invalid token or secret: ${r.headers.authorization}`),
      }));
      const c = client({ log });
      const errors = [await rejection(c.start()), await rejection(c.post(conversation, customer))];
      for (const err of errors) {
        const text = `${err.message} ${JSON.stringify(err.toJSON())}`;
        assert.match(text, /\[REDACTED\]/);
        assert.doesNotMatch(text, new RegExp(`${SECRET}|${TOKEN}`));
      }
      assert.ok(stream.lines().length >= 2, 'a debug line per call');
      assert.doesNotMatch(stream.text, new RegExp(`${SECRET}|${TOKEN}`));
    });

    it('a timeout and a refused connection are DirectLineUnavailable (retryable); the caller aborting rejects with its own reason', async () => {
      server.reply('hang');
      const timedOut = await rejection(client({ timeoutMs: 50 }).post(conversation, customer));
      assert.deepEqual(
        [timedOut.code, timedOut.retryable, timedOut.context?.['reason']],
        ['DirectLineUnavailable', true, 'timeout'],
      );
      const stop = new AbortController();
      const pending = client().activities(conversation, undefined, stop.signal);
      const reason = new Error('worker stopping');
      setTimeout(() => stop.abort(reason), 20);
      await assert.rejects(pending, (err) => err === reason);
      const url = server.url;
      await server.close();
      const refused = await rejection(client({ baseUrl: url }).start());
      assert.deepEqual(
        [refused.code, refused.context?.['reason'], refused.context?.['errno']],
        ['DirectLineUnavailable', 'connection', 'ECONNREFUSED'],
      );
    });

    it('a 2xx cut off after its status line is unreadable (the post may be stored); any other status cut off is unavailable', async () => {
      server.reply({ cut: 200 });
      const taken = await rejection(client().post(conversation, customer));
      assert.deepEqual([taken.code, taken.retryable], ['DirectLineAnswerUnreadable', true]);
      server.reply({ cut: 502 });
      const failed = await rejection(client().post(conversation, customer));
      assert.deepEqual([failed.code, failed.context?.['reason']], ['DirectLineUnavailable', 'connection']);
    });

    it('checks its options once, naming the one that is wrong', () => {
      const base = { baseUrl: 'https://directline.botframework.com', secret: SECRET };
      assert.throws(
        () => createDirectLineClient({ ...base, baseUrl: 'directline.botframework.com' }),
        /baseUrl must be an http\(s\) URL/,
      );
      assert.throws(
        () => createDirectLineClient({ ...base, baseUrl: 'https://u:p@directline.botframework.com' }),
        /without credentials/,
      );
      assert.throws(() => createDirectLineClient({ ...base, secret: ' ' }), /secret must be a non-empty string/);
      assert.throws(
        () => createDirectLineClient({ ...base, timeoutMs: 0 }),
        /timeoutMs must be an integer >= 1, found 0/,
      );
      assert.throws(() => createDirectLineClient({ ...base, maxPages: 1.5 }), /maxPages must be an integer >= 1/);
      const ok = createDirectLineClient({ ...base, baseUrl: 'https://europe.directline.botframework.com/' });
      assert.equal(ok.baseUrl, 'https://europe.directline.botframework.com');
      ok.close();
    });
  });
});
