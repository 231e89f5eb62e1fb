import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServiceBusClient } from '@azure/service-bus';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import { isEmulatorError } from '../../../../src/emulators/errors.js';
import { JOURNAL_FILE } from '../../../../src/emulators/servicebus/journal.js';
import { TestBed, emulatorConfig, waitFor, type TestEntities } from './helpers.js';
import { spawnEmulator, type EmulatorProcess } from './process.js';

async function drain(client: ServiceBusClient, queue: string, expected: number): Promise<unknown[]> {
  const receiver = client.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
  const got: unknown[] = [];
  await waitFor(
    `${expected} messages`,
    async () => {
      got.push(
        ...(await receiver.receiveMessages(Math.min(500, expected - got.length), { maxWaitTimeInMs: 300 })).map(
          (m) => m.body,
        ),
      );
      return got.length >= expected ? true : undefined;
    },
    10_000,
  );
  got.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })).map((m) => m.body));
  await receiver.close();
  return got;
}

describe('Service Bus emulator: durability with --data-dir', function () {
  this.timeout(60_000);
  let dir: string;
  let proc: EmulatorProcess | undefined;
  let client: ServiceBusClient | undefined;
  let bed: TestBed | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-durable-'));
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await bed?.close();
    bed = undefined;
    if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
    proc = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged send through kill -9 of the emulator process', async () => {
    const n = 500;
    proc = await spawnEmulator(['--data-dir', dir, '--log-level', 'warn']);
    client = new ServiceBusClient(proc.connectionString);
    const sender = client.createSender('activities');
    await sender.sendMessages(Array.from({ length: n / 2 }, (_, i) => ({ body: i, messageId: `b-${i}` })));
    await Promise.all(Array.from({ length: n / 2 }, (_, i) => sender.sendMessages({ body: n / 2 + i })));
    await client.close();
    proc.child.kill('SIGKILL');
    assert.equal(await proc.exited, 'SIGKILL');

    proc = await spawnEmulator(['--data-dir', dir, '--log-level', 'warn']);
    client = new ServiceBusClient(proc.connectionString);
    const got = await drain(client, 'activities', n);
    assert.equal(got.length, n, 'exactly N after the restart');
    assert.deepEqual(
      [...got].sort((a, b) => Number(a) - Number(b)),
      Array.from({ length: n }, (_, i) => i),
    );
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0, 'SIGTERM stops it cleanly');
  });

  const entities: TestEntities = {
    queues: { jobs: { LockDuration: 'PT30S' }, convo: { RequiresSession: true } },
  };

  it('restores deferred and dead-lettered messages and session state; settled messages stay gone', async () => {
    bed = await TestBed.start(entities, { dataDir: dir });
    let c = bed.client();
    await c
      .createSender('jobs')
      .sendMessages([{ body: 'done' }, { body: 'deferred' }, { body: 'dead' }, { body: 'waiting' }]);
    const r = c.createReceiver('jobs');
    const [done, deferred, dead, waiting] = await r.receiveMessages(4, { maxWaitTimeInMs: 2000 });
    await r.completeMessage(done!);
    await r.deferMessage(deferred!);
    await r.deadLetterMessage(dead!, { deadLetterReason: 'r', deadLetterErrorDescription: 'd' });
    await r.abandonMessage(waiting!, { attempt: 'first' });
    await c.createSender('convo').sendMessages({ body: 'hi', sessionId: 'S' });
    const session = await c.acceptSession('convo', 'S');
    await session.setSessionState('remembered');
    await bed.close();

    bed = await TestBed.start(entities, { dataDir: dir });
    c = bed.client();
    const r2 = c.createReceiver('jobs');
    const peeked = await r2.peekMessages(10);
    assert.deepEqual(
      peeked.map((m) => [m.body, m.state]),
      [
        ['deferred', 'deferred'],
        ['waiting', 'active'],
      ],
    );
    assert.equal(peeked[1]!.deliveryCount, 1, 'the abandon counted');
    assert.equal(peeked[1]!.applicationProperties?.['attempt'], 'first', 'properties to modify survive');
    const [again] = await r2.receiveDeferredMessages([peeked[0]!.sequenceNumber!]);
    assert.equal(again!.body, 'deferred');
    await r2.completeMessage(again!);
    const [dl] = await c.createReceiver('jobs', { subQueueType: 'deadLetter' }).peekMessages(5);
    assert.equal(dl!.deadLetterReason, 'r');
    const s2 = await c.acceptSession('convo', 'S');
    assert.equal(await s2.getSessionState(), 'remembered');
    const [hi] = await s2.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(hi!.body, 'hi');
  });

  it('compacts the journal as it grows and cuts off a torn tail', async () => {
    const file = path.join(dir, JOURNAL_FILE);
    const emulator = await startServiceBusEmulator({
      port: 0,
      config: emulatorConfig(entities),
      dataDir: dir,
      compactBytes: 64 * 1024,
    });
    client = new ServiceBusClient(emulator.connectionString);
    try {
      const sender = client.createSender('jobs');
      let written = 0;
      for (let round = 0; round < 8; round++) {
        const batch = Array.from({ length: 50 }, (_, i) => ({ body: `${'x'.repeat(500)}${i}` }));
        await sender.sendMessages(batch);
        written += 50 * 500;
        assert.equal((await drain(client, 'jobs', 50)).length, 50);
      }
      await sender.sendMessages({ body: 'survivor' });
      assert.ok(written > 3 * 64 * 1024);
      await waitFor('a compacted journal', () => (statSync(file).size < 64 * 1024 ? true : undefined));
    } finally {
      await client.close();
      client = undefined;
      await emulator.close();
    }
    appendFileSync(file, Buffer.from([0, 0, 0, 40, 1, 2, 3]));
    bed = await TestBed.start(entities, { dataDir: dir });
    assert.deepEqual(await drain(bed.client(), 'jobs', 1), ['survivor']);
  });

  it('never gives out the sequence number of a settled message again after a restart, even once compaction dropped it', async () => {
    // compactBytes 1: every journal batch after the first is preceded by a compaction, so the completions leave
    // nothing of the messages in the file.
    const emulator = await startServiceBusEmulator({
      port: 0,
      config: emulatorConfig(entities),
      dataDir: dir,
      compactBytes: 1,
    });
    client = new ServiceBusClient(emulator.connectionString);
    try {
      await client.createSender('jobs').sendMessages([{ body: 1 }, { body: 2 }, { body: 3 }]);
      assert.deepEqual(await drain(client, 'jobs', 3), [1, 2, 3]);
      await client.createSender('jobs').sendMessages({ body: 'flush' });
      assert.deepEqual(await drain(client, 'jobs', 1), ['flush']);
    } finally {
      await client.close();
      client = undefined;
      await emulator.close();
    }
    bed = await TestBed.start(entities, { dataDir: dir });
    const c = bed.client();
    await c.createSender('jobs').sendMessages({ body: 'after restart' });
    const [m] = await c.createReceiver('jobs').peekMessages(1);
    assert.equal(m!.body, 'after restart');
    assert.equal(Number(m!.sequenceNumber), 5);
  });

  it('still drops a repeat after a restart when the first copy was already settled (queue and topic, before and after compaction)', async () => {
    const dedupe: TestEntities = {
      queues: { outbound: { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT1M' } },
      topics: {
        events: {
          Properties: { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT1M' },
          Subscriptions: [{ Name: 'all' }],
        },
      },
    };
    for (const compactBytes of [64 * 1024 * 1024, 1]) {
      rmSync(dir, { recursive: true, force: true });
      const emulator = await startServiceBusEmulator({
        port: 0,
        config: emulatorConfig(dedupe),
        dataDir: dir,
        compactBytes,
      });
      client = new ServiceBusClient(emulator.connectionString);
      try {
        await client.createSender('outbound').sendMessages({ body: 'first', messageId: 'q-1' });
        await client.createSender('events').sendMessages({ body: 'first', messageId: 't-1' });
        assert.deepEqual(await drain(client, 'outbound', 1), ['first']);
        assert.deepEqual(await drain(client, 'events/Subscriptions/all', 1), ['first']);
      } finally {
        await client.close();
        client = undefined;
        await emulator.close();
      }
      bed = await TestBed.start(dedupe, { dataDir: dir });
      const c = bed.client();
      await c.createSender('outbound').sendMessages([
        { body: 'repeat', messageId: 'q-1' },
        { body: 'new', messageId: 'q-2' },
      ]);
      await c.createSender('events').sendMessages([
        { body: 'repeat', messageId: 't-1' },
        { body: 'new', messageId: 't-2' },
      ]);
      assert.deepEqual(
        (await c.createReceiver('outbound').peekMessages(5)).map((m) => m.body),
        ['new'],
        `queue, compactBytes ${compactBytes}`,
      );
      assert.deepEqual(
        (await c.createReceiver('events', 'all').peekMessages(5)).map((m) => m.body),
        ['new'],
        `topic, compactBytes ${compactBytes}`,
      );
      await bed.close();
      bed = undefined;
    }
  });

  it('refuses a data folder that another running emulator uses', async () => {
    proc = await spawnEmulator(['--data-dir', dir, '--log-level', 'warn']);
    await assert.rejects(
      startServiceBusEmulator({ port: 0, config: emulatorConfig(entities), dataDir: dir }),
      (err: unknown) =>
        isEmulatorError(err) &&
        err.code === 'EmulatorDataDirInUse' &&
        /in use by another Service Bus emulator \(pid \d+\)/.test(err.message),
    );
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0);
    bed = await TestBed.start(entities, { dataDir: dir });
    await bed.client().createSender('jobs').sendMessages({ body: 'after the other one stopped' });
  });
});
