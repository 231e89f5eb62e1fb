/**
 * The session loop through the real SDK against the project's emulator: sessions shared by two loops on two clients
 * with one holder per session, per-session state across releases, idle release, maxSessions, no linger on a session
 * taken after a pause (and full batches on one taken while busy), session lock renewal,
 * release of a busy session before its lock renewal ends, release at the handler's request, health, and stop/drain
 * with a session in flight.
 */
import assert from 'node:assert/strict';
import type { Delivery } from '../../../src/pipeline/ports.js';
import {
  startSessionLoop,
  type SessionCloseReason,
  type SessionHandlerFactory,
} from '../../../src/servicebus/index.js';
import { closedAfterEach, delayUnlessAborted, outcomeOf, relayClient, startBus, waitFor } from './helpers.js';

const OUTBOUND = { RequiresSession: true, LockDuration: 'PT5S', MaxDeliveryCount: 10 };

describe('servicebus session loop, through the real SDK', function () {
  this.timeout(20_000);
  const track = closedAfterEach();

  it('shares sessions between two loops on two clients: never two holders of a session, every message once and in order', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const sessions = 16;
    const perSession = 5;
    const held = new Map<string, string>();
    const violations: string[] = [];
    const completed = new Map<string, number[]>();
    const heldBy = new Set<string>();
    let total = 0;
    const factory =
      (replica: string): SessionHandlerFactory =>
      ({ sessionId }) => {
        const other = held.get(sessionId);
        if (other !== undefined) violations.push(`${replica} got ${sessionId} held by ${other}`);
        held.set(sessionId, replica);
        heldBy.add(replica);
        return {
          onBatch: async (deliveries) => {
            for (const d of deliveries) {
              await d.complete();
              completed.set(sessionId, [...(completed.get(sessionId) ?? []), d.body as number]);
              total++;
            }
            await delayUnlessAborted(20); // a little work, so that sessions overlap between the loops
          },
          onClose: () => void held.delete(sessionId),
        };
      };
    for (const replica of ['r1', 'r2']) {
      const client = track(relayClient(bus, 600));
      track(
        startSessionLoop({
          client,
          queue: 'outbound',
          maxSessions: 3,
          maxBatch: 2,
          maxWaitMs: 100,
          sessionIdleMs: 200,
          createSessionHandler: factory(replica),
        }),
      );
    }
    const sender = track(relayClient(bus)).createSender('outbound');
    const messages = [];
    for (let k = 0; k < perSession; k++)
      for (let s = 0; s < sessions; s++) messages.push({ body: k, sessionId: `s${s}`, messageId: `s${s}-${k}` });
    await sender.sendMessages(messages);
    await waitFor('every message completed', () => (total === sessions * perSession ? true : undefined), 15_000);
    assert.deepEqual(violations, []);
    assert.deepEqual([...heldBy].sort(), ['r1', 'r2'], 'both replicas held sessions');
    for (let s = 0; s < sessions; s++)
      assert.deepEqual(completed.get(`s${s}`), [0, 1, 2, 3, 4], `session s${s} in order, once`);
  });

  it('saves per-session state and gives it to the next holder after an idle release; idle release lets the next session in (maxSessions 1)', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const events: string[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxWaitMs: 100,
        sessionIdleMs: 300,
        createSessionHandler: ({ sessionId, state, setState }) => {
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          let count = state ? (JSON.parse(state.toString('utf8')) as { count: number }).count : 0;
          events.push(`open ${sessionId} count=${count}`);
          return {
            onBatch: async (deliveries: Delivery[]) => {
              for (const d of deliveries) await d.complete();
              count += deliveries.length;
            },
            onClose: async (reason: SessionCloseReason) => {
              await setState(Buffer.from(JSON.stringify({ count })));
              events.push(`close ${sessionId} ${reason} count=${count}`);
              concurrent--;
            },
          };
        },
      }),
    );
    const sender = client.createSender('outbound');
    await sender.sendMessages([1, 2, 3].map((k) => ({ body: k, sessionId: 'A', messageId: `A${k}` })));
    await sender.sendMessages([1, 2].map((k) => ({ body: k, sessionId: 'B', messageId: `B${k}` })));
    await waitFor(
      'both sessions released once',
      () => (events.filter((e) => e.startsWith('close')).length >= 2 ? true : undefined),
      8_000,
    );
    await sender.sendMessages([4, 5].map((k) => ({ body: k, sessionId: 'A', messageId: `A${k}` })));
    await waitFor(
      'A released again',
      () => (events.filter((e) => e.startsWith('close A')).length >= 2 ? true : undefined),
      8_000,
    );
    assert.equal(maxConcurrent, 1, 'one session held at a time');
    const a = events.filter((e) => e.includes(' A '));
    assert.deepEqual(a, ['open A count=0', 'close A idle count=3', 'open A count=3', 'close A idle count=5']);
    assert.ok(events.includes('close B idle count=2'));
    assert.ok(
      events.indexOf('open B count=0') > events.indexOf(events.find((e) => e.startsWith('close'))!),
      'the second session came in after the first was released',
    );
  });

  it('never holds more than maxSessions sessions, and serves them all', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    let holding = 0;
    let most = 0;
    let done = 0;
    const loop = track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 2,
        maxWaitMs: 100,
        sessionIdleMs: 150,
        createSessionHandler: () => {
          holding++;
          most = Math.max(most, holding);
          return {
            onBatch: async (ds) => {
              await delayUnlessAborted(50);
              for (const d of ds) await d.complete();
              done += ds.length;
            },
            onClose: () => void holding--,
          };
        },
      }),
    );
    await client
      .createSender('outbound')
      .sendMessages(
        Array.from({ length: 6 }, (_, s) =>
          [0, 1].map((k) => ({ body: k, sessionId: `s${s}`, messageId: `s${s}-${k}` })),
        ).flat(),
      );
    await waitFor('every message completed', () => (done === 12 ? true : undefined), 10_000);
    assert.equal(most, 2);
    assert.ok(loop.sessions.length <= 2);
  });

  it('sizes the batches of each session by maxBatchOf (a slow sender gets small batches), falling back to maxBatch', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const sizes = new Map<string, number[]>();
    let done = 0;
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 3,
        maxBatch: 4,
        maxWaitMs: 200,
        sessionIdleMs: 300,
        maxBatchOf: (id) => (id === 'slow' ? 1 : id === 'fast' ? 3 : Number.NaN),
        createSessionHandler: ({ sessionId }) => ({
          onBatch: async (ds) => {
            sizes.set(sessionId, [...(sizes.get(sessionId) ?? []), ds.length]);
            for (const d of ds) await d.complete();
            done += ds.length;
          },
        }),
      }),
    );
    await client
      .createSender('outbound')
      .sendMessages(
        ['slow', 'fast', 'other'].flatMap((s) =>
          Array.from({ length: 6 }, (_, k) => ({ body: k, sessionId: s, messageId: `${s}-${k}` })),
        ),
      );
    await waitFor('every message completed', () => (done === 18 ? true : undefined), 10_000);
    assert.ok(
      sizes.get('slow')?.every((n) => n === 1),
      `slow: ${sizes.get('slow')?.join(',')}`,
    );
    assert.ok(
      sizes.get('fast')?.every((n) => n <= 3) && sizes.get('fast')?.some((n) => n > 1),
      `fast: ${sizes.get('fast')?.join(',')}`,
    );
    assert.ok(
      sizes.get('other')?.every((n) => n <= 4) && sizes.get('other')?.some((n) => n > 3),
      `other (maxBatch, a bad answer): ${sizes.get('other')?.join(',')}`,
    );
  });

  it('hands a message into an idle session over as soon as it arrives, not at the end of maxWaitMs; then batches what arrived together', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const maxWaitMs = 2_000;
    const batches: Array<{ at: number; ids: string[] }> = [];
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxBatch: 50,
        maxWaitMs,
        sessionIdleMs: 30_000,
        createSessionHandler: () => ({
          onBatch: async (ds) => {
            batches.push({ at: Date.now(), ids: ds.map((d) => String(d.messageId)) });
            for (const d of ds) await d.complete();
          },
        }),
      }),
    );
    const sender = client.createSender('outbound');
    const handedOver = (id: string): Promise<number> =>
      waitFor(`${id} handed over`, () => batches.find((b) => b.ids.includes(id))?.at, 3 * maxWaitMs);
    // The first message brings the session in; the next ones arrive one at a time while the held session's receive
    // waits, each after a pause longer than maxWaitMs (the SDK's batch alone would keep each until that receive's
    // maxWaitMs ran out or for 1 s, whichever is sooner).
    await sender.sendMessages({ body: 0, messageId: 'single-0', sessionId: 's' });
    await handedOver('single-0');
    const lags: number[] = [];
    for (let i = 1; i <= 3; i++) {
      await delayUnlessAborted(maxWaitMs + 200);
      const sent = Date.now();
      await sender.sendMessages({ body: i, messageId: `single-${i}`, sessionId: 's' });
      lags.push((await handedOver(`single-${i}`)) - sent);
    }
    assert.ok(
      Math.max(...lags) < maxWaitMs / 4,
      `each single message within a quarter of maxWaitMs: ${lags.join(', ')} ms`,
    );
    await delayUnlessAborted(maxWaitMs + 200);
    const sent = Date.now();
    const ids = Array.from({ length: 30 }, (_, i) => `together-${i}`);
    await sender.sendMessages(ids.map((messageId, i) => ({ body: i, messageId, sessionId: 's' })));
    const lag = (await handedOver(ids[0]!)) - sent;
    await waitFor('all 30 handed over', () => (batches.flatMap((b) => b.ids).length === 34 ? true : undefined));
    // After the pause the first is handed over alone, at once; the rest, already there, makes the next batch.
    assert.deepEqual(
      batches.slice(4).map((b) => b.ids),
      [ids.slice(0, 1), ids.slice(1)],
    );
    assert.ok(lag < maxWaitMs / 4, `the first of the 30 within a quarter of maxWaitMs: ${lag} ms`);
  });

  it('hands a lone message over as fast on a session accepted again after its idle release as on a session held open', async () => {
    // Two loops side by side on one client: one holds its session open (a long sessionIdleMs), the other releases its
    // own soon after each message and takes it again for the next. A lone message to each, sent together after a pause
    // longer than maxWaitMs: the re-accepted session's first receive used to keep its message for the SDK's batch wait
    // (the rest of maxWaitMs, at most 1 s), while the held session's hands it over at once.
    const bus = track(await startBus({ queues: { held: OUTBOUND, released: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    // A receive waits up to maxWaitMs or what is left of sessionIdleMs, and the SDK holds a batch at most 1 s after its
    // first message: 1 s each, so that a lingering first receive would keep its message about 1 s.
    const maxWaitMs = 1_000;
    const handed = new Map<string, number>();
    const opened = new Map<string, number>();
    let idleReleases = 0;
    for (const [queue, sessionIdleMs] of [
      ['held', 60_000],
      ['released', maxWaitMs],
    ] as const)
      track(
        startSessionLoop({
          client,
          queue,
          maxSessions: 1,
          maxBatch: 50,
          maxWaitMs,
          sessionIdleMs,
          createSessionHandler: () => {
            opened.set(queue, (opened.get(queue) ?? 0) + 1);
            return {
              onBatch: async (ds) => {
                for (const d of ds) handed.set(String(d.messageId), Date.now());
                for (const d of ds) await d.complete();
              },
              onClose: (reason) => void (reason === 'idle' && queue === 'released' && idleReleases++),
            };
          },
        }),
      );
    const senders = { held: client.createSender('held'), released: client.createSender('released') };
    const lagOf = async (queue: 'held' | 'released', id: string): Promise<number> => {
      const sent = Date.now();
      await senders[queue].sendMessages({ body: id, messageId: id, sessionId: 's' });
      return (await waitFor(`${id} handed over`, () => handed.get(id), 3 * maxWaitMs)) - sent;
    };
    // The first message brings each session in.
    await Promise.all([lagOf('held', 'held-0'), lagOf('released', 'released-0')]);
    const rounds: Array<{ held: number; released: number }> = [];
    for (let i = 1; i <= 3; i++) {
      await waitFor('the session released as idle', () => (idleReleases === i ? true : undefined), 3 * maxWaitMs);
      await delayUnlessAborted(maxWaitMs + 200); // the held session's receive is past its pause too
      const [held, released] = await Promise.all([lagOf('held', `held-${i}`), lagOf('released', `released-${i}`)]);
      rounds.push({ held, released });
    }
    assert.deepEqual(Object.fromEntries(opened), { held: 1, released: 4 }, 'held once; released and taken again');
    // The same lone message, in the same conditions: the re-accepted session's extra work (the accept's answer, reading
    // its state) is a few round trips, far inside half of maxWaitMs; lingering would cost the SDK's 1 s batch wait.
    const worst = Math.max(...rounds.map((r) => r.released - r.held));
    assert.ok(
      worst < maxWaitMs / 2,
      `a re-accepted session's lone message about as fast as a held one's: ${rounds.map((r) => `${r.released} vs ${r.held} ms`).join(', ')}`,
    );
  });

  it('gives a session accepted on the heels of another busy one a full first batch (no single-message start under load)', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const sender = client.createSender('outbound');
    for (const sessionId of ['a', 'b'])
      await sender.sendMessages(
        Array.from({ length: 20 }, (_, i) => ({ body: i, messageId: `${sessionId}-${i}`, sessionId })),
      );
    const batches: string[] = [];
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxBatch: 10,
        maxWaitMs: 2_000,
        sessionIdleMs: 60_000,
        // Each session is handed back after one batch, so that the slot takes the other one at once, busy.
        createSessionHandler: ({ sessionId }) => ({
          onBatch: async (ds) => {
            batches.push(`${sessionId}:${ds.length}`);
            for (const d of ds) await d.complete();
            return { release: true, reason: 'one batch per hold' };
          },
        }),
      }),
    );
    await waitFor('every message handed over', () => (batches.length === 4 ? true : undefined), 10_000);
    assert.deepEqual(
      batches.map((b) => b.split(':')[1]),
      ['10', '10', '10', '10'],
      `full batches: ${batches.join(', ')}`,
    );
  });

  it('keeps the session lock while a batch runs past the lock duration (auto renewal): settles, no redelivery', async () => {
    const bus = track(await startBus({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT1.2S' } } }));
    const client = track(relayClient(bus, 600));
    const seen: string[] = [];
    const closes: SessionCloseReason[] = [];
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxWaitMs: 100,
        sessionIdleMs: 300,
        createSessionHandler: () => ({
          onBatch: async ([d]) => {
            seen.push(`${String(d!.messageId)}@${d!.deliveryCount}`);
            await delayUnlessAborted(3_000); // 2.5 lock durations
            await d!.complete();
            seen.push(`${String(d!.messageId)}:${outcomeOf(d)}`);
          },
          onClose: (reason) => void closes.push(reason),
        }),
      }),
    );
    await client.createSender('outbound').sendMessages({ body: 'slow', sessionId: 'S', messageId: 'slow' });
    await waitFor('the session released', () => (closes.length > 0 ? true : undefined), 8_000);
    assert.deepEqual(seen, ['slow@1', 'slow:completed']);
    assert.deepEqual(closes, ['idle']);
    assert.deepEqual(await client.createReceiver('outbound', { receiveMode: 'peekLock' }).peekMessages(1), []);
  });

  it('releases a busy session before its lock renewal ends (renewalBudget): state saved while held, seen by the next holder on either replica, no message handled twice', async () => {
    // Scaled down: a 1.2 s lock renewed for at most 2 s, and a sender kept busy for several times that.
    const bus = track(
      await startBus({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT1.2S', MaxDeliveryCount: 10 } } }),
    );
    const total = 36;
    const handled = new Map<string, number[]>();
    const order: number[] = [];
    const events: string[] = [];
    const closes: SessionCloseReason[] = [];
    const errors: string[] = [];
    let holders = 0;
    let mostHolders = 0;
    let budgetsSeen = 0;
    const factory =
      (replica: string): SessionHandlerFactory =>
      ({ state, setState, lockedUntil }) => {
        holders++;
        mostHolders = Math.max(mostHolders, holders);
        let count = state ? (JSON.parse(state.toString('utf8')) as { count: number }).count : 0;
        events.push(`open count=${count}`);
        if (lockedUntil !== undefined && lockedUntil() > Date.now()) budgetsSeen++;
        return {
          onBatch: async (ds) => {
            await delayUnlessAborted(150); // a provider call per batch, say
            for (const d of ds) {
              await d.complete();
              handled.set(d.messageId!, [...(handled.get(d.messageId!) ?? []), d.deliveryCount]);
              order.push(d.body as number);
              count++;
            }
          },
          onClose: async (reason) => {
            closes.push(reason);
            try {
              await setState(Buffer.from(JSON.stringify({ count })));
              events.push(`close ${reason} saved count=${count}`);
            } catch (err) {
              errors.push(`${replica} setState on ${reason}: ${(err as Error).message}`);
            }
            holders--;
          },
        };
      };
    const loops = ['r1', 'r2'].map((replica) =>
      track(
        startSessionLoop({
          client: track(relayClient(bus, 600)),
          queue: 'outbound',
          maxSessions: 1,
          maxBatch: 2,
          maxWaitMs: 100,
          sessionIdleMs: 1_000,
          maxLockRenewalMs: 2_000,
          onError: (err, ctx) => errors.push(`${ctx.source}: ${(err as Error).message}`),
          createSessionHandler: factory(replica),
        }),
      ),
    );
    await track(relayClient(bus))
      .createSender('outbound')
      .sendMessages(Array.from({ length: total }, (_, k) => ({ body: k, sessionId: 'S', messageId: `S${k}` })));
    await waitFor('every message handled', () => (order.length >= total ? true : undefined), 15_000);
    await waitFor(
      'the session released',
      () => (holders === 0 && loops.every((l) => l.sessions.length === 0) ? true : undefined),
      8_000,
    );

    assert.deepEqual(errors, []);
    assert.deepEqual(
      order,
      Array.from({ length: total }, (_, k) => k),
      'each message once, in order',
    );
    for (const [id, counts] of handled) assert.deepEqual(counts, [1], `${id} delivered once`);
    assert.ok(closes.includes('renewalBudget'), `released for the renewal budget at least once: ${closes.join(', ')}`);
    assert.ok(!closes.includes('lockLost'), `never lost the lock: ${closes.join(', ')}`);
    assert.equal(mostHolders, 1, 'one holder at a time');
    assert.equal(budgetsSeen, closes.length, 'every holder saw a lock deadline ahead');
    // Each holder started from the count the previous one saved in onClose, before it released the session.
    for (let i = 1; i < events.length; i += 2) {
      const saved = /saved count=(\d+)/.exec(events[i]!)?.[1];
      assert.ok(saved !== undefined, `event ${i} is a close: ${events.join(' | ')}`);
      if (i + 1 < events.length) assert.equal(events[i + 1], `open count=${saved}`, events.join(' | '));
    }
    assert.match(events.at(-1)!, new RegExp(`saved count=${total}$`));
    assert.deepEqual(await track(relayClient(bus)).createReceiver('outbound').peekMessages(1), []);
  });

  it('releases a session when its handler asks for it (onClose released, setState works); the next accept handles the rest, each message once', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const events: string[] = [];
    const handled: string[] = [];
    const errors: string[] = [];
    let asked = false;
    const loop = track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxBatch: 2,
        // Long enough that the slot counts as busy (started, then handing over batches) throughout: every batch is full.
        maxWaitMs: 2_000,
        sessionIdleMs: 300,
        onError: (err, ctx) => errors.push(`${ctx.source}: ${(err as Error).message}`),
        createSessionHandler: ({ sessionId, state, setState }) => {
          let count = state ? (JSON.parse(state.toString('utf8')) as { count: number }).count : 0;
          let batches = 0;
          events.push(`open ${sessionId} count=${count}`);
          return {
            onBatch: async (ds) => {
              batches++;
              for (const d of ds) {
                await d.complete();
                handled.push(`${String(d.messageId)}@${d.deliveryCount}`);
                count++;
              }
              if (asked) return undefined;
              asked = true; // the first batch ever asks for the release
              return { release: true, reason: 'handed back at the lock deadline (say)' };
            },
            onClose: async (reason) => {
              await setState(Buffer.from(JSON.stringify({ count })));
              events.push(`close ${sessionId} ${reason} after ${batches} batch(es), saved count=${count}`);
            },
          };
        },
      }),
    );
    await client
      .createSender('outbound')
      .sendMessages([0, 1, 2, 3, 4, 5].map((k) => ({ body: k, sessionId: 'S', messageId: `S${k}` })));
    await waitFor(
      'the session released twice',
      () => (events.filter((e) => e.startsWith('close')).length >= 2 ? true : undefined),
      8_000,
    );
    await waitFor('nothing held', () => (loop.sessions.length === 0 ? true : undefined), 3_000);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      events.slice(0, 3),
      ['open S count=0', 'close S released after 1 batch(es), saved count=2', 'open S count=2'],
      'no receive after the request; the state saved in onClose',
    );
    assert.match(events[3] ?? '', /^close S idle after \d+ batch\(es\), saved count=6$/);
    assert.deepEqual(
      handled,
      ['S0@1', 'S1@1', 'S2@1', 'S3@1', 'S4@1', 'S5@1'],
      'each once, in order; the rest first delivered to the next holder',
    );
    assert.deepEqual(await track(relayClient(bus)).createReceiver('outbound').peekMessages(1), []);
  });

  it('batchesPerSession 2: a batch held up by one message does not stop the session; at most two at once, the session released only once both end', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const handled: string[] = [];
    const events: string[] = [];
    let running = 0;
    let mostRunning = 0;
    let letGo!: () => void;
    const straggler = new Promise<void>((resolve) => (letGo = resolve));
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxBatch: 2,
        maxWaitMs: 100,
        sessionIdleMs: 300,
        batchesPerSession: 2,
        createSessionHandler: ({ sessionId }) => ({
          onBatch: async (ds) => {
            mostRunning = Math.max(mostRunning, ++running);
            await Promise.all(
              ds.map(async (d) => {
                // S0 waits (as a message waiting for its lookup) until every other message is handled.
                if (d.messageId === 'S0') await straggler;
                await d.complete();
                handled.push(String(d.messageId));
              }),
            );
            running--;
          },
          onClose: (reason) => void events.push(`close ${sessionId} ${reason}`),
        }),
      }),
    );
    await client
      .createSender('outbound')
      .sendMessages([0, 1, 2, 3, 4, 5].map((k) => ({ body: k, sessionId: 'S', messageId: `S${k}` })));
    await waitFor('the rest handled while S0 waits', () => (handled.length === 5 ? true : undefined), 8_000);
    assert.deepEqual(handled, ['S1', 'S2', 'S3', 'S4', 'S5']);
    assert.equal(mostRunning, 2, 'the batch with S0, and one more at a time');
    await delayUnlessAborted(600); // past sessionIdleMs: a batch still running is not idleness
    assert.deepEqual(events, [], 'not released while a batch runs');
    letGo();
    await waitFor('released once idle', () => (events.length > 0 ? true : undefined), 3_000);
    assert.deepEqual(events, ['close S idle']);
    assert.deepEqual(handled, ['S1', 'S2', 'S3', 'S4', 'S5', 'S0']);
  });

  it('drain with a session batch in flight: the aborted handler hands its messages back, the session is released, another loop completes them once', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const first = track(relayClient(bus, 600));
    await first
      .createSender('outbound')
      .sendMessages([0, 1, 2, 3].map((k) => ({ body: k, sessionId: 'S', messageId: `S${k}` })));
    const completed: string[] = [];
    const closes: string[] = [];
    const loop = startSessionLoop({
      client: first,
      queue: 'outbound',
      maxSessions: 2,
      maxBatch: 4,
      // Long enough that the slot's first session counts as taken at start (busy): its first batch holds all four.
      maxWaitMs: 2_000,
      sessionIdleMs: 5_000,
      createSessionHandler: () => ({
        onBatch: async (ds, signal) => {
          await ds[0]!.complete();
          completed.push(ds[0]!.messageId!);
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        },
        onClose: (reason) => void closes.push(reason),
      }),
    });
    await waitFor('a batch in flight', () => (loop.inFlight === 1 ? true : undefined));
    await loop.stop();
    const budget = new AbortController();
    const drained = loop.drain(budget.signal);
    await delayUnlessAborted(100);
    assert.deepEqual(closes, [], 'drain waits for the batch');
    budget.abort();
    await drained;
    await loop.close();
    assert.deepEqual(closes, ['stopped']);

    const second = track(relayClient(bus, 600));
    const redelivered: string[] = [];
    track(
      startSessionLoop({
        client: second,
        queue: 'outbound',
        maxWaitMs: 100,
        createSessionHandler: () => ({
          onBatch: async (ds) => {
            for (const d of ds) {
              await d.complete();
              completed.push(d.messageId!);
              redelivered.push(`${String(d.messageId)}@${d.deliveryCount}`);
            }
          },
        }),
      }),
    );
    await waitFor('every message completed', () => (completed.length === 4 ? true : undefined), 8_000);
    assert.deepEqual(completed, ['S0', 'S1', 'S2', 'S3'], 'once each, in order');
    assert.deepEqual(redelivered, ['S1@2', 'S2@2', 'S3@2']);
  });

  it('stop() does not wait for a pending acceptNextSession; drain() lets it end, and a session that arrives meanwhile is released unread', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 1_500));
    const opened: string[] = [];
    const loop = startSessionLoop({
      client,
      queue: 'outbound',
      maxSessions: 1,
      createSessionHandler: ({ sessionId }) => (opened.push(sessionId), { onBatch: async () => undefined }),
    });
    await delayUnlessAborted(200); // the accept waits in the emulator
    let started = Date.now();
    await loop.stop();
    assert.ok(Date.now() - started < 200, `stop took ${Date.now() - started} ms`);
    await client.createSender('outbound').sendMessages({ body: 'late', sessionId: 'L', messageId: 'late' });
    started = Date.now();
    await loop.drain();
    assert.ok(Date.now() - started < 1_500, `drain took ${Date.now() - started} ms`);
    await loop.close();
    assert.deepEqual(opened, [], 'no handler for a session accepted after stop');
    const other = track(relayClient(bus, 2_000));
    const receiver = await other.acceptSession('outbound', 'L');
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 });
    assert.equal(m?.deliveryCount, 0, 'the late session was released unread');
    await receiver.completeMessage(m!);
  });

  it('releases a session whose lock was lost (onClose lockLost); the lost settlement is swallowed and the next holder gets the messages', async () => {
    const bus = track(
      await startBus({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT0.4S', MaxDeliveryCount: 10 } } }),
    );
    const client = track(relayClient(bus, 600));
    const seen: string[] = [];
    const closes: SessionCloseReason[] = [];
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxWaitMs: 100,
        sessionIdleMs: 300,
        maxLockRenewalMs: 0,
        createSessionHandler: () => ({
          onBatch: async (ds) => {
            for (const d of ds) {
              if (d.deliveryCount === 1) await delayUnlessAborted(900); // the session lock runs out
              await d.complete();
              seen.push(`${String(d.messageId)}@${d.deliveryCount}:${outcomeOf(d)}`);
            }
          },
          onClose: (reason) => void closes.push(reason),
        }),
      }),
    );
    await client.createSender('outbound').sendMessages({ body: 'x', sessionId: 'S', messageId: 'x' });
    await waitFor(
      'the redelivered message completed',
      () => (seen.some((s) => s.endsWith(':completed')) ? true : undefined),
      8_000,
    );
    assert.deepEqual(seen, ['x@1:lockLost', 'x@2:completed']);
    assert.equal(closes[0], 'lockLost');
  });

  it('health: answered while no session is free (ServiceTimeout) and while receiving; not running once its client is closed under it', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = relayClient(bus, 300);
    const errors: string[] = [];
    const loop = track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxWaitMs: 100,
        sessionIdleMs: 200,
        onError: (err, ctx) => errors.push(`${ctx.source}: ${(err as Error).message}`),
        createSessionHandler: () => ({ onBatch: async (ds) => void (await Promise.all(ds.map((d) => d.complete()))) }),
      }),
    );
    const idle = await waitFor('an answer with no session free', () => loop.health().lastReceiveAt, 3_000);
    assert.deepEqual({ ...loop.health(), lastReceiveAt: 0 }, { running: true, lastReceiveAt: 0, consecutiveErrors: 0 });
    await track(relayClient(bus)).createSender('outbound').sendMessages({ body: 'x', sessionId: 'S', messageId: 'x' });
    await waitFor('a later answer', () => ((loop.health().lastReceiveAt ?? 0) > idle ? true : undefined), 3_000);
    await client.close();
    await waitFor('the loop to stop', () => (loop.health().running ? undefined : true), 5_000);
    const health = loop.health();
    assert.ok(health.consecutiveErrors >= 1, JSON.stringify(health));
    assert.match(health.lastError ?? '', /connection is closed/);
    assert.ok(
      errors.some((e) => /^accept: .*connection is closed/.test(e)),
      errors.join(' | '),
    );
  });

  it('survives a failing handler factory: the session is released unread and taken again', async () => {
    const bus = track(await startBus({ queues: { outbound: OUTBOUND } }));
    const client = track(relayClient(bus, 600));
    const errors: string[] = [];
    const done: string[] = [];
    let calls = 0;
    track(
      startSessionLoop({
        client,
        queue: 'outbound',
        maxSessions: 1,
        maxWaitMs: 100,
        sessionIdleMs: 200,
        backoff: { initialDelayMs: 50 },
        onError: (err, ctx) => errors.push(`${ctx.source} ${String(ctx.sessionId)}: ${(err as Error).message}`),
        createSessionHandler: () => {
          if (++calls === 1) throw new Error('state unreadable');
          return {
            onBatch: async (ds) =>
              void (await Promise.all(
                ds.map(async (d) => (await d.complete(), done.push(`${String(d.messageId)}@${d.deliveryCount}`))),
              )),
          };
        },
      }),
    );
    await client.createSender('outbound').sendMessages({ body: 'x', sessionId: 'S', messageId: 'x' });
    await waitFor('the message completed', () => (done.length > 0 ? true : undefined), 8_000);
    assert.deepEqual(done, ['x@1'], 'the failed first holder received nothing');
    assert.deepEqual(errors, ['session S: state unreadable']);
  });
});
