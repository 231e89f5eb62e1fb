import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  RECORD,
  enqueueRecord,
  nextSeqRecord,
  seqRecord,
  sessionStateRecord,
  splitRecords,
} from '../../../../src/emulators/servicebus/journal-codec.js';
import { JOURNAL_FILE, Journal, replayJournal } from '../../../../src/emulators/servicebus/journal.js';
import type { StoredMessage } from '../../../../src/emulators/servicebus/message.js';
import { silentLogger } from '../../../../src/log.js';

function message(seq: number, extra: Partial<StoredMessage> = {}): StoredMessage {
  return {
    seq,
    enqueuedAt: 1000 + seq,
    expiresAt: Number.POSITIVE_INFINITY,
    ttlMs: Number.POSITIVE_INFINITY,
    deliveryCount: 0,
    state: 'active',
    scheduledAt: undefined,
    props: { messageId: `m${seq}`, sessionId: 's' },
    wire: {
      durable: true,
      priority: 4,
      ttlMs: undefined,
      annotations: [Buffer.from([1, 2])],
      properties: Buffer.from([3]),
      applicationProperties: undefined,
      body: Buffer.from('body'),
    },
    deadLetterSource: undefined,
    removed: false,
    ...extra,
  };
}

describe('Service Bus emulator journal', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-journal-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replays the next sequence number of each store past removed messages and compaction watermarks', () => {
    writeFileSync(
      path.join(dir, JOURNAL_FILE),
      Buffer.concat([
        nextSeqRecord('r', 9),
        enqueueRecord('q', message(5)),
        seqRecord(RECORD.remove, 'q', 5),
        nextSeqRecord('q', 3),
        enqueueRecord('r', message(2)),
      ]),
    );
    const state = replayJournal(dir);
    assert.equal(state.messages.get('q')!.size, 0);
    assert.deepEqual([...state.nextSeq].sort(), [
      ['q', 6],
      ['r', 9],
    ]);
  });

  it('replays enqueues, removals, deferrals and session states', () => {
    const file = path.join(dir, JOURNAL_FILE);
    writeFileSync(
      file,
      Buffer.concat([
        enqueueRecord('q', message(1)),
        enqueueRecord('q', message(2, { scheduledAt: 5000, state: 'scheduled', deadLetterSource: 'x' })),
        enqueueRecord('q', message(3)),
        seqRecord(RECORD.remove, 'q', 1),
        seqRecord(RECORD.defer, 'q', 3),
        sessionStateRecord('q', 's', Buffer.from('state')),
        sessionStateRecord('q', 't', undefined),
      ]),
    );
    const state = replayJournal(dir);
    assert.equal(state.records, 7);
    const q = state.messages.get('q')!;
    assert.deepEqual([...q.keys()], [2, 3]);
    assert.equal(q.get(3)!.state, 'deferred');
    assert.deepEqual(q.get(2), { ...message(2, { scheduledAt: 5000, state: 'scheduled', deadLetterSource: 'x' }) });
    assert.deepEqual(
      state.sessionStates.get('q'),
      new Map([
        ['s', Buffer.from('state')],
        ['t', undefined],
      ]),
    );
  });

  it('cuts off a torn or corrupt tail and keeps what came before', () => {
    const file = path.join(dir, JOURNAL_FILE);
    const good = enqueueRecord('q', message(1));
    const corrupt = Buffer.from(enqueueRecord('q', message(2)));
    corrupt[corrupt.length - 1] = corrupt.at(-1)! ^ 0xff;
    writeFileSync(file, Buffer.concat([good, corrupt]));
    const state = replayJournal(dir);
    assert.deepEqual([...state.messages.get('q')!.keys()], [1]);
    assert.equal(state.discardedBytes, corrupt.length);
    assert.equal(statSync(file).size, good.length);
    appendFileSync(file, good.subarray(0, 10));
    assert.equal(splitRecords(readFileSync(file)).bodies.length, 1);
  });

  it('group-commits appends and compacts to the live state, which covers the records pending at that moment', async () => {
    const live = new Map<number, StoredMessage>();
    const journal = await Journal.open({
      dir,
      fsync: true,
      compactBytes: 2000,
      log: silentLogger(),
      snapshot: () => [...live.values()].map((m) => enqueueRecord('q', m)),
    });
    const add = (i: number): void => {
      live.set(i, message(i));
      journal.append(enqueueRecord('q', message(i)));
    };
    for (let i = 1; i <= 5; i++) add(i);
    await journal.commit();
    const file = path.join(dir, JOURNAL_FILE);
    assert.deepEqual([...replayJournal(dir).messages.get('q')!.keys()], [1, 2, 3, 4, 5]);
    for (let i = 6; i <= 40; i++) add(i);
    await journal.commit();
    for (let i = 1; i <= 39; i++) {
      live.delete(i);
      journal.append(seqRecord(RECORD.remove, 'q', i));
    }
    await journal.commit();
    assert.ok(statSync(file).size < 2000, 'compacted');
    add(41);
    await journal.commit();
    await journal.close();
    assert.deepEqual([...replayJournal(dir).messages.get('q')!.keys()], [40, 41], 'appends go on after the compaction');
  });
});
