import assert from 'node:assert/strict';
import { waitFor } from '../../../helpers/wait.js';
import { customerMessage, emulators, post, readAll, startConversation, Stream } from './helpers.js';

describe('Direct Line emulator: 200 conversations at once', function () {
  this.timeout(60_000);
  const start = emulators();

  it('keeps every conversation apart and in order, on the streams and in Get Activities, and records each once', async () => {
    const em = await start({ agents: { replyDelayMs: 20, endAfterTurns: 2, attachmentEvery: 0 } });
    const n = 200;
    const conversations = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const c = await startConversation(em.url);
        const s = new Stream(c.streamUrl);
        await s.opened;
        for (const turn of [1, 2])
          assert.equal(
            (await post(em.url, c, customerMessage(`customer ${i} turn ${turn}`, 'sms', `customer-${i}`))).status,
            200,
          );
        return { i, c, s };
      }),
    );
    await waitFor(
      'every conversation ended',
      () =>
        em.conversations().filter((r) => r.ended && r.activities.at(-1)?.type === 'endOfConversation').length === n
          ? true
          : undefined,
      30_000,
    );
    for (const { i, c, s } of conversations) {
      await s.until(`the end on stream ${i}`, (x) => x.activities().some((a) => a.type === 'endOfConversation'));
      const fromStream = s.activities().filter((a) => a.type !== 'typing');
      const polled = (await readAll(em.url, c)).activities;
      assert.deepEqual(
        fromStream.map((a) => a.id),
        polled.map((a) => a.id),
        `conversation ${i}: the stream and Get Activities agree`,
      );
      assert.deepEqual(
        polled.filter((a) => a.from?.id === 'omnichannel-agent-1').map((a) => a.text),
        [
          `Agent 1 (SMS support) got your message 1: "customer ${i} turn 1"`,
          `Agent 1 (SMS support) got your message 2: "customer ${i} turn 2"`,
        ],
        `conversation ${i}: its own replies, in order`,
      );
      s.close();
    }
    const records = em.conversations();
    assert.equal(records.length, n);
    assert.equal(new Set(records.map((r) => r.conversationId)).size, n);
  });
});
