import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import sinon from 'sinon';
import { runCall, type CallDeps } from '../../../../src/emulators/providers/exchange.js';
import { FaultPlan } from '../../../../src/emulators/providers/faults.js';
import { Records } from '../../../../src/emulators/providers/records.js';

/** Enough of a ServerResponse for runCall: records what was written, emits close when ended. */
class FakeResponse extends EventEmitter {
  status: number | undefined;
  body: string | undefined;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  writeHead(status: number): this {
    this.status = status;
    this.headersSent = true;
    return this;
  }
  end(body: string): void {
    this.body = body;
    this.writableFinished = true;
    this.emit('close');
  }
}

describe('provider simulators: one call (latency and faults, fake timers)', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  function deps(faults: FaultPlan, records: Records, baseLatencyMs = 0): CallDeps {
    return {
      provider: 'contract',
      records,
      faults,
      baseLatencyMs,
      now: () => Date.now(),
      renderFault: (a) => ({ status: a.kind === 'rateLimit' ? 429 : a.status, body: { fault: a.kind } }),
      held: new Set(),
    };
  }

  const accepting = (sender: string) => ({
    sender,
    execute: (now: number) => ({
      reply: { status: 200, body: { ok: true } },
      accepted: {
        time: now,
        provider: 'contract' as const,
        channel: 'c',
        path: '/contract/c/messages',
        sender,
        recipient: 'r',
        text: 't',
        providerMessageId: 'm1',
      },
    }),
  });

  it('answers after the base latency plus the fault latency, and accepts at the time it answers', async () => {
    const faults = new FaultPlan(1);
    faults.set({ contract: { latencyMs: 300 } });
    const records = new Records(1000);
    const res = new FakeResponse();
    const done = runCall(deps(faults, records, 200), res as unknown as ServerResponse, accepting('s1'));
    await clock.tickAsync(499);
    assert.equal(res.status, undefined, 'not yet');
    assert.equal(records.stats().contract.inFlight, 1);
    await clock.tickAsync(1);
    await done;
    assert.equal(res.status, 200);
    assert.equal(records.messages()[0]!.time, 1_000_500);
    assert.equal(records.stats().contract.inFlight, 0);
  });

  it('a held call (timeout) stays in flight until its response closes', async () => {
    const faults = new FaultPlan(1);
    faults.set({ contract: { timeoutNext: 1 } });
    const records = new Records(1000);
    const d = deps(faults, records);
    const res = new FakeResponse();
    await runCall(d, res as unknown as ServerResponse, accepting('s1'));
    await clock.tickAsync(600_000);
    assert.equal(res.status, undefined);
    assert.equal(d.held.size, 1);
    assert.equal(records.stats().contract.senders['s1']!.inFlight, 1);
    res.emit('close');
    assert.equal(d.held.size, 0);
    assert.equal(records.stats().contract.senders['s1']!.inFlight, 0);
    assert.equal(records.stats().contract.faults.timeouts, 1);
  });

  it('a reset while a call is in flight keeps the in-flight counts right', async () => {
    const faults = new FaultPlan(1);
    faults.set({ contract: { latencyMs: 100 } });
    const records = new Records(1000);
    const res = new FakeResponse();
    const done = runCall(deps(faults, records), res as unknown as ServerResponse, accepting('s1'));
    records.reset();
    assert.equal(records.stats().contract.senders['s1']!.inFlight, 1);
    await clock.tickAsync(100);
    await done;
    assert.equal(records.stats().contract.inFlight, 0);
    assert.equal(records.stats().contract.senders['s1']!.inFlight, 0);
    assert.equal(records.stats().contract.accepted, 1);
  });
});
