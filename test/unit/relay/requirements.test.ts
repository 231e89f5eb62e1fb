/** Each stage loads only what it uses (least privilege): `loadStageConfig` with the environment a stage is given. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { providerSettings } from '../../../src/channels/index.js';
import { isConfigError, type ConfigProblem } from '../../../src/errors.js';
import { configPath } from '../../../src/paths.js';
import { loadStageConfig, needsOf, type StageName } from '../../../src/relay/index.js';

const BUS = {
  SERVICEBUS_CONNECTION_STRING:
    'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=s;UseDevelopmentEmulator=true;',
};
const DATAVERSE = { DATAVERSE_URL: 'http://127.0.0.1:1', DATAVERSE_AUTH: 'emulator' };
const PROVIDERS = {
  PROVIDERS_URL: 'http://127.0.0.1:2',
  TWILIO_AUTH_TOKEN: 'token-0123456789abcdef',
  TELEGRAM_BOT_TOKEN: '4242:abcdefghijklmnopqrstuvwxyz',
  CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0LXNpZ25pbmcta2V5',
};
const KEYS = { CALLBACK_SIGNING_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}` };

/** The problems `loadStageConfig` reports for `stages` with `env`; fails if it loads. */
function problemsOf(stages: StageName[], env: Record<string, string>, cwd?: string): readonly ConfigProblem[] {
  try {
    loadStageConfig(stages, { env, ...(cwd ? { cwd } : {}) });
  } catch (err) {
    if (isConfigError(err)) return err.problems;
    throw err;
  }
  return assert.fail(`${stages.join(',')} loaded with ${Object.keys(env).join(', ')}`);
}

describe('relay: what each stage requires (loadStageConfig)', () => {
  it('the recorder: the bus and Dataverse only; no channels file, no provider secret, no PROVIDERS_URL', () => {
    const { loaded, channels } = loadStageConfig(['recorder'], {
      env: { ...BUS, ...DATAVERSE, CHANNELS_FILE: '/nowhere/channels.json' },
    });
    assert.equal(channels, undefined);
    assert.equal(loaded.config.dataverse.url, DATAVERSE.DATAVERSE_URL);
    const missing = problemsOf(['recorder'], { ...BUS });
    assert.deepEqual(
      missing.map((p) => [p.source, p.path, p.found]),
      [['config/default.json', 'dataverse.url', 'nothing']],
    );
    assert.match(missing[0]!.expected, /\(or set DATAVERSE_URL\)/);
  });

  it('dispatch: the bus and every provider, without DATAVERSE_URL (nor a Dataverse identity)', () => {
    const { channels } = loadStageConfig(['dispatch'], {
      env: { ...BUS, ...PROVIDERS, DATAVERSE_AUTH: 'client-secret' },
    });
    assert.deepEqual(
      channels?.all().map((c) => providerSettings(c).type),
      ['twilio', 'telegram', 'contract'],
    );
    const sms = providerSettings(channels!.byName('sms')!);
    assert.equal(sms.type === 'twilio' && sms.authToken, PROVIDERS.TWILIO_AUTH_TOKEN);
    const { PROVIDERS_URL: _, TWILIO_AUTH_TOKEN: __, ...without } = PROVIDERS;
    const missing = problemsOf(['dispatch'], { ...BUS, ...without });
    assert.deepEqual(
      missing.map((p) => `${p.source}: ${p.path}`),
      [
        'config/channels.json: channels.0.provider.authToken',
        'config/channels.json: channels.0.provider.baseUrl',
        'config/channels.json: channels.1.provider.baseUrl',
        'config/channels.json: channels.2.provider.url',
      ],
    );
    assert.match(missing[0]!.expected, /environment variable TWILIO_AUTH_TOKEN to be set/);
    assert.match(missing[1]!.expected, /environment variable PROVIDERS_URL to be set/);
  });

  it('intake: Dataverse and the channels without their secrets; only a Telegram channel without senderKey reads its token, for the session key', () => {
    const { channels } = loadStageConfig(['intake'], {
      env: { ...BUS, ...DATAVERSE, TELEGRAM_BOT_TOKEN: PROVIDERS.TELEGRAM_BOT_TOKEN },
    });
    assert.deepEqual(
      channels?.all().map((c) => [c.name, c.provider, c.senderKey]),
      [
        ['sms', { type: 'twilio', unread: true }, 'twilio:+4915100000001'],
        ['telegram', { type: 'telegram', unread: true }, 'telegram:4242'],
        ['realtime-sms', { type: 'contract', unread: true }, 'contract:+4915100000001'],
      ],
    );
    assert.throws(
      () => providerSettings(channels!.byName('sms')!),
      /channel "sms": its twilio provider settings were not read \(this process's stages do not use them\)/,
    );
    const missing = problemsOf(['intake'], { ...BUS, ...DATAVERSE });
    assert.deepEqual(
      missing.map((p) => `${p.source}: ${p.path}`),
      ['config/channels.json: channels.1.provider.botToken'],
    );
    assert.match(
      missing[0]!.expected,
      /TELEGRAM_BOT_TOKEN to be set .*session key is the bot id the token starts with; set channels\.1\.senderKey to "telegram:<bot id>" to run without the token/,
    );
  });

  describe('with channels that have callbacks', () => {
    let dir = '';
    const tile = configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml');
    const base = {
      tile,
      addressField: 'mobilephone',
      textField: 'sample_text',
      channelField: 'sample_channel',
      rateLimit: { messages: 10 },
    };
    before(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'stage-needs-'));
      writeFileSync(
        path.join(dir, 'channels.json'),
        JSON.stringify({
          channels: [
            {
              ...base,
              name: 'sms',
              provider: {
                type: 'twilio',
                accountSid: 'AC00000000000000000000000000000001',
                authToken: 'env:TWILIO_AUTH_TOKEN',
                baseUrl: '${PROVIDERS_URL}',
              },
              sender: '+15550000001',
              callbacks: {
                publicBaseUrl: '${PUBLIC_URL}',
                trackLinks: true,
                previousAuthToken: 'env:TWILIO_PREVIOUS_AUTH_TOKEN',
                sharedKeySecret: 'env:TWILIO_SHARED_KEY_SECRET',
              },
            },
            {
              ...base,
              name: 'telegram',
              provider: { type: 'telegram', botToken: 'env:TELEGRAM_BOT_TOKEN', baseUrl: '${PROVIDERS_URL}' },
              sender: 'relay_bot',
              senderKey: 'telegram:4242',
              rateLimit: { messages: 30, perRecipientMs: 1000 },
              callbacks: { publicBaseUrl: '${PUBLIC_URL}', webhookSecretToken: 'env:TELEGRAM_WEBHOOK_SECRET' },
            },
            {
              name: 'realtime',
              channelDefinitionId: '877d122c-16f8-5806-b029-4a7a103cb3d6',
              provider: {
                type: 'contract',
                url: '${PROVIDERS_URL}/contract',
                signingSecret: 'env:CONTRACT_SIGNING_SECRET',
              },
              sender: '+15550000009',
              rateLimit: { messages: 10 },
            },
          ],
        }),
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = () => ({ CHANNELS_FILE: path.join(dir, 'channels.json'), PUBLIC_URL: 'https://relay.example' });
    const verification = {
      TWILIO_AUTH_TOKEN: PROVIDERS.TWILIO_AUTH_TOKEN,
      TWILIO_PREVIOUS_AUTH_TOKEN: 'old-token',
      TWILIO_SHARED_KEY_SECRET: 'shared-key-secret',
      TELEGRAM_WEBHOOK_SECRET: 'tg-secret',
      PROVIDERS_URL: PROVIDERS.PROVIDERS_URL,
    };

    it('the callbacks service: its verification secrets and the signing keys; no bot token, no contract secret, no channel without callbacks', () => {
      const { channels } = loadStageConfig(['callbacks'], {
        env: { ...BUS, ...DATAVERSE, ...file(), ...KEYS, ...verification },
      });
      assert.deepEqual(
        channels?.all().map((c) => c.name),
        ['sms', 'telegram'],
      );
      const sms = channels!.byName('sms')!;
      assert.deepEqual(sms.provider, {
        type: 'twilio',
        accountSid: 'AC00000000000000000000000000000001',
        authToken: PROVIDERS.TWILIO_AUTH_TOKEN,
        baseUrl: PROVIDERS.PROVIDERS_URL,
      });
      assert.equal(sms.callbacks?.previousAuthToken, 'old-token');
      assert.equal(sms.callbacks?.sharedKeySecret, 'shared-key-secret');
      assert.deepEqual(channels!.byName('telegram')!.provider, { type: 'telegram', unread: true });
      assert.equal(channels!.byName('telegram')!.callbacks?.webhookSecretToken, 'tg-secret');

      for (const [name, at] of [
        ['TELEGRAM_WEBHOOK_SECRET', 'channels.1.callbacks.webhookSecretToken'],
        ['TWILIO_PREVIOUS_AUTH_TOKEN', 'channels.0.callbacks.previousAuthToken'],
        ['TWILIO_SHARED_KEY_SECRET', 'channels.0.callbacks.sharedKeySecret'],
        ['TWILIO_AUTH_TOKEN', 'channels.0.provider.authToken'],
      ] as const) {
        const { [name]: _, ...without } = verification;
        const missing = problemsOf(['callbacks'], { ...BUS, ...DATAVERSE, ...file(), ...KEYS, ...without });
        assert.deepEqual(
          missing.map((p) => [path.basename(p.source), p.path]),
          [['channels.json', at]],
          `without ${name}`,
        );
        assert.match(missing[0]!.expected, new RegExp(`environment variable ${name} to be set`));
      }
      const noKeys = problemsOf(['callbacks'], { ...BUS, ...DATAVERSE, ...file(), ...verification });
      assert.deepEqual(
        noKeys.map((p) => p.path),
        ['callbacks.signingKeys'],
      );
      assert.match(
        noKeys[0]!.expected,
        /set CALLBACK_SIGNING_KEYS\), because channels sms, telegram in .*channels\.json have callbacks/,
      );
    });

    it('intake reads none of the callbacks secrets, but the signing keys for the channel that tracks links', () => {
      const { channels } = loadStageConfig(['intake'], { env: { ...BUS, ...DATAVERSE, ...file(), ...KEYS } });
      assert.deepEqual(
        channels
          ?.all()
          .map((c) => [
            c.name,
            'unread' in c.provider,
            c.callbacks?.webhookSecretToken,
            c.callbacks?.previousAuthToken,
            c.callbacks?.sharedKeySecret,
          ]),
        [
          ['sms', true, undefined, undefined, undefined],
          ['telegram', true, undefined, undefined, undefined],
          ['realtime', true, undefined, undefined, undefined],
        ],
      );
      const noKeys = problemsOf(['intake'], { ...BUS, ...DATAVERSE, ...file() });
      assert.deepEqual(
        noKeys.map((p) => p.path),
        ['callbacks.signingKeys'],
      );
      assert.match(
        noKeys[0]!.expected,
        /because channel sms in .*channels\.json tracks links \(callbacks\.trackLinks\)/,
      );
    });
  });

  it('a secret written literally in the channels file is refused by every stage, even one that does not read it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'stage-literal-'));
    try {
      const tile = configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml');
      writeFileSync(
        path.join(dir, 'channels.json'),
        JSON.stringify({
          channels: [
            {
              name: 'sms',
              tile,
              provider: {
                type: 'twilio',
                accountSid: 'AC00000000000000000000000000000001',
                authToken: 'literal-token-in-the-file',
              },
              sender: '+15550000001',
              addressField: 'mobilephone',
              textField: 'sample_text',
              rateLimit: { messages: 10 },
              callbacks: { publicBaseUrl: 'https://relay.example', previousAuthToken: 'literal-previous-token' },
            },
          ],
        }),
      );
      const env = { ...BUS, ...DATAVERSE, ...KEYS, CHANNELS_FILE: path.join(dir, 'channels.json') };
      for (const stage of ['intake', 'dispatch', 'callbacks'] as const) {
        const problems = problemsOf([stage], env);
        const paths = problems.map((p) => p.path);
        assert.ok(paths.includes('channels.0.provider.authToken'), `${stage}: ${paths.join(', ')}`);
        if (stage !== 'dispatch')
          assert.ok(paths.includes('channels.0.callbacks.previousAuthToken'), `${stage}: ${paths.join(', ')}`);
        for (const p of problems.filter((x) => x.path.endsWith('Token'))) {
          assert.match(p.expected, /an env:NAME reference \(secrets are read only from the environment\)/);
          assert.doesNotMatch(p.found, /literal/);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a process of several stages needs the union of theirs', () => {
    assert.deepEqual(needsOf(['intake', 'dispatch', 'recorder']), {
      dataverse: true,
      channels: true,
      providers: 'all',
      callbackSecrets: false,
      messaging: 'none',
    });
    assert.deepEqual(needsOf(['recorder']), {
      dataverse: true,
      channels: false,
      providers: 'none',
      callbackSecrets: false,
      messaging: 'none',
    });
    assert.deepEqual(needsOf(['intake', 'callbacks']), {
      dataverse: true,
      channels: true,
      providers: 'all',
      callbackSecrets: true,
      messaging: 'none',
    });
  });
});
