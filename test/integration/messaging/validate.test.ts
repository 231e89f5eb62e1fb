/**
 * Validating messaging accounts against the Direct Line emulator's identity platform through the real
 * `@azure/identity`: `validateAccount`, the `AccountValidator` (metrics, readiness) and the `channel-relay messaging
 * validate` process (its output and exit codes).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { MessagingAccount } from '../../../src/channels/index.js';
import { startDirectLineEmulator, type DirectLineEmulator } from '../../../src/emulators/directline/index.js';
import { createMetricsRegistry } from '../../../src/health/index.js';
import { freePort } from '../../../src/http/index.js';
import { AccountValidator, validateAccount, type AccountValidation } from '../../../src/messaging/index.js';
import { runCliProcess } from '../../helpers/cli.js';
import { closedAfterEach } from '../../helpers/fixtures.js';

const MULTI_APP = '6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a';
const SINGLE_APP = '11111111-2222-4333-8444-555555555555';
const UNKNOWN_APP = '99999999-8888-4777-8666-555555555555';
const IDENTITY = {
  apps: [
    {
      clientId: MULTI_APP,
      tenant: 'botframework.com',
      secrets: [{ value: 'bot-secret' }, { value: 'old-bot-secret', expiresAt: '2020-01-01T00:00:00Z' }],
    },
    { clientId: SINGLE_APP, tenant: 'contoso.onmicrosoft.com', secrets: [{ value: 'contoso-secret' }] },
  ],
};

function account(em: { identityUrl: string }, over: Partial<MessagingAccount> = {}): MessagingAccount {
  return {
    name: 'contoso',
    appId: MULTI_APP,
    tenant: 'multi',
    clientSecret: 'bot-secret',
    directLineUrl: 'https://directline.botframework.com',
    authorityHost: em.identityUrl,
    channels: [],
    ...over,
  };
}

/** A host:port where nothing listens, as an authority host. */
async function nowhere(): Promise<string> {
  return `https://127.0.0.1:${await freePort()}`;
}

describe('messaging: validating accounts against the identity platform', function () {
  this.timeout(60_000);
  const track = closedAfterEach();
  let em: DirectLineEmulator;
  beforeEach(async () => {
    em = track(await startDirectLineEmulator({ port: 0, identityPort: 0, identity: IDENTITY }));
  });

  const validate = (a: MessagingAccount): Promise<AccountValidation> =>
    validateAccount(a, { ca: em.identityCa, maxRetries: 0, timeoutMs: 10_000 });

  it('valid: a token issued for the app in botframework.com (multi) or in its own tenant, with the time', async () => {
    const before = Date.now();
    const multi = await validate(account(em));
    assert.equal(multi.valid, true, multi.message);
    assert.equal(multi.tenant, 'botframework.com');
    assert.ok(Date.parse(multi.at) >= before - 1000);
    assert.equal(multi.message, `valid, last validated ${multi.at}`);
    const single = await validate(
      account(em, { appId: SINGLE_APP, tenant: 'contoso.onmicrosoft.com', clientSecret: 'contoso-secret' }),
    );
    assert.equal(single.valid, true, single.message);
    assert.deepEqual(
      em.tokenRequests().map((r) => [r.tenant, r.clientId, r.scope, r.outcome]),
      [
        ['botframework.com', MULTI_APP, 'https://api.botframework.com/.default', 'issued'],
        ['contoso.onmicrosoft.com', SINGLE_APP, 'https://api.botframework.com/.default', 'issued'],
      ],
    );
  });

  it('names each refusal: wrong secret, expired secret, unknown app, wrong tenant', async () => {
    const cases: Array<[string, Partial<MessagingAccount>, string, number, RegExp]> = [
      ['wrong secret', { clientSecret: 'not-the-secret' }, 'wrong-secret', 7000215, /^wrong secret \(AADSTS7000215\)/],
      [
        'expired secret',
        { clientSecret: 'old-bot-secret' },
        'expired-secret',
        7000222,
        /^expired secret \(AADSTS7000222\): the client secret of app 6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a has expired/,
      ],
      ['unknown app', { appId: UNKNOWN_APP }, 'unknown-app', 700016, /^unknown app \(AADSTS700016\): .*99999999/],
      [
        'a single-tenant app asked for in botframework.com',
        { appId: SINGLE_APP, clientSecret: 'contoso-secret' },
        'unknown-app',
        700016,
        /^unknown app \(AADSTS700016\)/,
      ],
      [
        'a tenant the platform does not know',
        { appId: SINGLE_APP, tenant: 'fabrikam.example', clientSecret: 'contoso-secret' },
        'wrong-tenant',
        90002,
        /^wrong tenant \(AADSTS90002\): the identity platform at https:\/\/.* does not know tenant 'fabrikam\.example'$/,
      ],
    ];
    for (const [what, over, reason, aadsts, message] of cases) {
      const r = await validate(account(em, over));
      assert.equal(r.valid, false, what);
      assert.equal(r.reason, reason, `${what}: ${r.message}`);
      assert.equal(r.aadsts, aadsts, what);
      assert.match(r.message, message, what);
      assert.equal(r.error?.code, 'IdentityRefused', what);
      assert.equal(r.error?.retryable, false);
      assert.doesNotMatch(
        JSON.stringify({ ...r, error: r.error?.toJSON() }),
        /bot-secret|contoso-secret|not-the-secret/,
      );
    }
  });

  it('unreachable: nothing listening, and a platform answering 5xx, are not refusals', async () => {
    const down = await validate(account(em, { authorityHost: await nowhere() }));
    assert.equal(down.valid, false);
    assert.equal(down.reason, 'unreachable', down.message);
    assert.match(
      down.message,
      /^unreachable: the identity platform at https:\/\/127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/,
    );
    assert.equal(down.error?.code, 'IdentityUnavailable');
    assert.equal(down.error?.retryable, true);
    em.setFaults({ identity: { errorRate: 1, errorStatus: 503 } });
    const failing = await validate(account(em));
    assert.equal(failing.reason, 'unreachable', failing.message);
    assert.equal(failing.aadsts, undefined);
  });

  it('the validator: gauges and readiness per account, failing while the last validation failed, recovering with the next', async () => {
    const registry = createMetricsRegistry({ defaultMetrics: false });
    const good = account(em);
    const bad = account(em, { name: 'fabrikam', clientSecret: 'not-the-secret' });
    const validator = track(
      new AccountValidator({
        accounts: [good, bad],
        registry,
        ca: em.identityCa,
        maxRetries: 0,
        intervalMs: 3_600_000,
      }),
    );
    assert.deepEqual(
      validator.readiness().map((c) => [c.name, c.ok, c.detail]),
      [
        ['messaging account contoso', false, 'not validated yet'],
        ['messaging account fabrikam', false, 'not validated yet'],
      ],
    );
    const first = await validator.start();
    assert.deepEqual(
      first.map((r) => [r.account, r.valid, r.reason]),
      [
        ['contoso', true, undefined],
        ['fabrikam', false, 'wrong-secret'],
      ],
    );
    const checks = validator.readiness();
    assert.deepEqual(
      checks.map((c) => [c.name, c.ok]),
      [
        ['messaging account contoso', true],
        ['messaging account fabrikam', false],
      ],
    );
    assert.match(checks[1]?.detail ?? '', /^wrong secret \(AADSTS7000215\)/);
    const metrics = await registry.metrics();
    assert.match(metrics, /^channel_relay_messaging_account_valid\{account="contoso"\} 1$/m);
    assert.match(metrics, /^channel_relay_messaging_account_valid\{account="fabrikam"\} 0$/m);
    const seconds = Number(
      /^channel_relay_messaging_account_last_validated_seconds\{account="contoso"\} (\d+)$/m.exec(metrics)?.[1],
    );
    assert.equal(seconds, Math.floor(Date.parse(first[0]!.at) / 1000));
    assert.doesNotMatch(metrics, /last_validated_seconds\{account="fabrikam"\}/, 'never validated: no time');

    // The platform goes away: the valid account is not ready any more, and says when it last validated.
    em.setFaults({ identity: { errorRate: 1, errorStatus: 503 } });
    const [again] = await validator.validateNow('contoso');
    assert.equal(again?.reason, 'unreachable');
    const down = validator.readiness()[0];
    assert.equal(down?.ok, false);
    assert.match(
      down?.detail ?? '',
      new RegExp(`^unreachable: .*; last validated ${first[0]!.at.replace(/[.]/g, '\\.')}$`),
    );
    assert.match(await registry.metrics(), /^channel_relay_messaging_account_valid\{account="contoso"\} 0$/m);
    em.clearFaults();
    await validator.validateNow('contoso');
    assert.equal(validator.readiness()[0]?.ok, true);
    await validator.close();
    await validator.close();
  });

  it('the validator validates again after its interval, and close() stops it', async () => {
    const validator = track(
      new AccountValidator({ accounts: [account(em)], ca: em.identityCa, maxRetries: 0, intervalMs: 1000 }),
    );
    await validator.start();
    const deadline = Date.now() + 20_000;
    while (em.tokenRequests().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(em.tokenRequests().length >= 3, `validated ${em.tokenRequests().length} times`);
    await validator.close();
    const after = em.tokenRequests().length;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(em.tokenRequests().length, after, 'no validation after close()');
  });

  describe('channel-relay messaging validate (process)', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'messaging-validate-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** A channels file with the given accounts, the CA trusted through NODE_EXTRA_CA_CERTS, and the secrets. */
    function setUp(accounts: Array<Record<string, unknown>>): NodeJS.ProcessEnv {
      const relay = (name: string): Record<string, unknown> => ({
        name,
        channelDefinitionId: '877d122c-16f8-5806-b029-4a7a103cb3d6',
        provider: { type: 'contract', url: 'https://provider.example/m', signingSecret: 'env:UNSET_SIGNING_SECRET' },
        sender: `+49151000000${name.length}`,
        rateLimit: { messages: 1 },
        callbacks: { publicBaseUrl: 'https://relay.example' },
      });
      const channels = {
        channels: [relay('sms'), relay('sms-2'), relay('sms-33'), relay('sms-444')],
        messaging: {
          accounts: accounts.map((a, i) => ({
            appId: MULTI_APP,
            tenant: 'multi',
            clientSecret: 'env:GOOD_SECRET',
            directLineSecret: 'env:UNSET_DIRECT_LINE_SECRET',
            authorityHost: '${IDENTITY_URL}',
            channels: [
              {
                name: `ch-${i}`,
                channelId: 'sms',
                relayChannel: ['sms', 'sms-2', 'sms-33', 'sms-444'][i],
                workstream: 'Support',
                language: 'en-US',
              },
            ],
            ...a,
          })),
        },
      };
      writeFileSync(path.join(dir, 'channels.json'), JSON.stringify(channels));
      writeFileSync(path.join(dir, 'ca.pem'), em.identityCa);
      return {
        CHANNELS_FILE: path.join(dir, 'channels.json'),
        NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'),
        IDENTITY_URL: em.identityUrl,
        GOOD_SECRET: 'bot-secret',
        WRONG_SECRET: 'not-the-secret',
      };
    }

    it('exit 0 when every account is valid, with "valid, last validated <time>" (no Direct Line or provider secret needed)', async () => {
      const env = setUp([{ name: 'contoso' }]);
      const run = await runCliProcess(['messaging', 'validate'], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(
        run.stdout,
        /^contoso \(app 6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a\): valid, last validated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$/,
      );
    });

    it('exit 1 naming each refusal (wrong secret, expired secret, unknown app, wrong tenant), --json, and ACCOUNT to validate one', async () => {
      const env = setUp([
        { name: 'wrong', clientSecret: 'env:WRONG_SECRET' },
        { name: 'expired', clientSecret: 'env:OLD_SECRET' },
        { name: 'unknown', appId: UNKNOWN_APP },
        { name: 'tenant', appId: SINGLE_APP, tenant: 'fabrikam.example' },
      ]);
      env['OLD_SECRET'] = 'old-bot-secret';
      const run = await runCliProcess(['messaging', 'validate'], env);
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stdout, '');
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 4, run.stderr);
      assert.match(lines[0]!, /^wrong \(app [0-9a-f-]+\): wrong secret \(AADSTS7000215\)/);
      assert.match(lines[1]!, /^expired \(app [0-9a-f-]+\): expired secret \(AADSTS7000222\)/);
      assert.match(lines[2]!, /^unknown \(app 99999999-8888-4777-8666-555555555555\): unknown app \(AADSTS700016\)/);
      assert.match(
        lines[3]!,
        /^tenant \(app [0-9a-f-]+\): wrong tenant \(AADSTS90002\): .* does not know tenant 'fabrikam\.example'$/,
      );
      assert.doesNotMatch(run.stderr, /not-the-secret|old-bot-secret/);

      const json = await runCliProcess(['messaging', 'validate', 'expired', '--json'], env);
      assert.equal(json.code, 1, json.stderr);
      const body = JSON.parse(json.stdout) as { exitCode: number; accounts: Array<Record<string, unknown>> };
      assert.equal(body.exitCode, 1);
      assert.deepEqual(
        body.accounts.map((a) => [a['account'], a['valid'], a['reason'], a['aadsts'], a['tenant']]),
        [['expired', false, 'expired-secret', 7000222, 'botframework.com']],
      );
    });

    it('exit 3 when the identity platform is unreachable; exit 2 for an unknown ACCOUNT or a bad channels file', async () => {
      const env = setUp([{ name: 'contoso' }]);
      const down = await runCliProcess(['messaging', 'validate', '--timeout', '5000'], {
        ...env,
        IDENTITY_URL: await nowhere(),
      });
      assert.equal(down.code, 3, down.stderr);
      assert.match(
        down.stderr,
        /^contoso \(app [0-9a-f-]+\): unreachable: the identity platform at https:\/\/127\.0\.0\.1:\d+ failed/,
      );

      const unknown = await runCliProcess(['messaging', 'validate', 'nope'], env);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no messaging account "nope" in .*channels\.json; its accounts: contoso/);

      const bad = setUp([{ name: 'contoso', appId: 'not-a-guid' }, { name: 'contoso' }]);
      const refused = await runCliProcess(['messaging', 'validate'], bad);
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /channels\.json: messaging\.accounts\.0\.appId: expected a Microsoft app ID: a GUID/,
      );
      assert.match(
        refused.stderr,
        /channels\.json: messaging\.accounts\.1\.name: expected an account name no other account has/,
      );
      assert.equal(em.tokenRequests().length, 0, 'nothing asked with a refused configuration');
    });
  });
});
