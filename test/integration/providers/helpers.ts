/** Shared set-up for driving the provider adapters against the provider simulators. */
import assert from 'node:assert/strict';
import { isProviderError, type ProviderError } from '../../../src/errors.js';

export const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const AUTH_TOKEN = 'adapter-test-auth-token';
export const BOT_TOKEN = '123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ab';
export const SIGNING_SECRET = `whsec_${Buffer.from('adapter tests signing secret 32b').toString('base64')}`;

export { ManualClock, simulators } from '../emulators/providers/helpers.js';

/** The `ProviderError` a send rejected with (fails when it resolved or threw something else). */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isProviderError(err), `a ProviderError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the send to be refused');
}
