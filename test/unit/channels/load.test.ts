import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_OPT_IN_CONFIRMATION,
  DEFAULT_OPT_IN_MAX_AGE_MS,
  DEFAULT_OPT_IN_WORDS,
  DEFAULT_OPT_OUT_CONFIRMATION,
  DEFAULT_OPT_OUT_WORDS,
  loadChannels,
} from '../../../src/channels/index.js';
import type { ConfigProblem } from '../../../src/errors.js';
import { configPath } from '../../../src/paths.js';
import { configProblems as problemsOf } from '../../helpers/fixtures.js';

const ENV = {
  TWILIO_AUTH_TOKEN: 'tw-secret-1234',
  TELEGRAM_BOT_TOKEN: '123:abc',
  CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0',
  PROVIDERS_URL: 'http://127.0.0.1:4010/',
};

/** A temporary directory holding `tiles/tile.xml` (the sample tile), for a `channels.json` written next to it. */
function dirWithTile(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  mkdirSync(path.join(dir, 'tiles'));
  copyFileSync(
    configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
    path.join(dir, 'tiles', 'tile.xml'),
  );
  return dir;
}

describe('channels: loadChannels', () => {
  let dir: string;
  beforeEach(() => {
    dir = dirWithTile('channels-');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sms = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: 'sms',
    tile: 'tiles/tile.xml',
    provider: {
      type: 'twilio',
      accountSid: 'AC00000000000000000000000000000001',
      authToken: 'env:TWILIO_AUTH_TOKEN',
      baseUrl: '${PROVIDERS_URL}',
    },
    sender: '+4915100000001',
    addressField: 'mobilephone',
    textField: 'sample_text',
    rateLimit: { messages: 10 },
    ...over,
  });
  const write = (channels: unknown[]): string => {
    const file = path.join(dir, 'channels.json');
    writeFileSync(file, JSON.stringify({ channels }));
    return file;
  };

  it('loads the shipped config/channels.json with the tile read from its XML', () => {
    const registry = loadChannels(configPath('channels.json'), { env: ENV });
    assert.deepEqual(
      registry.all().map((c) => c.name),
      ['sms', 'telegram', 'realtime-sms'],
    );
    const s = registry.byName('sms');
    assert.ok(s?.tile);
    assert.equal(s.tile.entityType, 'sample_specialmessage');
    assert.equal(s.tile.entitySetName, 'sample_specialmessages');
    assert.equal(s.tile.complianceField, 'donotphone');
    assert.deepEqual(
      s.tile.responseTypes.map((r) => r.id),
      ['sent', 'delivered', 'failed', 'opened', 'keyword'],
    );
    assert.deepEqual(s.provider, {
      type: 'twilio',
      accountSid: 'AC00000000000000000000000000000001',
      authToken: 'tw-secret-1234',
      baseUrl: 'http://127.0.0.1:4010',
    });
    assert.equal(s.senderKey, 'twilio:+4915100000001');
    assert.deepEqual(s.rateLimit, {
      messages: 10,
      intervalMs: 1000,
      concurrency: 100,
      perRecipientMs: 0,
      perGroupMs: 0,
    });
    assert.equal(s.timeoutMs, 10_000);
    assert.equal(registry.byName('telegram')?.rateLimit.perRecipientMs, 1000);
    assert.equal(registry.byName('telegram')?.rateLimit.perGroupMs, 3000, 'Telegram: 20 a minute per group by default');
    assert.equal(
      registry.byName('telegram')?.senderKey,
      'telegram:123',
      "a bot's session is its public bot id, never the token's secret part",
    );
    const rt = registry.byName('realtime-sms');
    assert.equal(rt?.channelDefinitionId, '877d122c-16f8-5806-b029-4a7a103cb3d6');
    assert.deepEqual(rt?.provider, {
      type: 'contract',
      url: 'http://127.0.0.1:4010/contract/realtime-sms/messages',
      signingSecret: 'whsec_c2VjcmV0',
    });
    assert.equal(registry.byName('nope'), undefined);
  });

  it('names the file, key, expectation and finding of every problem at once', () => {
    const file = write([
      sms({
        provider: { type: 'twilio', accountSid: 'AC00000000000000000000000000000001', authToken: 'literal-secret' },
        failureResponseType: 'bounced',
      }),
      sms({ name: 'sms', tile: 'tiles/missing.xml' }),
      { ...sms({ name: 'tg', provider: { type: 'telegram', botToken: 'env:UNSET_TOKEN' } }) },
    ]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    const by = (p: string): ConfigProblem | undefined => problems.find((x) => x.path === p);
    assert.ok(problems.every((p) => p.source === 'channels.json'));
    assert.match(by('channels.0.provider.authToken')?.expected ?? '', /env:NAME reference/);
    assert.doesNotMatch(by('channels.0.provider.authToken')?.found ?? '', /literal-secret/);
    assert.match(by('channels.0.failureResponseType')?.expected ?? '', /sent, delivered, failed, opened, keyword/);
    assert.match(by('channels.1.tile')?.found ?? '', /no file at .*missing\.xml/);
    assert.match(by('channels.1.name')?.expected ?? '', /channels\.0 is also "sms"/);
    assert.match(by('channels.2.provider.botToken')?.expected ?? '', /UNSET_TOKEN to be set/);
  });

  it('refuses perGroupMs on a channel that is not Telegram', () => {
    const file = write([sms({ rateLimit: { messages: 1, perGroupMs: 3000 } })]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    assert.match(
      problems.find((p) => p.path === 'channels.0.rateLimit.perGroupMs')?.expected ?? '',
      /Telegram group chats/,
    );
  });

  it('reports schema errors with the key path', () => {
    const file = write([sms({ rateLimit: { messages: 0 }, provider: { type: 'pigeon' }, extra: true })]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    const paths = problems.map((p) => p.path);
    assert.ok(paths.includes('channels.0.rateLimit.messages'), paths.join());
    assert.ok(paths.includes('channels.0.provider.type'), paths.join());
    assert.ok(paths.includes('channels.0.extra'), paths.join());
  });

  it('refuses unset URL variables, non-http URLs and unknown provider keys', () => {
    const file = write([
      sms({
        provider: {
          type: 'twilio',
          accountSid: 'AC00000000000000000000000000000001',
          authToken: 'env:TWILIO_AUTH_TOKEN',
          baseUrl: '${NOT_SET}',
        },
      }),
      sms({ name: 'b', provider: { type: 'telegram', botToken: 'env:TELEGRAM_BOT_TOKEN', baseUrl: 'ftp://x' } }),
      sms({
        name: 'c',
        provider: {
          type: 'contract',
          url: 'http://x',
          signingSecret: 'env:CONTRACT_SIGNING_SECRET',
          accountSid: 'AC00000000000000000000000000000001',
        },
      }),
    ]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    const by = (p: string): ConfigProblem | undefined => problems.find((x) => x.path === p);
    assert.match(by('channels.0.provider.baseUrl')?.expected ?? '', /NOT_SET to be set/);
    assert.match(by('channels.1.provider.baseUrl')?.expected ?? '', /http\(s\) URL/);
    assert.match(by('channels.2.provider.accountSid')?.expected ?? '', /keys of a contract provider/);
  });

  it("takes a contract provider's mediaParts and refuses them elsewhere, empty, repeated, too many or named text", () => {
    const contract = (name: string, mediaParts: unknown): Record<string, unknown> =>
      sms({
        name,
        provider: { type: 'contract', url: 'http://x', signingSecret: 'env:CONTRACT_SIGNING_SECRET', mediaParts },
      });
    const ok = loadChannels(write([contract('c', ['image', 'document'])]), { env: ENV, cwd: dir });
    assert.deepEqual(ok.byName('c')?.provider, {
      type: 'contract',
      url: 'http://x',
      signingSecret: 'whsec_c2VjcmV0',
      mediaParts: ['image', 'document'],
    });
    const file = write([
      contract('a', []),
      contract('b', ['image', 'image']),
      contract('c', ['text']),
      contract(
        'd',
        Array.from({ length: 11 }, (_, i) => `p${i}`),
      ),
    ]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    const at = (p: string): ConfigProblem[] => problems.filter((x) => x.path.startsWith(p));
    assert.ok(problems.every((p) => p.source === 'channels.json'));
    for (const i of [0, 1, 2, 3]) assert.ok(at(`channels.${i}.provider.mediaParts`).length > 0, `channels.${i}`);
    const twilio = write([
      sms({
        provider: {
          type: 'twilio',
          accountSid: 'AC00000000000000000000000000000001',
          authToken: 'env:TWILIO_AUTH_TOKEN',
          mediaParts: ['image'],
        },
      }),
    ]);
    const refused = problemsOf(() => loadChannels(twilio, { env: ENV, cwd: dir }));
    assert.match(
      refused.find((p) => p.path === 'channels.0.provider.mediaParts')?.expected ?? '',
      /keys of a twilio provider/,
    );
    // Also where the process does not read the provider's settings (intake, the recorder).
    const unread = problemsOf(() => loadChannels(twilio, { env: ENV, cwd: dir, providers: 'none' }));
    assert.match(
      unread.find((p) => p.path === 'channels.0.provider.mediaParts')?.expected ?? '',
      /mediaParts is a contract's/,
    );
  });

  it('requires a channel field where channels share a tile, and equal limits where they share a sender', () => {
    const file = write([sms(), sms({ name: 'sms2', rateLimit: { messages: 5 } })]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    assert.ok(problems.some((p) => p.path === 'channels.0.channelField'));
    assert.ok(
      problems.some(
        (p) => p.path === 'channels.1.rateLimit' && /same sender key "twilio:\+4915100000001"/.test(p.expected),
      ),
    );
  });

  it('says when the file is missing or not JSON', () => {
    assert.match(
      problemsOf(() => loadChannels(path.join(dir, 'none.json'), { cwd: dir }))[0]?.found ?? '',
      /no such file/,
    );
    writeFileSync(path.join(dir, 'bad.json'), '{ nope');
    assert.match(problemsOf(() => loadChannels(path.join(dir, 'bad.json'), { cwd: dir }))[0]?.found ?? '', /JSON/);
  });
});

describe('channels: the callbacks block', () => {
  let dir: string;
  beforeEach(() => {
    dir = dirWithTile('channels-cb-');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const env = { ...ENV, PUBLIC_URL: 'https://relay.example/', TG_SECRET: 'tg_secret-1', TW_OLD: 'old-token' };
  const channel = (
    type: 'twilio' | 'telegram' | 'contract',
    callbacks: Record<string, unknown>,
    over: Record<string, unknown> = {},
  ): Record<string, unknown> => {
    const provider =
      type === 'twilio'
        ? { type, accountSid: 'AC00000000000000000000000000000001', authToken: 'env:TWILIO_AUTH_TOKEN' }
        : type === 'telegram'
          ? { type, botToken: 'env:TELEGRAM_BOT_TOKEN' }
          : { type, url: 'http://127.0.0.1:4010/c', signingSecret: 'env:CONTRACT_SIGNING_SECRET' };
    const base =
      type === 'contract'
        ? { channelDefinitionId: '877d122c-16f8-5806-b029-4a7a103cb3d6' }
        : { tile: 'tiles/tile.xml', addressField: 'mobilephone', textField: 'sample_text' };
    return { name: type, provider, sender: 'x', rateLimit: { messages: 10 }, ...base, callbacks, ...over };
  };
  const load = (channels: unknown[]): ReturnType<typeof loadChannels> => {
    const file = path.join(dir, 'channels.json');
    writeFileSync(file, JSON.stringify({ channels }));
    return loadChannels(file, { env, cwd: dir });
  };
  const problems = (channels: unknown[]): ConfigProblem[] => problemsOf(() => load(channels));

  it('fills the defaults: no link tracking, no keywords, the standard opt-out and opt-in words and confirmations, delivered/opened', () => {
    const c = load([channel('twilio', { publicBaseUrl: '${PUBLIC_URL}' })]).byName('twilio');
    assert.deepEqual(c?.callbacks, {
      publicBaseUrl: 'https://relay.example',
      trackLinks: false,
      keywords: {},
      optOutWords: [...DEFAULT_OPT_OUT_WORDS],
      optInWords: [...DEFAULT_OPT_IN_WORDS],
      optInMaxAgeMs: DEFAULT_OPT_IN_MAX_AGE_MS,
      optOutConfirmation: DEFAULT_OPT_OUT_CONFIRMATION,
      optInConfirmation: DEFAULT_OPT_IN_CONFIRMATION,
      deliveredResponseType: 'delivered',
      openedResponseType: 'opened',
    });
    assert.equal(c?.publicBaseUrl, 'https://relay.example');
    assert.deepEqual(DEFAULT_OPT_OUT_WORDS.slice(0, 6), ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT']);
    assert.deepEqual(DEFAULT_OPT_IN_WORDS, ['START', 'YES', 'UNSTOP']);
    assert.equal(DEFAULT_OPT_IN_MAX_AGE_MS, 15 * 60_000);
  });

  it('optInMaxAgeMs: read as given; not an integer of 60000-86400000 → refused, naming the key', () => {
    assert.equal(
      load([channel('twilio', { publicBaseUrl: 'https://relay.example', optInMaxAgeMs: 120_000 })]).byName('twilio')
        ?.callbacks?.optInMaxAgeMs,
      120_000,
    );
    for (const bad of [59_999, 86_400_001, 1.5e5 + 0.5, '900000', -1]) {
      const found = problems([channel('twilio', { publicBaseUrl: 'https://relay.example', optInMaxAgeMs: bad })]);
      assert.ok(
        found.some((p) => p.path === 'channels.0.callbacks.optInMaxAgeMs'),
        `${String(bad)}: ${JSON.stringify(found)}`,
      );
    }
  });

  it('a channel without the block has no callbacks', () => {
    const c = load([channel('twilio', {}, { callbacks: undefined })]).byName('twilio');
    assert.equal(c?.callbacks, undefined);
    assert.equal(c?.publicBaseUrl, undefined);
  });

  it('reads every setting: keywords as a list or a map (word → TriggerKeyword), words in upper case, secrets from the environment', () => {
    const registry = load([
      channel(
        'twilio',
        {
          publicBaseUrl: 'https://relay.example/sms',
          trackLinks: true,
          keywords: ['Yes2', 'info'],
          optOutWords: ['stop', 'Halt'],
          optInWords: ['go'],
          optOutConfirmation: '',
          optInConfirmation: 'Welcome back',
          previousAuthToken: 'env:TW_OLD',
          sharedKeySecret: 'env:TW_OLD',
          deliveredResponseType: 'sent',
          openedResponseType: 'keyword',
        },
        { channelField: 'sample_channel' },
      ),
      channel(
        'telegram',
        {
          publicBaseUrl: 'https://relay.example',
          keywords: { Y: 'YES2', Yep: 'YES2' },
          webhookSecretToken: 'env:TG_SECRET',
        },
        { channelField: 'sample_channel' },
      ),
      channel('contract', {
        publicBaseUrl: 'https://relay.example',
        organizationId: 'AAAAAAAA-0000-4000-8000-000000000001',
      }),
    ]);
    const sms = registry.byName('twilio')?.callbacks;
    assert.equal(sms?.trackLinks, true);
    assert.deepEqual(sms?.keywords, { YES2: 'Yes2', INFO: 'info' });
    assert.deepEqual(sms?.optOutWords, ['STOP', 'HALT']);
    assert.deepEqual(sms?.optInWords, ['GO']);
    assert.equal(sms?.optOutConfirmation, '');
    assert.equal(sms?.optInConfirmation, 'Welcome back');
    assert.equal(sms?.previousAuthToken, 'old-token');
    assert.equal(sms?.sharedKeySecret, 'old-token');
    assert.equal(sms?.deliveredResponseType, 'sent');
    assert.equal(sms?.openedResponseType, 'keyword');
    const tg = registry.byName('telegram')?.callbacks;
    assert.deepEqual(tg?.keywords, { Y: 'YES2', YEP: 'YES2' });
    assert.equal(tg?.webhookSecretToken, 'tg_secret-1');
    assert.equal(registry.byName('contract')?.callbacks?.organizationId, 'aaaaaaaa-0000-4000-8000-000000000001');
  });

  it('bad values: each names the file, the key, what was expected and what was found, never a secret', () => {
    const found = problems([
      channel('twilio', {
        publicBaseUrl: 'ftp://relay.example',
        keywords: ['STOP', 'info', 'INFO'],
        deliveredResponseType: 'bounced',
        webhookSecretToken: 'env:TG_SECRET',
        previousAuthToken: 'literal-old-token',
      }),
      channel('telegram', { publicBaseUrl: '${NOT_SET}' }, { channelField: 'sample_channel' }),
      channel('contract', {
        publicBaseUrl: 'https://relay.example',
        keywords: ['YES2'],
        trackLinks: true,
        sharedKeySecret: 'env:TW_OLD',
      }),
    ]);
    const by = (p: string): ConfigProblem => {
      const x = found.find((f) => f.path === p);
      assert.ok(x, `${p} in ${found.map((f) => f.path).join(', ')}`);
      assert.equal(x.source, 'channels.json');
      return x;
    };
    assert.match(by('channels.0.callbacks.publicBaseUrl').expected, /http\(s\) URL/);
    assert.match(by('channels.0.callbacks.keywords.0').expected, /not already in channels\.0\.callbacks\.optOutWords/);
    assert.match(by('channels.0.callbacks.keywords.2').expected, /listed once/);
    assert.match(
      by('channels.0.callbacks.deliveredResponseType').expected,
      /response type of the tile \(sent, delivered, failed, opened, keyword\)/,
    );
    assert.match(by('channels.0.callbacks.deliveredResponseType').found, /"bounced"/);
    assert.match(by('channels.0.callbacks.webhookSecretToken').expected, /only a telegram channel/);
    assert.match(by('channels.0.callbacks.previousAuthToken').expected, /env:NAME reference/);
    assert.doesNotMatch(by('channels.0.callbacks.previousAuthToken').found, /literal-old-token/);
    assert.match(by('channels.1.callbacks.publicBaseUrl').expected, /NOT_SET to be set/);
    assert.match(by('channels.1.callbacks.webhookSecretToken').expected, /secret_token/);
    assert.equal(by('channels.1.callbacks.webhookSecretToken').found, 'nothing');
    assert.match(by('channels.2.callbacks.keywords').expected, /no keywords on a real-time journeys channel/);
    assert.match(by('channels.2.callbacks.trackLinks').expected, /outbound-marketing messages only/);
    assert.match(by('channels.2.callbacks.sharedKeySecret').expected, /only a twilio channel/);
  });

  it('a keyword wins over a default opt-in word (YES), never over an opt-out word or a listed opt-in word', () => {
    const c = load([channel('twilio', { publicBaseUrl: 'https://r.example', keywords: ['yes'] })]).byName(
      'twilio',
    )?.callbacks;
    assert.deepEqual(c?.optInWords, ['START', 'UNSTOP']);
    assert.deepEqual(c?.keywords, { YES: 'yes' });
    const found = problems([
      channel('twilio', { publicBaseUrl: 'https://r.example', keywords: ['YES', 'Quit'], optInWords: ['YES'] }),
    ]);
    assert.deepEqual(found.map((p) => p.path).sort(), [
      'channels.0.callbacks.keywords.0',
      'channels.0.callbacks.keywords.1',
    ]);
  });

  it('refuses a default response type the tile lacks, and keywords on a tile without a custom response type', () => {
    const xml = readFileSync(path.join(dir, 'tiles', 'tile.xml'), 'utf8')
      .replace(/<ResponseType id="opened">[\s\S]*?<\/ResponseType>/, '')
      .replace(' custom="True"', '');
    writeFileSync(path.join(dir, 'tiles', 'tile.xml'), xml);
    const found = problems([channel('twilio', { publicBaseUrl: 'https://relay.example', keywords: ['YES2'] })]);
    assert.match(
      found.find((p) => p.path === 'channels.0.callbacks.openedResponseType')?.expected ?? '',
      /the default 'opened' is not one, so set it/,
    );
    assert.match(found.find((p) => p.path === 'channels.0.callbacks.keywords')?.expected ?? '', /custom="True"/);
  });

  it('schema errors in the block name the key path', () => {
    const found = problems([channel('twilio', { trackLinks: 'yes', optOutWords: [], extra: 1 })]);
    const paths = found.map((p) => p.path);
    for (const p of [
      'channels.0.callbacks.publicBaseUrl',
      'channels.0.callbacks.trackLinks',
      'channels.0.callbacks.optOutWords',
      'channels.0.callbacks.extra',
    ])
      assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
  });

  it('a Telegram secret token must be what setWebhook accepts (one, or two while rotating)', () => {
    const found = problemsOf(() => {
      const file = path.join(dir, 'channels.json');
      writeFileSync(
        file,
        JSON.stringify({
          channels: [channel('telegram', { publicBaseUrl: 'https://r.example', webhookSecretToken: 'env:BAD' })],
        }),
      );
      return loadChannels(file, { env: { ...env, BAD: 'has spaces and $ymbols' }, cwd: dir });
    });
    const p = found.find((x) => x.path === 'channels.0.callbacks.webhookSecretToken');
    assert.match(p?.expected ?? '', /one or two/);
    assert.doesNotMatch(p?.found ?? '', /ymbols/);
    const ok = (() => {
      const file = path.join(dir, 'channels.json');
      writeFileSync(
        file,
        JSON.stringify({
          channels: [channel('telegram', { publicBaseUrl: 'https://r.example', webhookSecretToken: 'env:TWO' })],
        }),
      );
      return loadChannels(file, { env: { ...env, TWO: 'new_token old_token' }, cwd: dir });
    })();
    assert.equal(ok.byName('telegram')?.callbacks?.webhookSecretToken, 'new_token old_token');
  });
});
