import assert from 'node:assert/strict';
import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import sinon from 'sinon';
import { createGovernor, type Governor } from '../../../src/dataverse/index.js';
import { Closer } from '../../../src/lifecycle.js';
import { silentLogger } from '../../../src/log.js';
import type { InteractionMessage } from '../../../src/pipeline/messages.js';
import { marketingInteraction } from '../../helpers/fixtures.js';
import { RecorderStage } from '../../../src/pipeline/index.js';
import type { InteractionWriter } from '../../../src/pipeline/ports.js';
import type { ReceiveLoop } from '../../../src/servicebus/index.js';
import { startStageBatchLoop, type RelayParts } from '../../../src/relay/wiring.js';
import type { RelayConfig } from '../../../src/config/index.js';

function interaction(n: number): InteractionMessage {
  return marketingInteraction(`00000000-0000-4000-8000-${String(n).padStart(12, '0')}`);
}

/** `interactions` with a backlog: every receive gets as many messages as it asks for (bodies parsed, as the SDK's). */
function fullQueue() {
  let next = 0;
  const settle = async (): Promise<void> => undefined;
  return {
    isClosed: false,
    async receiveMessages(max: number): Promise<ServiceBusReceivedMessage[]> {
      return Array.from({ length: max }, () => {
        const n = next++;
        return { body: interaction(n), messageId: `m${n}`, deliveryCount: 0 } as ServiceBusReceivedMessage;
      });
    },
    completeMessage: settle,
    abandonMessage: settle,
    deadLetterMessage: settle,
    close: settle,
  };
}

describe('relay: a stage loop does not receive while its Dataverse calls wait for the limits (fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  let governor: Governor;
  let loop: ReceiveLoop | undefined;
  beforeEach(() => (clock = sinon.useFakeTimers({ now: 1_000_000 })));
  afterEach(async () => {
    const closing = loop?.close();
    await clock.tickAsync(60_000);
    await closing;
    loop = undefined;
    governor.close();
    clock.restore();
  });

  it('the recorder on a full queue holds the writes the governor runs plus one batch, not recorder.concurrency batches', async () => {
    // Two writes at once, each 2 s (100 operations at 20 ms, run one after another as Dataverse does).
    governor = createGovernor({ initialConcurrency: 2, maxConcurrency: 2, minConcurrency: 2 });
    const writing = { now: 0, most: 0, written: 0 };
    const writer: InteractionWriter = {
      write: (items, signal) =>
        governor.run(
          async () => {
            writing.most = Math.max(writing.most, ++writing.now);
            await new Promise((resolve) => setTimeout(resolve, 2_000));
            writing.now--;
            writing.written += items.length;
            return items.map(() => ({ ok: true as const }));
          },
          { signal, operations: items.length },
        ),
    };
    const stage = new RecorderStage({ writer, log: silentLogger() });
    let held = 0;
    let mostHeld = 0;
    const counting = {
      handle: async (batch: Parameters<RecorderStage['handle']>[0], signal: AbortSignal) => {
        mostHeld = Math.max(mostHeld, (held += batch.length));
        try {
          await stage.handle(batch, signal);
        } finally {
          held -= batch.length;
        }
      },
    };
    const parts = {
      bus: { createReceiver: () => fullQueue() } as unknown as ServiceBusClient,
      log: silentLogger(),
      closer: new Closer(),
    } as unknown as RelayParts;
    const settings: RelayConfig['recorder'] = { batchSize: 100, maxWaitMs: 200, concurrency: 16 };
    loop = startStageBatchLoop(parts, 'interactions', settings, counting, { governor });
    await clock.tickAsync(20_000);
    assert.equal(writing.most, 2, 'the governor ran two writes at once');
    assert.ok(writing.written >= 1_800, `it kept writing: ${writing.written} interactions in 20 s`);
    // 16 batches of 100 without the gate; two writing and one waiting with it.
    assert.ok(mostHeld <= 300, `held ${mostHeld} interactions at most`);
  });
});
