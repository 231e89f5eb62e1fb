/**
 * The emulator's management REST API through the real, unmodified `ServiceBusAdministrationClient` (built by the
 * relay's `serviceBusAdministrationClientFromConfig`, which points it at the management port over HTTP): counts
 * exact from the store in every state, the queue's description, the list feed, a missing queue and authentication.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ServiceBusAdministrationClient } from '@azure/service-bus';
import { serviceBusAdministrationClientFromConfig } from '../../../../src/servicebus/index.js';
import { TestBed, errorCode, waitFor } from './helpers.js';

describe('Service Bus emulator: management API (runtime properties)', function () {
  this.timeout(20_000);
  let bed: TestBed;

  beforeEach(async () => {
    bed = await TestBed.start({
      queues: {
        work: { LockDuration: 'PT30S', MaxDeliveryCount: 5 },
        orders: {
          RequiresSession: true,
          RequiresDuplicateDetection: true,
          DuplicateDetectionHistoryTimeWindow: 'PT2M',
        },
        third: {},
      },
    });
  });
  afterEach(() => bed.close());

  const admin = (): ServiceBusAdministrationClient =>
    serviceBusAdministrationClientFromConfig(
      { serviceBus: { connectionString: bed.emulator.connectionString } as never },
      { emulatorManagementPort: bed.emulator.managementPort },
    );

  it('counts active (available and locked), scheduled and dead-lettered messages exactly', async () => {
    const client = bed.client();
    const sender = client.createSender('work');
    await sender.sendMessages([{ body: 'a' }, { body: 'b' }, { body: 'c' }, { body: 'd' }, { body: 'e' }]);
    await sender.scheduleMessages([{ body: 'later' }, { body: 'later too' }], new Date(Date.now() + 3_600_000));
    const receiver = client.createReceiver('work');
    const got = await receiver.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    assert.equal(got.length, 2);
    await receiver.deadLetterMessage(got[0]!, { deadLetterReason: 'Broken', deadLetterErrorDescription: 'x' });
    // got[1] stays locked: still active (docs/emulators/servicebus.md, Management API).

    const props = await admin().getQueueRuntimeProperties('work');
    assert.equal(props.name, 'work');
    assert.equal(props.activeMessageCount, 4);
    assert.equal(props.scheduledMessageCount, 2);
    assert.equal(props.deadLetterMessageCount, 1);
    assert.equal(props.transferMessageCount, 0);
    assert.equal(props.transferDeadLetterMessageCount, 0);
    assert.equal(props.totalMessageCount, 7);
    assert.ok((props.sizeInBytes ?? 0) > 0, `sizeInBytes ${String(props.sizeInBytes)}`);
    assert.ok(props.createdAt instanceof Date && !Number.isNaN(props.createdAt.getTime()));
    assert.ok(props.accessedAt.getTime() >= props.createdAt.getTime());

    await receiver.completeMessage(got[1]!);
    await waitFor('the completion counted', async () =>
      (await admin().getQueueRuntimeProperties('work')).activeMessageCount === 3 ? true : undefined,
    );
    await receiver.close();
  });

  it('describes the queue as configured (sessions, duplicate detection, lock duration)', async () => {
    const orders = await admin().getQueue('orders');
    assert.equal(orders.requiresSession, true);
    assert.equal(orders.requiresDuplicateDetection, true);
    assert.equal(orders.duplicateDetectionHistoryTimeWindow, 'PT2M');
    const work = await admin().getQueue('work');
    assert.equal(work.requiresSession, false);
    assert.equal(work.lockDuration, 'PT30S');
    assert.equal(work.maxDeliveryCount, 5);
  });

  it('lists the queues, page by page', async () => {
    const names: string[] = [];
    for await (const page of admin().listQueuesRuntimeProperties().byPage({ maxPageSize: 2 }))
      names.push(...page.map((q) => q.name));
    assert.deepEqual(names, ['work', 'orders', 'third']);
  });

  it('a queue that does not exist is MessageEntityNotFoundError, and queueExists says false', async () => {
    assert.equal(await errorCode(admin().getQueueRuntimeProperties('nope')), 'MessageEntityNotFoundError');
    assert.equal(await admin().queueExists('nope'), false);
    assert.equal(await admin().queueExists('work'), true);
  });

  it('refuses a request without a SharedAccessSignature (401) and one that would change an entity', async () => {
    const status = (method: string, auth?: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: bed.emulator.managementPort,
            path: '/work?api-version=2021-05',
            method,
            headers: auth ? { Authorization: auth } : {},
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await status('GET'), 401);
    assert.equal(await status('GET', 'SharedAccessSignature sr=x&sig=y&se=1&skn=k'), 200);
    assert.equal(await status('DELETE', 'SharedAccessSignature sr=x&sig=y&se=1&skn=k'), 405);
  });
});
