import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_ATTACHMENT_REFUSAL,
  loadChannels,
  loadMessaging,
  type MessagingReading,
} from '../../../src/channels/index.js';
import { configProblems } from '../../helpers/fixtures.js';

const APP = '6E7D5C2A-0B1F-4C8E-9A3D-2F4B6C8D0E1A';
const ENV = {
  TWILIO_AUTH_TOKEN: 'tw-secret-1234',
  CONTRACT_SIGNING_SECRET: 'whsec_c2VjcmV0',
  CONTOSO_CLIENT_SECRET: 'client-secret-value',
  CONTOSO_DL_SECRET: 'direct-line-secret-value',
  DIRECTLINE_URL: 'http://127.0.0.1:3978/',
};

type Doc = { channels: Array<Record<string, unknown>>; messaging: { accounts: Array<Record<string, unknown>> } };

/** Two relay channels (real-time, so no tile) with callbacks, and one account bridging `sms`. */
function validDoc(): Doc {
  const relay = (name: string, sender: string): Record<string, unknown> => ({
    name,
    channelDefinitionId: '877d122c-16f8-5806-b029-4a7a103cb3d6',
    provider: {
      type: 'contract',
      url: 'https://provider.example/messages',
      signingSecret: 'env:CONTRACT_SIGNING_SECRET',
    },
    sender,
    rateLimit: { messages: 10 },
    callbacks: { publicBaseUrl: 'https://relay.example' },
  });
  return {
    channels: [relay('sms', '+4915100000001'), relay('sms2', '+4915100000002')],
    messaging: {
      accounts: [
        {
          name: 'contoso',
          appId: APP,
          tenant: 'multi',
          clientSecret: 'env:CONTOSO_CLIENT_SECRET',
          directLineSecret: 'env:CONTOSO_DL_SECRET',
          directLineUrl: '${DIRECTLINE_URL}',
          channels: [
            {
              name: 'support-sms',
              channelId: 'sms',
              relayChannel: 'sms',
              workstream: 'Support',
              language: 'en-US',
              conversationContext: { source: 'sms' },
              attachments: { customer: true },
            },
          ],
        },
      ],
    },
  };
}

const account = (doc: Doc, i = 0): Record<string, unknown> => doc.messaging.accounts[i] as Record<string, unknown>;
const channels = (doc: Doc, i = 0): Array<Record<string, unknown>> =>
  account(doc, i)['channels'] as Array<Record<string, unknown>>;
const secondAccount = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'fabrikam',
  appId: '11111111-2222-4333-8444-555555555555',
  tenant: 'fabrikam.onmicrosoft.com',
  clientSecret: 'env:CONTOSO_CLIENT_SECRET',
  directLineSecret: 'env:CONTOSO_DL_SECRET',
  channels: [{ name: 'fab-sms', channelId: 'sms', relayChannel: 'sms2', workstream: 'Sales', language: 'de' }],
  ...over,
});

describe('channels: the messaging section', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'messaging-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (doc: Doc): string => {
    writeFileSync(path.join(dir, 'channels.json'), JSON.stringify(doc));
    return 'channels.json';
  };

  it('resolves accounts and channels with their defaults, and looks a channel up by the relay channel it bridges', () => {
    const registry = loadChannels(write(validDoc()), { env: ENV, cwd: dir }).messaging;
    assert.deepEqual(registry.accounts, [
      {
        name: 'contoso',
        appId: APP.toLowerCase(),
        tenant: 'multi',
        clientSecret: 'client-secret-value',
        directLineSecret: 'direct-line-secret-value',
        directLineUrl: 'http://127.0.0.1:3978',
        authorityHost: 'https://login.microsoftonline.com',
        channels: [
          {
            name: 'support-sms',
            account: 'contoso',
            channelId: 'sms',
            relayChannel: 'sms',
            workstream: 'Support',
            language: 'en-US',
            conversationContext: { source: 'sms' },
            attachments: { customer: true, agent: false },
            attachmentRefusal: DEFAULT_ATTACHMENT_REFUSAL,
          },
        ],
      },
    ]);
    assert.equal(registry.account('contoso'), registry.accounts[0]);
    assert.equal(registry.byRelayChannel('sms')?.name, 'support-sms');
    assert.equal(registry.byRelayChannel('sms2'), undefined, 'not bridged');
    assert.equal(registry.account('nope'), undefined);
  });

  it('a file without a messaging section has an empty registry', () => {
    const { messaging: _, ...doc } = validDoc();
    const registry = loadChannels(write(doc as Doc), { env: ENV, cwd: dir }).messaging;
    assert.deepEqual(registry.accounts, []);
    assert.equal(registry.byRelayChannel('sms'), undefined);
  });

  it('reads only the secrets and URLs a process asks for (least privilege)', () => {
    const file = write(validDoc());
    const bare = { TWILIO_AUTH_TOKEN: 't', CONTRACT_SIGNING_SECRET: 'whsec_x' };
    const cases: Array<[MessagingReading, Record<string, string>, string[]]> = [
      ['none', bare, []],
      ['directLine', { ...bare, CONTOSO_DL_SECRET: 'dl', DIRECTLINE_URL: 'http://dl.example' }, ['directLineSecret']],
      ['identity', { ...bare, CONTOSO_CLIENT_SECRET: 'cs' }, ['clientSecret']],
      ['all', ENV, ['clientSecret', 'directLineSecret']],
    ];
    for (const [reading, env, secrets] of cases) {
      const a = loadChannels(file, { env, cwd: dir, messaging: reading }).messaging.accounts[0];
      assert.ok(a, reading);
      assert.deepEqual(
        ['clientSecret', 'directLineSecret'].filter((k) => k in a),
        secrets,
        `${reading}: the secrets read`,
      );
      assert.equal(
        a.directLineUrl,
        reading === 'none' || reading === 'identity' ? '${DIRECTLINE_URL}' : env['DIRECTLINE_URL']?.replace(/\/$/, ''),
        `${reading}: the Direct Line URL is interpolated only where read`,
      );
    }
    // Where a secret is read, its variable must be set; the problem names the key and the variable.
    const problems = configProblems(() => loadChannels(file, { env: bare, cwd: dir, messaging: 'identity' }));
    assert.deepEqual(
      problems.map((p) => [p.source, p.path, p.expected, p.found]),
      [
        [
          'channels.json',
          'messaging.accounts.0.clientSecret',
          'environment variable CONTOSO_CLIENT_SECRET to be set (the value is "env:CONTOSO_CLIENT_SECRET")',
          'it unset',
        ],
      ],
    );
  });

  it('loadMessaging reads the section without any channel tile or provider secret', () => {
    const registry = loadMessaging(write(validDoc()), {
      env: { CONTOSO_CLIENT_SECRET: 'cs' },
      cwd: dir,
      messaging: 'identity',
    });
    assert.equal(registry.file, path.join(dir, 'channels.json'));
    assert.equal(registry.accounts[0]?.clientSecret, 'cs');
    assert.equal(registry.accounts[0]?.directLineSecret, undefined);
  });

  /** One refusal per row: how the valid file is spoiled, and the problems (key path → expected) it must give. */
  const REFUSALS: Array<{
    what: string;
    spoil: (doc: Doc) => void;
    problems: Array<[string, RegExp]>;
    onlyWhereRead?: boolean;
  }> = [
    {
      what: 'a channel ID used twice in one account, naming both entries and why',
      spoil: (doc) =>
        channels(doc).push({
          name: 'support-sms-2',
          channelId: 'SMS',
          relayChannel: 'sms2',
          workstream: 'Support',
          language: 'en-US',
        }),
      problems: [
        [
          'messaging.accounts.0.channels.1.channelId',
          /^a channel ID used once in account "contoso": messaging\.accounts\.0\.channels\.0 \("support-sms"\) has channel ID "sms" too, and the Bot Framework allows one channel per app ID$/,
        ],
      ],
    },
    {
      what: 'a malformed app ID (not a GUID)',
      spoil: (doc) => (account(doc)['appId'] = 'cae1d83e-8b07-4fca-8072-c2eb3444vxyz'),
      problems: [['messaging.accounts.0.appId', /^a Microsoft app ID: a GUID/]],
    },
    {
      what: 'a tenant that is neither multi, a GUID nor a domain',
      spoil: (doc) => (account(doc)['tenant'] = 'single tenant'),
      problems: [['messaging.accounts.0.tenant', /^"multi" \(a multi-tenant app\) or the app's tenant/]],
    },
    {
      what: 'a messaging channel naming a relay channel that does not exist',
      spoil: (doc) => ((channels(doc)[0] as Record<string, unknown>)['relayChannel'] = 'whatsapp'),
      problems: [
        ['messaging.accounts.0.channels.0.relayChannel', /^the name of a relay channel of this file \(sms, sms2\)$/],
      ],
    },
    {
      what: "a bridged relay channel without a callbacks block (its customers' messages would never arrive)",
      spoil: (doc) => delete (doc.channels[0] as Record<string, unknown>)['callbacks'],
      problems: [
        [
          'messaging.accounts.0.channels.0.relayChannel',
          /^a relay channel with a callbacks block: a customer's messages reach the relay only through the callbacks service, and channel "sms" has none/,
        ],
      ],
    },
    {
      what: 'a relay channel bridged twice (by two accounts)',
      spoil: (doc) =>
        doc.messaging.accounts.push(
          secondAccount({
            channels: [{ name: 'fab-sms', channelId: 'sms', relayChannel: 'sms', workstream: 'Sales', language: 'de' }],
          }),
        ),
      problems: [
        [
          'messaging.accounts.1.channels.0.relayChannel',
          /^a relay channel no other messaging channel bridges \(messaging\.accounts\.0\.channels\.0 \("support-sms"\) bridges "sms" already/,
        ],
      ],
    },
    {
      what: 'two accounts with one name',
      spoil: (doc) => doc.messaging.accounts.push(secondAccount({ name: 'contoso' })),
      problems: [
        [
          'messaging.accounts.1.name',
          /^an account name no other account has \(messaging\.accounts\.0 is also "contoso"\)$/,
        ],
      ],
    },
    {
      what: 'two messaging channels with one name (across accounts)',
      spoil: (doc) =>
        doc.messaging.accounts.push(
          secondAccount({
            channels: [
              { name: 'support-sms', channelId: 'sms', relayChannel: 'sms2', workstream: 'Sales', language: 'de' },
            ],
          }),
        ),
      problems: [
        [
          'messaging.accounts.1.channels.0.name',
          /^a messaging channel name no other messaging channel has \(messaging\.accounts\.0\.channels\.0 is also "support-sms"\)$/,
        ],
      ],
    },
    {
      what: 'a non-http(s) URL, literal (refused whatever is read)',
      spoil: (doc) => (account(doc)['authorityHost'] = 'login.microsoftonline.com'),
      problems: [['messaging.accounts.0.authorityHost', /^an http\(s\) URL$/]],
    },
    {
      what: 'an http authority host (MSAL takes https only)',
      spoil: (doc) => (account(doc)['authorityHost'] = 'http://login.example'),
      problems: [
        ['messaging.accounts.0.authorityHost', /^an https URL \(the identity platform is reached over https only\)$/],
      ],
    },
    {
      what: 'a non-http(s) URL after interpolation',
      spoil: (doc) => (account(doc)['directLineUrl'] = 'ftp://${DIRECTLINE_HOST}'),
      problems: [['messaging.accounts.0.directLineUrl', /^an http\(s\) URL$/]],
      onlyWhereRead: true,
    },
    {
      what: 'a secret written into the file',
      spoil: (doc) => (account(doc)['directLineSecret'] = 'literal-direct-line-secret'),
      problems: [
        [
          'messaging.accounts.0.directLineSecret',
          /^an env:NAME reference \(secrets are read only from the environment\)$/,
        ],
      ],
    },
    {
      what: 'an unknown key and a bad language (the schema)',
      spoil: (doc) => {
        account(doc)['appSecret'] = 'x';
        (channels(doc)[0] as Record<string, unknown>)['language'] = 'English';
      },
      problems: [
        ['messaging.accounts.0.appSecret', /^only known keys \(name, appId, tenant, clientSecret/],
        ['messaging.accounts.0.channels.0.language', /^a string matching/],
      ],
    },
  ];

  for (const row of REFUSALS) {
    it(`refuses ${row.what}: the file, the key path and what was expected`, () => {
      const doc = validDoc();
      row.spoil(doc);
      const file = write(doc);
      const env = { ...ENV, DIRECTLINE_HOST: 'dl.example' };
      const loads: Array<[string, () => unknown, boolean]> = [
        ['loadChannels', () => loadChannels(file, { env, cwd: dir }), true],
        ['intake', () => loadChannels(file, { env, cwd: dir, providers: 'none', messaging: 'none' }), false],
        ['loadMessaging', () => loadMessaging(file, { env, cwd: dir }), true],
      ];
      for (const [label, load, readsUrls] of loads) {
        // A URL written with ${NAME} is checked only where it is read.
        if (row.onlyWhereRead === true && !readsUrls) {
          assert.ok(load(), `${label}: not read, not refused`);
          continue;
        }
        const problems = configProblems(load);
        assert.deepEqual(
          problems.map((p) => p.path),
          row.problems.map(([p]) => p),
          `${label}: ${JSON.stringify(problems)}`,
        );
        for (const [i, [, expected]] of row.problems.entries()) {
          assert.equal(problems[i]?.source, 'channels.json');
          assert.match(problems[i]?.expected ?? '', expected);
        }
        assert.doesNotMatch(JSON.stringify(problems), /literal-direct-line-secret/, 'a secret is never shown');
      }
    });
  }

  it('allows one channel ID in two accounts (one per app ID, not per file)', () => {
    const doc = validDoc();
    doc.messaging.accounts.push(secondAccount());
    const registry = loadChannels(write(doc), { env: ENV, cwd: dir }).messaging;
    assert.deepEqual(
      registry.accounts.map((a) => [a.name, a.tenant, a.channels.map((c) => c.channelId)]),
      [
        ['contoso', 'multi', ['sms']],
        ['fabrikam', 'fabrikam.onmicrosoft.com', ['sms']],
      ],
    );
    assert.equal(registry.byRelayChannel('sms2')?.account, 'fabrikam');
  });
});
