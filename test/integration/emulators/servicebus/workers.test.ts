/**
 * The ways the relay's workers use Service Bus (intake, dispatch, recorder), run through the real SDK: concurrency,
 * sessions competing across clients, lock renewal, settling while in flight, closing, and sustained load.
 */
import assert from 'node:assert/strict';
import {
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusSessionReceiver,
} from '@azure/service-bus';
import { TestBed, capturingLogger, waitFor } from './helpers.js';

const ENTITY_LOGICAL_NAME = 'http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName';

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the promise's outcome (a rejection counts as ending), failing when it takes longer than `ms`. */
async function endsWithin(what: string, promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise.then(
        () => undefined,
        () => undefined,
      ),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Receives with `receiveMessages` in a loop until `done()` says so or the deadline passes. */
async function drain(
  receiver: ServiceBusReceiver,
  handle: (m: ServiceBusReceivedMessage) => Promise<void>,
  done: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms draining ${receiver.entityPath}`);
    const batch = await receiver.receiveMessages(50, { maxWaitTimeInMs: 200 });
    await Promise.all(batch.map(handle));
  }
}

describe('Service Bus emulator: the relay workers, through the real SDK', function () {
  this.timeout(30_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  describe('intake', () => {
    it('receives object, string and Buffer bodies, content types and application properties as Azure gives them', async () => {
      bed = await TestBed.start({ queues: { activities: {} } });
      const createdOn = new Date('2026-11-21T10:15:30.123Z');
      await bed
        .client()
        .createSender('activities')
        .sendMessages([
          {
            body: { activityId: 'a1', to: '+15550100', nested: { n: 1, ok: true } },
            contentType: 'application/json',
            applicationProperties: {
              [ENTITY_LOGICAL_NAME]: 'msdyn_ocliveworkitem',
              attempt: 3,
              ratio: 0.25,
              urgent: true,
              createdOn,
            },
          },
          { body: 'plain text', contentType: 'text/plain' },
          { body: Buffer.from([0, 1, 2, 255]), contentType: 'application/octet-stream' },
          { body: 42 },
        ]);
      const receiver = bed.client().createReceiver('activities');
      const got: ServiceBusReceivedMessage[] = [];
      await drain(
        receiver,
        async (m) => void got.push(m),
        () => got.length >= 4,
        5000,
      );
      const [object, text, bytes, number] = got;
      assert.deepEqual(object!.body, { activityId: 'a1', to: '+15550100', nested: { n: 1, ok: true } });
      assert.equal(object!.contentType, 'application/json');
      // The SDK turns timestamps in application properties into numbers unless told to skip that.
      assert.deepEqual(object!.applicationProperties, {
        [ENTITY_LOGICAL_NAME]: 'msdyn_ocliveworkitem',
        attempt: 3,
        ratio: 0.25,
        urgent: true,
        createdOn: createdOn.getTime(),
      });
      assert.equal(text!.body, 'plain text');
      assert.equal(text!.contentType, 'text/plain');
      assert.ok(Buffer.isBuffer(bytes!.body), 'a Buffer that is not JSON comes back as a Buffer');
      assert.deepEqual(bytes!.body, Buffer.from([0, 1, 2, 255]));
      assert.equal(bytes!.contentType, 'application/octet-stream');
      assert.equal(number!.body, 42);
      const [peeked] = await bed.client().createReceiver('activities', { skipConvertingDate: true }).peekMessages(1);
      assert.ok(peeked!.applicationProperties!['createdOn'] instanceof Date, 'the wire type is a timestamp');
      assert.equal((peeked!.applicationProperties!['createdOn'] as Date).getTime(), createdOn.getTime());
      for (const m of got) await receiver.completeMessage(m);
    });

    it('completes and dead-letters 400 messages with two receiveMessages loops and a subscribe (8 concurrent calls) at once, each message once', async () => {
      bed = await TestBed.start({ queues: { activities: { LockDuration: 'PT10S' } } });
      const total = 400;
      await bed
        .client()
        .createSender('activities')
        .sendMessages(Array.from({ length: total }, (_, i) => ({ body: { i }, messageId: `m${i}` })));
      const settled = new Map<number, string>();
      const settle = async (receiver: ServiceBusReceiver, m: ServiceBusReceivedMessage, who: string): Promise<void> => {
        const i = (m.body as { i: number }).i;
        assert.ok(!settled.has(i), `message ${i} delivered twice`);
        settled.set(i, who);
        if (i % 5 === 0)
          await receiver.deadLetterMessage(m, {
            deadLetterReason: 'InvalidPayload',
            deadLetterErrorDescription: `activity ${i} has no recipient`,
          });
        else await receiver.completeMessage(m);
      };
      // Settlements with different outcomes go one at a time per receiver (see the rhea limitation test below).
      const serial = (): ((fn: () => Promise<void>) => Promise<void>) => {
        let tail: Promise<void> = Promise.resolve();
        return (fn) => (tail = tail.then(fn, fn));
      };
      const loopClient = bed.client();
      const loops = [loopClient.createReceiver('activities'), loopClient.createReceiver('activities')];
      const subscriber = bed.client().createReceiver('activities');
      const inOrder = serial();
      const subscription = subscriber.subscribe(
        {
          processMessage: (m) => inOrder(() => settle(subscriber, m, 'subscribe')),
          processError: async () => undefined,
        },
        { maxConcurrentCalls: 8, autoCompleteMessages: false },
      );
      await Promise.all(
        loops.map((r, n) => {
          const one = serial();
          return drain(
            r,
            (m) => one(() => settle(r, m, `loop${n}`)),
            () => settled.size >= total,
            15_000,
          );
        }),
      );
      await waitFor('every message settled', () => (settled.size >= total ? true : undefined), 10_000);
      await subscription.close();
      assert.equal(settled.size, total);
      assert.ok(new Set(settled.values()).size >= 2, 'the receivers shared the work');

      const dlq = bed
        .client()
        .createReceiver('activities', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' });
      const dead: ServiceBusReceivedMessage[] = [];
      await drain(
        dlq,
        async (m) => void dead.push(m),
        () => dead.length >= total / 5,
        5000,
      );
      assert.deepEqual(
        dead.map((m) => (m.body as { i: number }).i).sort((a, b) => a - b),
        Array.from({ length: total / 5 }, (_, k) => k * 5),
      );
      assert.ok(
        dead.every(
          (m) =>
            m.deadLetterReason === 'InvalidPayload' &&
            m.deadLetterErrorDescription === `activity ${(m.body as { i: number }).i} has no recipient`,
        ),
      );
      assert.equal((await subscriber.peekMessages(10)).length, 0, 'nothing left in the queue');
    });
  });

  describe('settling concurrently on one receiver', () => {
    it('settles different outcomes sent in one tick each with its own (rhea 3.0.5 as patched in patches/)', async () => {
      // Unpatched, rhea's write_dispositions merged delivery N+1's disposition into N's range without comparing
      // outcomes, so the broker (Azure or this emulator) applied N's outcome to both. patches/rhea+3.0.5.patch
      // compares every delivery's outcome with the range's; this test fails if the patch is not applied.
      const { logger, lines } = capturingLogger();
      bed = await TestBed.start({ queues: { activities: {} } }, { logger });
      const client = bed.client();
      await client
        .createSender('activities')
        .sendMessages(['bad-1', 'good-1', 'good-2', 'bad-2', 'bad-3'].map((body) => ({ body })));
      const receiver = client.createReceiver('activities');
      const batch: ServiceBusReceivedMessage[] = [];
      await drain(
        receiver,
        async (m) => void batch.push(m),
        () => batch.length >= 5,
        5000,
      );
      const [bad1, good1, good2, bad2, bad3] = batch as [
        ServiceBusReceivedMessage,
        ServiceBusReceivedMessage,
        ServiceBusReceivedMessage,
        ServiceBusReceivedMessage,
        ServiceBusReceivedMessage,
      ];
      await Promise.all([
        receiver.deadLetterMessage(bad1, { deadLetterReason: 'Bad1', deadLetterErrorDescription: 'first' }),
        receiver.completeMessage(good1),
        receiver.completeMessage(good2),
        receiver.deadLetterMessage(bad2, { deadLetterReason: 'Bad2', deadLetterErrorDescription: 'second' }),
        receiver.deadLetterMessage(bad3, { deadLetterReason: 'Bad3', deadLetterErrorDescription: 'third' }),
      ]);
      const dead = await client.createReceiver('activities', { subQueueType: 'deadLetter' }).peekMessages(10);
      assert.deepEqual(
        dead.map((m) => [m.body, m.deadLetterReason, m.deadLetterErrorDescription]),
        [
          ['bad-1', 'Bad1', 'first'],
          ['bad-2', 'Bad2', 'second'],
          ['bad-3', 'Bad3', 'third'],
        ],
      );
      assert.equal((await receiver.peekMessages(10)).length, 0, 'the completed ones are gone');
      assert.equal(
        lines.find((l) => String(l['message']).startsWith('a client settled several deliveries with one outcome')),
        undefined,
        'the emulator saw no merged range',
      );
    });

    it('answers settlements handled in one tick each with its own outcome (a lost lock next to a good one)', async () => {
      bed = await TestBed.start({ queues: { interactions: { LockDuration: 'PT1S' } } });
      const client = bed.client();
      await client.createSender('interactions').sendMessages([{ body: 'expires' }, { body: 'renewed' }]);
      const receiver = client.createReceiver('interactions', { maxAutoLockRenewalDurationInMs: 0 });
      const batch: ServiceBusReceivedMessage[] = [];
      await drain(
        receiver,
        async (m) => void batch.push(m),
        () => batch.length >= 2,
        5000,
      );
      const [expires, renewed] = batch;
      const until = expires!.lockedUntilUtc!.getTime();
      await waitFor('the first lock to be close to expiry', () => (Date.now() > until - 300 ? true : undefined));
      await receiver.renewMessageLock(renewed!);
      await waitFor('the first lock to expire', () => (Date.now() > until + 100 ? true : undefined));
      // Both completes are accepted outcomes, so the client sends them as one range; the broker answers each.
      const results = await Promise.allSettled([
        receiver.completeMessage(expires!),
        receiver.completeMessage(renewed!),
      ]);
      assert.equal(results[0].status, 'rejected');
      assert.equal((results[0] as PromiseRejectedResult).reason.code, 'MessageLockLost');
      assert.equal(results[1].status, 'fulfilled', 'the renewed message was completed and the client is told so');
      const [again] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(again!.body, 'expires');
      assert.equal(again!.deliveryCount, 1);
      await receiver.completeMessage(again!);
    });
  });

  describe('recorder', () => {
    it('settles receiveMessages batches one by one under duplicate detection while auto lock renewal outlasts the lock', async () => {
      bed = await TestBed.start({
        queues: {
          interactions: {
            LockDuration: 'PT1.2S',
            MaxDeliveryCount: 5,
            RequiresDuplicateDetection: true,
            DuplicateDetectionHistoryTimeWindow: 'PT1M',
          },
        },
      });
      const client = bed.client();
      const sender = client.createSender('interactions');
      const ids = Array.from({ length: 6 }, (_, i) => `interaction-${i}`);
      await sender.sendMessages(ids.map((id, i) => ({ body: { i }, messageId: id })));
      await sender.sendMessages(ids.slice(0, 3).map((id) => ({ body: { duplicate: true }, messageId: id })));
      const receiver = client.createReceiver('interactions', { maxAutoLockRenewalDurationInMs: 30_000 });
      const outcome = new Map<string, string>();
      const deliveries: string[] = [];
      const deadline = Date.now() + 15_000;
      while (outcome.size < ids.length) {
        assert.ok(Date.now() < deadline, `timed out: ${outcome.size} of ${ids.length} settled`);
        const batch = await receiver.receiveMessages(6, { maxWaitTimeInMs: 300 });
        if (batch.length === 0) continue;
        deliveries.push(...batch.map((m) => `${String(m.messageId)}@${m.deliveryCount}`));
        await delay(1600); // processing takes longer than the lock; the SDK renews it
        for (const m of batch) {
          assert.ok(!('duplicate' in (m.body as object)), 'duplicates were dropped');
          const i = (m.body as { i: number }).i;
          if (i % 3 === 1 && m.deliveryCount === 0) {
            await receiver.abandonMessage(m);
            continue;
          }
          if (i % 3 === 2)
            await receiver.deadLetterMessage(m, {
              deadLetterReason: 'ProviderRejected',
              deadLetterErrorDescription: `interaction ${i}`,
            });
          else await receiver.completeMessage(m);
          outcome.set(String(m.messageId), i % 3 === 2 ? 'dead' : 'done');
        }
      }
      const abandoned = ids.filter((_, i) => i % 3 === 1);
      assert.deepEqual(
        deliveries.filter((d) => d.endsWith('@1')).sort(),
        abandoned.map((id) => `${id}@1`).sort(),
        'only abandoned messages came back',
      );
      assert.equal(deliveries.length, ids.length + abandoned.length);
      const dead = await client.createReceiver('interactions', { subQueueType: 'deadLetter' }).peekMessages(20);
      assert.deepEqual(dead.map((m) => m.messageId).sort(), ids.filter((_, i) => i % 3 === 2).sort());
      assert.deepEqual(await receiver.peekMessages(20), []);
    });
  });

  describe('dispatch', () => {
    it('gives a session closed with locked messages to exactly one of the receivers waiting in acceptNextSession', async () => {
      bed = await TestBed.start({ queues: { outbound: { RequiresSession: true, LockDuration: 'PT5S' } } });
      await bed
        .client()
        .createSender('outbound')
        .sendMessages(['m0', 'm1', 'm2'].map((body) => ({ body, sessionId: 'S' })));
      const holder = await bed.client().acceptSession('outbound', 'S', { maxAutoLockRenewalDurationInMs: 0 });
      const locked: ServiceBusReceivedMessage[] = [];
      while (locked.length < 3) locked.push(...(await holder.receiveMessages(3, { maxWaitTimeInMs: 1000 })));
      const waiting = bed.client(1500);
      const accepts = [0, 1, 2].map(() => waiting.acceptNextSession('outbound', { maxAutoLockRenewalDurationInMs: 0 }));
      await delay(300); // the three attaches reach the emulator and wait there
      await holder.close();
      const results = await Promise.allSettled(accepts);
      const granted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      assert.deepEqual(
        granted.map((r) => r.sessionId),
        ['S'],
        'one receiver got the session',
      );
      assert.deepEqual(
        results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string }).code] : [])),
        ['ServiceTimeout', 'ServiceTimeout'],
      );
      const again = await granted[0]!.receiveMessages(3, { maxWaitTimeInMs: 1000 });
      assert.deepEqual(
        again.map((m) => [m.body, m.deliveryCount]),
        [
          ['m0', 1],
          ['m1', 1],
          ['m2', 1],
        ],
      );
    });

    it('shares sessions between concurrent session receivers of two clients: one holder per session, redelivery after a close', async () => {
      bed = await TestBed.start({
        queues: {
          outbound: {
            RequiresSession: true,
            LockDuration: 'PT5S',
            MaxDeliveryCount: 10,
            RequiresDuplicateDetection: true,
            DuplicateDetectionHistoryTimeWindow: 'PT1M',
          },
        },
      });
      const sessions = 24;
      const perSession = 4;
      const total = sessions * perSession;
      const held = new Set<string>();
      const inFlight = new Set<string>();
      const completed = new Map<string, string[]>();
      const violations: string[] = [];
      const abandonedOnce = new Set<string>();
      const crashed = new Set<string>();
      let completedCount = 0;
      let stop = false;

      const worker = async (client: ReturnType<TestBed['client']>, name: string): Promise<void> => {
        while (!stop) {
          let receiver: ServiceBusSessionReceiver;
          try {
            receiver = await client.acceptNextSession('outbound', { maxAutoLockRenewalDurationInMs: 0 });
          } catch (err) {
            if ((err as { code?: string }).code === 'ServiceTimeout') continue;
            throw err;
          }
          const sid = receiver.sessionId;
          if (held.has(sid)) violations.push(`${name}: session ${sid} already held`);
          held.add(sid);
          try {
            for (;;) {
              const batch = await receiver.receiveMessages(perSession, { maxWaitTimeInMs: 150 });
              if (batch.length === 0) break;
              for (const m of batch) {
                if (inFlight.has(m.messageId as string))
                  violations.push(`${name}: ${String(m.messageId)} delivered while in flight`);
                inFlight.add(m.messageId as string);
              }
              if (!abandonedOnce.has(sid)) {
                // The first receiver of each session "crashes": it closes with the batch locked.
                abandonedOnce.add(sid);
                for (const m of batch) {
                  inFlight.delete(m.messageId as string);
                  crashed.add(m.messageId as string);
                }
                break;
              }
              for (const m of batch) {
                await receiver.completeMessage(m);
                inFlight.delete(m.messageId as string);
                completed.set(sid, [...(completed.get(sid) ?? []), `${String(m.messageId)}@${m.deliveryCount}`]);
                completedCount++;
              }
            }
          } finally {
            held.delete(sid);
            await receiver.close();
          }
        }
      };

      const replicas = [bed.client(800), bed.client(800)];
      const workers = replicas.flatMap((client, r) =>
        Array.from({ length: 4 }, (_, w) => worker(client, `r${r}w${w}`)),
      );
      const sender = bed.client().createSender('outbound');
      for (let burst = 0; burst < 4; burst++) {
        // Sessions arrive while receivers wait; every message is sent twice (duplicate detection drops the repeat).
        const messages = [];
        for (let s = burst * (sessions / 4); s < (burst + 1) * (sessions / 4); s++) {
          for (let k = 0; k < perSession; k++) messages.push({ body: k, sessionId: `s${s}`, messageId: `s${s}-${k}` });
        }
        await sender.sendMessages(messages);
        await sender.sendMessages(messages.slice(0, perSession * 2));
        await delay(100);
      }
      try {
        await waitFor('every message completed', () => (completedCount >= total ? true : undefined), 20_000);
      } finally {
        stop = true;
        await Promise.all(workers);
      }
      assert.deepEqual(violations, []);
      assert.equal(completedCount, total, 'each message completed once: duplicates were dropped');
      for (let s = 0; s < sessions; s++) {
        const expected = Array.from(
          { length: perSession },
          (_, k) => `s${s}-${k}@${crashed.has(`s${s}-${k}`) ? 1 : 0}`,
        );
        assert.deepEqual(completed.get(`s${s}`), expected, `session s${s}: in order, redelivered once after the crash`);
      }
    });
  });
});

describe('Service Bus emulator: closing and sustained load, through the real SDK', function () {
  this.timeout(30_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  it('redelivers what a closed receiver or client held (locked, in a handler, or in flight), and client.close() does not hang', async () => {
    bed = await TestBed.start({ queues: { activities: { LockDuration: 'PT1S', MaxDeliveryCount: 10 } } });
    await bed
      .client()
      .createSender('activities')
      .sendMessages(Array.from({ length: 10 }, (_, i) => ({ body: i, messageId: `m${i}` })));
    const leaving = bed.client();
    const batchReceiver = leaving.createReceiver('activities', { maxAutoLockRenewalDurationInMs: 0 });
    const locked: ServiceBusReceivedMessage[] = [];
    while (locked.length < 4)
      locked.push(...(await batchReceiver.receiveMessages(4 - locked.length, { maxWaitTimeInMs: 1000 })));
    await batchReceiver.close();
    const inHandler: string[] = [];
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const streaming = leaving.createReceiver('activities', { maxAutoLockRenewalDurationInMs: 0 });
    streaming.subscribe(
      {
        processMessage: async (m) => {
          inHandler.push(String(m.messageId));
          await blocked;
        },
        processError: async () => undefined,
      },
      { maxConcurrentCalls: 3 },
    );
    await waitFor('three messages in handlers', () => (inHandler.length >= 3 ? true : undefined));
    const waiting = leaving
      .createReceiver('activities')
      .receiveMessages(5, { maxWaitTimeInMs: 20_000 })
      .catch(() => undefined);
    const started = Date.now();
    await leaving.close();
    assert.ok(Date.now() - started < 3000, `client.close() took ${Date.now() - started} ms`);
    await endsWithin('a pending receiveMessages of the closed client', waiting, 3000);
    release();

    const receiver = bed.client().createReceiver('activities');
    const got = new Map<string, number>();
    const deadline = Date.now() + 10_000;
    while (got.size < 10) {
      assert.ok(Date.now() < deadline, `only ${got.size} of 10 came back`);
      for (const m of await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })) {
        assert.ok(!got.has(String(m.messageId)), `${String(m.messageId)} delivered twice`);
        got.set(String(m.messageId), m.deliveryCount!);
        await receiver.completeMessage(m);
      }
    }
    for (const m of locked)
      assert.equal(got.get(String(m.messageId)), 1, `${String(m.messageId)} was locked by the closed receiver`);
    for (const id of inHandler) assert.equal(got.get(id), 1, `${id} was in a handler when the client closed`);
  });

  it("closes promptly with connected clients (sending, subscribed, waiting for a session), and the clients' close() still returns", async () => {
    bed = await TestBed.start({ queues: { activities: {}, outbound: { RequiresSession: true } } });
    // The SDK's subscribe() reconnects after a dropped connection, waiting retryDelayInMs (30 s by default) between
    // attempts; client.close() does not cut that wait short, so it would keep mocha alive.
    const client = new ServiceBusClient(bed.emulator.connectionString, {
      retryOptions: { maxRetries: 0, timeoutInMs: 20_000, retryDelayInMs: 50 },
    });
    const sender = client.createSender('activities');
    await sender.sendMessages({ body: 'before' });
    const received: unknown[] = [];
    const subscriber = client.createReceiver('activities');
    subscriber.subscribe({
      processMessage: async (m) => void received.push(m.body),
      processError: async () => undefined,
    });
    await waitFor('the subscriber to receive', () => (received.length > 0 ? true : undefined));
    const accepting = client.acceptNextSession('outbound').catch((err: unknown) => err);
    await delay(200); // the session attach is waiting in the emulator
    let started = Date.now();
    await bed.emulator.close();
    assert.ok(Date.now() - started < 1500, `emulator.close() took ${Date.now() - started} ms`);
    await endsWithin('a waiting acceptNextSession', accepting, 3000);
    started = Date.now();
    await client.close();
    assert.ok(Date.now() - started < 3000, `client.close() took ${Date.now() - started} ms`);
  });

  it('moves 20k messages through send and receive+complete with several receivers without stalling', async () => {
    bed = await TestBed.start({ queues: { activities: { LockDuration: 'PT30S' } } });
    const total = 20_000;
    const seen = new Uint8Array(total);
    let completed = 0;
    const record = (m: ServiceBusReceivedMessage): void => {
      const i = m.body as number;
      assert.equal(seen[i], 0, `message ${i} delivered twice`);
      seen[i] = 1;
    };
    const sending = (async () => {
      const sender = bed.client().createSender('activities');
      for (let from = 0; from < total; from += 500) {
        await sender.sendMessages(Array.from({ length: 500 }, (_, k) => ({ body: from + k })));
      }
    })();
    const subscriptions = [bed.client(), bed.client()].map((c) => {
      const r = c.createReceiver('activities');
      return r.subscribe(
        {
          processMessage: async (m) => {
            record(m);
            completed++;
          },
          processError: async () => undefined,
        },
        { maxConcurrentCalls: 50 },
      );
    });
    const loopClient = bed.client();
    const started = Date.now();
    const loops = [0, 1].map(async () => {
      const r = loopClient.createReceiver('activities');
      while (completed < total && Date.now() - started < 25_000) {
        const batch = await r.receiveMessages(200, { maxWaitTimeInMs: 200 });
        batch.forEach(record);
        await Promise.all(batch.map((m) => r.completeMessage(m)));
        completed += batch.length;
      }
    });
    await sending;
    await waitFor('every message completed', () => (completed >= total ? true : undefined), 25_000);
    await Promise.all(loops);
    for (const s of subscriptions) await s.close();
    const elapsed = Date.now() - started;
    assert.equal(completed, total);
    assert.deepEqual(await bed.client().createReceiver('activities').peekMessages(5), [], 'nothing left');
    assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
  });
});
