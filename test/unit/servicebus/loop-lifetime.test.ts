/**
 * The receive loops' health view and their lock deadlines, on fake SDK objects with fake timers: what `health()`
 * reports as receives succeed, fail and the client goes away; the session loop releasing a busy session before its
 * lock renewal ends; the warnings for batches that outlive it.
 */
import assert from 'node:assert/strict';
import { ServiceBusError, type ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import sinon from 'sinon';
import { createLogger } from '../../../src/log.js';
import type { SessionCloseReason } from '../../../src/pipeline/ports.js';
import { startBatchLoop, startSessionLoop } from '../../../src/servicebus/index.js';
import { lockDeadline } from '../../../src/servicebus/session-loop.js';
import { CaptureStream } from '../../helpers/capture.js';

const msg = (id: string): ServiceBusReceivedMessage =>
  ({ body: id, messageId: id, deliveryCount: 0 }) as ServiceBusReceivedMessage;

/**
 * A plain receiver answering from a script (messages that arrive together, an error, or `[]` after the full wait); a
 * receive takes at most `max` of them, and one with no wait (a drain) only what is left of the entry at hand.
 */
function scriptedReceiver(script: Array<ServiceBusReceivedMessage[] | Error>) {
  let arrived: ServiceBusReceivedMessage[] = [];
  return {
    isClosed: false,
    async receiveMessages(max: number, options: { maxWaitTimeInMs: number }): Promise<ServiceBusReceivedMessage[]> {
      if (arrived.length === 0) {
        if (options.maxWaitTimeInMs === 0) return [];
        const next = script.shift() ?? [];
        if (next instanceof Error) throw next;
        if (next.length === 0) await new Promise((r) => setTimeout(r, options.maxWaitTimeInMs));
        arrived = [...next];
      }
      return arrived.splice(0, max);
    },
    completeMessage: async () => undefined,
    abandonMessage: async () => undefined,
    deadLetterMessage: async () => undefined,
    close: async () => undefined,
  };
}

/** Closes a loop, running the fake clock until it has closed (a pending receive or accept ends, the grace passes). */
async function closeLoop(clock: sinon.SinonFakeTimers, loop: { close(): Promise<void> }): Promise<void> {
  let closed = false;
  const closing = loop.close().then(() => (closed = true));
  for (let i = 0; i < 100 && !closed; i++) await clock.tickAsync(1_000);
  await closing;
}

function capture() {
  const stream = new CaptureStream();
  return { stream, log: createLogger({ level: 'warn', stream, pretty: false }) };
}

describe('servicebus receive loops: health and lock deadlines (fake SDK, fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => (clock = sinon.useFakeTimers({ now: 1_000_000 })));
  afterEach(() => clock.restore());

  it('batch loop health: answers, failures in a row with the last error, reset by the next answer; not running once stopped', async () => {
    const busy = (n: number): Error => new ServiceBusError(`busy ${n}`, 'ServiceBusy');
    const receiver = scriptedReceiver([busy(1), busy(2), [msg('a')], busy(3)]);
    const client = { createReceiver: () => receiver } as unknown as ServiceBusClient;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      maxWaitMs: 1_000,
      handler: async ([d]) => d!.complete(),
      backoff: { initialDelayMs: 100, jitter: 0 },
    });
    assert.deepEqual(loop.health(), { running: true, consecutiveErrors: 0 }, 'nothing yet');
    await clock.tickAsync(0);
    assert.deepEqual(loop.health(), { running: true, consecutiveErrors: 1, lastError: 'busy 1' });
    await clock.tickAsync(100);
    assert.deepEqual(loop.health(), { running: true, consecutiveErrors: 2, lastError: 'busy 2' });
    await clock.tickAsync(200); // the third receive answers with a message, the fourth fails
    const answeredAt = Date.now();
    assert.deepEqual(loop.health(), {
      running: true,
      lastReceiveAt: answeredAt,
      consecutiveErrors: 1,
      lastError: 'busy 3',
    });
    await clock.tickAsync(100 + 1_000); // an empty answer after the full wait is an answer
    assert.deepEqual(loop.health(), {
      running: true,
      lastReceiveAt: answeredAt + 100 + 1_000,
      consecutiveErrors: 0,
      lastError: 'busy 3',
    });
    const stopping = loop.stop();
    assert.equal(loop.health().running, false);
    await clock.tickAsync(1_000);
    await stopping;
    await closeLoop(clock, loop);
  });

  it('batch loop health: not running once the client is closed under it (it stopped itself)', async () => {
    let created = 0;
    const receiver = { ...scriptedReceiver([]), isClosed: true };
    receiver.receiveMessages = async () => {
      throw new Error('The underlying AMQP connection is closed.');
    };
    const client = {
      createReceiver: () => {
        if (created++ > 0) throw new Error('The underlying AMQP connection is closed.');
        return receiver;
      },
    } as unknown as ServiceBusClient;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      handler: async () => undefined,
      backoff: { initialDelayMs: 100, jitter: 0 },
    });
    await clock.tickAsync(500);
    assert.deepEqual(loop.health(), {
      running: false,
      consecutiveErrors: 2,
      lastError: 'The underlying AMQP connection is closed.',
    });
    await closeLoop(clock, loop);
  });

  it('session loop health: a "no session" answer counts as an answer, failed accepts in a row, not running once the client is closed', async () => {
    const answers: Array<() => never> = [
      () => {
        throw new ServiceBusError('no session', 'ServiceTimeout');
      },
      () => {
        throw new ServiceBusError('busy', 'ServiceBusy');
      },
      () => {
        throw new ServiceBusError('busy again', 'ServiceBusy');
      },
      () => {
        throw new Error('The underlying AMQP connection is closed.');
      },
    ];
    const client = {
      createReceiver: () => undefined,
      acceptNextSession: async () => {
        await new Promise((r) => setTimeout(r, 1_000)); // the broker's wait
        answers.shift()!();
      },
    } as unknown as ServiceBusClient;
    const loop = startSessionLoop({
      client,
      queue: 'q',
      maxSessions: 1,
      backoff: { initialDelayMs: 100, jitter: 0 },
      createSessionHandler: () => ({ onBatch: async () => undefined }),
    });
    await clock.tickAsync(1_000);
    assert.deepEqual(loop.health(), { running: true, lastReceiveAt: 1_001_000, consecutiveErrors: 0 });
    await clock.tickAsync(1_000);
    assert.deepEqual(loop.health(), {
      running: true,
      lastReceiveAt: 1_001_000,
      consecutiveErrors: 1,
      lastError: 'busy',
    });
    await clock.tickAsync(100 + 1_000);
    assert.deepEqual(loop.health(), {
      running: true,
      lastReceiveAt: 1_001_000,
      consecutiveErrors: 2,
      lastError: 'busy again',
    });
    await clock.tickAsync(200 + 1_000);
    assert.deepEqual(loop.health(), {
      running: false,
      lastReceiveAt: 1_001_000,
      consecutiveErrors: 3,
      lastError: 'The underlying AMQP connection is closed.',
    });
    await closeLoop(clock, loop);
  });

  it('session loop: releases a busy session before its lock renewal ends (onClose renewalBudget while the lock is held, then the receiver closed) and accepts it again', async () => {
    const events: string[] = [];
    let accepts = 0;
    let seq = 0;
    const session = (hold: number) => {
      const acceptedAt = Date.now();
      return {
        sessionId: 'S',
        // A 2 s lock that the SDK renews for 10 s: always 1 to 2 s ahead until then, its last renewal reaching 11 s.
        get sessionLockedUntilUtc(): Date {
          return new Date(
            Math.min(acceptedAt + 11_000, acceptedAt + 2_000 + Math.floor((Date.now() - acceptedAt) / 1_000) * 1_000),
          );
        },
        getSessionState: async () => undefined,
        setSessionState: async () => void events.push(`hold ${hold} setState`),
        receiveMessages: async () => [msg(`m${seq++}`)], // a busy sender: always more
        completeMessage: async () => undefined,
        abandonMessage: async () => undefined,
        deadLetterMessage: async () => undefined,
        close: async () => void events.push(`hold ${hold} receiver closed`),
      };
    };
    const client = {
      createReceiver: () => undefined,
      acceptNextSession: async () => {
        if (accepts >= 2) {
          await new Promise((r) => setTimeout(r, 60_000));
          throw new ServiceBusError('no session', 'ServiceTimeout');
        }
        return session(++accepts);
      },
    } as unknown as ServiceBusClient;
    const deadlines: number[] = [];
    const loop = startSessionLoop({
      client,
      queue: 'q',
      maxSessions: 1,
      maxBatch: 1,
      maxWaitMs: 1_000,
      sessionIdleMs: 5_000,
      maxLockRenewalMs: 10_000,
      createSessionHandler: ({ setState, lockedUntil }) => {
        const hold = accepts;
        deadlines.push(lockedUntil!() - Date.now());
        let batches = 0;
        return {
          onBatch: async ([d]) => {
            await new Promise((r) => setTimeout(r, 2_000));
            await d!.complete();
            batches++;
          },
          onClose: async (reason: SessionCloseReason) => {
            events.push(`hold ${hold} onClose ${reason} after ${batches} batches`);
            await setState(Buffer.from('x'));
          },
        };
      },
    });
    // 10 s budget, 1 s margin: batches end at 2, 4 and 6 s; then 6 + 1 (wait) + 2 (longest batch) >= 10 - 1.
    await clock.tickAsync(6_000);
    await clock.tickAsync(12_000);
    await closeLoop(clock, loop);
    assert.deepEqual(deadlines, [10_000, 10_000], 'lockedUntil(): the end of the renewal budget');
    assert.deepEqual(events, [
      'hold 1 onClose renewalBudget after 3 batches',
      'hold 1 setState',
      'hold 1 receiver closed',
      'hold 2 onClose renewalBudget after 3 batches',
      'hold 2 setState',
      'hold 2 receiver closed',
    ]);
  });

  it('session loop: a batch longer than the whole budget: one batch per hold, warned about, released as lockLost once the lock ran out', async () => {
    const { stream, log } = capture();
    const closes: SessionCloseReason[] = [];
    let accepts = 0;
    const client = {
      createReceiver: () => undefined,
      acceptNextSession: async () => {
        if (accepts++ >= 1) {
          await new Promise((r) => setTimeout(r, 60_000));
          throw new ServiceBusError('no session', 'ServiceTimeout');
        }
        return {
          sessionId: 'S',
          sessionLockedUntilUtc: new Date(Date.now() + 3_000), // renewed, say, to 3 s, past the 2 s budget
          getSessionState: async () => undefined,
          setSessionState: async () => undefined,
          receiveMessages: async () => [msg('m')],
          completeMessage: async () => undefined,
          abandonMessage: async () => undefined,
          deadLetterMessage: async () => undefined,
          close: async () => undefined,
        };
      },
    } as unknown as ServiceBusClient;
    const loop = startSessionLoop({
      client,
      queue: 'q',
      maxSessions: 1,
      maxLockRenewalMs: 2_000,
      log,
      createSessionHandler: () => ({
        onBatch: async ([d]) => {
          await new Promise((r) => setTimeout(r, 4_000));
          await d!.complete();
        },
        onClose: (reason) => void closes.push(reason),
      }),
    });
    await clock.tickAsync(4_000);
    await closeLoop(clock, loop);
    assert.deepEqual(closes, ['lockLost']);
    const warnings = stream
      .lines()
      .filter((l) => l.level === 'warn')
      .map((l) => l.message);
    assert.ok(
      warnings.some((m) => /session batch is still running at its lock deadline/.test(String(m))),
      warnings.join(' | '),
    );
  });

  it('batch loop: warns when a batch is still running after maxLockRenewalMs, not before; a short batch gives no warning', async () => {
    const { stream, log } = capture();
    const receiver = scriptedReceiver([[msg('slow')], [msg('quick')]]);
    const client = { createReceiver: () => receiver } as unknown as ServiceBusClient;
    const loop = startBatchLoop({
      client,
      queue: 'q',
      concurrency: 2,
      maxLockRenewalMs: 10_000,
      log,
      handler: async ([d]) => {
        await new Promise((r) => setTimeout(r, d!.messageId === 'slow' ? 12_000 : 100));
        await d!.complete();
      },
    });
    const warned = (): string[] =>
      stream
        .lines()
        .filter((l) => l.level === 'warn')
        .map((l) => String(l.message));
    await clock.tickAsync(9_999);
    assert.deepEqual(warned(), []);
    await clock.tickAsync(1);
    assert.equal(warned().length, 1);
    assert.match(warned()[0]!, /still running after maxLockRenewalMs/);
    assert.equal(stream.lines()[0]!.unsettled, 1);
    await clock.tickAsync(3_000);
    await closeLoop(clock, loop);
    assert.equal(warned().length, 1);
  });

  it('lockDeadline: the later of the renewal end and the current expiry; the expiry alone with renewal off', () => {
    const at = (ms: number): { sessionLockedUntilUtc: Date } => ({ sessionLockedUntilUtc: new Date(ms) });
    assert.equal(lockDeadline(at(5_000), 10_000), 10_000, 'renewal still running: its end');
    assert.equal(lockDeadline(at(12_000), 10_000), 12_000, 'last renewal reached past the end');
    assert.equal(lockDeadline(at(5_000), undefined), 5_000, 'no renewal');
    assert.equal(lockDeadline({} as { sessionLockedUntilUtc: Date }, undefined), Infinity, 'nothing known');
    assert.equal(lockDeadline({} as { sessionLockedUntilUtc: Date }, 10_000), 10_000);
  });
});
