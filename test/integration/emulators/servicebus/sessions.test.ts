import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { TestBed, errorCode, waitFor } from './helpers.js';

describe('Service Bus emulator: sessions, through the real SDK', function () {
  this.timeout(20_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  it('acceptNextSession locks a session with messages and delivers only its messages, in order', async () => {
    bed = await TestBed.start({ queues: { chat: { RequiresSession: true } } });
    const client = bed.client();
    await client.createSender('chat').sendMessages([
      { body: 'a1', sessionId: 'A' },
      { body: 'b1', sessionId: 'B' },
      { body: 'a2', sessionId: 'A' },
    ]);
    const first = await client.acceptNextSession('chat');
    const second = await client.acceptNextSession('chat');
    assert.deepEqual([first.sessionId, second.sessionId].sort(), ['A', 'B']);
    const a = first.sessionId === 'A' ? first : second;
    const messages = await a.receiveMessages(5, { maxWaitTimeInMs: 300 });
    assert.deepEqual(
      messages.map((m) => m.body),
      ['a1', 'a2'],
    );
    assert.ok(messages.every((m) => m.sessionId === 'A'));
    for (const m of messages) await a.completeMessage(m);
    assert.ok(a.sessionLockedUntilUtc.getTime() > Date.now());
  });

  it('acceptNextSession waits for a session to arrive, and times out with ServiceTimeout when none does', async () => {
    bed = await TestBed.start({ queues: { wait: { RequiresSession: true } } });
    const client = bed.client();
    const accepting = client.acceptNextSession('wait', { maxAutoLockRenewalDurationInMs: 0 });
    await new Promise((r) => setTimeout(r, 300));
    await bed.client().createSender('wait').sendMessages({ body: 'late', sessionId: 'S' });
    const receiver = await accepting;
    assert.equal(receiver.sessionId, 'S');
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(m!.body, 'late');

    const quick = new ServiceBusClient(bed.emulator.connectionString, {
      retryOptions: { maxRetries: 0, timeoutInMs: 500 },
    });
    try {
      const started = Date.now();
      assert.equal(await errorCode(quick.acceptNextSession('wait')), 'ServiceTimeout');
      assert.ok(Date.now() - started >= 400, 'it waited for the client timeout');
    } finally {
      await quick.close();
    }
  });

  it('acceptSession takes a named session; a second receiver gets SessionCannotBeLocked', async () => {
    bed = await TestBed.start({ queues: { named: { RequiresSession: true } } });
    const client = bed.client();
    await client.createSender('named').sendMessages({ body: 'for s1', sessionId: 's1' });
    const holder = await client.acceptSession('named', 's1');
    assert.equal(holder.sessionId, 's1');
    assert.equal(await errorCode(bed.client().acceptSession('named', 's1')), 'SessionCannotBeLocked');
    const [m] = await holder.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(m!.body, 'for s1');
    await holder.completeMessage(m!);
    await holder.close();
    const next = await bed.client().acceptSession('named', 's1');
    assert.equal(next.sessionId, 's1', 'released when the holder closed');
  });

  it('gets and sets session state, and renews the session lock', async () => {
    bed = await TestBed.start({ queues: { stateful: { RequiresSession: true, LockDuration: 'PT5S' } } });
    const client = bed.client();
    const receiver = await client.acceptSession('stateful', 'x');
    assert.equal(await receiver.getSessionState(), null);
    await receiver.setSessionState({ step: 2 });
    assert.deepEqual(await receiver.getSessionState(), { step: 2 });
    const before = receiver.sessionLockedUntilUtc.getTime();
    await new Promise((r) => setTimeout(r, 20));
    const renewed = await receiver.renewSessionLock();
    assert.ok(renewed.getTime() > before);
    await receiver.close();
    const again = await client.acceptSession('stateful', 'x');
    assert.deepEqual(await again.getSessionState(), { step: 2 }, 'state outlives the receiver');
  });

  it('loses an expired session lock (SessionLockLost) and redelivers its messages with deliveryCount + 1', async () => {
    bed = await TestBed.start({ queues: { expiring: { RequiresSession: true, LockDuration: 'PT0.3S' } } });
    const client = bed.client();
    await client.createSender('expiring').sendMessages({ body: 'once', sessionId: 'E' });
    const receiver = await client.acceptSession('expiring', 'E', { maxAutoLockRenewalDurationInMs: 0 });
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(m!.deliveryCount, 0);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await errorCode(receiver.completeMessage(m!)), 'SessionLockLost');
    const next = await waitFor('the session to be free', () =>
      bed
        .client()
        .acceptSession('expiring', 'E', { maxAutoLockRenewalDurationInMs: 0 })
        .catch(() => undefined),
    );
    const [again] = await next.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(again!.body, 'once');
    assert.equal(again!.deliveryCount, 1);
    await next.completeMessage(again!);
  });

  it('refuses a message without a session id on a session queue', async () => {
    bed = await TestBed.start({ queues: { strict: { RequiresSession: true } } });
    const sender = bed.client().createSender('strict');
    assert.equal(await errorCode(sender.sendMessages({ body: 'no session' })), 'GeneralError');
    await sender.sendMessages({ body: 'with session', sessionId: 'ok' });
  });
});
