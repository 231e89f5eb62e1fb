import assert from 'node:assert/strict';
import sinon from 'sinon';
import { parseEmulatorConfig } from '../../../../src/emulators/servicebus/config.js';
import type { StoreJournal } from '../../../../src/emulators/servicebus/message-store.js';
import type { IncomingMessage } from '../../../../src/emulators/servicebus/message.js';
import { Namespace } from '../../../../src/emulators/servicebus/namespace.js';
import { silentLogger } from '../../../../src/log.js';

const NO_JOURNAL: StoreJournal = { enqueued() {}, updated() {}, removed() {}, deferred() {}, sessionState() {} };

function incoming(messageId: string): IncomingMessage {
  return {
    props: { messageId },
    wire: {
      durable: false,
      priority: 4,
      ttlMs: undefined,
      annotations: [],
      properties: Buffer.alloc(0),
      applicationProperties: undefined,
      body: Buffer.from(messageId),
    },
    scheduledAt: undefined,
    size: messageId.length,
  };
}

describe('Service Bus emulator namespace (duplicate detection)', () => {
  let clock: sinon.SinonFakeTimers;
  let ns: Namespace;

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000 });
    const dedupe = { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT10S' };
    const definition = parseEmulatorConfig(
      {
        UserConfig: {
          Namespaces: [
            {
              Name: 'sbemulatorns',
              Queues: [{ Name: 'outbound', Properties: dedupe }],
              Topics: [{ Name: 'events', Properties: dedupe, Subscriptions: [{ Name: 'all' }] }],
            },
          ],
          Logging: { Type: 'Console' },
        },
      },
      { strict: false, source: 'test' },
    );
    ns = new Namespace(definition, { journal: NO_JOURNAL, log: silentLogger(), tickMs: 50 });
  });
  afterEach(() => {
    ns.close();
    clock.restore();
  });

  it('drops repeats within the window and forgets ids once it is over', () => {
    const queue = ns.sendTarget('outbound')!;
    const topic = ns.sendTarget('events')!;
    assert.equal(
      ns.send(
        queue,
        Array.from({ length: 1000 }, (_, i) => incoming(`m${i}`)),
        Date.now(),
      ),
      1000,
    );
    assert.equal(ns.send(topic, [incoming('t1')], Date.now()), 1);
    clock.tick(9_000);
    assert.equal(ns.send(queue, [incoming('m1'), incoming('new')], Date.now()), 1, 'm1 is a repeat');
    assert.equal(ns.send(topic, [incoming('t1')], Date.now()), 0);
    clock.tick(2_000);
    assert.deepEqual(
      [...ns.duplicateHistory(Date.now())].map(([path, id]) => `${path}:${id}`),
      ['outbound:new'],
      'the first 1000 ids and the topic id are gone',
    );
    assert.equal(ns.send(queue, [incoming('m1')], Date.now()), 1, 'after the window m1 is new again');
  });

  it('re-learns ids from the journal for a queue, a topic (through its subscriptions) and never for a dead-letter queue', () => {
    const now = Date.now();
    ns.rememberMessageId('outbound', 'q', now - 1000);
    ns.rememberMessageId('events/subscriptions/all', 't', now - 1000);
    ns.rememberMessageId('outbound/$deadletterqueue', 'd', now - 1000);
    ns.rememberMessageId('outbound', 'old', now - 20_000);
    assert.equal(ns.send(ns.sendTarget('outbound')!, [incoming('q'), incoming('d'), incoming('old')], now), 2);
    assert.equal(ns.send(ns.sendTarget('events')!, [incoming('t')], now), 0);
  });
});
