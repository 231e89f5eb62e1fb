import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageVersion, runCli } from '../../src/cli/program.js';
import { configPath } from '../../src/paths.js';
import { recordingIo } from '../helpers/cli.js';

describe('channel-relay CLI', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-'));
    writeFileSync(
      path.join(dir, 'channels.json'),
      JSON.stringify({
        channels: [
          {
            name: 'sms',
            tile: configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
            provider: {
              type: 'twilio',
              accountSid: 'AC00000000000000000000000000000001',
              authToken: 'env:TWILIO_AUTH_TOKEN',
            },
            sender: '+4915100000001',
            addressField: 'mobilephone',
            textField: 'sample_text',
            rateLimit: { messages: 10 },
            failureResponseType: 'failed',
          },
        ],
      }),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('--version prints the package version', async () => {
    const io = recordingIo();
    assert.equal(await runCli(['--version'], io), 0);
    assert.deepEqual(io.stdout, [`${packageVersion()}\n`]);
    assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
  });

  it('--help lists the commands', async () => {
    const io = recordingIo();
    assert.equal(await runCli(['--help'], io), 0);
    assert.match(io.stdout.join(''), /config\s+work with the configuration/);
    assert.match(io.stdout.join(''), /demo/);
  });

  it('an unknown command is a usage error (exit 2) with help', async () => {
    const io = recordingIo();
    assert.equal(await runCli(['frobnicate'], io), 2);
    assert.match(io.stderr.join(''), /unknown command 'frobnicate'/);
  });

  it('config check prints a masked summary and exits 0 for a valid configuration', async () => {
    const io = recordingIo(
      {
        SERVICEBUS_CONNECTION_STRING:
          'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=TopSecretKey123=;UseDevelopmentEmulator=true;',
        DATAVERSE_URL: 'http://127.0.0.1:9000',
        DATAVERSE_AUTH: 'emulator',
        CHANNELS_FILE: 'channels.json',
        TWILIO_AUTH_TOKEN: 'TwilioTokenSecret42',
      },
      dir,
    );
    assert.equal(await runCli(['config', 'check'], io), 0);
    const out = io.stdout.join('\n');
    assert.match(out, /configuration is valid/);
    assert.match(out, /SharedAccessKey=\[hidden\]/);
    assert.match(out, /Dataverse: http:\/\/127\.0\.0\.1:9000 .*the emulator's token/);
    assert.match(
      out,
      /channel sms: twilio at the provider, sender \+4915100000001 \(session twilio:\+4915100000001\), 10 per 1000 ms, at most 100 in flight; tile sample_specialmessage \(compliance donotphone, address mobilephone, text sample_text, failures as 'failed'\)/,
    );
    assert.doesNotMatch(out + io.stderr.join(''), /TopSecretKey123|TwilioTokenSecret42/);
  });

  it('config check summarises each messaging account and what it bridges, without a secret', async () => {
    const file = path.join(dir, 'channels.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { channels: Array<Record<string, unknown>> };
    doc.channels[0]!['callbacks'] = { publicBaseUrl: 'https://relay.example' };
    const account = {
      name: 'contoso',
      appId: '6E7D5C2A-0B1F-4C8E-9A3D-2F4B6C8D0E1A',
      tenant: 'multi',
      clientSecret: 'env:CONTOSO_CLIENT_SECRET',
      directLineSecret: 'env:CONTOSO_DL_SECRET',
      channels: [
        { name: 'support-sms', channelId: 'sms', relayChannel: 'sms', workstream: 'Support', language: 'en-US' },
      ],
    };
    writeFileSync(file, JSON.stringify({ ...doc, messaging: { accounts: [account] } }));
    const io = recordingIo(
      {
        SERVICEBUS_CONNECTION_STRING: 'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=k;',
        DATAVERSE_URL: 'http://127.0.0.1:9000',
        DATAVERSE_AUTH: 'emulator',
        CHANNELS_FILE: 'channels.json',
        TWILIO_AUTH_TOKEN: 'TwilioTokenSecret42',
        CONTOSO_CLIENT_SECRET: 'ClientSecretValue42',
        CONTOSO_DL_SECRET: 'DirectLineSecret42',
      },
      dir,
    );
    assert.equal(await runCli(['config', 'check'], io), 0, io.stderr.join(''));
    const out = io.stdout.join('\n');
    assert.match(
      out,
      /messaging account contoso: app 6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a \(multi-tenant\), Direct Line https:\/\/directline\.botframework\.com, 1 channel\n/,
    );
    assert.match(
      out,
      /support-sms: relay channel sms <-> Omnichannel channel sms, workstream Support, en-US, files from customers off, from agents off/,
    );
    assert.doesNotMatch(out + io.stderr.join(''), /ClientSecretValue42|DirectLineSecret42|TwilioTokenSecret42/);
  });

  it('config check FILE warns about a renamed key it still reads (dispatch.maxAttempts) and exits 0', async () => {
    writeFileSync(path.join(dir, 'old.json'), JSON.stringify({ dispatch: { maxAttempts: 3 } }));
    const io = recordingIo(
      {
        SERVICEBUS_NAMESPACE: 'relay.servicebus.windows.net',
        DATAVERSE_URL: 'https://contoso.crm.dynamics.com',
        CHANNELS_FILE: 'channels.json',
        TWILIO_AUTH_TOKEN: 't',
      },
      dir,
    );
    assert.equal(await runCli(['config', 'check', 'old.json'], io), 0);
    assert.match(io.stdout.join('\n'), /configuration is valid/);
    assert.deepEqual(io.stderr, [
      'warning: old.json: dispatch.maxAttempts is deprecated: read as dispatch.retry.attempts; rename it',
    ]);
  });

  it('config check names the problems of the channels file', async () => {
    writeFileSync(
      path.join(dir, 'channels.json'),
      JSON.stringify({
        channels: [{ name: 'sms', provider: { type: 'twilio' }, sender: 'x', rateLimit: { messages: 1 } }],
      }),
    );
    const io = recordingIo(
      {
        SERVICEBUS_NAMESPACE: 'relay.servicebus.windows.net',
        DATAVERSE_URL: 'https://contoso.crm.dynamics.com',
        CHANNELS_FILE: 'channels.json',
      },
      dir,
    );
    assert.equal(await runCli(['config', 'check'], io), 1);
    const err = io.stderr.join('\n');
    assert.match(
      err,
      /channels\.json: channels\.0\.provider\.accountSid: expected a value \(required for a twilio provider\), found nothing/,
    );
    assert.match(
      err,
      /channels\.json: channels\.0\.tile: expected a tile \(outbound marketing\) or a channelDefinitionId/,
    );
  });

  it('config check names a tile XML without LookupViewId: the file, the element, and that the current docs require it', async () => {
    const xml = readFileSync(
      configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
      'utf8',
    ).replace(/\s*<LookupViewId>[^<]*<\/LookupViewId>/, '');
    writeFileSync(path.join(dir, 'old_TileConfig.xml'), xml);
    const channels = {
      channels: [
        {
          name: 'sms',
          tile: 'old_TileConfig.xml',
          provider: {
            type: 'twilio',
            accountSid: 'AC00000000000000000000000000000001',
            authToken: 'env:TWILIO_AUTH_TOKEN',
          },
          sender: '+4915100000001',
          addressField: 'mobilephone',
          textField: 'sample_text',
          rateLimit: { messages: 10 },
        },
      ],
    };
    writeFileSync(path.join(dir, 'channels.json'), JSON.stringify(channels));
    const io = recordingIo(
      {
        SERVICEBUS_NAMESPACE: 'relay.servicebus.windows.net',
        DATAVERSE_URL: 'https://contoso.crm.dynamics.com',
        CHANNELS_FILE: 'channels.json',
        TWILIO_AUTH_TOKEN: 't',
      },
      dir,
    );
    assert.equal(await runCli(['config', 'check'], io), 1);
    assert.match(
      io.stderr.join('\n'),
      /channels\.json: channels\.0\.tile: expected a readable tile XML file .*found old_TileConfig\.xml: <ChannelProperties> needs <LookupViewId> \(the current Microsoft docs of the tile XML require it/,
    );
  });

  it('config check FILE prints every problem and exits 1', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataverse: { auth: 'basic' },
        log: { level: 'loud' },
        serviceBus: { connectionString: 'Endpoint=sb://x;SharedAccessKey=LiteralKey99' },
      }),
    );
    const io = recordingIo({ DATAVERSE_URL: 'https://contoso.crm.dynamics.com', CHANNELS_FILE: 'channels.json' }, dir);
    assert.equal(await runCli(['config', 'check', 'bad.json'], io), 1);
    const err = io.stderr.join('\n');
    assert.match(err, /configuration has 3 problems/);
    assert.match(
      err,
      /bad\.json: dataverse\.auth: expected one of "default", "client-secret", "emulator", found "basic" \(string\)/,
    );
    assert.match(
      err,
      /bad\.json: log\.level: expected one of "error", "warn", "info", "debug", found "loud" \(string\)/,
    );
    assert.match(err, /bad\.json: serviceBus\.connectionString: expected an env:NAME reference/);
    assert.doesNotMatch(err, /LiteralKey99/);
    assert.deepEqual(io.stdout, []);
  });

  describe('config check --stage NAME: what that stage requires, and nothing else', () => {
    const BUS = {
      SERVICEBUS_CONNECTION_STRING:
        'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=Root;SharedAccessKey=TopSecretKey123=;UseDevelopmentEmulator=true;',
    };
    const DATAVERSE = { DATAVERSE_URL: 'http://127.0.0.1:9000', DATAVERSE_AUTH: 'emulator' };
    const check = async (
      stage: string,
      env: Record<string, string>,
    ): Promise<{ code: number; out: string; err: string }> => {
      const io = recordingIo({ CHANNELS_FILE: 'channels.json', ...env }, dir);
      const code = await runCli(['config', 'check', '--stage', stage], io);
      return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
    };

    it('recorder: the bus and Dataverse suffice (no channel, no provider secret); without DATAVERSE_URL it exits 1 naming the key', async () => {
      const ok = await check('recorder', { ...BUS, ...DATAVERSE, CHANNELS_FILE: 'no-such-channels.json' });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /^configuration is valid for recorder; it would run with:/);
      assert.match(ok.out, /channels: none read \(the recorder uses no channel\)/);
      const bad = await check('recorder', { ...BUS });
      assert.equal(bad.code, 1);
      assert.match(
        bad.err,
        /configuration has 1 problem:\n {2}- \S*config\/default\.json: dataverse\.url: expected the org URL \(or set DATAVERSE_URL\), found nothing/,
      );
      assert.deepEqual(bad.out, '');
    });

    it('dispatch: the providers without Dataverse; a missing provider secret exits 1 naming file and key', async () => {
      const ok = await check('dispatch', { ...BUS, TWILIO_AUTH_TOKEN: 'TwilioTokenSecret42' });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /Dataverse: not configured/);
      assert.match(ok.out, /channel sms: twilio at the provider, sender/);
      assert.doesNotMatch(ok.out, /TwilioTokenSecret42|TopSecretKey123/);
      const bad = await check('dispatch', { ...BUS });
      assert.equal(bad.code, 1);
      assert.match(
        bad.err,
        /channels\.json: channels\.0\.provider\.authToken: expected environment variable TWILIO_AUTH_TOKEN to be set \(the value is "env:TWILIO_AUTH_TOKEN"\), found it unset/,
      );
    });

    it('intake: Dataverse and the channels, without their secrets', async () => {
      const ok = await check('intake', { ...BUS, ...DATAVERSE });
      assert.equal(ok.code, 0, ok.err);
      assert.match(
        ok.out,
        /channel sms: twilio \(settings not read for this stage\), sender \+4915100000001 \(session twilio:\+4915100000001\)/,
      );
    });

    it('callbacks: exits 1 without the signing keys, 0 with them', async () => {
      const bad = await check('callbacks', { ...BUS, ...DATAVERSE });
      assert.equal(bad.code, 1);
      assert.match(
        bad.err,
        /callbacks\.signingKeys: expected the callback signing keys \(set CALLBACK_SIGNING_KEYS\), because the callbacks service verifies its tokens and link codes with them/,
      );
      const ok = await check('callbacks', {
        ...BUS,
        ...DATAVERSE,
        CALLBACK_SIGNING_KEYS: `k1:${Buffer.alloc(32, 3).toString('base64')}`,
      });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /^configuration is valid for callbacks/);
    });

    it('all: the stages of workers/all.js together; an unknown stage is a usage error (exit 2) naming the choices', async () => {
      const all = await check('all', { ...BUS, ...DATAVERSE });
      assert.equal(all.code, 1);
      assert.match(all.err, /TWILIO_AUTH_TOKEN/);
      const ok = await check('all', { ...BUS, ...DATAVERSE, TWILIO_AUTH_TOKEN: 'x' });
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /^configuration is valid for intake \+ dispatch \+ recorder/);
      const bogus = await check('ingest', { ...BUS, ...DATAVERSE });
      assert.equal(bogus.code, 2);
      assert.match(
        bogus.err,
        /option '--stage <name>' argument 'ingest' is invalid\. Allowed choices are intake, dispatch, recorder, callbacks, conversations, all\./,
      );
    });
  });

  it('demo refuses a bad --contacts or --sms-per-second with exit 2, saying what it expects', async () => {
    for (const [option, value] of [
      ['--contacts', '0'],
      ['--contacts', '100001'],
      ['--sms-per-second', '1.5'],
    ] as const) {
      const io = recordingIo();
      assert.equal(await runCli(['demo', option, value], io), 2, `${option} ${value}`);
      assert.match(
        io.stderr.join(''),
        new RegExp(
          `${option} <n>' argument '${value.replace('.', '\\.')}' is invalid\\. expected a whole number from 1 to \\d+, found '`,
        ),
      );
    }
  });
});
