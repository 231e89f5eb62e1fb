import assert from 'node:assert/strict';
import rhea from 'rhea';
import { skipValue, splitSections } from '../../../../src/emulators/servicebus/amqp-codec.js';
import { lockTokenString, newLockToken, reorderGuidBytes } from '../../../../src/emulators/servicebus/lock-token.js';
import {
  applicationPropertiesOf,
  encodeForDelivery,
  parseMessage,
  unpackBatch,
  withApplicationProperties,
  type StoredMessage,
} from '../../../../src/emulators/servicebus/message.js';

const codec = rhea.message as unknown as {
  encode(m: object): Buffer;
  decode(b: Buffer): Record<string, unknown>;
  data_section(b: Buffer): unknown;
};

function stored(bytes: Buffer, extra: Partial<StoredMessage> = {}): StoredMessage {
  const incoming = parseMessage(bytes);
  return {
    seq: 42,
    enqueuedAt: 1_700_000_000_000,
    expiresAt: Number.POSITIVE_INFINITY,
    ttlMs: 60_000,
    deliveryCount: 2,
    state: 'active',
    scheduledAt: undefined,
    props: incoming.props,
    wire: incoming.wire,
    deadLetterSource: undefined,
    removed: false,
    ...extra,
  };
}

describe('Service Bus emulator message wire handling', () => {
  it('keeps the sender’s properties, application properties and body bytes, and adds the broker annotations', () => {
    const sent = codec.encode({
      message_id: 'id-1',
      group_id: 'session-1',
      subject: 'sms',
      correlation_id: 'c',
      application_properties: { tier: 'gold', n: 7 },
      message_annotations: { 'x-opt-partition-key': 'pk', 'x-opt-sequence-number': 999 },
      body: codec.data_section(Buffer.from('{"a":1}')),
    });
    const msg = stored(sent);
    assert.deepEqual(msg.props, { messageId: 'id-1', sessionId: 'session-1', subject: 'sms', correlationId: 'c' });
    const out = codec.decode(encodeForDelivery(msg, { lockedUntil: 1_700_000_060_000 }));
    assert.equal(out['message_id'], 'id-1');
    assert.equal(out['group_id'], 'session-1');
    assert.deepEqual(out['application_properties'], { tier: 'gold', n: 7 });
    assert.deepEqual((out['body'] as { content: Buffer }).content, Buffer.from('{"a":1}'));
    assert.equal(out['delivery_count'], 2);
    assert.equal(out['ttl'], 60_000);
    const ann = out['message_annotations'] as Record<string, unknown>;
    assert.equal(ann['x-opt-partition-key'], 'pk');
    assert.equal(ann['x-opt-sequence-number'], 42, 'the broker’s sequence number replaces the sender’s copy');
    assert.equal((ann['x-opt-enqueued-time'] as Date).getTime(), 1_700_000_000_000);
    assert.equal((ann['x-opt-locked-until'] as Date).getTime(), 1_700_000_060_000);
    assert.equal(ann['x-opt-message-state'], undefined);
  });

  it('assigns a message id when the sender gave none, keeping the other properties', () => {
    const msg = stored(codec.encode({ subject: 'x', reply_to: 'r', body: 'hello' }));
    assert.match(msg.props.messageId, /^[0-9a-f-]{36}$/);
    const out = codec.decode(encodeForDelivery(msg));
    assert.equal(out['message_id'], msg.props.messageId);
    assert.equal(out['subject'], 'x');
    assert.equal(out['reply_to'], 'r');
    assert.equal(out['body'], 'hello');
    const bare = stored(codec.encode({ body: 'no properties at all' }));
    assert.equal(codec.decode(encodeForDelivery(bare))['message_id'], bare.props.messageId);
  });

  it('marks deferred and scheduled messages and the dead-letter source', () => {
    const msg = stored(codec.encode({ body: 1 }), { state: 'deferred', deadLetterSource: 'q' });
    const ann = codec.decode(encodeForDelivery(msg))['message_annotations'] as Record<string, unknown>;
    assert.equal(ann['x-opt-message-state'], 1);
    assert.equal(ann['x-opt-deadletter-source'], 'q');
  });

  it('replaces and adds application properties without touching the others', () => {
    const msg = stored(codec.encode({ application_properties: { keep: 1, change: 'old' }, body: 'b' }));
    const wire = withApplicationProperties(msg.wire, { change: 'new', DeadLetterReason: 'r' });
    assert.deepEqual(applicationPropertiesOf(wire), { keep: 1, change: 'new', DeadLetterReason: 'r' });
    assert.deepEqual(
      applicationPropertiesOf(withApplicationProperties(stored(codec.encode({ body: 'b' })).wire, { a: true })),
      { a: true },
    );
  });

  it('reads the scheduled enqueue time and unpacks batches', () => {
    const at = new Date(1_800_000_000_000);
    const one = codec.encode({ body: 'one', message_annotations: { 'x-opt-scheduled-enqueue-time': at } });
    const two = codec.encode({ body: 'two' });
    assert.equal(parseMessage(one).scheduledAt, at.getTime());
    const batch = codec.encode({ body: [codec.data_section(one), codec.data_section(two)].map((s) => s) });
    const sections = splitSections(batch);
    assert.ok(sections.length >= 1);
    const manual = Buffer.concat([
      ...[one, two].map((m) => {
        const w = new (
          rhea.types as unknown as { Writer: new () => { write(v: unknown): void; toBuffer(): Buffer } }
        ).Writer();
        w.write((codec.data_section(m) as { described(): unknown }).described());
        return w.toBuffer();
      }),
    ]);
    assert.deepEqual(
      unpackBatch(manual).map((b) => codec.decode(b)['body']),
      ['one', 'two'],
    );
  });

  it('skips AMQP values of every width and refuses truncated ones', () => {
    const w = new (
      rhea.types as unknown as { Writer: new () => { write(v: unknown): void; toBuffer(): Buffer } }
    ).Writer();
    const wrap = (rhea.types as unknown as { wrap(v: unknown): unknown }).wrap;
    for (const v of [
      null,
      true,
      7,
      70000,
      2 ** 40,
      'text',
      'x'.repeat(300),
      Buffer.alloc(3),
      [1, 'a'],
      { k: 'v' },
      new Date(0),
    ])
      w.write(wrap(v));
    const all = w.toBuffer();
    let pos = 0;
    let count = 0;
    while (pos < all.length) {
      pos = skipValue(all, pos);
      count++;
    }
    assert.equal(count, 11);
    assert.throws(() => skipValue(all.subarray(0, all.length - 1), all.length - 5), /truncated/);
    assert.throws(() => skipValue(Buffer.from([0x01]), 0), /unknown AMQP type constructor/);
  });

  it('swaps lock-token bytes the way the SDK reads them', () => {
    const l = newLockToken();
    const tag = reorderGuidBytes(l);
    assert.deepEqual(reorderGuidBytes(tag), l, 'the swap is its own inverse');
    const sdkView = (rhea as unknown as { uuid_to_string(b: Buffer): string }).uuid_to_string(reorderGuidBytes(tag));
    assert.equal(sdkView, lockTokenString(l));
    assert.notDeepEqual(newLockToken(), l);
  });
});
