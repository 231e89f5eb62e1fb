import assert from 'node:assert/strict';
import { verifySecretToken } from '../../../src/providers/index.js';

describe('Telegram webhook secret token', () => {
  it('accepts a token equal to one of those accepted (a rotation accepts two)', () => {
    assert.equal(verifySecretToken('new-token', ['new-token']), true);
    assert.equal(verifySecretToken('old-token', ['new-token', 'old-token']), true);
  });

  it('refuses another token, a prefix, a longer one, and every token when none is accepted', () => {
    assert.equal(verifySecretToken('other-token', ['new-token', 'old-token']), false);
    assert.equal(verifySecretToken('new-toke', ['new-token']), false);
    assert.equal(verifySecretToken('new-token-and-more', ['new-token']), false);
    assert.equal(verifySecretToken('new-token', []), false);
  });
});
