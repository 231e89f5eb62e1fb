import assert from 'node:assert/strict';
import { DISPATCH_DEAD_LETTER_REASONS, outboundReplay } from '../../../../src/pipeline/dispatch/index.js';

describe("dispatch: replaying outbound's dead letters", () => {
  const { interactionNotSent, unconfirmed, retriesExhausted, unknownChannel } = DISPATCH_DEAD_LETTER_REASONS;

  it('a replay of every reason leaves what the provider took or may have taken', () => {
    assert.deepEqual(outboundReplay(), { allowed: true, excludeReasons: [interactionNotSent, unconfirmed] });
  });

  it('a replay of a reason nothing was sent for leaves them too (they do not match it anyway)', () => {
    for (const reason of [retriesExhausted, unknownChannel, 'SomethingElse']) {
      assert.deepEqual(
        outboundReplay(reason),
        { allowed: true, excludeReasons: [interactionNotSent, unconfirmed] },
        reason,
      );
    }
  });

  it('ProviderAnswerUnreadable goes back only when asked for by name', () => {
    assert.equal(unconfirmed, 'ProviderAnswerUnreadable');
    assert.deepEqual(outboundReplay(unconfirmed), { allowed: true, excludeReasons: [interactionNotSent] });
  });

  it('InteractionNotSent never goes back to outbound, even when asked for by name', () => {
    assert.equal(interactionNotSent, 'InteractionNotSent');
    assert.deepEqual(outboundReplay(interactionNotSent), { allowed: false, reason: interactionNotSent });
  });
});
