/**
 * The recorder's `remember` set through the real SDK against the project's emulator: a write that outlives its
 * message's lock leaves a completion that resolves with the outcome `lockLost`; the bus delivers the interaction
 * again, and the recorder completes it without writing it twice.
 */
import assert from 'node:assert/strict';
import { silentLogger } from '../../../src/log.js';
import { interactionMessageId } from '../../../src/pipeline/messages.js';
import { marketingInteraction } from '../../helpers/fixtures.js';
import type { InteractionWriter } from '../../../src/pipeline/ports.js';
import { RecorderStage } from '../../../src/pipeline/recorder/stage.js';
import { startBatchLoop } from '../../../src/servicebus/index.js';
import { closedAfterEach, delayUnlessAborted, relayClient, startBus, waitFor } from '../servicebus/helpers.js';

const interaction = marketingInteraction('a-1');

describe('pipeline: the recorder after a lost lock, through the real SDK', function () {
  this.timeout(20_000);
  const track = closedAfterEach();

  it('an interaction whose lock ran out during its write is delivered again and completed, not written twice', async () => {
    const bus = track(await startBus({ queues: { interactions: { LockDuration: 'PT0.3S', MaxDeliveryCount: 5 } } }));
    const client = track(relayClient(bus));
    await client
      .createSender('interactions')
      .sendMessages([{ body: interaction, messageId: interactionMessageId(interaction) }]);
    const writes: number[] = [];
    const writer: InteractionWriter = {
      write: async (items) => {
        writes.push(items.length);
        await delayUnlessAborted(800); // past the lock: its completion finds the lock lost
        return items.map(() => ({ ok: true }));
      },
    };
    const stage = new RecorderStage({ writer, log: silentLogger() });
    track(
      startBatchLoop({
        client,
        queue: 'interactions',
        maxWaitMs: 100,
        concurrency: 1,
        maxLockRenewalMs: 0,
        handler: (deliveries, signal) => stage.handle(deliveries, signal),
      }),
    );
    await waitFor('the redelivery completed', () => (stage.stats().alreadyWritten === 1 ? true : undefined), 8_000);
    assert.deepEqual(writes, [1], 'written once');
    assert.deepEqual(await client.createReceiver('interactions').peekMessages(1), []);
  });
});
