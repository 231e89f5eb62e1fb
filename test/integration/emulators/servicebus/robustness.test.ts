import assert from 'node:assert/strict';
import net from 'node:net';
import rhea from 'rhea';
import { TestBed, errorCode, waitFor } from './helpers.js';

/** Opens a raw TCP connection, writes `bytes`, and resolves when the emulator closes it. */
function sendRaw(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.setTimeout(5000, () => {
      socket.destroy();
      reject(new Error('the emulator did not close a connection that sent garbage'));
    });
  });
}

describe('Service Bus emulator: bad clients do not take it down', function () {
  this.timeout(20_000);
  let bed: TestBed;

  afterEach(async () => {
    await bed?.close();
  });

  it('closes a connection that sends a malformed frame; other connections go on', async () => {
    bed = await TestBed.start({ queues: { q: {} } });
    const client = bed.client();
    const sender = client.createSender('q');
    await sender.sendMessages({ body: 'before' });
    const port = bed.emulator.port;
    await sendRaw(port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const amqpHeader = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);
    const badFrame = Buffer.from([
      0x00, 0x00, 0x00, 0x10, 0x02, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
    ]);
    await sendRaw(port, Buffer.concat([amqpHeader, badFrame]));
    const saslHeader = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
    await sendRaw(
      port,
      Buffer.concat([
        saslHeader,
        Buffer.from([0x00, 0x00, 0x00, 0x0c, 0x02, 0x01, 0x00, 0x00, 0x00, 0x53, 0x41, 0xff]),
      ]),
    );
    await sender.sendMessages({ body: 'after' });
    const receiver = client.createReceiver('q', { receiveMode: 'receiveAndDelete' });
    const got = await receiver.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    assert.deepEqual(
      got.map((m) => m.body),
      ['before', 'after'],
    );
  });

  it('answers a malformed frame on an open connection with a close carrying amqp:decode-error', async () => {
    bed = await TestBed.start({ queues: { q: {} } });
    const container = rhea.create_container();
    const connection = container.connect({ host: '127.0.0.1', port: bed.emulator.port, reconnect: false });
    await new Promise<void>((resolve) => connection.once('connection_open', () => resolve()));
    const closed = new Promise<string | undefined>((resolve) => {
      connection.on('connection_error', (ctx) =>
        resolve((ctx.connection.error as { condition?: string } | undefined)?.condition),
      );
      connection.on('disconnected', () => resolve(undefined));
    });
    const socket = (connection as unknown as { socket: net.Socket }).socket;
    socket.write(Buffer.from([0x00, 0x00, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00, 0x00, 0x53, 0x10, 0xff]));
    assert.equal(await closed, 'amqp:decode-error');
    const client = bed.client();
    await client.createSender('q').sendMessages({ body: 'still serving' });
    assert.equal((await client.createReceiver('q').peekMessages(1))[0]!.body, 'still serving');
  });

  it('releases a session when its holder drops the socket, and redelivers its locked messages after the lock expires', async () => {
    bed = await TestBed.start({
      queues: { s: { RequiresSession: true, LockDuration: 'PT10S' }, plain: { LockDuration: 'PT0.3S' } },
    });
    const client = bed.client();
    await client.createSender('s').sendMessages({ body: 'held', sessionId: 'X' });
    await client.createSender('plain').sendMessages({ body: 'locked' });

    const container = rhea.create_container();
    const connection = container.connect({ host: '127.0.0.1', port: bed.emulator.port, reconnect: false });
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      connection.on('message', (ctx) => {
        got.push(String(ctx.message?.message_id));
        if (got.length === 2) resolve();
      });
      connection.open_receiver({
        source: { address: 'plain' },
        autoaccept: false,
        rcv_settle_mode: 1,
        credit_window: 10,
      });
      connection.open_receiver({
        source: { address: 's', filter: { 'com.microsoft:session-filter': 'X' } },
        autoaccept: false,
        rcv_settle_mode: 1,
        credit_window: 10,
      });
    });
    assert.equal(got.length, 2, 'both messages are locked by the raw client');
    (connection as unknown as { socket: net.Socket }).socket.destroy();

    const session = await waitFor('the session to be released', () =>
      client.acceptSession('s', 'X').catch(() => undefined),
    );
    const [m] = await session.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    assert.equal(m!.body, 'held');
    assert.equal(m!.deliveryCount, 1);
    const [again] = await client.createReceiver('plain').receiveMessages(1, { maxWaitTimeInMs: 3000 });
    assert.equal(again!.body, 'locked');
    assert.equal(again!.deliveryCount, 1);
  });

  it('releases a session at once when its holder ends the AMQP session without detaching the link', async () => {
    bed = await TestBed.start({ queues: { s: { RequiresSession: true, LockDuration: 'PT30S' } } });
    const client = bed.client();
    await client.createSender('s').sendMessages({ body: 'held', sessionId: 'X' });
    const container = rhea.create_container();
    const connection = container.connect({ host: '127.0.0.1', port: bed.emulator.port, reconnect: false });
    try {
      const receiver = await new Promise<rhea.Receiver>((resolve) => {
        connection.once('message', (ctx) => resolve(ctx.receiver!));
        connection.open_receiver({
          source: { address: 's', filter: { 'com.microsoft:session-filter': 'X' } },
          autoaccept: false,
          rcv_settle_mode: 1,
          credit_window: 10,
        });
      });
      receiver.session.close();
      const session = await waitFor(
        'the session to be released',
        () => client.acceptSession('s', 'X').catch(() => undefined),
        3000,
      );
      const [m] = await session.receiveMessages(1, { maxWaitTimeInMs: 2000 });
      assert.equal(m!.body, 'held');
      assert.equal(m!.deliveryCount, 1);
    } finally {
      connection.close();
    }
  });

  it('answers an unknown address with MessagingEntityNotFound and keeps serving the rest', async () => {
    bed = await TestBed.start({ queues: { known: {} } });
    const client = bed.client();
    assert.equal(
      await errorCode(client.createReceiver('unknown/$DeadLetterQueue').peekMessages(1)),
      'MessagingEntityNotFound',
    );
    assert.equal(
      await errorCode(client.createSender('t/Subscriptions/nope').sendMessages({ body: 1 })),
      'MessagingEntityNotFound',
    );
    await client.createSender('known').sendMessages({ body: 'ok' });
    assert.equal((await client.createReceiver('known').peekMessages(1))[0]!.body, 'ok');
  });
});
