import assert from 'node:assert/strict';
import type { MessagingAccount } from '../../../src/channels/index.js';
import { validateExitCode } from '../../../src/cli/commands/messaging.js';
import {
  AccountValidator,
  tokenTenant,
  validateAccount,
  type AccountValidation,
} from '../../../src/messaging/index.js';

const ACCOUNT: MessagingAccount = {
  name: 'contoso',
  appId: '6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a',
  tenant: 'multi',
  directLineUrl: 'https://directline.botframework.com',
  authorityHost: 'https://login.microsoftonline.com',
  channels: [],
};

const result = (over: Partial<AccountValidation>): AccountValidation => ({
  account: 'a',
  appId: ACCOUNT.appId,
  tenant: 'botframework.com',
  authorityHost: ACCOUNT.authorityHost,
  valid: false,
  at: '2026-01-01T00:00:00.000Z',
  message: '',
  ...over,
});

describe('messaging: validation without a network', () => {
  it('asks botframework.com for a multi-tenant app and the account tenant otherwise', () => {
    assert.equal(tokenTenant({ tenant: 'multi' }), 'botframework.com');
    assert.equal(tokenTenant({ tenant: 'contoso.onmicrosoft.com' }), 'contoso.onmicrosoft.com');
  });

  it('refuses an account loaded without its client secret, naming it and how to load it', async () => {
    await assert.rejects(
      validateAccount(ACCOUNT),
      /validateAccount: account "contoso" was loaded without its client secret/,
    );
    assert.throws(
      () => new AccountValidator({ accounts: [ACCOUNT] }),
      /AccountValidator: account "contoso" has no client secret \(load the channels with messaging 'identity' or 'all'\)/,
    );
    assert.throws(
      () => new AccountValidator({ accounts: [], intervalMs: 10 }),
      /AccountValidator: intervalMs must be an integer >= 1000, found 10/,
    );
  });

  it('an AccountValidator without accounts is ready (nothing to check) and closes at once', async () => {
    const v = new AccountValidator({ accounts: [] });
    assert.deepEqual(await v.start(), []);
    assert.deepEqual(v.readiness(), []);
    await v.close();
  });

  it('messaging validate exit codes: refused (1) wins over unreachable (3), 0 only when all are valid', () => {
    const valid = result({ valid: true });
    const unreachable = result({ reason: 'unreachable' });
    const refused = result({ reason: 'wrong-secret', aadsts: 7000215 });
    assert.equal(validateExitCode([valid, valid]), 0);
    assert.equal(validateExitCode([valid, unreachable]), 3);
    assert.equal(validateExitCode([unreachable, refused, valid]), 1);
    assert.equal(validateExitCode([result({ reason: 'refused', aadsts: 50034 })]), 1);
  });
});
