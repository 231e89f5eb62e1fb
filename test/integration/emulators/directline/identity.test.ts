import assert from 'node:assert/strict';
import { request } from 'node:https';
import { ClientSecretCredential } from '@azure/identity';
import type { DirectLineEmulator } from '../../../../src/emulators/directline/index.js';
import { emulators } from './helpers.js';

const SINGLE = '11111111-2222-4333-8444-555555555555';
const BOT = '6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a';
const SCOPE = 'https://api.botframework.com/.default';
const APPS = {
  apps: [
    {
      clientId: SINGLE,
      tenant: 'contoso.onmicrosoft.com',
      secrets: [{ value: 'good-secret' }, { value: 'old-secret', expiresAt: '2020-01-01T00:00:00Z' }],
    },
    { clientId: BOT, tenant: 'botframework.com', secrets: [{ value: 'bot-secret' }] },
  ],
};

/** The real SDK with its authority host pointed at the emulator (trusting its certificate, no instance discovery). */
function credential(em: DirectLineEmulator, tenant: string, clientId: string, secret: string): ClientSecretCredential {
  return new ClientSecretCredential(tenant, clientId, secret, {
    authorityHost: em.identityUrl,
    disableInstanceDiscovery: true,
    tlsOptions: { ca: em.identityCa },
  });
}

/** A GET on the identity listener, trusting its certificate. */
function getJson(em: DirectLineEmulator, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    request(`${em.identityUrl}${path}`, { ca: em.identityCa }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    })
      .on('error', reject)
      .end();
  });
}

async function failure(em: DirectLineEmulator, tenant: string, clientId: string, secret: string): Promise<string> {
  try {
    await credential(em, tenant, clientId, secret).getToken(SCOPE);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected the token request to fail');
}

describe('Direct Line emulator: the identity platform through @azure/identity', () => {
  const start = emulators();

  it('issues a client-credentials token to a configured app and secret, in its own tenant and in botframework.com', async () => {
    const em = await start({ identity: APPS });
    const before = Date.now();
    const token = await credential(em, 'contoso.onmicrosoft.com', SINGLE, 'good-secret').getToken(SCOPE);
    assert.ok(token.expiresOnTimestamp > before + 3_000_000, 'about an hour');
    const [, payload] = token.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
    assert.equal(claims['aud'], 'https://api.botframework.com');
    assert.equal(claims['appid'], SINGLE);
    assert.ok(
      await credential(em, 'botframework.com', BOT, 'bot-secret').getToken(SCOPE),
      'the multi-tenant bot in botframework.com',
    );
    assert.deepEqual(
      em.tokenRequests().map((r) => [r.tenant, r.clientId, r.outcome]),
      [
        ['contoso.onmicrosoft.com', SINGLE, 'issued'],
        ['botframework.com', BOT, 'issued'],
      ],
    );
  });

  it('answers the AADSTS errors of the real endpoint: wrong secret, expired secret, unknown app, app of another tenant, unknown tenant', async () => {
    const em = await start({ identity: APPS });
    assert.match(
      await failure(em, 'contoso.onmicrosoft.com', SINGLE, 'wrong'),
      /invalid_client.*AADSTS7000215: Invalid client secret provided/s,
    );
    assert.match(
      await failure(em, 'contoso.onmicrosoft.com', SINGLE, 'old-secret'),
      /invalid_client.*AADSTS7000222: The provided client secret keys for app '11111111-2222-4333-8444-555555555555' are expired/s,
    );
    assert.match(
      await failure(em, 'contoso.onmicrosoft.com', '99999999-2222-4333-8444-555555555555', 'x'),
      /unauthorized_client.*AADSTS700016: Application with identifier '99999999-2222-4333-8444-555555555555' was not found in the directory 'contoso\.onmicrosoft\.com'/s,
    );
    assert.match(
      await failure(em, 'botframework.com', SINGLE, 'good-secret'),
      /AADSTS700016/,
      'a single-tenant app asked for in another tenant',
    );
    assert.match(
      await failure(em, 'fabrikam.example', SINGLE, 'good-secret'),
      /Endpoints cannot be resolved/,
      'OpenID discovery of an unknown tenant fails (AADSTS90002) before any token request',
    );
    assert.deepEqual(
      em.tokenRequests().map((r) => r.outcome),
      ['AADSTS7000215', 'AADSTS7000222', 'AADSTS700016', 'AADSTS700016'],
    );
    const discovery = await getJson(em, '/fabrikam.example/v2.0/.well-known/openid-configuration');
    assert.equal(discovery.status, 400);
    assert.equal(discovery.body['error'], 'invalid_tenant');
    assert.deepEqual(discovery.body['error_codes'], [90002]);
  });

  it('lets injected 5xx answers reach the SDK, which retries them', async () => {
    const em = await start({ identity: APPS, faults: { identity: { errorNext: 1, errorStatus: 503 } } });
    assert.ok(
      await credential(em, 'contoso.onmicrosoft.com', SINGLE, 'good-secret').getToken(SCOPE),
      'issued on the retry',
    );
    assert.deepEqual(em.faults(), { identity: { errorNext: 0, errorStatus: 503 } }, 'the fault was answered');
    em.setFaults({ identity: { errorRate: 1, errorStatus: 503 } });
    const noRetry = new ClientSecretCredential('contoso.onmicrosoft.com', SINGLE, 'good-secret', {
      authorityHost: em.identityUrl,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: em.identityCa },
      retryOptions: { maxRetries: 0 },
    });
    await assert.rejects(noRetry.getToken('https://other.example.com/.default'));
    assert.deepEqual(
      em.tokenRequests().map((r) => r.outcome),
      ['issued'],
      'a refused call never reached the token logic',
    );
  });
});
