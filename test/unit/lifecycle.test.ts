import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import sinon from 'sinon';
import {
  DirectLineError,
  IdentityError,
  ConfigError,
  DataverseError,
  EventError,
  isLifecycleError,
  LifecycleError,
  MessageTooLargeError,
  ProviderError,
  SolutionError,
  SolutionPackageError,
  StartDeadlineError,
  type ErrorKind,
} from '../../src/errors.js';
import { Closer, closeAll, createShutdown, exitCodeOf, onShutdownSignals } from '../../src/lifecycle.js';

describe('life cycle', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  describe('Closer', () => {
    it('closes in reverse order, once, even when called again', async () => {
      const order: string[] = [];
      const closer = new Closer();
      closer.add('client', { close: async () => void order.push('client') });
      closer.add('receiver', () => void order.push('receiver'));
      const first = closer.close();
      const second = closer.close();
      assert.equal(first, second, 'the same promise');
      await first;
      await closer.close();
      assert.deepEqual(order, ['receiver', 'client']);
    });

    it('runs every step when one fails and reports the failures together', async () => {
      const ran: string[] = [];
      const boom = new Error('socket already closed');
      const promise = closeAll([
        ['a', { close: () => void ran.push('a') }],
        ['b', { close: () => Promise.reject(boom) }],
        ['c', { close: () => void ran.push('c') }],
      ]);
      await assert.rejects(promise, (err: unknown) => {
        assert.ok(isLifecycleError(err));
        assert.equal(err.code, 'CloseFailed');
        assert.deepEqual(err.causes, [boom]);
        assert.match(err.message, /1 of 3 close steps failed/);
        return true;
      });
      assert.deepEqual(ran, ['c', 'a']);
    });

    it('closes at once what is added after closing began', async () => {
      const closer = new Closer();
      await closer.close();
      const late = sinon.spy();
      closer.add('late', late);
      await clock.runAllAsync();
      assert.equal(late.callCount, 1);
    });
  });

  describe('shutdown', () => {
    const plan = (drain: (signal: AbortSignal) => Promise<void>) => {
      const events: string[] = [];
      const closer = new Closer();
      closer.add('client', () => void events.push('close'));
      return {
        events,
        shutdown: createShutdown({
          stopIntake: () => void events.push('stop-intake'),
          drain: async (signal) => {
            events.push('drain-start');
            await drain(signal);
            events.push('drained');
          },
          closer,
          budgetMs: 5_000,
        }),
      };
    };

    it('stops intake, waits for work in flight, then closes', async () => {
      let finish!: () => void;
      const { events, shutdown } = plan(() => new Promise<void>((resolve) => (finish = resolve)));
      const outcome = shutdown('SIGTERM');
      await clock.tickAsync(1_000);
      assert.deepEqual(events, ['stop-intake', 'drain-start'], 'nothing is closed while work is in flight');
      finish();
      const result = await outcome;
      assert.deepEqual(events, ['stop-intake', 'drain-start', 'drained', 'close']);
      assert.deepEqual(
        { ...result, durationMs: 0 },
        { reason: 'SIGTERM', drained: true, closedCleanly: true, durationMs: 0 },
      );
      assert.equal(result.durationMs, 1_000);
    });

    it('respects its budget: aborts the work in flight and closes anyway', async () => {
      let aborted: unknown;
      const { events, shutdown } = plan(
        (signal) =>
          new Promise<void>(() => {
            signal.addEventListener('abort', () => (aborted = signal.reason));
          }),
      );
      const outcome = shutdown('SIGINT');
      await clock.tickAsync(4_999);
      assert.ok(!events.includes('close'), 'not closed before the budget');
      await clock.tickAsync(1);
      const result = await outcome;
      assert.equal(result.drained, false);
      assert.equal(result.durationMs, 5_000);
      assert.deepEqual(events, ['stop-intake', 'drain-start', 'close']);
      assert.ok(isLifecycleError(aborted) && aborted.code === 'ShutdownTimeout');
    });

    it('is idempotent: a second call joins the first', async () => {
      const drain = sinon.stub().resolves();
      const shutdown = createShutdown({ stopIntake: () => undefined, drain, closer: new Closer(), budgetMs: 10 });
      const [a, b] = await Promise.all([shutdown('SIGTERM'), shutdown('SIGINT')]);
      assert.equal(a, b);
      assert.equal(a.reason, 'SIGTERM');
      assert.equal(drain.callCount, 1);
    });

    it('goes on when stopping intake fails, and reports a failed close', async () => {
      const closer = new Closer();
      closer.add('broken', () => {
        throw new Error('nope');
      });
      const shutdown = createShutdown({
        stopIntake: () => {
          throw new Error('receiver gone');
        },
        drain: async () => undefined,
        closer,
      });
      const result = await shutdown('SIGTERM');
      assert.equal(result.drained, true);
      assert.equal(result.closedCleanly, false);
    });

    it('refuses a nonsensical budget', () => {
      assert.throws(
        () =>
          createShutdown({
            stopIntake: () => undefined,
            drain: async () => undefined,
            closer: new Closer(),
            budgetMs: -1,
          }),
        /budgetMs must be a finite number >= 0, got -1/,
      );
    });
  });

  describe('signals', () => {
    it('the first signal shuts down and exits 0; a second exits 130 at once', async () => {
      const source = new EventEmitter();
      const exit = sinon.spy();
      let finish!: () => void;
      const shutdown = createShutdown({
        stopIntake: () => undefined,
        drain: () => new Promise<void>((r) => (finish = r)),
        closer: new Closer(),
        budgetMs: 60_000,
      });
      const dispose = onShutdownSignals(shutdown, { source, exit });
      source.emit('SIGTERM', 'SIGTERM');
      await clock.tickAsync(10);
      assert.equal(exit.callCount, 0, 'waits for the work in flight');
      source.emit('SIGINT', 'SIGINT');
      assert.deepEqual(exit.args, [[130]]);
      finish();
      await clock.tickAsync(0);
      assert.deepEqual(exit.args, [[130], [0]]);
      dispose();
      assert.equal(source.listenerCount('SIGTERM'), 0);
    });

    it('exits 1 when the work could not drain in time', async () => {
      const source = new EventEmitter();
      const exit = sinon.spy();
      const shutdown = createShutdown({
        stopIntake: () => undefined,
        drain: () => new Promise<void>(() => undefined),
        closer: new Closer(),
        budgetMs: 100,
      });
      onShutdownSignals(shutdown, { source, exit });
      source.emit('SIGTERM', 'SIGTERM');
      await clock.tickAsync(100);
      assert.deepEqual(exit.args, [[1]]);
    });
  });

  describe('exitCodeOf', () => {
    const byKind: Record<ErrorKind, [unknown, 1 | 2]> = {
      config: [
        new ConfigError('ConfigInvalid', [
          { source: 'channels.json', path: 'channels.0.provider.signingSecret', expected: 'whsec_', found: 'x' },
        ]),
        2,
      ],
      solutionPackage: [new SolutionPackageError('SolutionInvalid', [{ file: 'customizations.xml', message: 'x' }]), 2],
      dataverse: [new DataverseError('DataverseUnauthorized', 'refused'), 1],
      provider: [new ProviderError('ProviderUnavailable', 'down'), 1],
      directline: [new DirectLineError('DirectLineUnauthorized', 'bad secret'), 1],
      identity: [new IdentityError('IdentityRefused', 'AADSTS7000215'), 1],
      event: [new EventError('EventUndecodable', 'broken JSON'), 1],
      servicebus: [new MessageTooLargeError('outbound', 'm', 2, 1), 1],
      limiter: [new StartDeadlineError(0, 'paused'), 1],
      solution: [new SolutionError('SolutionOptionInvalid', '--parts', 'two text parts'), 2],
      lifecycle: [new LifecycleError('CloseFailed', 'a close failed'), 1],
    };
    for (const [kind, [error, code]] of Object.entries(byKind)) {
      it(`${kind}: ${code}`, () => assert.equal(exitCodeOf(error), code));
    }

    it('an error that is not ours is a failure (1), a TypeError included: bad settings are ConfigErrors', () => {
      for (const error of [new TypeError('bad option'), new Error('ECONNREFUSED'), 'a string', undefined])
        assert.equal(exitCodeOf(error), 1, String(error));
      assert.equal(exitCodeOf({ ...new ConfigError('ConfigInvalid', []) }), 2, 'by brand, not by class');
    });
  });
});
