/** The token source (cache until near expiry, one acquisition for concurrent callers) and the client's options. */
import assert from 'node:assert/strict';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { cachedTokenSource, createDataverseClient, dataverseClientFromConfig } from '../../../src/dataverse/index.js';

function fakeCredential(expiresInMs: number, now: () => number) {
  const scopes: string[] = [];
  let n = 0;
  const credential: TokenCredential = {
    getToken: async (scope) => {
      scopes.push(String(scope));
      await new Promise((r) => setImmediate(r));
      return { token: `token-${++n}`, expiresOnTimestamp: now() + expiresInMs } satisfies AccessToken;
    },
  };
  return { credential, scopes };
}

/** The embedded defaults' service protection settings (config/default.json). */
const SAMPLE_BUDGETS = { requestBudget: 6000, executionBudgetMs: 1_200_000, maxConcurrency: 16 };

describe('cachedTokenSource', () => {
  it('asks the credential once for concurrent callers and caches the token until refreshMarginMs before it expires', async () => {
    let now = 0;
    const fake = fakeCredential(3_600_000, () => now);
    const token = cachedTokenSource(fake.credential, 'https://org.crm.dynamics.com/.default', 300_000, () => now);
    assert.deepEqual(await Promise.all([token(), token(), token()]), ['token-1', 'token-1', 'token-1']);
    now = 3_299_999;
    assert.equal(await token(), 'token-1');
    now = 3_300_000;
    assert.equal(await token(), 'token-2');
    assert.deepEqual(fake.scopes, ['https://org.crm.dynamics.com/.default', 'https://org.crm.dynamics.com/.default']);
  });

  it('a credential that fails is asked again next time', async () => {
    let calls = 0;
    const token = cachedTokenSource(
      { getToken: async () => (++calls === 1 ? null : { token: 't', expiresOnTimestamp: Date.now() + 3_600_000 }) },
      's',
    );
    await assert.rejects(
      token(),
      (err: Error) => err.name === 'CredentialUnavailableError' && /no token for s/.test(err.message),
    );
    assert.equal(await token(), 't');
  });
});

describe('createDataverseClient options', () => {
  it('refuses what cannot work, naming the key', () => {
    assert.throws(
      () => createDataverseClient({ url: 'org.crm.dynamics.com', auth: 'emulator' }),
      /url must be an http\(s\) URL/,
    );
    assert.throws(
      () => createDataverseClient({ url: 'https://org', auth: 'client-secret', tenantId: 't' }),
      /client-secret needs tenantId, clientId and clientSecret/,
    );
    assert.throws(
      () => createDataverseClient({ url: 'https://org', auth: 'emulator', timeoutMs: 0 }),
      /timeoutMs must be > 0/,
    );
    assert.throws(
      () =>
        dataverseClientFromConfig({
          dataverse: { auth: 'emulator', timeoutMs: 1000, limitsWindowMs: 300_000, ...SAMPLE_BUDGETS },
        }),
      /dataverse.url is not set \(DATAVERSE_URL\)/,
    );
  });
});
