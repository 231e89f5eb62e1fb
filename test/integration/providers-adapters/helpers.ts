/** Shared set-up for driving the provider adapters against the provider simulators. */
import assert from 'node:assert/strict';
import { startProviderSimulators, type ProviderSimulators, type ProviderSimulatorsOptions } from '../../../src/emulators/providers/index.js';
import { isProviderError, type ProviderError } from '../../../src/errors.js';
import { closedAfterEach } from '../../helpers/fixtures.js';

export const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const AUTH_TOKEN = 'adapter-test-auth-token';
export const BOT_TOKEN = '123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ab';
export const SIGNING_SECRET = `whsec_${Buffer.from('adapter tests signing secret 32b').toString('base64')}`;

/**
 * A clock the test moves by hand, starting now (the contract simulator checks `webhook-timestamp`, which the
 * adapter stamps from the real clock, against it): rate windows without waiting.
 */
export class ManualClock {
  now = Date.now();
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Returns a starter of simulators (port 0) closed after each test of the `describe` block. */
export function simulators(): (options?: ProviderSimulatorsOptions) => Promise<ProviderSimulators> {
  const track = closedAfterEach();
  return async (options = {}) => track(await startProviderSimulators({ port: 0, ...options }));
}

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
