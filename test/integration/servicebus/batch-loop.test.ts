/**
 * The batch receive loop through the real SDK against the project's emulator: exactly-once delivery and the
 * handler's settlements, the safety net for unsettled deliveries, lock renewal past the lock duration, lost locks,
 * raw bodies, health, and stop/drain/close with work in flight (close's grace lets a running call finish).
 */
import assert from 'node:assert/strict';
import type { Delivery } from '../../../src/pipeline/ports.js';
import { createMetricsRegistry } from '../../../src/health/metrics.js';
import { startBatchLoop, type ReceiveLoop } from '../../../src/servicebus/index.js';
import { closedAfterEach, delayUnlessAborted, outcomeOf, relayClient, startBus, takeAll, waitFor } from './helpers.js';

describe('servicebus batch loop, through the real SDK', function () {
  this.timeout(20_000);
  const track = closedAfterEach();

  it('delivers every message once and settles each as the handler decided, with dead-letter reasons in the DLQ', async () => {
    const bus = track(await startBus({ queues: { activities: { LockDuration: 'PT10S', MaxDeliveryCount: 5 } } }));
    const client = track(relayClient(bus));
    const total = 300;
    await client
      .createSender('activities')
      .sendMessages(Array.from({ length: total }, (_, i) => ({ body: { i }, messageId: `m${i}` })));
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const seen = new Map<number, number[]>();
    let completed = 0;
    const loop: ReceiveLoop = track(
      startBatchLoop({
        client,
        queue: 'activities',
        maxBatch: 40,
        maxWaitMs: 200,
        concurrency: 3,
        metrics: registry,
        handler: async (deliveries) => {
          await Promise.all(
            deliveries.map(async (d) => {
              const i = (d.body as { i: number }).i;
              seen.set(i, [...(seen.get(i) ?? []), d.deliveryCount]);
              if (i % 10 === 3)
                return d.deadLetter('InvalidPayload', `activity ${i} has no recipient ${'x'.repeat(5000)}`);
              if (i % 10 === 7 && d.deliveryCount === 1) return d.abandon();
              completed++;
              return d.complete();
            }),
          );
        },
      }),
    );
    await waitFor(
      'every message completed or dead-lettered',
      () => (completed === total - total / 10 ? true : undefined),
      15_000,
    );
    await loop.close();
    assert.equal(seen.size, total);
    for (const [i, counts] of seen) assert.deepEqual(counts, i % 10 === 7 ? [1, 2] : [1], `message ${i} deliveries`);
    const dead = await takeAll(client, 'activities', total / 10, true);
    assert.deepEqual(
      dead.map((m) => (m.body as { i: number }).i).sort((a, b) => a - b),
      Array.from({ length: total / 10 }, (_, k) => k * 10 + 3),
    );
    for (const m of dead) {
      assert.equal(m.deadLetterReason, 'InvalidPayload');
      assert.ok(m.deadLetterErrorDescription!.startsWith(`activity ${(m.body as { i: number }).i} has no recipient`));
      assert.equal(m.deadLetterErrorDescription!.length, 4096, 'the description is cut to its bound');
    }
    assert.deepEqual(await client.createReceiver('activities').peekMessages(5), [], 'nothing left');
    const metric = await registry.getSingleMetric('channel_relay_messages_consumed_total')!.get();
    const byOutcome = Object.fromEntries(metric.values.map((v) => [String(v.labels['outcome']), v.value]));
    assert.deepEqual(byOutcome, { completed: 270, abandoned: 30, dead_lettered: 30 });
    const received = await registry.getSingleMetric('channel_relay_messages_received_total')!.get();
    assert.equal(received.values[0]!.value, total + total / 10);
  });

  it('abandons what a handler leaves unsettled, whether it returns or throws, and goes on', async () => {
    const bus = track(await startBus({ queues: { activities: { MaxDeliveryCount: 10 } } }));
    const client = track(relayClient(bus));
    await client
      .createSender('activities')
      .sendMessages(Array.from({ length: 20 }, (_, i) => ({ body: i, messageId: `m${i}` })));
    const deliveries: string[] = [];
    const errors: string[] = [];
    let completed = 0;
    track(
      startBatchLoop({
        client,
        queue: 'activities',
        maxBatch: 5,
        maxWaitMs: 100,
        onError: (err, ctx) => errors.push(`${ctx.source}: ${(err as Error).message}`),
        handler: async (batch: Delivery[]) => {
          for (const d of batch) deliveries.push(`${String(d.messageId)}@${d.deliveryCount}`);
          const [first, ...rest] = batch;
          if (first && first.deliveryCount === 1) {
            if (Number(first.body) % 2 === 0) throw new Error('handler failed half-way');
            return; // forgets the whole batch
          }
          await Promise.all(rest.concat(first ? [first] : []).map((d) => d.complete()));
          completed += batch.length;
        },
      }),
    );
    await waitFor('every message completed', () => (completed >= 20 ? true : undefined), 10_000);
    const firstTime = deliveries.filter((d) => d.endsWith('@1')).length;
    assert.equal(firstTime, 20, 'each message was delivered once before being abandoned');
    assert.equal(deliveries.filter((d) => d.endsWith('@2')).length, 20, 'each came back once, abandoned by the loop');
    assert.ok(errors.length > 0 && errors.every((e) => e === 'handler: handler failed half-way'), errors.join('; '));
  });

  it('keeps a message locked while a handler runs past the lock duration (auto renewal): no redelivery', async () => {
    const bus = track(await startBus({ queues: { interactions: { LockDuration: 'PT1.2S' } } }));
    const client = track(relayClient(bus));
    await client.createSender('interactions').sendMessages([{ body: 'slow', messageId: 'slow' }]);
    const deliveries: number[] = [];
    const outcomes: string[] = [];
    track(
      startBatchLoop({
        client,
        queue: 'interactions',
        maxWaitMs: 100,
        concurrency: 2,
        handler: async ([d]) => {
          deliveries.push(d!.deliveryCount);
          await delayUnlessAborted(3_000); // 2.5 lock durations
          await d!.complete();
          outcomes.push(outcomeOf(d));
        },
      }),
    );
    await waitFor('the slow message settled', () => (outcomes.length > 0 ? true : undefined), 8_000);
    assert.deepEqual(deliveries, [1], 'delivered once, never redelivered while its handler ran');
    assert.deepEqual(outcomes, ['completed']);
    assert.deepEqual(await client.createReceiver('interactions').peekMessages(1), []);
  });

  it('treats a lost lock on settlement as a redelivery (logged, swallowed) and settles the redelivered message', async () => {
    const bus = track(await startBus({ queues: { interactions: { LockDuration: 'PT0.3S', MaxDeliveryCount: 5 } } }));
    const client = track(relayClient(bus));
    await client.createSender('interactions').sendMessages([{ body: 'late', messageId: 'late' }]);
    const results: string[] = [];
    track(
      startBatchLoop({
        client,
        queue: 'interactions',
        maxWaitMs: 100,
        concurrency: 2,
        maxLockRenewalMs: 0,
        handler: async ([d]) => {
          if (d!.deliveryCount === 1) await delayUnlessAborted(800); // the lock runs out
          await d!.complete(); // resolves even when the lock was lost
          results.push(`${d!.deliveryCount}:${outcomeOf(d)}`);
        },
      }),
    );
    await waitFor('both deliveries settled', () => (results.length === 2 ? true : undefined), 8_000);
    // The redelivery reaches the loop's second slot while the first handler still waits.
    assert.deepEqual(results.sort(), ['1:lockLost', '2:completed']);
    assert.deepEqual(await client.createReceiver('interactions').peekMessages(1), []);
  });

  it('gives intake the raw bytes with rawBody (a JSON body with a BOM, XML) and parsed JSON without it', async () => {
    const bus = track(await startBus({ queues: { activities: {}, interactions: {} } }));
    const client = track(relayClient(bus));
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"MessageName":"Create"}')]);
    const json = Buffer.from('{"MessageName":"Create"}');
    const xml = Buffer.from('<RemoteExecutionContext/>');
    await client.createSender('activities').sendMessages([bom, json, xml].map((body) => ({ body })));
    await client.createSender('interactions').sendMessages([{ body: json }]);
    const raw: unknown[] = [];
    const parsed: unknown[] = [];
    track(
      startBatchLoop({
        client,
        queue: 'activities',
        rawBody: true,
        maxWaitMs: 100,
        handler: async (ds) => void (await Promise.all(ds.map((d) => (raw.push(d.body), d.complete())))),
      }),
    );
    track(
      startBatchLoop({
        client,
        queue: 'interactions',
        maxWaitMs: 100,
        handler: async (ds) => void (await Promise.all(ds.map((d) => (parsed.push(d.body), d.complete())))),
      }),
    );
    await waitFor('all bodies', () => (raw.length === 3 && parsed.length === 1 ? true : undefined));
    assert.deepEqual(raw, [bom, json, xml]);
    assert.ok(raw.every((b) => Buffer.isBuffer(b)));
    assert.deepEqual(parsed, [{ MessageName: 'Create' }]);
  });

  it('stop + drain with batches in flight loses nothing and completes nothing twice; a new loop finishes the rest', async () => {
    const bus = track(await startBus({ queues: { activities: { LockDuration: 'PT5S', MaxDeliveryCount: 10 } } }));
    const client = track(relayClient(bus));
    const total = 60;
    await client
      .createSender('activities')
      .sendMessages(Array.from({ length: total }, (_, i) => ({ body: i, messageId: `m${i}` })));
    const completedBy = new Map<string, string>();
    const duplicates: string[] = [];
    const record =
      (who: string) =>
      async (d: Delivery): Promise<void> => {
        await d.complete();
        if (completedBy.has(d.messageId!)) duplicates.push(d.messageId!);
        completedBy.set(d.messageId!, who);
      };
    let started = 0;
    const first = startBatchLoop({
      client,
      queue: 'activities',
      maxBatch: 10,
      maxWaitMs: 100,
      concurrency: 2,
      handler: async (batch, signal) => {
        started++;
        // Completes the first half of the batch, then waits for work that only ends when it is aborted.
        for (const d of batch.slice(0, 5)) await record('first')(d);
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      },
    });
    await waitFor('two batches in flight', () => (first.inFlight === 2 ? true : undefined));
    await first.stop();
    assert.equal(started, 2, 'no batch started after stop');
    const budget = new AbortController();
    const drained = first.drain(budget.signal);
    await delayUnlessAborted(100);
    assert.equal(first.inFlight, 2, 'drain waits for the handlers');
    budget.abort();
    await drained;
    assert.equal(first.inFlight, 0);
    await first.close();
    assert.equal(completedBy.size, 10);

    const second = track(relayClient(bus));
    track(
      startBatchLoop({
        client: second,
        queue: 'activities',
        maxBatch: 20,
        maxWaitMs: 100,
        handler: async (batch) => void (await Promise.all(batch.map(record('second')))),
      }),
    );
    await waitFor('every message completed', () => (completedBy.size === total ? true : undefined), 10_000);
    assert.deepEqual(duplicates, []);
    assert.equal([...completedBy.values()].filter((w) => w === 'second').length, total - 10);
  });

  it('backs off after failed receives (unknown queue) without spinning, and stops promptly', async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const client = track(relayClient(bus));
    const errors: string[] = [];
    const loop = startBatchLoop({
      client,
      queue: 'missing',
      maxWaitMs: 100,
      backoff: { initialDelayMs: 100, maxDelayMs: 400 },
      handler: async () => undefined,
      onError: (err) => errors.push((err as { code?: string }).code ?? String(err)),
    });
    await delayUnlessAborted(1_200);
    const health = loop.health();
    await loop.close();
    assert.ok(errors.length >= 2 && errors.length <= 8, `${errors.length} failed receives in 1.2 s`);
    assert.ok(
      errors.every((c) => c === 'MessagingEntityNotFound'),
      errors.join(', '),
    );
    assert.equal(health.running, true, 'still trying');
    assert.equal(health.lastReceiveAt, undefined, 'never answered');
    assert.ok(health.consecutiveErrors >= 2, `health: ${JSON.stringify(health)}`);
    assert.match(health.lastError ?? '', /missing/);
    assert.equal(loop.health().running, false, 'closed');
  });

  it('stops on its own when its client is closed under it, reporting why', async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const client = relayClient(bus);
    const errors: string[] = [];
    const loop = startBatchLoop({
      client,
      queue: 'activities',
      maxWaitMs: 2_000,
      backoff: { initialDelayMs: 50 },
      handler: async () => undefined,
      onError: (err, ctx) => errors.push(`${ctx.source}: ${(err as Error).message}`),
    });
    await delayUnlessAborted(200);
    const before = loop.health();
    assert.equal(before.running, true);
    assert.equal(before.consecutiveErrors, 0);
    await client.close();
    await waitFor(
      'the loop to stop',
      () => (errors.some((e) => /connection is closed/.test(e)) ? true : undefined),
      5_000,
    );
    await waitFor('the loop to stop receiving', () => (loop.health().running ? undefined : true), 5_000);
    const after = loop.health();
    assert.equal(after.running, false, 'readiness can see the loop stopped itself');
    assert.ok(after.consecutiveErrors >= 1);
    assert.match(after.lastError ?? '', /connection is closed/);
    await loop.drain();
    await loop.close();
  });

  it('reports when the broker last answered: a receive with messages or an empty one after its wait', async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const client = track(relayClient(bus));
    const loop = track(
      startBatchLoop({
        client,
        queue: 'activities',
        maxWaitMs: 100,
        handler: async (ds) => void (await Promise.all(ds.map((d) => d.complete()))),
      }),
    );
    const first = await waitFor('a first answer', () => loop.health().lastReceiveAt);
    const later = await waitFor('a later answer', () => {
      const at = loop.health().lastReceiveAt;
      return at !== undefined && at > first ? at : undefined;
    });
    assert.ok(later > first);
    assert.deepEqual({ ...loop.health(), lastReceiveAt: 0 }, { running: true, lastReceiveAt: 0, consecutiveErrors: 0 });
  });

  it('hands a message into an idle loop over as soon as it arrives, not at the end of maxWaitMs, and then batches what arrived together', async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const client = track(relayClient(bus));
    const maxWaitMs = 2_000;
    const batches: Array<{ at: number; ids: string[] }> = [];
    track(
      startBatchLoop({
        client,
        queue: 'activities',
        maxBatch: 50,
        maxWaitMs,
        handler: async (ds) => {
          batches.push({ at: Date.now(), ids: ds.map((d) => String(d.messageId)) });
          await Promise.all(ds.map((d) => d.complete()));
        },
      }),
    );
    const sender = client.createSender('activities');
    const handedOver = (id: string): Promise<number> =>
      waitFor(`${id} handed over`, () => batches.find((b) => b.ids.includes(id))?.at, 3 * maxWaitMs);
    // One message at a time into an idle loop (no batch for longer than maxWaitMs), each while a receive is waiting: the
    // SDK's batch alone would keep each until that receive's maxWaitMs ran out or for 1 s, whichever is sooner.
    const lags: number[] = [];
    for (let i = 0; i < 3; i++) {
      await delayUnlessAborted(maxWaitMs + 200);
      const sent = Date.now();
      await sender.sendMessages({ body: i, messageId: `single-${i}` });
      lags.push((await handedOver(`single-${i}`)) - sent);
    }
    assert.ok(
      Math.max(...lags) < maxWaitMs / 4,
      `each single message within a quarter of maxWaitMs: ${lags.join(', ')} ms`,
    );
    // Messages that arrive together still make one batch: the rest is taken with the first.
    await delayUnlessAborted(maxWaitMs + 200);
    const sent = Date.now();
    const ids = Array.from({ length: 30 }, (_, i) => `together-${i}`);
    await sender.sendMessages(ids.map((messageId, i) => ({ body: i, messageId })));
    const lag = (await handedOver(ids[0]!)) - sent;
    await waitFor('all 30 handed over', () => (batches.flatMap((b) => b.ids).length === 33 ? true : undefined));
    // After the pause the first is handed over alone, at once; the rest, already there, makes the next batch.
    assert.deepEqual(
      batches.slice(3).map((b) => b.ids),
      [ids.slice(0, 1), ids.slice(1)],
    );
    assert.ok(lag < maxWaitMs / 4, `the first of the 30 within a quarter of maxWaitMs: ${lag} ms`);
  });

  it('close() lets a handler that is still in a call (it cannot stop at once) finish and settle within closeGraceMs: nothing abandoned', async () => {
    const bus = track(await startBus({ queues: { activities: { LockDuration: 'PT5S', MaxDeliveryCount: 5 } } }));
    const client = track(relayClient(bus));
    await client.createSender('activities').sendMessages({ body: 'x', messageId: 'x' });
    const outcomes: string[] = [];
    let started = false;
    const loop = startBatchLoop({
      client,
      queue: 'activities',
      maxWaitMs: 100,
      closeGraceMs: 3_000,
      handler: async ([d], signal) => {
        started = true;
        await delayUnlessAborted(600); // a provider call that does not stop when the signal aborts
        outcomes.push(`aborted=${String(signal.aborted)}`);
        await d!.complete();
        outcomes.push(outcomeOf(d));
      },
    });
    await waitFor('the handler running', () => (started ? true : undefined));
    await loop.close();
    assert.deepEqual(outcomes, ['aborted=true', 'completed']);
    assert.deepEqual(await client.createReceiver('activities').peekMessages(1), [], 'completed, not abandoned');
  });

  it('validates its options once, naming the option', () => {
    assert.throws(
      () => startBatchLoop({ client: {} as never, queue: 'q', handler: async () => undefined }),
      /client must be a ServiceBusClient/,
    );
  });
});
