import assert from 'node:assert/strict';
import sinon from 'sinon';
import { AdaptiveConcurrency, LatencyEstimate } from '../../../../src/pipeline/dispatch/concurrency.js';
import { SenderLimiter } from '../../../../src/pipeline/dispatch/sender-limiter.js';
import { worstCaseInWindow } from './fakes.js';

/**
 * Within a step of Little's law's figure: at least rate × latency, and above it by less than the step that lowers
 * the size (2, or a tenth), plus one for the rounding up.
 */
function assertNear(actual: number, needed: number, what: string): void {
  assert.ok(
    actual >= needed && actual - needed <= Math.max(2, Math.ceil(actual / 10)),
    `${what}: ${actual} calls in flight, rate × latency needs ${needed}`,
  );
}

describe("a sender's calls in flight, sized from its rate and latency", () => {
  describe('AdaptiveConcurrency', () => {
    const sized = (maxConcurrency = 1000, messages = 1000) =>
      new AdaptiveConcurrency({ messages, intervalMs: 1000, maxConcurrency, latency: new LatencyEstimate() });

    it('starts at the limit before any latency is seen, and never above the window’s slots', () => {
      assert.equal(sized(100).current, 100);
      assert.equal(sized(100, 30).current, 30, 'no more in flight than messages: each call holds a slot');
      assert.equal(sized(100, 30).limit, 30);
    });

    for (const latencyMs of [10, 50, 500]) {
      it(`converges to rate × latency at ${latencyMs} ms`, () => {
        const c = sized();
        for (let i = 0; i < 200; i++) c.observe(latencyMs);
        assertNear(c.current, latencyMs /* 1000/s × latency */, `${latencyMs} ms`);
      });
    }

    it('never exceeds the ceiling however slow the provider, and never goes below 1 however fast', () => {
      const c = sized(100);
      for (let i = 0; i < 50; i++) {
        c.observe(5000);
        assert.ok(c.current <= 100);
      }
      assert.equal(c.current, 100);
      for (let i = 0; i < 200; i++) {
        c.observe(0);
        assert.ok(c.current >= 1);
      }
      assert.ok(c.current <= 2, `down to 1, or 2 (a step of 1 is not taken): ${c.current}`);
    });

    it('rises with the latency, falls with it, and does not follow jitter', () => {
      const c = sized();
      for (let i = 0; i < 200; i++) c.observe(50);
      assertNear(c.current, 50, 'at 50 ms');
      for (let i = 0; i < 200; i++) c.observe(500);
      assertNear(c.current, 500, 'after rising to 500 ms');
      for (let i = 0; i < 200; i++) c.observe(50);
      assertNear(c.current, 50, 'after falling back to 50 ms');
      // Jitter of ±10 % around 100 ms: the size moves only as far as the deviation calls for, no back and forth.
      for (let i = 0; i < 200; i++) c.observe(100);
      const changes: number[] = [];
      for (let i = 0; i < 400; i++) {
        const change = c.observe(i % 2 === 0 ? 90 : 110);
        if (change !== undefined) changes.push(change.to - change.from);
      }
      // It learns the deviation (rises a few times), then stays: never a step back.
      assert.ok(
        changes.every((step) => step > 0),
        `no back and forth: ${changes.join(', ')}`,
      );
      const settled = c.current;
      for (let i = 0; i < 200; i++) assert.equal(c.observe(i % 2 === 0 ? 90 : 110), undefined);
      assert.equal(c.current, settled);
      assert.ok(c.current >= 110 && c.current <= 200, `headroom for the variance: ${c.current}`);
    });

    it('rises at once when the latency jumps (the deviation counts), not after many calls', () => {
      const c = sized();
      for (let i = 0; i < 200; i++) c.observe(50);
      const before = c.current;
      c.observe(500);
      assert.ok(c.current > 2 * before, `one slow call: ${before} → ${c.current}`);
    });

    it('a session taken again starts from the latency the sender’s earlier sessions saw', () => {
      const latency = new LatencyEstimate();
      const first = new AdaptiveConcurrency({ messages: 1000, intervalMs: 1000, maxConcurrency: 1000, latency });
      for (let i = 0; i < 200; i++) first.observe(40);
      const next = new AdaptiveConcurrency({ messages: 1000, intervalMs: 1000, maxConcurrency: 1000, latency });
      assertNear(next.current, 40, 'the next session');
    });
  });

  describe('in the sender limiter', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers({
        now: 5_000_000,
        toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
      });
    });
    afterEach(() => clock.restore());

    /**
     * Runs `count` calls through `limiter`, each taking `latencyOf(i)` ms of fake time, and records when each ran and
     * how many ran at once.
     */
    async function drive(limiter: SenderLimiter, count: number, latencyOf: (i: number) => number) {
      const spans: Array<{ at: number; end: number }> = [];
      const sizes: number[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const all = Promise.all(
        Array.from({ length: count }, (_, i) =>
          limiter.run(`+1555${i}`, async () => {
            const span = { at: Date.now(), end: 0 };
            spans.push(span);
            maxInFlight = Math.max(maxInFlight, ++inFlight);
            await new Promise((r) => setTimeout(r, latencyOf(i)));
            span.end = Date.now();
            inFlight--;
            sizes.push(limiter.concurrency);
          }),
        ),
      );
      await clock.tickAsync(600_000);
      await all;
      return { spans, sizes, maxInFlight };
    }

    for (const latencyMs of [10, 50, 500]) {
      it(`sizes itself to rate × latency at ${latencyMs} ms, within the rate limit in every window`, async () => {
        const limiter = new SenderLimiter({ messages: 200, intervalMs: 1000, guardMs: 0, maxConcurrency: 1000 });
        const { spans } = await drive(limiter, 1000, () => latencyMs);
        assert.equal(spans.length, 1000);
        assertNear(limiter.concurrency, Math.ceil((200 / 1000) * latencyMs), `${latencyMs} ms`);
        assert.ok(worstCaseInWindow(spans, 1000) <= 200, `at most 200 a window: ${worstCaseInWindow(spans, 1000)}`);
      });
    }

    it('follows the latency up and down without ever exceeding the ceiling or the rate limit', async () => {
      const changes: Array<{ from: number; to: number }> = [];
      const limiter = new SenderLimiter({
        messages: 200,
        intervalMs: 1000,
        guardMs: 0,
        maxConcurrency: 60,
        onConcurrencyChange: ({ from, to }) => changes.push({ from, to }),
      });
      // 50 ms, then 400 ms (rate × latency 80: over the ceiling), then 20 ms again.
      const latencyOf = (i: number) => (i < 600 ? 50 : i < 1200 ? 400 : 20);
      const { spans, sizes, maxInFlight } = await drive(limiter, 1800, latencyOf);
      assert.equal(spans.length, 1800);
      assert.ok(maxInFlight <= 60, `never over the ceiling: ${maxInFlight}`);
      assert.ok(
        changes.every((c) => c.to >= 1 && c.to <= 60),
        JSON.stringify(changes),
      );
      assert.ok(worstCaseInWindow(spans, 1000) <= 200, `at most 200 a window: ${worstCaseInWindow(spans, 1000)}`);
      assertNear(sizes[550] as number, 10, 'at 50 ms');
      assert.equal(sizes[1150], 60, 'at 400 ms: the ceiling');
      assertNear(limiter.concurrency, 4, 'back at 20 ms');
    });
  });
});
