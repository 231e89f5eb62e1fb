import assert from 'node:assert/strict';
import { waitFor } from '../../../helpers/wait.js';
import {
  activities,
  call,
  customerMessage,
  emulators,
  ManualClock,
  post,
  readAll,
  SECRET,
  startConversation,
  Stream,
  type Started,
} from './helpers.js';

type ErrorBody = { error: { code: string; message: string } };

describe('Direct Line emulator: tokens, expiry and faults', () => {
  const start = emulators();

  it('answers 401 without credentials or with an unknown secret or token, 403 for a token of another conversation, 404 for an unknown conversation', async () => {
    const em = await start();
    const a = await startConversation(em.url);
    const b = await startConversation(em.url);
    assert.equal((await call(em.url, 'POST', '/v3/directline/conversations', undefined)).status, 401);
    assert.equal((await call(em.url, 'POST', '/v3/directline/conversations', 'not-a-secret')).status, 401);
    assert.equal((await activities(em.url, a, undefined, 'dl.forged')).status, 401);
    const cross = await post(em.url, a, customerMessage('x'), b.token);
    assert.equal(cross.status, 403);
    assert.equal((cross.body as unknown as ErrorBody).error.message, 'Token not valid for this conversation');
    const unknown = await call<ErrorBody>(em.url, 'GET', '/v3/directline/conversations/nope/activities', SECRET);
    assert.deepEqual(unknown, {
      ...unknown,
      status: 404,
      body: { error: { code: 'BadArgument', message: 'Unknown conversation' } },
    });
    assert.equal(
      (await post(em.url, a, customerMessage('with the secret'), SECRET)).status,
      200,
      'a secret opens any conversation',
    );
  });

  it('generates a token bound to a user, starts its conversation once (201, then 200) and fixes from.id to that user', async () => {
    const em = await start({ agents: { channels: [] } });
    const gen = await call<Started>(em.url, 'POST', '/v3/directline/tokens/generate', SECRET, {
      user: { id: 'dl_customer-7', name: 'C' },
    });
    assert.equal(gen.status, 200);
    assert.equal(gen.body.expires_in, 1800);
    assert.equal(gen.body.streamUrl, undefined, 'Generate Token makes no stream URL');
    const first = await call<Started>(em.url, 'POST', '/v3/directline/conversations', gen.body.token);
    assert.equal(first.status, 201);
    assert.equal(first.body.conversationId, gen.body.conversationId);
    const again = await call<Started>(em.url, 'POST', '/v3/directline/conversations', gen.body.token);
    assert.equal(again.status, 200, 'the same conversation, already started');
    assert.equal(again.body.conversationId, gen.body.conversationId);
    await post(em.url, first.body, customerMessage('spoofed', 'sms', 'someone-else'));
    const [stored] = (await readAll(em.url, first.body)).activities;
    assert.equal(stored!.from?.id, 'dl_customer-7');
    assert.equal(
      (await call(em.url, 'POST', '/v3/directline/tokens/generate', gen.body.token)).status,
      403,
      'a token cannot generate tokens',
    );
  });

  it('expires tokens after expires_in (403 TokenExpired, not refreshable), refreshes live ones (the old one still valid until its own expiry)', async () => {
    const clock = new ManualClock();
    const em = await start({ clock: clock.read, tokenLifetimeSeconds: 600, agents: { channels: [] } });
    const c = await startConversation(em.url);
    assert.equal(c.expires_in, 600);
    clock.advance(300_000);
    const refreshed = await call<Started>(em.url, 'POST', '/v3/directline/tokens/refresh', c.token);
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.body.conversationId, c.conversationId);
    assert.notEqual(refreshed.body.token, c.token);
    assert.equal(refreshed.body.expires_in, 600);
    assert.equal((await post(em.url, c, customerMessage('old token, still valid'))).status, 200);
    clock.advance(300_000);
    const expired = await post(em.url, c, customerMessage('old token, expired'));
    assert.equal(expired.status, 403);
    assert.equal((expired.body as unknown as ErrorBody).error.code, 'TokenExpired');
    const late = await call<ErrorBody>(em.url, 'POST', '/v3/directline/tokens/refresh', c.token);
    assert.equal(late.status, 403);
    assert.equal(late.body.error.code, 'TokenExpired');
    assert.equal((await post(em.url, { ...c, token: refreshed.body.token }, customerMessage('new token'))).status, 200);
    assert.equal(
      (await call(em.url, 'POST', '/v3/directline/tokens/refresh', SECRET)).status,
      400,
      'a secret is not refreshable',
    );
  });

  it('reconnecting gives a new stream URL but never extends the token; uploads are served for 24 h', async () => {
    const clock = new ManualClock();
    const em = await start({
      clock: clock.read,
      tokenLifetimeSeconds: 1800,
      conversationIdleSeconds: 3 * 86400,
      agents: { channels: [] },
    });
    const c = await startConversation(em.url);
    clock.advance(1_000_000);
    const again = await call<Started>(em.url, 'GET', `/v3/directline/conversations/${c.conversationId}`, c.token);
    assert.equal(again.status, 200);
    assert.equal(again.body.expires_in, 800, 'the remaining lifetime of the same token');
    assert.notEqual(again.body.streamUrl, c.streamUrl);
    const up = await fetch(`${em.url}/v3/directline/conversations/${c.conversationId}/upload?userId=u1`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${SECRET}`, 'Content-Type': 'text/plain' },
      body: 'kept a day',
    });
    assert.equal(up.status, 200);
    const [withFile] = (await readAll(em.url, { ...c, token: SECRET })).activities;
    const link = withFile!.attachments![0]!.contentUrl!;
    assert.equal(await (await fetch(link)).text(), 'kept a day');
    clock.advance(24 * 3600 * 1000);
    assert.equal((await fetch(link)).status, 404, 'deleted after 24 hours');
  });

  it('forgets a conversation idle for conversationIdleSeconds: 404 on every call, its stream closed, the record marked expired', async () => {
    const clock = new ManualClock();
    const em = await start({
      clock: clock.read,
      conversationIdleSeconds: 3600,
      tokenLifetimeSeconds: 7200,
      agents: { channels: [] },
    });
    const c = await startConversation(em.url);
    const s = new Stream(c.streamUrl);
    await s.opened;
    clock.advance(3_599_000);
    assert.equal((await post(em.url, c, customerMessage('just in time'))).status, 200, 'an activity keeps it alive');
    clock.advance(3_600_000);
    const gone = await activities(em.url, c);
    assert.equal(gone.status, 404);
    await waitFor('the stream closed', () => s.closed);
    assert.equal((await post(em.url, c, customerMessage('too late'))).status, 404);
    assert.equal((await call(em.url, 'GET', `/v3/directline/conversations/${c.conversationId}`, c.token)).status, 404);
    assert.equal(em.conversations()[0]!.expired, true);
  });

  it('injects a 429 burst with Retry-After and 502s answered before or after the activity was stored', async () => {
    const em = await start({ agents: { channels: [] } });
    const c = await startConversation(em.url);
    em.setFaults({ directline: { rateLimitBurst: { count: 2, retryAfterSeconds: 3 } } });
    for (let i = 0; i < 2; i++) {
      const throttled = await post(em.url, c, customerMessage('throttled'));
      assert.equal(throttled.status, 429);
      assert.equal(throttled.headers.get('retry-after'), '3');
    }
    assert.equal((await post(em.url, c, customerMessage('after the burst'))).status, 200);
    em.setFaults({ directline: { errorNext: 1 } });
    const before = await post(em.url, c, customerMessage('502 before'));
    assert.equal(before.status, 502);
    assert.equal((before.body as unknown as ErrorBody).error.code, 'BotRejectedActivity');
    em.setFaults({ directline: { errorNext: 1, errorAfterAccept: true } });
    assert.equal((await post(em.url, c, customerMessage('502 after'))).status, 502);
    assert.deepEqual(
      (await readAll(em.url, c)).activities.map((a) => a.text),
      ['after the burst', '502 after'],
      'the 502 before was not stored, the one after was',
    );
    const put = await fetch(`${em.url}/_simulator/faults`, {
      method: 'PUT',
      body: JSON.stringify({ directline: { errorStatus: 404 }, bots: {} }),
    });
    assert.equal(put.status, 400);
    assert.match(
      ((await put.json()) as ErrorBody).error.message,
      /faults\.directline\.errorStatus: expected 500, 502 or 503, found 404; faults\.bots: unknown scope/,
    );
    const set = await fetch(`${em.url}/_simulator/faults`, {
      method: 'PUT',
      body: JSON.stringify({ directline: { errorNext: 1, errorStatus: 503 } }),
    });
    assert.deepEqual(await set.json(), { directline: { errorNext: 1, errorStatus: 503 } });
    assert.equal((await activities(em.url, c)).status, 503);
    assert.equal((await activities(em.url, c)).status, 200);
  });
});
