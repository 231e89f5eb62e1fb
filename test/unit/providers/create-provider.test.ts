import assert from 'node:assert/strict';
import type { ProviderSettings } from '../../../src/channels/types.js';
import { isConfigError } from '../../../src/errors.js';
import { createProvider, DEFAULT_PROVIDER_TIMEOUT_MS } from '../../../src/providers/index.js';
import { ACCOUNT_SID, AUTH_TOKEN, BOT_TOKEN, SIGNING_SECRET } from './fixtures.js';

describe('createProvider', () => {
  it('makes the adapter the settings name', () => {
    assert.equal(createProvider({ type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN }).type, 'twilio');
    assert.equal(createProvider({ type: 'telegram', botToken: BOT_TOKEN }).type, 'telegram');
    assert.equal(
      createProvider({ type: 'contract', url: 'https://provider.example/outbound', signingSecret: SIGNING_SECRET })
        .type,
      'contract',
    );
    assert.equal(DEFAULT_PROVIDER_TIMEOUT_MS, 10_000);
  });

  const bad: Array<[string, ProviderSettings, RegExp, string?]> = [
    [
      'twilio without a token',
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: '' },
      /twilio provider settings: provider\.authToken: expected a non-empty string, found an empty string/,
    ],
    [
      'twilio with a bad baseUrl',
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: 'not a url' },
      /twilio provider settings: provider\.baseUrl: expected an absolute http\(s\) URL/,
    ],
    [
      'telegram with a ftp baseUrl',
      { type: 'telegram', botToken: BOT_TOKEN, baseUrl: 'ftp://x' },
      /telegram provider settings: provider\.baseUrl: expected an absolute http\(s\) URL, found protocol ftp:/,
    ],
    [
      'telegram with a token holding a slash',
      { type: 'telegram', botToken: '123:abc/def' },
      /telegram provider settings: provider\.botToken: expected a bot token without whitespace/,
      '123:abc/def',
    ],
    [
      'contract with a bad secret',
      { type: 'contract', url: 'https://p.example', signingSecret: 'whsec_!!!notbase64' },
      /provider\.signingSecret: expected "whsec_" followed by base64/,
      '!!!notbase64',
    ],
    [
      'contract with a relative url',
      { type: 'contract', url: '/outbound', signingSecret: SIGNING_SECRET },
      /contract provider settings: provider\.url: expected an absolute http\(s\) URL/,
    ],
    [
      'an unknown type',
      { type: 'pigeon' } as unknown as ProviderSettings,
      /provider\.type: expected one of twilio, telegram, contract, found "pigeon"/,
    ],
  ];
  for (const [name, settings, message, secret] of bad) {
    it(`refuses ${name} with a ConfigError naming the setting${secret ? ', not its value' : ''}`, () => {
      assert.throws(
        () => createProvider(settings),
        (err: Error) =>
          isConfigError(err) && message.test(err.message) && (secret === undefined || !err.message.includes(secret)),
      );
    });
  }

  it('refuses a timeout that is not a positive integer', () => {
    assert.throws(
      () => createProvider({ type: 'telegram', botToken: BOT_TOKEN }, { timeoutMs: 0 }),
      (err: Error) => isConfigError(err) && /timeoutMs: expected a positive integer/.test(err.message),
    );
  });
});
