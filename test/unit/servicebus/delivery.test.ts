import assert from 'node:assert/strict';
import { ServiceBusError, type ServiceBusReceivedMessage } from '@azure/service-bus';
import sinon from 'sinon';
import { createMetricsRegistry } from '../../../src/health/metrics.js';
import { silentLogger } from '../../../src/log.js';
import {
  DEAD_LETTER_DESCRIPTION_MAX_CHARS,
  DEAD_LETTER_REASON_MAX_CHARS,
  abandonUnsettled,
  isDeliverySettlementError,
  toDelivery,
  truncateText,
  type Settler,
} from '../../../src/servicebus/delivery.js';
import { serviceBusMetrics } from '../../../src/servicebus/metrics.js';

function message(overrides: Partial<ServiceBusReceivedMessage> = {}): ServiceBusReceivedMessage {
  return {
    body: { a: 1 },
    messageId: 'm1',
    contentType: 'application/json',
    applicationProperties: { n: 1 },
    deliveryCount: 0,
    ...overrides,
  } as ServiceBusReceivedMessage;
}

function settler(fail?: unknown): Settler & { calls: string[] } {
  const calls: string[] = [];
  const call = (name: string) => async (): Promise<void> => {
    calls.push(name);
    if (fail !== undefined) throw fail;
  };
  return {
    calls,
    completeMessage: sinon.spy(call('complete')),
    abandonMessage: sinon.spy(call('abandon')),
    deadLetterMessage: sinon.spy(call('deadLetter')),
  } as Settler & { calls: string[] };
}

async function consumed(registry: ReturnType<typeof createMetricsRegistry>): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('channel_relay_messages_consumed_total')!.get();
  return Object.fromEntries(
    metric.values.map((v) => [`${String(v.labels['queue'])}/${String(v.labels['outcome'])}`, v.value]),
  );
}

describe('servicebus delivery', () => {
  it('exposes the message as the port describes it (delivery count includes this delivery)', () => {
    const d = toDelivery(message({ deliveryCount: 2, sessionId: 's', messageId: 42 as unknown as string }), settler(), {
      queue: 'q',
    });
    assert.deepEqual(d.body, { a: 1 });
    assert.equal(d.messageId, '42');
    assert.equal(d.contentType, 'application/json');
    assert.deepEqual(d.applicationProperties, { n: 1 });
    assert.equal(d.deliveryCount, 3);
    assert.equal(d.sessionId, 's');
    assert.equal(d.settled, false);
    assert.equal(d.outcome, undefined);
  });

  it('dropBody lets the body go, in the SDK message too, and the delivery still settles', async () => {
    const raw = Buffer.from('{"big":"event"}');
    const m = message({ body: raw });
    (m as { _rawAmqpMessage: unknown })._rawAmqpMessage = { body: raw };
    const s = settler();
    const d = toDelivery(m, s, { queue: 'q' });
    d.dropBody?.();
    assert.equal(d.body, undefined);
    assert.equal(m.body, undefined);
    assert.equal(m._rawAmqpMessage.body, undefined);
    await d.complete();
    assert.deepEqual(s.calls, ['complete']);
  });

  it('settles once: a second settlement, also while the first is under way, is a programming error', async () => {
    const s = settler();
    const d = toDelivery(message(), s, { queue: 'q' });
    const first = d.complete();
    await assert.rejects(
      d.abandon(),
      (err: unknown) => isDeliverySettlementError(err) && /already settled \(complete\)/.test((err as Error).message),
    );
    await first;
    await assert.rejects(
      d.deadLetter('R', 'D'),
      (err: unknown) => isDeliverySettlementError(err) && (err as { code: string }).code === 'AlreadySettled',
    );
    assert.deepEqual(s.calls, ['complete']);
    assert.equal(d.outcome, 'completed');
  });

  it('logs and swallows a lost message or session lock (the bus redelivers), counting it as lock_lost', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = serviceBusMetrics(registry);
    for (const code of ['MessageLockLost', 'SessionLockLost'] as const) {
      const d = toDelivery(message(), settler(new ServiceBusError('lock gone', code)), {
        queue: 'q',
        metrics,
        log: silentLogger(),
      });
      await d.complete();
      assert.equal(d.outcome, 'lockLost');
      assert.equal(d.settled, true);
    }
    assert.deepEqual(await consumed(registry), { 'q/lock_lost': 2 });
  });

  it('rethrows other settlement errors, counted as settle_failed, and the delivery stays settled', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const failure = new ServiceBusError('busy', 'ServiceBusy');
    const d = toDelivery(message(), settler(failure), { queue: 'q', metrics: serviceBusMetrics(registry) });
    await assert.rejects(d.abandon(), (err: unknown) => err === failure);
    assert.equal(d.outcome, 'failed');
    await assert.rejects(d.complete(), isDeliverySettlementError);
    assert.deepEqual(await consumed(registry), { 'q/settle_failed': 1 });
  });

  it('dead-letters with the reason and description cut to their documented bounds', async () => {
    const s = settler();
    const d = toDelivery(message(), s, { queue: 'q' });
    await d.deadLetter('R'.repeat(500), 'd'.repeat(10_000));
    const [, options] = (s.deadLetterMessage as sinon.SinonSpy).firstCall.args as [
      unknown,
      { deadLetterReason: string; deadLetterErrorDescription: string },
    ];
    assert.equal(options.deadLetterReason.length, DEAD_LETTER_REASON_MAX_CHARS);
    assert.ok(options.deadLetterReason.endsWith('…'));
    assert.equal(options.deadLetterErrorDescription.length, DEAD_LETTER_DESCRIPTION_MAX_CHARS);
    assert.equal(d.outcome, 'deadLettered');
    assert.equal(truncateText('short', 10), 'short');
    assert.equal(truncateText('abcdef', 4), 'abc…');
  });

  it('counts each outcome per queue', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const metrics = serviceBusMetrics(registry);
    await toDelivery(message(), settler(), { queue: 'a', metrics }).complete();
    await toDelivery(message(), settler(), { queue: 'a', metrics }).abandon();
    await toDelivery(message(), settler(), { queue: 'b', metrics }).deadLetter('R', 'D');
    assert.deepEqual(await consumed(registry), { 'a/completed': 1, 'a/abandoned': 1, 'b/dead_lettered': 1 });
    serviceBusMetrics(registry).consumed('a', 'completed'); // a second registration reuses the counters
    assert.equal((await consumed(registry))['a/completed'], 2);
  });

  it('abandonUnsettled abandons only what is left, and never throws', async () => {
    const ok = settler();
    const done = toDelivery(message({ messageId: 'done' }), ok, { queue: 'q' });
    await done.complete();
    const left = toDelivery(message({ messageId: 'left' }), ok, { queue: 'q' });
    const failing = toDelivery(message({ messageId: 'failing' }), settler(new Error('link gone')), { queue: 'q' });
    assert.equal(await abandonUnsettled([done, left, failing], silentLogger(), 'test'), 2);
    assert.deepEqual(ok.calls, ['complete', 'abandon']);
    assert.equal(left.outcome, 'abandoned');
    assert.equal(failing.outcome, 'failed');
  });
});
