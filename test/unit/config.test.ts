import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeConfig, loadConfig, maskConnectionString } from '../../src/config/index.js';
import { formatConfigProblem, type ConfigProblem } from '../../src/errors.js';
import { configProblems as problemsOf } from '../helpers/fixtures.js';

const CS =
  'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=s3cr3tKeyValue==;UseDevelopmentEmulator=true;';

describe('configuration', () => {
  let dir: string;
  let channels: string;
  const baseEnv = (): NodeJS.ProcessEnv => ({
    SERVICEBUS_CONNECTION_STRING: CS,
    DATAVERSE_URL: 'https://contoso.crm.dynamics.com',
    CHANNELS_FILE: channels,
  });
  const writeJson = (name: string, value: unknown): string => {
    const file = path.join(dir, name);
    writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    return file;
  };
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-config-'));
    channels = writeJson('channels.json', { channels: [] });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the embedded defaults with the environment applied', () => {
    const { config, origins } = loadConfig({ env: baseEnv(), cwd: dir });
    assert.equal(config.serviceBus.connectionString, CS);
    assert.deepEqual(config.serviceBus.queues, {
      activities: 'activities',
      outbound: 'outbound',
      interactions: 'interactions',
      conversations: 'conversations',
    });
    assert.equal(config.conversations.pollIntervalMs, 1000);
    assert.deepEqual(config.conversations.retry, { attempts: 3, initialDelayMs: 200, maxDelayMs: 5000 });
    assert.equal(config.dataverse.auth, 'default');
    assert.equal(config.dataverse.timeoutMs, 30000);
    assert.equal(config.log.level, 'info');
    assert.equal(config.shutdown.budgetMs, 15000);
    assert.equal(config.channelsFile, channels);
    assert.equal(origins['dataverse.url'], 'environment variable DATAVERSE_URL');
    assert.equal(origins['log.level'], path.relative(dir, path.resolve('config/default.json')));
  });

  it('refuses a conversations poll ceiling below its interval, and a retry ceiling below its first wait', () => {
    const file = writeJson('conv.json', {
      conversations: { pollIntervalMs: 5000, maxPollIntervalMs: 2000, retry: { initialDelayMs: 900, maxDelayMs: 300 } },
    });
    assert.throws(
      () => loadConfig({ file, env: baseEnv(), cwd: dir }),
      (err: Error) =>
        /conversations\.maxPollIntervalMs: expected at least conversations\.pollIntervalMs \(5000\), found 2000/.test(
          err.message,
        ) &&
        /conversations\.retry\.maxDelayMs: expected at least conversations\.retry\.initialDelayMs \(900\), found 300/.test(
          err.message,
        ),
    );
  });

  it('merges a file over the defaults, resolves env: references and its relative paths', () => {
    const file = writeJson('relay.json', {
      serviceBus: { queues: { outbound: 'outbound-eu' } },
      dataverse: { auth: 'client-secret', tenantId: 't', clientId: 'c', clientSecret: 'env:MY_SECRET' },
      channelsFile: 'channels.json',
      log: { level: 'debug' },
    });
    const env = { ...baseEnv(), CHANNELS_FILE: undefined, MY_SECRET: 'hunter2-secret' };
    const { config, origins } = loadConfig({ file, env, cwd: '/' });
    assert.equal(config.serviceBus.queues.outbound, 'outbound-eu');
    assert.equal(config.serviceBus.queues.activities, 'activities', 'untouched defaults stay');
    assert.equal(config.dataverse.clientSecret, 'hunter2-secret');
    assert.equal(config.log.level, 'debug');
    assert.equal(config.channelsFile, channels, 'relative to the file that names it');
    assert.match(origins['dataverse.clientSecret'] ?? '', /environment variable MY_SECRET \(via .*relay\.json\)/);
  });

  it('coerces numeric environment values by the schema', () => {
    const { config } = loadConfig({ env: { ...baseEnv(), HEALTH_PORT: '9090', SHUTDOWN_BUDGET_MS: '5000' }, cwd: dir });
    assert.equal(config.health.port, 9090);
    assert.equal(config.shutdown.budgetMs, 5000);
  });

  it('intake.maxBytesInFlight: 4 MiB unless a file or INTAKE_MAX_BYTES_IN_FLIGHT says otherwise; below 256 KiB refused, naming file and key', () => {
    assert.equal(loadConfig({ env: baseEnv(), cwd: dir }).config.intake.maxBytesInFlight, 4 * 2 ** 20);
    const fromEnv = loadConfig({ env: { ...baseEnv(), INTAKE_MAX_BYTES_IN_FLIGHT: '1048576' }, cwd: dir });
    assert.equal(fromEnv.config.intake.maxBytesInFlight, 2 ** 20);
    const file = writeJson('relay.json', { intake: { maxBytesInFlight: 1000 } });
    const problems = problemsOf(() => loadConfig({ file, env: baseEnv(), cwd: dir }));
    assert.deepEqual(
      problems.map((p) => [p.source, p.path]),
      [['relay.json', 'intake.maxBytesInFlight']],
    );
    assert.match(problems[0]!.expected, /262144/);
  });

  it("a process's share of an identity's Dataverse limits: budgets and concurrency from the environment, 52 at most", () => {
    const { config } = loadConfig({ env: baseEnv(), cwd: dir });
    assert.deepEqual(
      [config.dataverse.requestBudget, config.dataverse.executionBudgetMs, config.dataverse.maxConcurrency],
      [6000, 1_200_000, 16],
    );
    const env = {
      ...baseEnv(),
      DATAVERSE_REQUEST_BUDGET: '2000',
      DATAVERSE_EXECUTION_BUDGET_MS: '400000',
      DATAVERSE_MAX_CONCURRENCY: '17',
    };
    const shared = loadConfig({ env, cwd: dir }).config.dataverse;
    assert.deepEqual([shared.requestBudget, shared.executionBudgetMs, shared.maxConcurrency], [2000, 400_000, 17]);
    const problems = problemsOf(() => loadConfig({ env: { ...baseEnv(), DATAVERSE_MAX_CONCURRENCY: '53' }, cwd: dir }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]?.path, 'dataverse.maxConcurrency');
    assert.match(formatConfigProblem(problems[0]!), /DATAVERSE_MAX_CONCURRENCY/);
  });

  describe('a renamed key (dispatch.maxAttempts, now dispatch.retry.attempts)', () => {
    it('is read under its new name, with a warning naming the file and the key', () => {
      const file = writeJson('relay.json', { dispatch: { maxAttempts: 3, maxSessions: 4 } });
      const { config, origins, warnings } = loadConfig({ file, env: baseEnv(), cwd: dir });
      assert.equal(config.dispatch.retry.attempts, 3);
      assert.equal(config.dispatch.maxSessions, 4);
      assert.equal(origins['dispatch.retry.attempts'], 'relay.json');
      assert.equal('maxAttempts' in config.dispatch, false, 'not kept under the old name');
      assert.deepEqual(warnings, [
        'relay.json: dispatch.maxAttempts is deprecated: read as dispatch.retry.attempts; rename it',
      ]);
    });

    it('is ignored, with a warning, when the same file sets the new name too; a bad old value is reported under the new name', () => {
      const both = writeJson('both.json', { dispatch: { maxAttempts: 3, retry: { attempts: 7 } } });
      const loaded = loadConfig({ file: both, env: baseEnv(), cwd: dir });
      assert.equal(loaded.config.dispatch.retry.attempts, 7);
      assert.deepEqual(loaded.warnings, [
        'both.json: dispatch.maxAttempts is deprecated and ignored: the file also sets dispatch.retry.attempts; remove it',
      ]);

      const bad = writeJson('bad.json', { dispatch: { maxAttempts: 0 } });
      assert.deepEqual(
        problemsOf(() => loadConfig({ file: bad, env: baseEnv(), cwd: dir })),
        [{ source: 'bad.json', path: 'dispatch.retry.attempts', expected: 'a number >= 1', found: '0 (number)' }],
      );
    });

    it('leaves no warning for a configuration that uses the new names', () => {
      assert.deepEqual(loadConfig({ env: baseEnv(), cwd: dir }).warnings, []);
    });
  });

  const cases: Array<{
    name: string;
    file?: unknown;
    env?: NodeJS.ProcessEnv;
    want: Array<Partial<Record<keyof ConfigProblem, string | RegExp>>>;
  }> = [
    {
      name: 'a value of the wrong type',
      file: { dataverse: { timeoutMs: 'soon' } },
      want: [{ source: 'relay.json', path: 'dataverse.timeoutMs', expected: /type integer/, found: '"soon" (string)' }],
    },
    {
      name: 'a value outside its range',
      file: { health: { port: 70000 } },
      want: [{ source: 'relay.json', path: 'health.port', expected: 'a number <= 65535', found: '70000 (number)' }],
    },
    {
      name: 'a value not in the allowed set',
      file: { dataverse: { auth: 'basic' } },
      want: [
        {
          source: 'relay.json',
          path: 'dataverse.auth',
          expected: 'one of "default", "client-secret", "emulator"',
          found: '"basic" (string)',
        },
      ],
    },
    {
      name: 'an unknown key',
      file: { dataverse: { urll: 'https://x' } },
      want: [
        {
          source: 'relay.json',
          path: 'dataverse.urll',
          expected: /^only known keys \(url, auth, tenantId/,
          found: 'an unknown key',
        },
      ],
    },
    {
      name: 'a secret written into a file',
      file: { serviceBus: { connectionString: CS } },
      want: [
        {
          source: 'relay.json',
          path: 'serviceBus.connectionString',
          expected: /env:NAME reference/,
          found: /^a \d+-character value \(hidden\)$/,
        },
      ],
    },
    {
      name: 'an env: reference to an unset variable',
      file: {
        dataverse: { auth: 'client-secret', tenantId: 't', clientId: 'c', clientSecret: 'env:NOT_SET_ANYWHERE' },
      },
      want: [
        {
          source: 'relay.json',
          path: 'dataverse.clientSecret',
          expected: /NOT_SET_ANYWHERE to be set/,
          found: 'it unset',
        },
      ],
    },
    {
      name: 'a bad value from the environment',
      env: { LOG_LEVEL: 'verbose' },
      want: [{ source: 'environment variable LOG_LEVEL', path: 'log.level', found: '"verbose" (string)' }],
    },
    {
      name: 'a connection string without an endpoint, never shown',
      env: { SERVICEBUS_CONNECTION_STRING: 'SharedAccessKey=abc123' },
      want: [
        {
          source: 'environment variable SERVICEBUS_CONNECTION_STRING',
          path: 'serviceBus.connectionString',
          found: /hidden/,
        },
      ],
    },
    {
      name: 'a URL that is not one',
      env: { DATAVERSE_URL: 'contoso' },
      want: [
        {
          source: 'environment variable DATAVERSE_URL',
          path: 'dataverse.url',
          expected: /http\(s\) URL/,
          found: '"contoso" (string)',
        },
      ],
    },
    {
      name: 'client-secret auth without its parts',
      env: { DATAVERSE_AUTH: 'client-secret' },
      want: [
        { path: 'dataverse.tenantId', expected: /DATAVERSE_TENANT_ID/, found: 'nothing' },
        { path: 'dataverse.clientId', found: 'nothing' },
        { path: 'dataverse.clientSecret', found: 'nothing' },
      ],
    },
    {
      name: 'nothing to connect to',
      env: { SERVICEBUS_CONNECTION_STRING: '', DATAVERSE_URL: '' },
      want: [
        { path: 'serviceBus.connectionString', found: 'neither' },
        { path: 'dataverse.url', found: 'nothing' },
      ],
    },
    {
      name: 'a missing channels file',
      env: { CHANNELS_FILE: 'nope/channels.json' },
      want: [
        {
          source: 'environment variable CHANNELS_FILE',
          path: 'channelsFile',
          found: /no file at .*nope\/channels\.json/,
        },
      ],
    },
    {
      name: 'a file that is not JSON',
      file: '{ "log": { "level": "info", } }',
      want: [{ source: 'relay.json', path: '', expected: 'valid JSON', found: /syntax error/ }],
    },
  ];

  for (const c of cases) {
    it(`reports ${c.name} with its file, key, expectation and finding`, () => {
      const file = c.file === undefined ? undefined : writeJson('relay.json', c.file);
      const problems = problemsOf(() => loadConfig({ file, env: { ...baseEnv(), ...c.env }, cwd: dir }));
      assert.equal(problems.length, c.want.length, `problems: ${problems.map(formatConfigProblem).join(' | ')}`);
      c.want.forEach((want, i) => {
        const got = problems[i] as ConfigProblem;
        for (const key of ['source', 'path', 'expected', 'found'] as const) {
          const expectation = want[key];
          if (expectation === undefined) continue;
          if (expectation instanceof RegExp)
            assert.match(got[key], expectation, `${key} of ${formatConfigProblem(got)}`);
          else assert.equal(got[key], expectation, `${key} of ${formatConfigProblem(got)}`);
        }
      });
      for (const p of problems) assert.doesNotMatch(formatConfigProblem(p), /s3cr3tKeyValue|abc123/);
    });
  }

  it('reports every problem at once, not just the first', () => {
    const file = writeJson('relay.json', { dataverse: { auth: 'basic', timeoutMs: 1 }, log: { level: 'loud' } });
    const problems = problemsOf(() => loadConfig({ file, env: baseEnv(), cwd: dir }));
    assert.deepEqual(problems.map((p) => p.path).sort(), ['dataverse.auth', 'dataverse.timeoutMs', 'log.level']);
  });

  it('a missing file is named', () => {
    const problems = problemsOf(() => loadConfig({ file: path.join(dir, 'absent.json'), env: baseEnv(), cwd: dir }));
    assert.deepEqual(problems, [
      { source: 'absent.json', path: '', expected: 'a readable JSON file', found: 'no such file' },
    ]);
  });

  it('describes what it would run with, secrets masked', () => {
    const lines = describeConfig(loadConfig({ env: baseEnv(), cwd: dir })).join('\n');
    assert.match(
      lines,
      /Endpoint=sb:\/\/127\.0\.0\.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=\[hidden\]/,
    );
    assert.match(lines, /Dataverse: https:\/\/contoso\.crm\.dynamics\.com .*DefaultAzureCredential/);
    assert.doesNotMatch(lines, /s3cr3tKeyValue/);
    assert.equal(
      maskConnectionString('Endpoint=sb://x;SharedAccessSignature=SharedAccessSignature sr=a&sig=b'),
      'Endpoint=sb://x;SharedAccessSignature=[hidden]',
    );
  });

  it('callbacks.replyCacheMaxAgeMs: 24 h unless a file or CALLBACKS_REPLY_CACHE_MAX_AGE_MS says otherwise (0 turns the reply cache off); outside 0 to 7 days refused, naming it', () => {
    const off = writeJson('reply-cache-off.json', { callbacks: { replyCacheMaxAgeMs: 0 } });
    assert.equal(loadConfig({ file: off, env: baseEnv(), cwd: dir }).config.callbacks.replyCacheMaxAgeMs, 0);
    assert.equal(loadConfig({ env: baseEnv(), cwd: dir }).config.callbacks.replyCacheMaxAgeMs, 86_400_000, '24 h');
    const fromEnv = loadConfig({ env: { ...baseEnv(), CALLBACKS_REPLY_CACHE_MAX_AGE_MS: '3600000' }, cwd: dir });
    assert.equal(fromEnv.config.callbacks.replyCacheMaxAgeMs, 3_600_000);
    assert.match(describeConfig(fromEnv).join('\n'), /reply cache 1 h/);
    for (const bad of [-1, 604_800_001, 1.5]) {
      const file = writeJson('reply-cache-bad.json', { callbacks: { replyCacheMaxAgeMs: bad } });
      const problems = problemsOf(() => loadConfig({ file, env: baseEnv(), cwd: dir }));
      assert.equal(problems[0]?.path, 'callbacks.replyCacheMaxAgeMs', JSON.stringify(problems));
    }
  });

  describe('callbacks.signingKeys (CALLBACK_SIGNING_KEYS)', () => {
    const key = (fill: number): string => Buffer.alloc(32, fill).toString('base64');

    it('is read from the environment, validated and shown by key id only', () => {
      const env = { ...baseEnv(), CALLBACK_SIGNING_KEYS: `new:${key(1)},old:${key(2)}` };
      const loaded = loadConfig({ env, cwd: dir });
      assert.equal(loaded.config.callbacks.signingKeys, `new:${key(1)},old:${key(2)}`);
      assert.equal(loaded.origins['callbacks.signingKeys'], 'environment variable CALLBACK_SIGNING_KEYS');
      // Parsed here, once: the relay and the stages take these as given.
      assert.deepEqual(
        loaded.callbackKeys?.verify.map((k) => [k.id, k.secret.toString('base64')]),
        [
          ['new', key(1)],
          ['old', key(2)],
        ],
      );
      assert.equal(loaded.callbackKeys?.sign.id, 'new');
      const lines = describeConfig(loaded).join('\n');
      assert.match(
        lines,
        /signing keys new \(signs\), old \(from environment variable CALLBACK_SIGNING_KEYS\) \(secrets hidden\)/,
      );
      assert.ok(!lines.includes(key(1)) && !lines.includes(key(2)));
    });

    it('is optional (not configured)', () => {
      const loaded = loadConfig({ env: baseEnv(), cwd: dir });
      assert.equal(loaded.config.callbacks.signingKeys, undefined);
      assert.equal(loaded.callbackKeys, undefined);
      assert.match(describeConfig(loaded).join('\n'), /signing keys not configured/);
    });

    it('a bad value names the variable, the key and the expectation, never the secret', () => {
      const short = Buffer.alloc(8, 7).toString('base64');
      const problems = problemsOf(() =>
        loadConfig({ env: { ...baseEnv(), CALLBACK_SIGNING_KEYS: `k1:${short}` }, cwd: dir }),
      );
      assert.equal(problems.length, 1);
      assert.equal(problems[0]?.source, 'environment variable CALLBACK_SIGNING_KEYS');
      assert.equal(problems[0]?.path, 'callbacks.signingKeys');
      assert.match(problems[0]?.expected ?? '', /id:base64secret/);
      assert.match(problems[0]?.found ?? '', /key 'k1' with a 8-byte secret/);
      assert.ok(!formatConfigProblem(problems[0] as ConfigProblem).includes(short));
    });

    it('a literal secret in a file is refused (env:NAME only)', () => {
      const file = writeJson('relay.json', { callbacks: { signingKeys: `k1:${key(1)}` } });
      const problems = problemsOf(() => loadConfig({ file, env: baseEnv(), cwd: dir }));
      const p = problems.find((x) => x.path === 'callbacks.signingKeys');
      assert.match(p?.expected ?? '', /env:NAME reference/);
      assert.ok(!(p?.found ?? '').includes(key(1)));
    });
  });
});
