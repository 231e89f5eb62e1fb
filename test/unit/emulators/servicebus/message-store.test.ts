import assert from 'node:assert/strict';
import rhea from 'rhea';
import sinon from 'sinon';
import type { StoreSettings } from '../../../../src/emulators/servicebus/config.js';
import {
  MessageStore,
  type Consumer,
  type Lock,
  type Session,
  type StoreJournal,
} from '../../../../src/emulators/servicebus/message-store.js';
import {
  PackedWire,
  encodeForDelivery,
  parseMessage,
  type IncomingMessage,
  type StoredMessage,
} from '../../../../src/emulators/servicebus/message.js';

const codec = rhea.message as unknown as { encode(m: object): Buffer; data_section(b: Buffer): unknown };

class FakeConsumer implements Consumer {
  session: Session | undefined;
  readonly got: Array<{ msg: StoredMessage; lock: Lock | undefined }> = [];
  lost = 0;
  constructor(
    readonly id: string,
    public credit: number,
    readonly receiveAndDelete = false,
  ) {}
  capacity(): number {
    return this.credit - this.got.length;
  }
  deliver(msg: StoredMessage, lock: Lock | undefined): void {
    this.got.push({ msg, lock });
  }
  sessionLockLost(): void {
    this.lost++;
  }
}

function incoming(body: string, sessionId?: string, ttlMs?: number): IncomingMessage {
  return {
    props: { messageId: body, ...(sessionId === undefined ? {} : { sessionId }) },
    wire: {
      durable: false,
      priority: 4,
      ttlMs,
      annotations: [],
      properties: Buffer.alloc(0),
      applicationProperties: undefined,
      body: Buffer.from(body),
    },
    scheduledAt: undefined,
    size: body.length,
  };
}

const SETTINGS: StoreSettings = {
  lockDurationMs: 1000,
  maxDeliveryCount: 2,
  defaultTtlMs: 60_000,
  deadLetterOnExpiration: false,
  requiresSession: false,
};

describe('Service Bus emulator entity (queue logic)', () => {
  let clock: sinon.SinonFakeTimers;
  let journal: { [K in keyof StoreJournal]: sinon.SinonSpy };

  beforeEach(() => {
    clock = sinon.useFakeTimers({ now: 1_000_000, toFake: ['Date'] });
    journal = {
      enqueued: sinon.spy(),
      updated: sinon.spy(),
      removed: sinon.spy(),
      deferred: sinon.spy(),
      sessionState: sinon.spy(),
    };
  });
  afterEach(() => clock.restore());

  function store(settings: Partial<StoreSettings> = {}, deflateAboveBytes?: number): MessageStore {
    return new MessageStore({
      path: 'q',
      name: 'q',
      settings: { ...SETTINGS, ...settings },
      journal,
      withDeadLetter: true,
      ...(deflateAboveBytes === undefined ? {} : { deflateAboveBytes }),
    });
  }

  it('shares messages between competing consumers within their credit, round robin', () => {
    const s = store();
    const a = new FakeConsumer('a', 2);
    const b = new FakeConsumer('b', 1);
    s.addConsumer(a);
    s.addConsumer(b);
    for (const body of ['1', '2', '3', '4']) s.enqueue(incoming(body), Date.now());
    assert.deepEqual(
      a.got.map((g) => g.msg.seq),
      [1, 3],
    );
    assert.deepEqual(
      b.got.map((g) => g.msg.seq),
      [2],
    );
    a.credit = 3;
    s.pump();
    assert.deepEqual(
      a.got.map((g) => g.msg.seq),
      [1, 3, 4],
    );
    assert.equal(journal.enqueued.callCount, 4);
  });

  it('abandons with delivery count + 1 and dead-letters at MaxDeliveryCount', () => {
    const s = store();
    const c = new FakeConsumer('c', 10);
    s.addConsumer(c);
    s.enqueue(incoming('x'), Date.now());
    assert.equal(s.settle(c.got[0]!.lock!.key, { kind: 'abandon' }, Date.now()), 'ok');
    assert.equal(c.got[1]!.msg.deliveryCount, 1);
    assert.equal(journal.updated.callCount, 1, 'the new delivery count is journaled');
    assert.equal(s.settle(c.got[1]!.lock!.key, { kind: 'abandon' }, Date.now()), 'ok');
    assert.equal(c.got.length, 2, 'not delivered a third time');
    assert.equal(s.messageCount, 0);
    const [dead] = s.deadLetter!.peek(0, 10, undefined, Date.now());
    assert.equal(dead!.deliveryCount, 2);
    assert.equal(dead!.deadLetterSource, 'q');
    assert.equal(s.settle(c.got[1]!.lock!.key, { kind: 'complete' }, Date.now()), 'lock-lost');
  });

  it('expires locks on the clock and refuses late settlements', () => {
    const s = store();
    const c = new FakeConsumer('c', 1);
    s.addConsumer(c);
    s.enqueue(incoming('x'), Date.now());
    const lock = c.got[0]!.lock!;
    clock.tick(500);
    assert.equal(s.renewLock(lock.key, Date.now()), Date.now() + 1000);
    clock.tick(999);
    s.tick(Date.now(), false);
    assert.equal(s.messageCount, 1);
    clock.tick(1);
    c.credit = 2;
    s.tick(Date.now(), false);
    assert.equal(c.got.length, 2, 'redelivered after the lock expired');
    assert.equal(c.got[1]!.msg.deliveryCount, 1);
    assert.equal(s.settle(lock.key, { kind: 'complete' }, Date.now()), 'lock-lost');
  });

  it('drops expired messages and delivers in receive-and-delete mode without locks', () => {
    const s = store();
    s.enqueue(incoming('short', undefined, 100), Date.now());
    s.enqueue(incoming('long'), Date.now());
    clock.tick(150);
    const c = new FakeConsumer('c', 5, true);
    s.addConsumer(c);
    s.pump();
    assert.deepEqual(
      c.got.map((g) => [g.msg.props.messageId, g.lock]),
      [['long', undefined]],
    );
    assert.equal(s.messageCount, 0);
    assert.equal(journal.removed.callCount, 2);
  });

  it('locks sessions: named, next available, waiting, and cannot-be-locked', async () => {
    const s = store({ requiresSession: true });
    s.enqueue(incoming('a1', 'A'), Date.now());
    const first = new FakeConsumer('1', 10);
    s.addConsumer(first);
    const next = s.acceptSession(first, undefined, 1000, Date.now());
    assert.ok(!(next instanceof Promise) && next !== 'locked' && next.id === 'A');
    s.pump();
    assert.deepEqual(
      first.got.map((g) => g.msg.props.messageId),
      ['a1'],
    );
    assert.equal(s.acceptSession(new FakeConsumer('2', 1), 'A', 1000, Date.now()), 'locked');

    const waiter = new FakeConsumer('3', 10);
    s.addConsumer(waiter);
    const waiting = s.acceptSession(waiter, undefined, 1000, Date.now());
    assert.ok(waiting instanceof Promise);
    s.enqueue(incoming('b1', 'B'), Date.now());
    assert.equal((await waiting)?.id, 'B');
    s.pump();
    assert.deepEqual(
      waiter.got.map((g) => g.msg.props.messageId),
      ['b1'],
    );

    const late = s.acceptSession(new FakeConsumer('4', 1), undefined, 500, Date.now());
    assert.ok(late instanceof Promise);
    clock.tick(501);
    s.tick(Date.now(), false);
    assert.equal(await late, undefined, 'the wait timed out');
  });

  it('loses an expired session lock and redelivers its locked messages', () => {
    const s = store({ requiresSession: true });
    s.enqueue(incoming('m', 'S'), Date.now());
    const holder = new FakeConsumer('h', 10);
    s.addConsumer(holder);
    s.acceptSession(holder, 'S', 1000, Date.now());
    s.pump();
    assert.equal(holder.got.length, 1);
    assert.equal(s.setSessionState('S', Buffer.from('st'), Date.now()), 'ok');
    clock.tick(1000);
    s.tick(Date.now(), false);
    assert.equal(holder.lost, 1);
    assert.equal(holder.session, undefined);
    assert.equal(s.settle(holder.got[0]!.lock!.key, { kind: 'complete' }, Date.now()), 'lock-lost');
    const next = new FakeConsumer('n', 10);
    s.addConsumer(next);
    s.acceptSession(next, 'S', 1000, Date.now());
    s.pump();
    assert.equal(next.got[0]!.msg.deliveryCount, 1);
    assert.deepEqual(s.getSessionState('S', Date.now()), Buffer.from('st'));
    assert.equal(journal.sessionState.callCount, 1);
  });

  it('gives a released session with several locked messages to one waiting receiver only, with delivery count + 1', async () => {
    const s = store({ requiresSession: true, maxDeliveryCount: 10 });
    for (const body of ['m1', 'm2', 'm3']) s.enqueue(incoming(body, 'S'), Date.now());
    const holder = new FakeConsumer('h', 10);
    s.addConsumer(holder);
    s.acceptSession(holder, 'S', 1000, Date.now());
    s.pump();
    assert.equal(holder.got.length, 3);
    // A waiting receiver has no credit yet: its link opens only once it gets the session.
    const waiters = ['w1', 'w2', 'w3'].map((id) => new FakeConsumer(id, 0));
    const waits = waiters.map((w) => {
      s.addConsumer(w);
      return s.acceptSession(w, undefined, 500, Date.now()) as Promise<Session | undefined>;
    });
    s.removeConsumer(holder, Date.now());
    clock.tick(600);
    s.tick(Date.now(), false);
    const granted = await Promise.all(waits);
    assert.deepEqual(
      granted.map((g) => g?.id),
      ['S', undefined, undefined],
      'one waiter got the session, the others timed out',
    );
    assert.deepEqual([waiters[0]!.session?.id, waiters[1]!.session, waiters[2]!.session], ['S', undefined, undefined]);
    waiters[0]!.credit = 10;
    s.pump();
    assert.deepEqual(
      waiters[0]!.got.map((g) => [g.msg.props.messageId, g.msg.deliveryCount]),
      [
        ['m1', 1],
        ['m2', 1],
        ['m3', 1],
      ],
    );

    s.removeConsumer(waiters[1]!, Date.now());
    assert.equal(waiters[0]!.session?.holder, waiters[0], 'a consumer that never held the session cannot release it');
  });

  it('takes an expired named session for a new receiver without handing it to a waiter as well', async () => {
    const s = store({ requiresSession: true });
    s.enqueue(incoming('m', 'S'), Date.now());
    const old = new FakeConsumer('old', 10);
    s.addConsumer(old);
    s.acceptSession(old, 'S', 1000, Date.now());
    s.pump();
    const waiter = new FakeConsumer('w', 10);
    s.addConsumer(waiter);
    const waiting = s.acceptSession(waiter, undefined, 300, Date.now()) as Promise<Session | undefined>;
    clock.tick(1000);
    const named = new FakeConsumer('named', 10);
    s.addConsumer(named);
    const got = s.acceptSession(named, 'S', 1000, Date.now());
    assert.ok(!(got instanceof Promise) && got !== 'locked' && got.holder === named);
    s.tick(Date.now(), false);
    assert.equal(await waiting, undefined);
    assert.equal(waiter.session, undefined);
    assert.equal(old.lost, 1);
  });

  it('defers, receives deferred by sequence number, and schedules', () => {
    const s = store();
    const c = new FakeConsumer('c', 10);
    s.addConsumer(c);
    s.enqueue(incoming('d'), Date.now());
    s.settle(c.got[0]!.lock!.key, { kind: 'defer' }, Date.now());
    assert.equal(journal.deferred.callCount, 1);
    assert.equal(s.receiveDeferred([99], false, undefined, Date.now()), undefined);
    const [received] = s.receiveDeferred([1], false, undefined, Date.now())!;
    assert.equal(s.settle(received!.lock!.key, { kind: 'complete' }, Date.now()), 'ok');

    const scheduled = s.enqueue({ ...incoming('later'), scheduledAt: Date.now() + 500 }, Date.now());
    assert.equal(scheduled.state, 'scheduled');
    assert.equal(c.got.length, 1);
    clock.tick(500);
    s.tick(Date.now(), false);
    assert.deepEqual(
      c.got.map((g) => g.msg.props.messageId),
      ['d', 'later'],
    );
  });

  it('keeps messages deflated past deflateAboveBytes in a fifth of the bytes, and delivers, peeks, abandons, defers and dead-letters them byte for byte as kept ones', () => {
    /** A RemoteExecutionContext-like JSON body of ~6 KB, different per message. */
    const body = (n: number): Buffer =>
      Buffer.from(
        JSON.stringify({
          n,
          Target: Array.from({ length: 40 }, (_, i) => ({
            key: `msdyncrm_column_${i}`,
            value: { __type: 'EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts', Id: `${n}-${i}` },
          })),
        }),
      );
    const sent = [1, 2, 3].map((n) =>
      parseMessage(
        codec.encode({
          message_id: `m${n}`,
          content_type: 'application/json',
          application_properties: { 'http://schemas.microsoft.com/xrm/2011/Claims/User': `user-${n}` },
          message_annotations: { 'x-opt-partition-key': `pk${n}` },
          body: codec.data_section(body(n)),
        }),
      ),
    );
    const run = (s: MessageStore): { delivered: Buffer[]; stored: number; counts: object } => {
      const c = new FakeConsumer('c', 10);
      s.addConsumer(c);
      for (const m of sent) s.enqueue(m, Date.now());
      const stored = s.storedBytes;
      const key = (i: number): string => c.got[i]!.lock!.key;
      s.settle(key(0), { kind: 'complete' }, Date.now());
      s.settle(key(1), { kind: 'abandon', properties: { retried: true } }, Date.now());
      s.settle(key(2), { kind: 'defer', properties: { later: 1 } }, Date.now());
      s.settle(key(3), { kind: 'dead-letter', reason: 'Poison', properties: { why: 'test' } }, Date.now());
      const [deferred] = s.receiveDeferred([3], false, undefined, Date.now())!;
      const peeked = [...s.peek(0, 10, undefined, Date.now()), ...s.deadLetter!.peek(0, 10, undefined, Date.now())];
      const delivered = [
        ...c.got.map((g) => encodeForDelivery(g.msg, { lockedUntil: g.lock!.until })),
        encodeForDelivery(deferred!.msg),
        ...peeked.map((m) => encodeForDelivery(m)),
      ];
      return { delivered, stored, counts: { ...s.runtimeCounts(), dead: s.deadLetter!.runtimeCounts() } };
    };
    const kept = run(store());
    const deflated = run(store({}, 0));
    assert.equal(deflated.delivered.length, 7);
    assert.deepEqual(deflated.delivered, kept.delivered);
    assert.deepEqual(deflated.counts, kept.counts, 'the management API counts each message at its size as sent');
    assert.equal((kept.counts as { deferred: number }).deferred, 1);
    assert.ok(deflated.stored * 5 < kept.stored, `deflated ${deflated.stored} bytes, kept ${kept.stored}`);
  });

  it('keeps messages as they came until the entity holds deflateAboveBytes, and deflates the ones that come after', () => {
    const s = store({}, 10_000);
    const big = (n: number): IncomingMessage => incoming(JSON.stringify({ n, pad: 'x'.repeat(3000) }));
    for (let n = 0; n < 6; n++) s.enqueue(big(n), Date.now());
    // 4 × ~3 KB reach 10,000 bytes: the fifth and sixth are deflated.
    assert.deepEqual(
      [...s.liveMessages()].map((m) => m.wire instanceof PackedWire && m.wire.deflated),
      [false, false, false, false, true, true],
    );
  });

  it('takes from a queue of 100,000 as fast as from one of 2,000: a receive reads the front, not the queue', () => {
    // A journal that records nothing: sinon's spies keep every call with its stack, too slow for 100,000.
    const quiet: StoreJournal = { enqueued() {}, updated() {}, removed() {}, deferred() {}, sessionState() {} };
    const drain = (depth: number): number => {
      const s = new MessageStore({ path: 'q', name: 'q', settings: SETTINGS, journal: quiet, withDeadLetter: true });
      for (let i = 0; i < depth; i++) s.enqueue(incoming(String(i)), Date.now());
      const c = new FakeConsumer('c', 0);
      s.addConsumer(c);
      const started = performance.now();
      for (let round = 0; round < 20; round++) {
        c.credit += 100;
        s.pump();
        for (const g of c.got.slice(-100)) s.settle(g.lock!.key, { kind: 'complete' }, Date.now());
      }
      const ms = performance.now() - started;
      assert.equal(c.got.length, 2000);
      assert.equal(s.messageCount, depth - 2000);
      return ms;
    };
    drain(2_000);
    // Alternated, best of four each: the machine's load moves both alike, and a pause in one run (a collection, another
    // process on the core) does not decide the ratio; two each failed once beside the lint in CI (deep 23 and 188 ms,
    // shallow 49 and 7 ms).
    const deep: number[] = [];
    const shallow: number[] = [];
    for (let i = 0; i < 4; i++) {
      shallow.push(drain(2_000));
      deep.push(drain(100_000));
    }
    const ratio = Math.min(...deep) / Math.min(...shallow);
    assert.ok(ratio < 3, `deep / shallow = ${ratio.toFixed(2)} (${deep.join(', ')} vs ${shallow.join(', ')})`);
  });
});
