import assert from 'node:assert/strict';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { startSystem, until } from './harness.js';

describe('relay readiness', function () {
  this.timeout(60_000);
  const track = closedAfterEach();

  it('reports a loop whose receives keep failing, names why, and goes not-ready for all once stopping', async () => {
    const system = track(await startSystem({ config: (c) => (c.serviceBus.queues.activities = 'no-such-queue') }));
    const relay = system.relay(['intake', 'recorder']);
    const failing = await until('the intake loop reported not ready', () =>
      relay.readiness().find((c) => c.name === 'intake loop (no-such-queue)' && !c.ok),
    );
    assert.match(failing.detail ?? '', /receives failed in a row: .*no-such-queue/i);
    assert.deepEqual(
      relay
        .readiness()
        .filter((c) => c.ok)
        .map((c) => c.name),
      ['accepting work', 'recorder loop (interactions)'],
      'the healthy loop stays ready',
    );
    await relay.stopIntake();
    assert.deepEqual(
      relay.readiness().filter((c) => c.ok),
      [],
      'nothing is ready once shutdown has begun',
    );
  });

  it('names the loops that stopped without being asked to (the worker then exits to be restarted), none after a stop', async () => {
    const system = track(await startSystem());
    const closedUnderIt = system.relay(['recorder']);
    assert.deepEqual(closedUnderIt.deadLoops(), []);
    await closedUnderIt.close();
    assert.deepEqual(
      closedUnderIt.deadLoops().map((l) => l.name),
      ['recorder loop (interactions)'],
    );

    const stopped = system.relay(['recorder']);
    await stopped.stopIntake();
    await stopped.close();
    assert.deepEqual(stopped.deadLoops(), [], 'a stop is not a death');
  });
});
