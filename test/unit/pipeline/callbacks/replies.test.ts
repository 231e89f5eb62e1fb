import assert from 'node:assert/strict';
import { REPLIES_DEFAULTS, ReplyCache, type SentMessage } from '../../../../src/pipeline/callbacks/replies.js';

const message = (row: string, sentAt: number, contactId = 'contact-1'): SentMessage => ({
  activityRowId: row,
  contactId,
  tile: 'AbCdEfGh',
  sentAt,
});

describe('callbacks: the reply cache', () => {
  let t: number;
  beforeEach(() => (t = 1_000_000_000));

  it('gives the message learned for a recipient of a channel, and nothing for another recipient or channel', () => {
    const replies = new ReplyCache({ now: () => t });
    replies.learn('sms', '+15550001', message('row-1', t));
    assert.deepEqual(replies.newest('sms', '+15550001'), message('row-1', t));
    assert.deepEqual(replies.newest('sms', ' +15550001 '), message('row-1', t), 'the address trimmed');
    assert.equal(replies.newest('sms', '+15550002'), undefined);
    assert.equal(replies.newest('tg', '+15550001'), undefined);
    replies.learn('sms', '  ', message('row-2', t));
    assert.equal(replies.size, 1, 'no entry for an empty address');
  });

  it('the newer send wins, whatever order the reports come in; the first known of two sent at once stays', () => {
    const replies = new ReplyCache({ now: () => t });
    replies.learn('sms', 'a', message('row-2', t - 10));
    replies.learn('sms', 'a', message('row-1', t - 20));
    assert.equal(replies.newest('sms', 'a')?.activityRowId, 'row-2');
    replies.learn('sms', 'a', message('row-3', t - 10));
    assert.equal(replies.newest('sms', 'a')?.activityRowId, 'row-2');
    replies.learn('sms', 'a', message('row-4', t - 5, 'contact-2'));
    assert.deepEqual(replies.newest('sms', 'a'), message('row-4', t - 5, 'contact-2'));
    // Another report of the same message (delivered after sent) keeps it.
    replies.learn('sms', 'a', message('row-4', t - 5, 'contact-2'));
    assert.equal(replies.newest('sms', 'a')?.activityRowId, 'row-4');
  });

  it('a message is used for maxAgeMs after its send, not after its report; one already older is not learned', () => {
    const replies = new ReplyCache({ maxAgeMs: 1000, now: () => t });
    replies.learn('sms', 'a', message('old', t - 1001));
    assert.equal(replies.size, 0);
    replies.learn('sms', 'a', message('row-1', t - 600));
    t += 399;
    assert.equal(replies.newest('sms', 'a')?.activityRowId, 'row-1');
    t += 2;
    assert.equal(replies.newest('sms', 'a'), undefined);
  });

  it('after maxAgeMs an older message can be learned again (the expired newer one no longer stands)', () => {
    const replies = new ReplyCache({ maxAgeMs: 1000, now: () => t });
    replies.learn('sms', 'a', message('row-2', t));
    t += 1000;
    replies.learn('sms', 'a', message('row-3', t - 10));
    assert.equal(replies.newest('sms', 'a')?.activityRowId, 'row-3');
  });

  it('is bounded: beyond max the least recently used recipient goes', () => {
    const replies = new ReplyCache({ max: 2, now: () => t });
    replies.learn('sms', 'a', message('row-a', t));
    replies.learn('sms', 'b', message('row-b', t));
    assert.ok(replies.newest('sms', 'a'));
    replies.learn('sms', 'c', message('row-c', t));
    assert.equal(replies.size, 2);
    assert.equal(replies.newest('sms', 'b'), undefined);
    assert.ok(replies.newest('sms', 'a') && replies.newest('sms', 'c'));
  });

  it('max 0 or maxAgeMs 0 keeps nothing; bad options are refused naming them; defaults 100,000 and 24 h', () => {
    for (const options of [{ max: 0 }, { maxAgeMs: 0 }]) {
      const replies = new ReplyCache({ ...options, now: () => t });
      replies.learn('sms', 'a', message('row-1', t));
      assert.equal(replies.newest('sms', 'a'), undefined);
    }
    assert.throws(
      () => new ReplyCache({ max: -1 }),
      /createCallbacksServer: replyCache\.max must be an integer >= 0, found -1/,
    );
    assert.throws(
      () => new ReplyCache({ maxAgeMs: 1.5 }),
      /createCallbacksServer: replyCache\.maxAgeMs must be an integer >= 0, found 1\.5/,
    );
    assert.deepEqual(REPLIES_DEFAULTS, { max: 100_000, maxAgeMs: 24 * 3_600_000 });
  });
});
