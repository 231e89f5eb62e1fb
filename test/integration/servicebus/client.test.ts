/**
 * The relay's Service Bus client through the real SDK against the project's emulator: its AMQP sockets send each frame
 * at once (TCP_NODELAY), which rhea-promise's way of attaching links leaves off (patches/rhea+3.0.5.patch).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import sinon from 'sinon';
import { closedAfterEach, relayClient, startBus } from './helpers.js';

describe('servicebus client, through the real SDK', () => {
  const track = closedAfterEach();

  it("turns Nagle's algorithm off on its AMQP connection (TCP_NODELAY), as the emulator does on its side", async () => {
    const bus = track(await startBus({ queues: { activities: {} } }));
    const setNoDelay = sinon.spy(net.Socket.prototype, 'setNoDelay');
    try {
      const client = track(relayClient(bus));
      await client.createSender('activities').sendMessages({ body: 'x' });
      // The client's socket is the one whose remote end is the emulator's port (the emulator's own is the reverse).
      const calls = setNoDelay.getCalls().filter((c) => (c.thisValue as net.Socket).remotePort === bus.port);
      assert.ok(calls.length > 0, 'setNoDelay called on the client socket');
      assert.equal(calls.at(-1)!.args[0], true);
    } finally {
      setNoDelay.restore();
    }
  });
});
