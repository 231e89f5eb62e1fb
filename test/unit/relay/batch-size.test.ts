import assert from 'node:assert/strict';
import type { Channel } from '../../../src/channels/index.js';
import { dispatchBatchSize } from '../../../src/relay/dispatch.js';

const sender = (messages: number, intervalMs = 1000): Channel =>
  ({ rateLimit: { messages, intervalMs, concurrency: 10, perRecipientMs: 0 } }) as Channel;

describe('relay: dispatch batch size per sender', () => {
  const cases: Array<[string, Channel[], number]> = [
    ['a long code (1 per second) takes 2 seconds of messages', [sender(1)], 2],
    ['10 per second', [sender(10)], 20],
    ['a short code (100 per second) is capped', [sender(100)], 100],
    ['a slow limit (3 per minute) still takes one', [sender(3, 60_000)], 1],
    ['channels sharing a sender: the slowest decides', [sender(30), sender(5)], 10],
    ['an unknown session: the cap', [], 100],
  ];
  for (const [name, channels, expected] of cases) it(name, () => assert.equal(dispatchBatchSize(channels), expected));
});
