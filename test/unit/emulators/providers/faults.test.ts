import assert from 'node:assert/strict';
import { FaultPlan, faultsSpecProblems, seededRandom } from '../../../../src/emulators/providers/faults.js';

describe('provider simulators: fault plan', () => {
  it('no settings: no latency, no fault', () => {
    assert.deepEqual(new FaultPlan(1).decide('twilio'), { delayMs: 0, action: { kind: 'none' } });
  });

  it('counted faults count down in the scope that holds them; a provider scope takes precedence over all', () => {
    const plan = new FaultPlan(1);
    plan.set({ all: { errorNext: 2, errorStatus: 500 }, telegram: { errorNext: 1 } });
    assert.deepEqual(
      plan.decide('telegram').action,
      { kind: 'error', status: 500, afterAccept: false },
      'errorStatus from all, count from telegram',
    );
    assert.deepEqual(plan.decide('telegram').action, { kind: 'none' }, "telegram's own count (0 now) wins over all's");
    assert.deepEqual(plan.decide('twilio').action, { kind: 'error', status: 500, afterAccept: false });
    assert.deepEqual(plan.decide('contract').action, { kind: 'error', status: 500, afterAccept: false });
    assert.deepEqual(plan.decide('contract').action, { kind: 'none' });
    assert.deepEqual(plan.current(), { all: { errorNext: 0, errorStatus: 500 }, telegram: { errorNext: 0 } });
  });

  it('errorAfterAccept marks the injected errors, counted or random, from the scope that holds it', () => {
    const plan = new FaultPlan(1);
    plan.set({ all: { errorAfterAccept: true }, twilio: { errorNext: 1, errorRate: 1 } });
    assert.deepEqual(
      [plan.decide('twilio').action, plan.decide('twilio').action],
      [
        { kind: 'error', status: 503, afterAccept: true },
        { kind: 'error', status: 503, afterAccept: true },
      ],
    );
  });

  it('order: timeoutNext, then rateLimitBurst, then errorNext', () => {
    const plan = new FaultPlan(1);
    plan.set({
      twilio: {
        errorNext: 1,
        timeoutNext: 1,
        rateLimitBurst: { count: 1, retryAfterSeconds: 3 },
        timeoutAfterAccept: true,
      },
    });
    assert.deepEqual(
      [
        plan.decide('twilio').action,
        plan.decide('twilio').action,
        plan.decide('twilio').action,
        plan.decide('twilio').action,
      ],
      [
        { kind: 'timeout', afterAccept: true },
        { kind: 'rateLimit', retryAfterSeconds: 3 },
        { kind: 'error', status: 503, afterAccept: false },
        { kind: 'none' },
      ],
    );
  });

  it('rates and latency ranges come from the seeded generator: the same seed, the same decisions', () => {
    const decisions = (seed: number) => {
      const plan = new FaultPlan(seed);
      plan.set({ all: { errorRate: 0.3, timeoutRate: 0.2, latencyMs: { min: 10, max: 20 } } });
      return Array.from({ length: 50 }, () => plan.decide('contract'));
    };
    const a = decisions(99);
    assert.deepEqual(decisions(99), a);
    assert.notDeepEqual(decisions(100), a);
    assert.ok(a.every((d) => d.delayMs >= 10 && d.delayMs <= 20));
    const kinds = new Set(a.map((d) => d.action.kind));
    assert.deepEqual([...kinds].sort(), ['error', 'none', 'timeout']);
    const plan = new FaultPlan(5);
    plan.set({ all: { errorRate: 1 }, seed: 99 });
    assert.equal(plan.decide('twilio').action.kind, 'error');
  });

  it('seededRandom gives numbers in [0, 1) reproducibly', () => {
    const r = seededRandom(3);
    const xs = Array.from({ length: 1000 }, r);
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.deepEqual(Array.from({ length: 1000 }, seededRandom(3)), xs);
  });

  it('set replaces named scopes only; clear removes all; bad specs throw with every problem', () => {
    const plan = new FaultPlan(1);
    plan.set({ twilio: { errorNext: 1 }, telegram: { latencyMs: 5 } });
    plan.set({ twilio: { timeoutNext: 1 } });
    assert.deepEqual(plan.current(), { twilio: { timeoutNext: 1 }, telegram: { latencyMs: 5 } });
    plan.clear();
    assert.deepEqual(plan.current(), {});
    assert.deepEqual(
      faultsSpecProblems({
        all: { latencyMs: { min: 5, max: 1 }, rateLimitBurst: { count: 1, retryAfterSeconds: 0 }, bogus: 1 },
        seed: 1.5,
      }),
      [
        'faults.all: unknown fault setting (known: latencyMs, errorRate, errorNext, errorStatus, rateLimitBurst, timeoutRate, timeoutNext, timeoutAfterAccept, errorAfterAccept)'.replace(
          'faults.all:',
          'faults.all.bogus:',
        ),
        'faults.all.latencyMs: expected ms >= 0 or {min, max} with 0 <= min <= max, found {"min":5,"max":1}',
        'faults.all.rateLimitBurst: expected {count: integer >= 0, retryAfterSeconds: integer >= 1}, found {"count":1,"retryAfterSeconds":0}',
        'faults.seed: expected an integer, found 1.5',
      ],
    );
    assert.throws(
      () => plan.set({ contract: { timeoutAfterAccept: 'yes' as unknown as boolean } }),
      /faults\.contract\.timeoutAfterAccept: expected a boolean/,
    );
    assert.throws(
      () => plan.set({ contract: { errorAfterAccept: 1 as unknown as boolean } }),
      /faults\.contract\.errorAfterAccept: expected a boolean/,
    );
  });
});
