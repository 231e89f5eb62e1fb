/**
 * The relay's Direct Line client against the project's Direct Line emulator (real HTTP on loopback): a conversation's
 * life, watermarks and paging, tokens and their expiry (the emulator's manual clock), each fault, uploads, and 200
 * conversations at once through one client.
 */
import assert from 'node:assert/strict';
import { createDirectLineClient, type DirectLineClientOptions } from '../../../src/directline/index.js';
import { isDirectLineError, type DirectLineError } from '../../../src/errors.js';
import type { DirectLineActivity, DirectLineConversation, DirectLinePort } from '../../../src/pipeline/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { emulators, ManualClock, SECRET } from '../emulators/directline/helpers.js';

async function rejection(promise: Promise<unknown>): Promise<DirectLineError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isDirectLineError(err), `expected a DirectLineError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** A customer's message as the conversations stage posts it. */
function customerActivity(text: string, userId = 'customer-1', first = true): DirectLineActivity {
  return {
    type: 'message',
    from: { id: userId },
    text,
    channelData: {
      ...(first
        ? { channeltype: 'sms', conversationcontext: { source: 'sms' }, customercontext: { phone: '+15550000001' } }
        : {}),
      relayMessageId: `relay-${text}`,
    },
  };
}

/** Reads from `watermark` until `done` holds for everything read so far (polling as the stage would). */
async function readUntil(
  client: DirectLinePort,
  conversation: DirectLineConversation,
  watermark: string | undefined,
  done: (all: DirectLineActivity[]) => boolean,
): Promise<{ activities: DirectLineActivity[]; watermark: string | undefined }> {
  const all: DirectLineActivity[] = [];
  let mark = watermark;
  await waitFor('the activities awaited', async () => {
    const read = await client.activities(conversation, mark);
    all.push(...read.activities);
    mark = read.watermark;
    return done(all) ? true : undefined;
  });
  return { activities: all, watermark: mark };
}

const agentMessages = (all: DirectLineActivity[]): DirectLineActivity[] =>
  all.filter((a) => a.type === 'message' && a.from.id !== 'customer-1');

describe('Direct Line client against the Direct Line emulator', () => {
  const start = emulators();
  const track = closedAfterEach();
  const clientFor = (url: string, options: Partial<DirectLineClientOptions> = {}) =>
    track(createDirectLineClient({ baseUrl: url, secret: SECRET, timeoutMs: 5000, ...options }));

  it('a conversation from start to endOfConversation: posts in order, the agents answer, watermarks never repeat an activity', async () => {
    const em = await start({ agents: { endAfterTurns: 2, attachmentEvery: 0 } });
    const client = clientFor(em.url);
    const conversation = await client.start();
    const firstId = await client.post(conversation, customerActivity('one'));
    const first = await readUntil(client, conversation, undefined, (all) => agentMessages(all).length >= 2);
    assert.equal(first.activities[0]!.id, firstId, 'the customer activity comes back first (the stage skips its own)');
    assert.deepEqual(first.activities[0]!.channelData?.['relayMessageId'], 'relay-one');
    const [greeting, reply] = agentMessages(first.activities);
    assert.equal(greeting!.from.id, 'omnichannel');
    assert.match(reply!.text ?? '', /one/);
    await client.post(conversation, customerActivity('two', 'customer-1', false));
    const second = await readUntil(client, conversation, first.watermark, (all) =>
      all.some((a) => a.type === 'endOfConversation'),
    );
    const ids = [...first.activities, ...second.activities].map((a) => a.id);
    assert.equal(new Set(ids).size, ids.length, 'no activity read twice');
    assert.equal(second.activities[0]!.text, 'two');
    const after = await client.activities(conversation, second.watermark);
    assert.deepEqual(after, { activities: [], watermark: second.watermark });
    const [record] = em.conversations();
    assert.deepEqual(
      record!.activities.filter((a) => a.direction === 'customer').map((a) => a.handling),
      ['answered', 'answered'],
    );
    assert.equal(record!.routing?.channelType, 'sms');
  });

  it('pages: reads every page until an empty one, maxPages per call, each later call from the watermark returned', async () => {
    const em = await start({ pageSize: 2, agents: { channels: [] } });
    const texts = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const client = clientFor(em.url);
    const all = await client.start();
    for (const t of texts) await client.post(all, customerActivity(t));
    const everything = await client.activities(all, undefined);
    assert.deepEqual(
      everything.activities.map((a) => a.text),
      texts,
    );
    const bounded = clientFor(em.url, { maxPages: 2 });
    const one = await bounded.activities(all, undefined);
    const two = await bounded.activities(all, one.watermark);
    const three = await bounded.activities(all, two.watermark);
    assert.deepEqual(
      [one, two].map((r) => r.activities.map((a) => a.text)),
      [
        ['a', 'b', 'c', 'd'],
        ['e', 'f', 'g'],
      ],
    );
    assert.deepEqual(three, { activities: [], watermark: two.watermark });
  });

  it('tokens: expiry counted from expires_in on the client clock; refresh before expiry; after it 403 TokenExpired, which renew with the secret fixes', async () => {
    const clock = new ManualClock();
    const em = await start({ clock: clock.read, tokenLifetimeSeconds: 600, agents: { channels: [] } });
    const client = clientFor(em.url, { now: clock.read });
    const conversation = await client.start();
    assert.equal(conversation.tokenExpiresAt, clock.now + 600_000);
    clock.advance(300_000);
    const refreshed = await client.refresh(conversation);
    assert.equal(refreshed.conversationId, conversation.conversationId);
    assert.notEqual(refreshed.token, conversation.token);
    assert.equal(refreshed.tokenExpiresAt, clock.now + 600_000);
    await client.post(refreshed, customerActivity('before expiry'));
    clock.advance(601_000);
    const expired = await rejection(client.post(refreshed, customerActivity('after expiry')));
    assert.deepEqual(
      [expired.code, expired.retryable, expired.context?.['code']],
      ['DirectLineTokenExpired', true, 'TokenExpired'],
    );
    assert.equal(
      (await rejection(client.refresh(refreshed))).code,
      'DirectLineTokenExpired',
      'an expired token cannot be refreshed',
    );
    const renewed = await client.renew(conversation.conversationId);
    assert.equal(renewed.conversationId, conversation.conversationId);
    assert.equal(renewed.tokenExpiresAt, clock.now + 600_000);
    await client.post(renewed, customerActivity('renewed'));
    const read = await client.activities(renewed, undefined);
    assert.deepEqual(
      read.activities.map((a) => a.text),
      ['before expiry', 'renewed'],
    );
  });

  it('an idle conversation expires: every call on it, renew included, is DirectLineConversationGone; a new one starts', async () => {
    const clock = new ManualClock();
    const em = await start({ clock: clock.read, conversationIdleSeconds: 60, agents: { channels: [] } });
    const client = clientFor(em.url, { now: clock.read });
    const conversation = await client.start();
    await client.post(conversation, customerActivity('hello'));
    clock.advance(61_000);
    for (const call of [
      () => client.activities(conversation, undefined),
      () => client.post(conversation, customerActivity('late')),
      () => client.renew(conversation.conversationId),
    ]) {
      const gone = await rejection(call());
      assert.deepEqual(
        [gone.code, gone.retryable, gone.context?.['status']],
        ['DirectLineConversationGone', false, 404],
      );
    }
    const fresh = await client.start();
    assert.notEqual(fresh.conversationId, conversation.conversationId);
    assert.match(await client.post(fresh, customerActivity('again')), /./);
  });

  it('faults: 429 with Retry-After, 502, 503, a 502 after the post was taken, 401 for a bad secret, 403 for another conversation’s token, a timeout', async () => {
    const em = await start({ agents: { channels: [] } });
    const client = clientFor(em.url);
    const conversation = await client.start();
    em.setFaults({ directline: { rateLimitBurst: { count: 1, retryAfterSeconds: 3 } } });
    const throttled = await rejection(client.post(conversation, customerActivity('t')));
    assert.deepEqual(
      [throttled.code, throttled.retryAfterMs, throttled.context?.['status']],
      ['DirectLineThrottled', 3000, 429],
    );
    for (const status of [502, 503] as const) {
      em.setFaults({ directline: { errorNext: 1, errorStatus: status } });
      const failed = await rejection(client.activities(conversation, undefined));
      assert.deepEqual(
        [failed.code, failed.retryable, failed.context?.['status']],
        ['DirectLineUnavailable', true, status],
      );
      if (status === 502) assert.equal(failed.context?.['code'], 'BotRejectedActivity');
    }
    em.setFaults({ directline: { errorNext: 1, errorStatus: 502, errorAfterAccept: true } });
    assert.equal((await rejection(client.post(conversation, customerActivity('taken')))).code, 'DirectLineUnavailable');
    const read = await client.activities(conversation, undefined);
    assert.deepEqual(
      read.activities.map((a) => a.text),
      ['taken'],
      'the 502 came after the activity was stored: a caller that tries again looks for it first',
    );
    em.clearFaults();
    const wrongSecret = 'not-the-secret-0123456789';
    const refused = await rejection(clientFor(em.url, { secret: wrongSecret }).start());
    assert.deepEqual(
      [refused.code, refused.retryable, refused.context?.['status']],
      ['DirectLineUnauthorized', false, 401],
    );
    assert.doesNotMatch(JSON.stringify(refused.toJSON()) + refused.message, new RegExp(wrongSecret));
    const other = await client.start();
    const crossed = await rejection(client.post({ ...conversation, token: other.token }, customerActivity('x')));
    assert.deepEqual([crossed.code, crossed.context?.['status']], ['DirectLineUnauthorized', 403]);
    em.setFaults({ directline: { latencyMs: 500 } });
    const slow = await rejection(clientFor(em.url, { timeoutMs: 100 }).activities(conversation, undefined));
    assert.deepEqual([slow.code, slow.context?.['reason']], ['DirectLineUnavailable', 'timeout']);
  });

  it('uploads: the files reach the conversation byte for byte, with the activity that carries them; too large is a bad request', async () => {
    const em = await start({ maxUploadBytes: 300_000 });
    const client = clientFor(em.url);
    const conversation = await client.start();
    const photo = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7 + (i >> 8)) % 256));
    const note = Buffer.from('a note, ünïcode included\r\n', 'utf8');
    const activity = customerActivity('two files');
    const id = await client.upload(conversation, activity, [
      { name: 'photo.jpg', contentType: 'image/jpeg', data: photo },
      { name: 'note.txt', contentType: 'text/plain', data: note },
    ]);
    const read = await client.activities(conversation, undefined);
    const uploaded = read.activities.find((a) => a.id === id);
    assert.ok(uploaded, 'the upload is an activity of the conversation');
    assert.equal(uploaded.text, 'two files');
    assert.equal(uploaded.from.id, 'customer-1');
    assert.equal(uploaded.channelData?.['relayMessageId'], 'relay-two files');
    assert.deepEqual(
      uploaded.attachments?.map((a) => [a.name, a.contentType]),
      [
        ['photo.jpg', 'image/jpeg'],
        ['note.txt', 'text/plain'],
      ],
    );
    for (const [i, expected] of [photo, note].entries()) {
      const served = Buffer.from(await (await fetch(uploaded.attachments![i]!.contentUrl!)).arrayBuffer());
      assert.ok(served.equals(expected), `${uploaded.attachments![i]!.name} arrived intact`);
    }
    const tooLarge = await rejection(
      client.upload(conversation, customerActivity('big'), [
        { name: 'big.bin', contentType: 'application/octet-stream', data: Buffer.alloc(400_000) },
      ]),
    );
    assert.deepEqual([tooLarge.code, tooLarge.context?.['status']], ['DirectLineBadRequest', 413]);
  });

  it('200 conversations at once through one client: each gets its own messages and its agent’s answer', async () => {
    const em = await start({ agents: { endAfterTurns: 0, attachmentEvery: 0 } });
    const client = clientFor(em.url);
    const n = 200;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const conversation = await client.start();
        const user = `customer-${i}`;
        await client.post(conversation, customerActivity(`hello ${i}`, user));
        await client.post(conversation, customerActivity(`again ${i}`, user, false));
        const mine = (all: DirectLineActivity[]) => all.filter((a) => a.from.id === user).map((a) => a.text);
        const theirs = (all: DirectLineActivity[]) => all.filter((a) => a.from.id !== user && a.type === 'message');
        const read = await readUntil(client, conversation, undefined, (all) => theirs(all).length >= 3);
        return { conversation, mine: mine(read.activities), answers: theirs(read.activities).map((a) => a.text) };
      }),
    );
    assert.equal(new Set(results.map((r) => r.conversation.conversationId)).size, n);
    results.forEach((r, i) => {
      assert.deepEqual(r.mine, [`hello ${i}`, `again ${i}`]);
      const answered = r.answers.slice(1).map((t) => /"([^"]*)"$/.exec(t ?? '')?.[1]);
      assert.deepEqual(answered, [`hello ${i}`, `again ${i}`], `conversation ${i} got its own answers, in order`);
    });
    const records = em.conversations();
    assert.equal(records.filter((r) => r.turns === 2).length, n);
  });
});
