import assert from 'node:assert/strict';
import { ServiceBusError, type ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import sinon from 'sinon';
import { startBatchLoop, startSessionLoop } from '../../../src/servicebus/index.js';
import { stateToBuffer } from '../../../src/servicebus/session-loop.js';

/**
 * A receiver whose receives answer from a script: per entry the messages that arrive together, or an error. Like the
 * SDK, a receive takes at most `max` of them (the rest stay for the next receive) and a receive with no wait (a
 * drain) takes only what is left of the entry at hand.
 */
function fakeReceiver(script: Array<ServiceBusReceivedMessage[] | Error>) {
  const calls: number[] = [];
  const settled: string[] = [];
  let arrived: ServiceBusReceivedMessage[] = [];
  return {
    calls,
    settled,
    isClosed: false,
    /** Like the SDK: an empty answer comes after the full wait, unless `fastEmpty`. */
    fastEmpty: false,
    async receiveMessages(max: number, options: { maxWaitTimeInMs: number }): Promise<ServiceBusReceivedMessage[]> {
      if (arrived.length === 0 && options.maxWaitTimeInMs === 0) return [];
      calls.push(Date.now());
      if (arrived.length === 0) {
        const next = script.shift() ?? [];
        if (next instanceof Error) throw next;
        if (next.length === 0 && !this.fastEmpty) await new Promise((r) => setTimeout(r, options.maxWaitTimeInMs));
        arrived = [...next];
      }
      return arrived.splice(0, max);
    },
    completeMessage: async (m: ServiceBusReceivedMessage) => void settled.push(`complete ${String(m.messageId)}`),
    abandonMessage: async (m: ServiceBusReceivedMessage) => void settled.push(`abandon ${String(m.messageId)}`),
    deadLetterMessage: async (m: ServiceBusReceivedMessage) => void settled.push(`deadLetter ${String(m.messageId)}`),
    close: async () => undefined,
  };
}

const msg = (id: string): ServiceBusReceivedMessage =>
  ({ body: id, messageId: id, deliveryCount: 0 }) as ServiceBusReceivedMessage;

describe('servicebus receive loops (fake SDK, fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers()));
  afterEach(() => clock.restore());

  it('batch loop: backs off exponentially after failed receives and resets after a success', async () => {
    const busy = (): Error => new ServiceBusError('busy', 'ServiceBusy');
    const receiver = fakeReceiver([busy(), busy(), busy(), [], busy()]);
    const client = { createReceiver: () => receiver } as unknown as ServiceBusClient;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      maxWaitMs: 1_000,
      handler: async () => undefined,
      backoff: { initialDelayMs: 100, jitter: 0 },
    });
    await clock.tickAsync(100 + 200 + 400 + 1_000 + 100);
    const stopped = loop.stop();
    await clock.tickAsync(1_000);
    await stopped;
    const gaps = receiver.calls.slice(1).map((t, i) => t - receiver.calls[i]!);
    assert.deepEqual(
      gaps.slice(0, 5),
      [100, 200, 400, 1_000, 100],
      'doubling delays; after a success (an empty wait) it starts again',
    );
  });

  it('batch loop: empty answers that come at once (a closing link) do not make it spin', async () => {
    const receiver = fakeReceiver([]);
    receiver.fastEmpty = true;
    const client = { createReceiver: () => receiver } as unknown as ServiceBusClient;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      maxWaitMs: 1_000,
      handler: async () => undefined,
      backoff: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0 },
    });
    await clock.tickAsync(10_000);
    await loop.close();
    assert.ok(receiver.calls.length >= 5 && receiver.calls.length <= 20, `${receiver.calls.length} receives in 10 s`);
  });

  it('batch loop: abandons what the handler left, at most `concurrency` batches in flight', async () => {
    const receiver = fakeReceiver([[msg('a'), msg('b')], [msg('c')], [msg('d')]]);
    const client = { createReceiver: () => receiver } as unknown as ServiceBusClient;
    let inFlight = 0;
    let most = 0;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      concurrency: 2,
      // It leaves b unsettled, whichever batch b comes in.
      handler: async (ds) => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 1_000));
        for (const d of ds) if (d.messageId !== 'b') await d.complete();
        inFlight--;
      },
    });
    await clock.tickAsync(5_000);
    const closing = loop.close();
    await clock.tickAsync(1_000); // the receive in progress ends after its wait
    await closing;
    assert.equal(most, 2);
    assert.deepEqual(receiver.settled.sort(), ['abandon b', 'complete a', 'complete c', 'complete d']);
  });

  it('session loop: an accept that answers ServiceTimeout at once does not make a slot spin', async () => {
    let accepts = 0;
    const client = {
      acceptNextSession: async () => {
        accepts++;
        throw new ServiceBusError('no session', 'ServiceTimeout');
      },
    } as unknown as ServiceBusClient;
    const loop = startSessionLoop({
      client: { ...client, createReceiver: () => undefined } as unknown as ServiceBusClient,
      queue: 'q',
      maxSessions: 1,
      backoff: { initialDelayMs: 100, maxDelayMs: 1_000, jitter: 0 },
      createSessionHandler: () => ({ onBatch: async () => undefined }),
    });
    await clock.tickAsync(10_000);
    await loop.close();
    assert.ok(accepts >= 5 && accepts <= 20, `${accepts} accepts in 10 s`);
  });

  it('session state comes back as a Buffer whatever the SDK made of its bytes', () => {
    assert.equal(stateToBuffer(undefined), undefined);
    assert.equal(stateToBuffer(null), undefined);
    const raw = Buffer.from([1, 2, 3]);
    assert.equal(stateToBuffer(raw), raw);
    assert.deepEqual(JSON.parse(stateToBuffer({ count: 3 })!.toString('utf8')), { count: 3 });
    assert.equal(stateToBuffer(7)!.toString('utf8'), '7');
  });
});
