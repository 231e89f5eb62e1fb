/**
 * The governor under scaled service protection limits (emulator `limits: {windowMs: 2000, maxRequests: 10}`, and
 * an execution-time budget that binds `$batch` writes), with the rate-limit headers present, omitted or scrambled,
 * through the real dynamics-web-api. Requests and 429s are watched on the wire (Node's http diagnostics channels),
 * so the test sees exactly when each request started and when each 429 with its Retry-After came back.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { createInteractionWriter, type Governor } from '../../../src/dataverse/index.js';
import type { InteractionMessage } from '../../../src/pipeline/messages.js';
import type { DynamicsWebApi } from 'dynamics-web-api';
import type { LimitsConfig } from '../../../src/emulators/dataverse/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { runJourney, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';
import { interactions, marketingInteraction, stack, stats } from './helpers.js';

const LIMITS = { windowMs: 2000, maxRequests: 10 };

interface WireRequest {
  start: number;
  end?: number;
  status?: number;
  retryAfterMs?: number;
}

interface Wire {
  requests: WireRequest[];
  stop(): void;
}

/** Records every Web API request to the emulator on `port`: when it started, when it was answered, and how. */
function watchWire(port: number): Wire {
  const wire: Wire = { requests: [], stop: () => undefined };
  const byRequest = new WeakMap<ClientRequest, WireRequest>();
  const onStart = (m: unknown): void => {
    const { request } = m as { request: ClientRequest };
    if (!request.path.startsWith('/api/') || request.host !== '127.0.0.1') return;
    const entry: WireRequest = { start: performance.now() };
    byRequest.set(request, entry);
    wire.requests.push(entry);
  };
  const onFinish = (m: unknown): void => {
    const { request, response } = m as { request: ClientRequest; response: IncomingMessage };
    const entry = byRequest.get(request);
    if (entry === undefined || response.socket?.remotePort !== port) return;
    entry.end = performance.now();
    entry.status = response.statusCode;
    if (response.statusCode === 429) entry.retryAfterMs = Number(response.headers['retry-after']) * 1000;
  };
  diagnostics.subscribe('http.client.request.start', onStart);
  diagnostics.subscribe('http.client.response.finish', onFinish);
  wire.stop = () => {
    diagnostics.unsubscribe('http.client.request.start', onStart);
    diagnostics.unsubscribe('http.client.response.finish', onFinish);
  };
  return wire;
}

/** Writes until every item is recorded, re-submitting the retryable failures (what the recorder does). */
async function writeAll(
  client: DynamicsWebApi,
  governor: Governor,
  items: InteractionMessage[],
  batchSize: number,
): Promise<{ rounds: number }> {
  const writer = createInteractionWriter(client, governor, { batchSize });
  let todo = items;
  let rounds = 0;
  while (todo.length > 0 && rounds < 50) {
    rounds++;
    const results = await writer.write(todo);
    const again: InteractionMessage[] = [];
    results.forEach((r, i) => {
      if (r.ok) return;
      if (!r.error.retryable) throw r.error;
      again.push(todo[i]!);
    });
    todo = again;
  }
  assert.equal(todo.length, 0, `all written after ${rounds} rounds`);
  return { rounds };
}

describe('governor under scaled Dataverse limits', function () {
  this.timeout(40_000);
  const track = closedAfterEach();

  async function setup(count: number, limits: Partial<LimitsConfig> = LIMITS) {
    const dv = track(await startEmulator({ seed: smallSeed(count), limits }));
    const run = await runJourney(dv.url, { count });
    const items = run.created.map((c) => marketingInteraction(c, 'sent'));
    const wire = watchWire(dv.port);
    track({ close: async () => wire.stop() });
    return { dv, items, wire };
  }

  it('paced from the rate-limit headers: every write lands, nothing is refused', async () => {
    const { dv, items, wire } = await setup(48);
    const s = track(stack(dv.url, 'paced', { windowMs: LIMITS.windowMs }));
    await writeAll(s.client, s.governor, items, 4);
    const stored = await interactions(dv.url);
    assert.equal(stored.count, 48);
    assert.equal(stored.duplicates, 0);
    assert.equal(wire.requests.filter((r) => r.status === 429).length, 0, 'no 429');
    assert.equal((await stats(dv.url)).identities['paced']?.throttled.requests, 0);
    assert.equal(wire.requests.length, 12, '48 interactions in $batch requests of 4');
  });

  it('without headers (pacing off): no request starts while a Retry-After runs, one 429 per pause apart from calls already in flight, one probe after each', async () => {
    const { dv, items, wire } = await setup(48);
    const s = track(stack(dv.url, 'unpaced', { initialConcurrency: 2 }, { observe: false }));
    await writeAll(s.client, s.governor, items, 4);
    const stored = await interactions(dv.url);
    assert.equal(stored.count, 48);
    assert.equal(stored.duplicates, 0);
    const answered = wire.requests.filter((r) => r.end !== undefined);
    assert.equal(answered.length, wire.requests.length, 'every request was answered');
    const throttled = answered.filter((r) => r.status === 429);
    assert.ok(throttled.length > 0, 'the limits were reached');
    assert.equal((await stats(dv.url)).identities['unpaced']?.throttled.requests, throttled.length);
    // Pause periods: a 429 that comes back while no pause runs starts one, for its Retry-After.
    const periods: Array<{ from: number; to: number; throttled: WireRequest[] }> = [];
    for (const t of [...throttled].sort((a, b) => a.end! - b.end!)) {
      const current = periods.at(-1);
      if (current !== undefined && t.end! < current.to) current.throttled.push(t);
      else periods.push({ from: t.end!, to: t.end! + t.retryAfterMs!, throttled: [t] });
    }
    for (const p of periods) {
      assert.deepEqual(
        wire.requests.filter((r) => r.start > p.from && r.start < p.to),
        [],
        `no request started during the Retry-After from ${p.from.toFixed(0)} ms`,
      );
      // More than one 429 in a period only from calls that were in flight together when the first came back.
      for (const t of p.throttled.slice(1))
        assert.ok(t.start < p.from, 'a second 429 in one period comes from a call sent before the pause');
      // After the pause one call goes alone; the next starts only once it was answered.
      const after = wire.requests.filter((r) => r.start >= p.to).sort((a, b) => a.start - b.start);
      if (after.length >= 2) assert.ok(after[1]!.start >= after[0]!.end!, 'the probe goes alone');
    }
  });
  it('headers omitted: paced from its own request count (requestBudget), nothing is refused', async () => {
    const { dv, items, wire } = await setup(48, { ...LIMITS, headers: 'omit' });
    const s = track(stack(dv.url, 'own-count', { windowMs: LIMITS.windowMs, requestBudget: LIMITS.maxRequests }));
    await writeAll(s.client, s.governor, items, 4);
    assert.equal((await interactions(dv.url)).count, 48);
    assert.equal(wire.requests.filter((r) => r.status === 429).length, 0, 'no 429');
    assert.equal(s.governor.state().requestsRemaining, undefined, 'no header came');
  });

  it('Dataverse runs a $batch one operation after another, so writes in flight set the rate: 16 at once take well under the time of 4', async () => {
    // Realistic limits (20 ms a write, each answer held for what it is charged): a $batch of 5 takes 100 ms. 48 batches
    // at 4 at once are 12 rounds; the default governor grows from 4 to 16 by one per success (4, 8, 16, 16, 4: 5
    // rounds), where growing by one per `concurrency` successes would still be at 6 after 10 rounds.
    const { dv, items } = await setup(480, { headers: 'omit' });
    const timed = async (identity: string, options: Parameters<typeof stack>[2], part: InteractionMessage[]) => {
      const s = track(stack(dv.url, identity, options));
      const t0 = performance.now();
      await writeAll(s.client, s.governor, part, 5);
      return performance.now() - t0;
    };
    const four = await timed('four', { initialConcurrency: 4, maxConcurrency: 4 }, items.slice(0, 240));
    const sixteen = await timed('sixteen', {}, items.slice(240));
    assert.ok(sixteen < 0.65 * four, `16 in flight: ${sixteen.toFixed(0)} ms, 4: ${four.toFixed(0)} ms`);
    assert.equal((await interactions(dv.url)).count, 480);
  });

  it('the execution-time limit binds $batch writes: with scrambled headers the governor paces from the durations it observes; without that, 429s', async () => {
    // 40 ms a write: a $batch of 4 is charged 160 ms; 48 writes are 1,920 ms against 1,200 ms per 2.5 s window. The
    // control writes 96 (3,840 ms): refused as soon as any 8 of its 24 batches land within 2.5 s, however slow the
    // machine is.
    const limits: Partial<LimitsConfig> = {
      windowMs: 2500,
      maxRequests: 1000,
      maxExecutionMs: 1200,
      operationCostMs: 1,
      writeCostMs: 40,
      headers: 'scramble',
    };
    const { dv, items } = await setup(144, limits);
    const control = track(stack(dv.url, 'no-budget', { windowMs: 2500 }));
    await writeAll(control.client, control.governor, items.slice(0, 96), 4);
    const controlStats = (await stats(dv.url)).identities['no-budget']!;
    assert.ok(
      controlStats.throttled.executionTime > 0,
      'a governor that does not know the budget is refused (-2147015903)',
    );

    const s = track(stack(dv.url, 'learned', { windowMs: 2500, executionBudgetMs: 1200 }));
    await writeAll(s.client, s.governor, items.slice(96), 4);
    assert.equal(
      (await stats(dv.url)).identities['learned']!.throttled.executionTime,
      0,
      'paced to the execution budget: never refused',
    );
    assert.ok(
      s.governor.state().operationEstimateMs >= 40,
      `learned at least the 40 ms a write costs, got ${s.governor.state().operationEstimateMs}`,
    );
    const stored = await interactions(dv.url);
    assert.equal(stored.count, 144);
    assert.equal(stored.duplicates, 0);
  });
});
