import assert from 'node:assert/strict';
import { waitFor } from '../../../helpers/wait.js';
import {
  activities,
  call,
  customerMessage,
  emulators,
  post,
  readAll,
  SECRET,
  startConversation,
  Stream,
} from './helpers.js';

describe('Direct Line emulator: conversations over HTTP and the stream', () => {
  const start = emulators();

  it('starts a conversation (201, token, expires_in 1800, a ws stream URL) and keeps the whole exchange in order, the customer’s own activities included', async () => {
    const em = await start();
    const c = await startConversation(em.url);
    assert.equal(c.expires_in, 1800);
    assert.match(
      c.streamUrl,
      new RegExp(`^ws://127\\.0\\.0\\.1:${em.port}/v3/directline/conversations/${c.conversationId}/stream\\?t=`),
    );
    assert.notEqual(c.token, SECRET);
    for (const text of ['one', 'two', 'three']) {
      const sent = await post(em.url, c, customerMessage(text));
      assert.equal(sent.status, 200);
      assert.ok(sent.body.id.startsWith(`${c.conversationId}|`), 'the id names the conversation');
    }
    await waitFor(
      'the end of the conversation',
      () => em.conversations()[0]?.activities.some((a) => a.type === 'endOfConversation') || undefined,
    );
    const all = await readAll(em.url, c);
    const order = all.activities.map((a) =>
      a.from?.id === 'customer-1' ? `c:${a.text}` : a.type === 'endOfConversation' ? 'end' : a.text!.slice(0, 12),
    );
    assert.equal(order[0], 'c:one');
    assert.equal(order[1], 'Thank you fo', 'the greeting answers the first message');
    assert.deepEqual(order.slice(-2), ['Please tell ', 'end'], 'the survey link, then endOfConversation');
    const texts = all.activities.filter((a) => a.from?.id === 'omnichannel-agent-1').map((a) => a.text);
    assert.deepEqual(texts, [
      'Agent 1 (SMS support) got your message 1: "one"',
      'Agent 1 (SMS support) got your message 2: "two"',
      'Agent 1 (SMS support) got your message 3: "three"',
    ]);
    const customer = all.activities.filter((a) => a.from?.id === 'customer-1').map((a) => a.text);
    assert.deepEqual(customer, ['one', 'two', 'three'], 'Get Activities carries the customer’s own activities too');
    assert.equal(all.activities.at(-1)?.type, 'endOfConversation');
    assert.equal(new Set(all.activities.map((a) => a.id)).size, all.activities.length, 'ids are unique');
  });

  it('pages Get Activities and gives opaque watermarks that resume exactly where they were given', async () => {
    const em = await start({ pageSize: 2, agents: { channels: [] } });
    const c = await startConversation(em.url);
    for (let i = 1; i <= 5; i++) assert.equal((await post(em.url, c, customerMessage(`m${i}`))).status, 200);
    const first = await activities(em.url, c);
    assert.deepEqual(
      first.body.activities.map((a) => a.text),
      ['m1', 'm2'],
      'one page only',
    );
    const w = first.body.watermark!;
    assert.ok(Number.isNaN(Number(w)), `the watermark is not a number: ${w}`);
    const rest = await readAll(em.url, c, w);
    assert.deepEqual(
      rest.activities.map((a) => a.text),
      ['m3', 'm4', 'm5'],
    );
    assert.equal(
      (await activities(em.url, c, rest.watermark)).body.activities.length,
      0,
      'nothing after the last watermark',
    );
    assert.equal(
      (await activities(em.url, c, rest.watermark)).body.watermark,
      rest.watermark,
      'an empty page gives the same watermark back',
    );
    const garbled = await activities(em.url, c, 'not-a-watermark');
    assert.deepEqual(
      garbled.body.activities.map((a) => a.text),
      ['m1', 'm2'],
      'a watermark it never gave replays from the start',
    );
  });

  it('streams: replays what came after the start, pushes new activities with watermarks, typing only on the stream and without a watermark', async () => {
    const em = await start();
    const c = await startConversation(em.url);
    await post(em.url, c, customerMessage('before the socket'));
    const s = new Stream(c.streamUrl);
    await s.opened;
    await post(em.url, c, customerMessage('with the socket open'));
    await s.until('the second reply', (x) => x.activities().some((a) => a.text?.includes('message 2')));
    assert.equal(s.sets[0]!.activities[0]!.text, 'before the socket', 'replayed first');
    const typing = s.sets.filter((set) => set.activities[0]!.type === 'typing');
    assert.ok(typing.length >= 1, 'a typing activity before the reply');
    assert.ok(
      typing.every((set) => set.watermark === undefined),
      'typing sets carry no watermark',
    );
    const all = await readAll(em.url, c);
    assert.ok(!all.activities.some((a) => a.type === 'typing'), 'typing never reaches Get Activities');
    const lastSet = s.sets.filter((set) => set.watermark !== undefined).at(-1)!;
    assert.equal(
      lastSet.watermark,
      (await readAll(em.url, c)).watermark,
      'the stream’s watermark is the one Get Activities gives',
    );
    s.close();
  });

  it('reconnects: Get Conversation with a watermark gives a new stream URL that replays from it; a stream URL serves one connection', async () => {
    const em = await start({ agents: { channels: [] } });
    const c = await startConversation(em.url);
    const first = new Stream(c.streamUrl);
    await first.opened;
    await post(em.url, c, customerMessage('a'));
    await first.until('a', (x) => x.activities().length === 1);
    const watermark = first.sets[0]!.watermark!;
    first.close();
    await waitFor('the first stream closed', () => first.closed);
    await post(em.url, c, customerMessage('b'));
    await post(em.url, c, customerMessage('c'));
    const again = await call<{ conversationId: string; token: string; streamUrl: string }>(
      em.url,
      'GET',
      `/v3/directline/conversations/${c.conversationId}?watermark=${encodeURIComponent(watermark)}`,
      c.token,
    );
    assert.equal(again.status, 200);
    assert.equal(again.body.conversationId, c.conversationId);
    const second = new Stream(again.body.streamUrl);
    await second.opened;
    await second.until('b and c', (x) => x.activities().length === 2);
    assert.deepEqual(
      second.activities().map((a) => a.text),
      ['b', 'c'],
    );
    const reused = new Stream(c.streamUrl);
    await assert.rejects(reused.opened, /Unexpected server response: 403/, 'the first stream URL was used');
    second.close();
  });

  it('allows one stream per conversation (the newer is closed with reason collision), can drop streams, and sends empty keep-alives', async () => {
    const em = await start({ keepAliveMs: 20, agents: { channels: [] } });
    const c = await startConversation(em.url);
    const one = new Stream(c.streamUrl);
    await one.opened;
    const url2 = (
      await call<{ streamUrl: string }>(em.url, 'GET', `/v3/directline/conversations/${c.conversationId}`, c.token)
    ).body.streamUrl;
    const two = new Stream(url2);
    await waitFor('the collision', () => two.closed);
    assert.deepEqual(two.closed, { code: 4001, reason: 'collision' });
    await one.until('two keep-alives', (x) => x.empty >= 2);
    assert.equal(em.closeStreams(), 1);
    await waitFor('the dropped stream', () => one.closed);
    assert.equal(one.closed?.code, 1011);
  });

  it('refuses a stream URL after its connect window (60 s by default)', async () => {
    let now = Date.UTC(2026, 0, 1);
    const em = await start({ clock: () => now, agents: { channels: [] } });
    const c = await startConversation(em.url);
    now += 60_000;
    await assert.rejects(new Stream(c.streamUrl).opened, /Unexpected server response: 403/);
  });

  it('answers a malformed activity with 400 and a body naming what is wrong', async () => {
    const em = await start();
    const c = await startConversation(em.url);
    const noFrom = await post(em.url, c, { type: 'message', text: 'x' });
    assert.equal(noFrom.status, 400);
    assert.deepEqual(noFrom.body, {
      error: { code: 'BadArgument', message: 'The activity has no from.id' },
    } as unknown);
    const noType = await post(em.url, c, { from: { id: 'u' } });
    assert.equal(noType.status, 400);
    const notJson = await fetch(`${em.url}/v3/directline/conversations/${c.conversationId}/activities`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${c.token}`, 'Content-Type': 'application/json' },
      body: '{',
    });
    assert.equal(notJson.status, 400);
    assert.equal((await readAll(em.url, c)).activities.length, 0, 'nothing was stored');
  });

  it('answers hostile requests with 4xx, never a 500: bad escapes, unknown routes, wrong methods, oversized JSON', async () => {
    const em = await start();
    const c = await startConversation(em.url);
    assert.equal((await call(em.url, 'GET', '/v3/directline/conversations/%E0%A4%A/activities', SECRET)).status, 404);
    assert.equal((await fetch(`${em.url}/_simulator/conversations/%E0%A4%A`)).status, 404);
    assert.equal((await call(em.url, 'GET', '/v3/directline/elsewhere', SECRET)).status, 404);
    assert.equal(
      (await call(em.url, 'DELETE', `/v3/directline/conversations/${c.conversationId}/activities`, SECRET)).status,
      405,
    );
    const big = await post(em.url, c, { type: 'message', from: { id: 'u' }, text: 'x'.repeat(2 * 1024 * 1024) });
    assert.equal(big.status, 413);
    assert.equal((await post(em.url, c, customerMessage('still serving'))).status, 200);
  });
});
