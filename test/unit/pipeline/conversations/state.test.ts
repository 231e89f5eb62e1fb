import assert from 'node:assert/strict';
import {
  CLEARED_STATE,
  decodeState,
  encodeEnded,
  encodeState,
  markPosted,
  POSTED_KEPT,
  type ConversationState,
} from '../../../../src/pipeline/conversations/state.js';

function state(overrides: Partial<ConversationState> = {}): ConversationState {
  return {
    v: 1,
    account: 'contoso',
    conversationId: 'conv-1',
    token: 'token-1',
    tokenExpiresAt: 2_000_000,
    userId: 'relay-1',
    startedAt: 1_000_000,
    lastActivityAt: 1_000_000,
    idlePolls: 0,
    posted: [],
    ...overrides,
  };
}

describe('conversations session state', () => {
  it('round-trips, and reads none from nothing, empty or the cleared state', () => {
    const s = state({ watermark: 'w3', pollDueAt: 1_001_000, posted: ['a', 'b'], posting: ['c'] });
    assert.deepEqual(decodeState(encodeState(s)), { ok: true, state: s, previous: [] });
    const next = state({ previous: ['p1', 'p2'] });
    assert.deepEqual(decodeState(encodeState(next)), { ok: true, state: next, previous: ['p1', 'p2'] });
    for (const raw of [undefined, Buffer.alloc(0), CLEARED_STATE, encodeEnded([])])
      assert.deepEqual(decodeState(raw), { ok: true, state: undefined, previous: [] });
  });

  it('an ended conversation leaves only the ids posted to it (bounded), and no conversation', () => {
    const ids = Array.from({ length: POSTED_KEPT + 5 }, (_, i) => `id-${i}`);
    const decoded = decodeState(encodeEnded(ids));
    assert.deepEqual(decoded, { ok: true, state: undefined, previous: ids.slice(-POSTED_KEPT) });
    const bad = decodeState(Buffer.from(JSON.stringify({ v: 1, previous: [''] })));
    assert.ok(!bad.ok && /previous/.test(bad.reason));
  });

  it('keeps the newest posted ids only, and takes a posted id off posting', () => {
    const s = state({ posting: ['x'] });
    for (let i = 0; i < POSTED_KEPT + 10; i++) markPosted(s, `id-${i}`);
    markPosted(s, 'x');
    assert.equal(s.posted.length, POSTED_KEPT);
    assert.equal(s.posted.at(-1), 'x');
    assert.equal(s.posted[0], 'id-11');
    assert.equal(s.posting, undefined);
    assert.ok(encodeState(s).length < 10_000);
  });

  it('refuses what it cannot read, naming the field', () => {
    const cases: Array<[string, RegExp]> = [
      ['{', /not JSON/],
      ['[1]', /not a JSON object/],
      [JSON.stringify({ ...state(), v: 2 }), /v must be 1/],
      [JSON.stringify({ ...state(), conversationId: '' }), /conversationId must be a non-empty string/],
      [JSON.stringify({ ...state(), tokenExpiresAt: 'soon' }), /tokenExpiresAt must be a number/],
      [
        JSON.stringify({ ...state(), posted: Array.from({ length: POSTED_KEPT + 1 }, (_, i) => `${i}`) }),
        /posted must be an array of at most/,
      ],
      [JSON.stringify({ ...state(), posting: [''] }), /posting must be/],
    ];
    for (const [raw, reason] of cases) {
      const decoded = decodeState(Buffer.from(raw));
      assert.equal(decoded.ok, false, raw);
      assert.match(decoded.ok ? '' : decoded.reason, reason);
    }
  });
});
