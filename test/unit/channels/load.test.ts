import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadChannels } from '../../../src/channels/index.js';
import { isConfigError, type ConfigProblem } from '../../../src/errors.js';
import { configPath } from '../../../src/paths.js';

const ENV = { TWILIO_AUTH_TOKEN: 'tw-secret-1234', TELEGRAM_BOT_TOKEN: '123:abc', CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0', PROVIDERS_URL: 'http://127.0.0.1:4010/' };

function problemsOf(fn: () => unknown): ConfigProblem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(isConfigError(err), `expected a ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('channels: loadChannels', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'channels-'));
    mkdirSync(path.join(dir, 'tiles'));
    copyFileSync(configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'), path.join(dir, 'tiles', 'tile.xml'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const sms = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: 'sms',
    tile: 'tiles/tile.xml',
    provider: { type: 'twilio', accountSid: 'AC00000000000000000000000000000001', authToken: 'env:TWILIO_AUTH_TOKEN', baseUrl: '${PROVIDERS_URL}' },
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
    assert.deepEqual(registry.all().map((c) => c.name), ['sms', 'telegram', 'realtime-sms']);
    const s = registry.byName('sms');
    assert.ok(s?.tile);
    assert.equal(s.tile.entityType, 'sample_specialmessage');
    assert.equal(s.tile.entitySetName, 'sample_specialmessages');
    assert.equal(s.tile.complianceField, 'donotphone');
    assert.deepEqual(s.tile.responseTypes.map((r) => r.id), ['sent', 'delivered', 'failed', 'opened', 'keyword']);
    assert.deepEqual(s.provider, { type: 'twilio', accountSid: 'AC00000000000000000000000000000001', authToken: 'tw-secret-1234', baseUrl: 'http://127.0.0.1:4010' });
    assert.equal(s.senderKey, 'twilio:+4915100000001');
    assert.deepEqual(s.rateLimit, { messages: 10, intervalMs: 1000, concurrency: 10, perRecipientMs: 0 });
    assert.equal(s.timeoutMs, 10_000);
    assert.equal(registry.byName('telegram')?.rateLimit.perRecipientMs, 1000);
    assert.equal(registry.byName('telegram')?.senderKey, 'telegram:123', "a bot's session is its public bot id, never the token's secret part");
    const rt = registry.byName('realtime-sms');
    assert.equal(rt?.channelDefinitionId, '547ad554-324d-5e09-a5b5-adc95569d73e');
    assert.deepEqual(rt?.provider, { type: 'contract', url: 'http://127.0.0.1:4010/contract/realtime-sms/messages', signingSecret: 'whsec_c2VjcmV0' });
    assert.equal(registry.byName('nope'), undefined);
  });

  it('names the file, key, expectation and finding of every problem at once', () => {
    const file = write([
      sms({ provider: { type: 'twilio', accountSid: 'AC00000000000000000000000000000001', authToken: 'literal-secret' }, failureResponseType: 'bounced' }),
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
      sms({ provider: { type: 'twilio', accountSid: 'AC00000000000000000000000000000001', authToken: 'env:TWILIO_AUTH_TOKEN', baseUrl: '${NOT_SET}' } }),
      sms({ name: 'b', provider: { type: 'telegram', botToken: 'env:TELEGRAM_BOT_TOKEN', baseUrl: 'ftp://x' } }),
      sms({ name: 'c', provider: { type: 'contract', url: 'http://x', signingSecret: 'env:CONTRACT_SIGNING_SECRET', accountSid: 'AC00000000000000000000000000000001' } }),
    ]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    const by = (p: string): ConfigProblem | undefined => problems.find((x) => x.path === p);
    assert.match(by('channels.0.provider.baseUrl')?.expected ?? '', /NOT_SET to be set/);
    assert.match(by('channels.1.provider.baseUrl')?.expected ?? '', /http\(s\) URL/);
    assert.match(by('channels.2.provider.accountSid')?.expected ?? '', /keys of a contract provider/);
  });

  it('requires a channel field where channels share a tile, and equal limits where they share a sender', () => {
    const file = write([sms(), sms({ name: 'sms2', rateLimit: { messages: 5 } })]);
    const problems = problemsOf(() => loadChannels(file, { env: ENV, cwd: dir }));
    assert.ok(problems.some((p) => p.path === 'channels.0.channelField'));
    assert.ok(problems.some((p) => p.path === 'channels.1.rateLimit' && /same sender key "twilio:\+4915100000001"/.test(p.expected)));
  });

  it('says when the file is missing or not JSON', () => {
    assert.match(problemsOf(() => loadChannels(path.join(dir, 'none.json'), { cwd: dir }))[0]?.found ?? '', /no such file/);
    writeFileSync(path.join(dir, 'bad.json'), '{ nope');
    assert.match(problemsOf(() => loadChannels(path.join(dir, 'bad.json'), { cwd: dir }))[0]?.found ?? '', /JSON/);
  });
});
