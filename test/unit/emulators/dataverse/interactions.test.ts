import assert from 'node:assert/strict';
import { InteractionLog, type Interaction } from '../../../../src/emulators/dataverse/interactions.js';
import { Tx } from '../../../../src/emulators/dataverse/store.js';

function interaction(activityRowId: string, responseType: string, triggerKeyword?: string): Omit<Interaction, 'seq'> {
  const item: Omit<Interaction, 'seq'> = {
    kind: 'interaction',
    createdOn: '2026-11-22T00:00:00Z',
    userId: 'u',
    activityId: activityRowId,
    activityRowId,
    responseType,
  };
  if (triggerKeyword !== undefined) item.triggerKeyword = triggerKeyword;
  return item;
}

describe('interaction log: when', () => {
  it('stamps each interaction with the ms it was stored (createdOn has whole seconds)', () => {
    const log = new InteractionLog();
    const before = Date.now();
    const stored = log.add(interaction('a', 'sent'));
    assert.ok(stored.recordedAtMs !== undefined && stored.recordedAtMs >= before && stored.recordedAtMs <= Date.now());
    assert.equal(log.query({ activityRowId: 'a' })[0]?.recordedAtMs, stored.recordedAtMs);
  });
});

describe('interaction log: duplicates', () => {
  it('marks a repeat of activity + response type + keyword (case-insensitive) with the seq of the first', () => {
    const log = new InteractionLog();
    const first = log.add(interaction('a', 'sent'));
    assert.equal(log.add(interaction('a', 'sent')).duplicateOf, first.seq);
    assert.equal(log.add(interaction('b', 'sent')).duplicateOf, undefined);
    const yes = log.add(interaction('a', 'keyword', 'YES'));
    assert.equal(log.add(interaction('a', 'keyword', 'yes')).duplicateOf, yes.seq);
    assert.equal(log.add(interaction('a', 'keyword', 'STOP')).duplicateOf, undefined);
    assert.equal(log.duplicates, 2);
    assert.deepEqual(
      log.query({ duplicates: true }).map((i) => i.seq),
      [2, 5],
    );
    assert.equal(log.query({ activityId: 'a', duplicates: false }).length, 3);
  });

  it('undoes the marks of a rolled-back change set: the next write of the same key is a first again', () => {
    const log = new InteractionLog();
    const tx = new Tx();
    log.add(interaction('a', 'sent'), tx);
    log.add(interaction('a', 'sent'), tx);
    tx.rollback();
    assert.equal(log.size, 0);
    assert.equal(log.duplicates, 0);
    assert.equal(log.add(interaction('a', 'sent')).duplicateOf, undefined);
    const tx2 = new Tx();
    log.add(interaction('a', 'sent'), tx2);
    tx2.rollback();
    assert.equal(log.add(interaction('a', 'sent')).duplicateOf, 1);
  });
});
