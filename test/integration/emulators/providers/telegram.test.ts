import assert from 'node:assert/strict';
import { BOT_ID, BOT_TOKEN, ManualClock, simulators, telegramSend } from './helpers.js';

describe('provider simulators: Telegram sendMessage', () => {
  const start = simulators();

  it('answers {"ok":true,"result":<Message>} to a JSON or form call; the log keeps the relay key from X-Idempotency-Key', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read });
    const res = await telegramSend(sim.url, { chat_id: 1001, text: 'Hello' }, { idempotencyKey: 'activity-1' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {
      ok: true,
      result: {
        message_id: 1,
        from: { id: Number(BOT_ID), is_bot: true, first_name: 'Simulator', username: `sim${BOT_ID}_bot` },
        chat: { id: 1001, first_name: 'Contact', type: 'private' },
        date: Math.floor(clock.now / 1000),
        text: 'Hello',
      },
    });
    clock.advance(1000);
    const form = await telegramSend(sim.url, { chat_id: '1001', text: 'Again' }, { form: true });
    assert.equal((form.body['result'] as { message_id: number }).message_id, 2, 'message ids count per chat');
    const log = sim.messages({ provider: 'telegram' });
    assert.deepEqual(
      log.map((m) => [m.sender, m.recipient, m.text, m.providerMessageId, m.idempotencyKey]),
      [
        [BOT_ID, '1001', 'Hello', '1', 'activity-1'],
        [BOT_ID, '1001', 'Again', '2', undefined],
      ],
    );
    assert.equal(log[0]!.path, `/bot${BOT_ID}:***/sendMessage`, 'the token secret is not logged');
  });

  it('refuses with Telegram error bodies: chat not found, empty text, blocked bot (configured or marked), unknown token', async () => {
    const sim = await start({ telegram: { blockedChats: [2002], unknownChats: ['3003'], tokens: [BOT_TOKEN] } });
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ chat_id: 'not-a-chat', text: 'x' }, 400, 'Bad Request: chat not found'],
      [{ chat_id: 3003, text: 'x' }, 400, 'Bad Request: chat not found'],
      [{ chat_id: 1001, text: '' }, 400, 'Bad Request: message text is empty'],
      [{ text: 'x' }, 400, 'Bad Request: chat_id is empty'],
      [{ chat_id: 2002, text: 'x' }, 403, 'Forbidden: bot was blocked by the user'],
    ];
    for (const [params, code, description] of cases) {
      const res = await telegramSend(sim.url, params);
      assert.equal(res.status, code);
      assert.deepEqual(res.body, { ok: false, error_code: code, description });
    }
    sim.block('telegram', 1001);
    assert.equal((await telegramSend(sim.url, { chat_id: 1001, text: 'x' })).status, 403);
    sim.unblock('telegram', 1001);
    assert.equal((await telegramSend(sim.url, { chat_id: 1001, text: 'x' })).status, 200);
    const unknown = await telegramSend(
      sim.url,
      { chat_id: 1001, text: 'x' },
      { token: '987654321:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-zz' },
    );
    assert.deepEqual(unknown.body, { ok: false, error_code: 401, description: 'Unauthorized' });
    const malformed = await telegramSend(sim.url, { chat_id: 1001, text: 'x' }, { token: 'nonsense' });
    assert.equal(malformed.status, 404);
    assert.deepEqual(sim.stats().telegram.rejected, { '400': 4, '403': 2, '401': 1, '404': 1 });
  });

  it('1 msg/s per chat: the second within 1000 ms gets 429 with retry_after in whole seconds, is not logged but counted', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read });
    assert.equal((await telegramSend(sim.url, { chat_id: 1001, text: 'a' })).status, 200);
    clock.advance(400);
    const refused = await telegramSend(sim.url, { chat_id: 1001, text: 'b' });
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.body, {
      ok: false,
      error_code: 429,
      description: 'Too Many Requests: retry after 1',
      parameters: { retry_after: 1 },
    });
    assert.equal(
      (await telegramSend(sim.url, { chat_id: 1002, text: 'c' })).status,
      200,
      'another chat is not limited',
    );
    clock.advance(600);
    assert.equal((await telegramSend(sim.url, { chat_id: 1001, text: 'd' })).status, 200, '1000 ms after the first');
    assert.deepEqual(
      sim.messages().map((m) => m.text),
      ['a', 'c', 'd'],
    );
    const stats = sim.stats().telegram;
    assert.equal(stats.rateLimited, 1);
    assert.equal(stats.senders[BOT_ID]!.rateLimited, 1);
    assert.equal(stats.accepted, 3);
  });

  it('30 msg/s per bot (configurable): the 31st in a window is refused, then frees 1000 ms after the first', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read, telegram: { perChat: 100 } });
    for (let i = 0; i < 30; i++)
      assert.equal((await telegramSend(sim.url, { chat_id: 5000 + i, text: `m${i}` })).status, 200);
    const refused = await telegramSend(sim.url, { chat_id: 6000, text: 'over' });
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.body['parameters'], { retry_after: 1 });
    clock.advance(1000);
    assert.equal((await telegramSend(sim.url, { chat_id: 6000, text: 'later' })).status, 200);
    assert.equal(sim.stats().telegram.senders[BOT_ID]!.maxInAnyWindow, 30);
  });

  it('20 msg/min per group (negative id or @name): the 21st within a minute gets 429 with retry_after until the first leaves', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read });
    for (const group of ['-1001234567890', '-4567', '@relay_news']) {
      for (let i = 0; i < 20; i++) {
        assert.equal(
          (await telegramSend(sim.url, { chat_id: group, text: `m${i}` })).status,
          200,
          `${group} #${i + 1}`,
        );
        clock.advance(1000);
      }
      // 20 s after the first: the first leaves the minute 40 s from now.
      const refused = await telegramSend(sim.url, { chat_id: group, text: 'over' });
      assert.equal(refused.status, 429, group);
      assert.deepEqual(refused.body['parameters'], { retry_after: 40 });
      clock.advance(40_000);
      assert.equal(
        (await telegramSend(sim.url, { chat_id: group, text: 'later' })).status,
        200,
        `${group}: a minute after the first`,
      );
    }
    // A private chat is held to 1 per second only.
    for (let i = 0; i < 25; i++) {
      assert.equal((await telegramSend(sim.url, { chat_id: 1001, text: `p${i}` })).status, 200);
      clock.advance(1000);
    }
    assert.equal(sim.stats().telegram.rateLimited, 3);
  });

  it('counts repeated relay keys, so duplicates show without Telegram having idempotency', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read });
    await telegramSend(sim.url, { chat_id: 1, text: 'x' }, { idempotencyKey: 'k1' });
    clock.advance(1000);
    await telegramSend(sim.url, { chat_id: 1, text: 'x' }, { idempotencyKey: 'k1' });
    assert.equal(sim.messages().length, 2, 'Telegram sends twice');
    assert.equal(sim.stats().telegram.repeatedKeys, 1);
  });
});
