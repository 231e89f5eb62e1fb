import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { runCli } from '../../../src/cli/program.js';
import type { DataverseEmulator } from '../../../src/emulators/dataverse/index.js';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import { configPath, packageRoot } from '../../../src/paths.js';
import { recordingIo } from '../../helpers/cli.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { emulatorConfig } from '../emulators/servicebus/helpers.js';
import { SEED_FILE, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';

/** A channels file with one outbound-marketing channel only (removed when the process exits). */
function marketingOnlyChannels(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'register-channels-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'channels.json');
  const doc = JSON.parse(readFileSync(configPath('channels.json'), 'utf8')) as {
    channels: Array<Record<string, unknown>>;
  };
  const sms = doc.channels
    .filter((c) => c['name'] === 'sms')
    .map((c) => ({ ...c, tile: configPath(String(c['tile'])) }));
  writeFileSync(file, JSON.stringify({ channels: sms }));
  return file;
}

interface Run {
  code: number;
  out: string;
  err: string;
}

/** `channel-relay register …` in process, through a program holding only this command (program.ts adds it for real). */
async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const io = recordingIo(env, packageRoot());
  const code = await runCli(['register', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

/** A stand-in org that answers every Web API call with `answer(path)`: status and Dataverse's error body. */
async function fakeOrg(
  answer: (path: string) => { status: number; body?: unknown; headers?: Record<string, string> },
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const a = answer(decodeURIComponent(req.url ?? ''));
    res.writeHead(a.status, {
      'Content-Type': 'application/json; odata.metadata=minimal',
      'OData-Version': '4.0',
      ...a.headers,
    });
    res.end(a.body === undefined ? '' : JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('channel-relay register', function () {
  this.timeout(20_000);
  const track = closedAfterEach();
  let sb: ServiceBusEmulator;
  let env: NodeJS.ProcessEnv;

  beforeEach(async () => {
    sb = track(await startServiceBusEmulator({ port: 0, config: emulatorConfig({ queues: { activities: {} } }) }));
    env = { SERVICEBUS_CONNECTION_STRING: sb.connectionString, DATAVERSE_AUTH: 'emulator' };
  });

  describe('against the Dataverse emulator', () => {
    let dv: DataverseEmulator;
    beforeEach(async () => {
      dv = track(await startEmulator({ seed: SEED_FILE }));
    });
    const rowCount = async (set: string): Promise<number> =>
      ((await (await fetch(`${dv.url}/_emulator/stats`)).json()) as { rows: Record<string, number> }).rows[set] ?? -1;

    it('creates, then says nothing changed (exit 0 both times); never prints the key', async () => {
      const first = await cli(['--dataverse-url', dv.url], env);
      assert.equal(first.code, 0, first.err);
      assert.match(
        first.out,
        /serviceendpoint 'channel-relay activities' \(queue activities at sb:\/\/127\.0\.0\.1:\d+\/\) \[[0-9a-f-]{36}\]: created: name, contract, .*saskeyname, saskey/,
      );
      assert.match(
        first.out,
        /step 'channel-relay: Create of msdyncrm_customerjourneycustomchannelactivity' \[[0-9a-f-]{36}\]: created/,
      );
      assert.match(first.out, /created 2, updated 0, unchanged 0 \(\d+ reads, 2 writes\)/);
      assert.doesNotMatch(first.out + first.err, /SAS_KEY_VALUE/);

      const second = await cli(['--dataverse-url', dv.url], env);
      assert.equal(second.code, 0, second.err);
      assert.match(
        second.out,
        /: unchanged\n.*: unchanged\nnothing to change: the org already has this registration \(\d+ reads, 0 writes\)/,
      );
      assert.equal(await rowCount('serviceendpoints'), 1);
      assert.equal(await rowCount('sdkmessageprocessingsteps'), 1);
    });

    it('--dry-run prints what it would do and writes nothing; --endpoint-name and --queue name the endpoint', async () => {
      const run = await cli(
        ['--dataverse-url', dv.url, '--dry-run', '--endpoint-name', 'relay prod', '--queue', 'relay-activities'],
        env,
      );
      assert.equal(run.code, 0, run.err);
      assert.match(
        run.out,
        /^dry run: reading only, nothing is written\nserviceendpoint 'relay prod' \(queue relay-activities at sb:\/\/127\.0\.0\.1:\d+\/\): would create/,
      );
      assert.match(run.out, /would create 2, update 0, leave 0 unchanged; nothing was changed \(\d+ reads, 0 writes\)/);
      assert.equal(await rowCount('serviceendpoints'), 0);
    });

    it("--realtime registers on the outbound Custom API of config/channels.json's real-time channel (provider secrets not needed)", async () => {
      const run = await cli(['--dataverse-url', dv.url, '--realtime'], env);
      assert.equal(run.code, 0, run.err);
      assert.match(
        run.out,
        /step 'channel-relay: sample_RealtimeSmsOutboundApi' \(the outbound Custom API of channel realtime-sms\) \[[0-9a-f-]{36}\]: created/,
      );
      assert.equal(await rowCount('sdkmessageprocessingsteps'), 2);
    });

    it('--realtime on a Custom API that takes no steps (allowedcustomprocessingsteptype 0): exit 1, says why and what to do, writes nothing', async () => {
      // The sample API re-created with 0 (the column cannot be changed in place).
      const headers = { Authorization: 'Bearer registration-test', 'Content-Type': 'application/json' };
      const api = `${dv.url}/api/data/v9.2/customapis`;
      const sample = (
        (await (
          await fetch(`${api}?$select=customapiid&$filter=uniquename eq 'sample_RealtimeSmsOutboundApi'`, { headers })
        ).json()) as { value: Array<{ customapiid: string }> }
      ).value[0]!;
      assert.equal((await fetch(`${api}(${sample.customapiid})`, { method: 'DELETE', headers })).status, 204);
      const created = await fetch(api, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          uniquename: 'sample_RealtimeSmsOutboundApi',
          name: 'Outbound SMS',
          allowedcustomprocessingsteptype: 0,
        }),
      });
      assert.equal(created.status, 204);

      const run = await cli(['--dataverse-url', dv.url, '--realtime'], env);
      assert.equal(run.code, 1, run.out);
      assert.match(
        run.err,
        /the Custom API 'sample_RealtimeSmsOutboundApi' has allowedcustomprocessingsteptype 0 \(None\).*must allow asynchronous steps.*cannot be changed after the API is created/,
      );
      assert.match(
        run.err,
        /create a new Custom API with allowedcustomprocessingsteptype 1 \(Async Only\) or 2 \(Sync and Async\)/,
      );
      assert.equal(await rowCount('serviceendpoints'), 0);
      assert.equal(await rowCount('sdkmessageprocessingsteps'), 0);
    });

    it('SERVICEBUS_NAMESPACE with SERVICEBUS_SAS_KEY_NAME and SERVICEBUS_SAS_KEY work like the connection string', async () => {
      const run = await cli(['--dataverse-url', dv.url, '--dry-run'], {
        DATAVERSE_AUTH: 'emulator',
        SERVICEBUS_NAMESPACE: 'contoso',
        SERVICEBUS_SAS_KEY_NAME: 'send',
        SERVICEBUS_SAS_KEY: 'k',
      });
      assert.equal(run.code, 0, run.err);
      assert.match(run.out, /queue activities at sb:\/\/contoso\.servicebus\.windows\.net\//);
    });
  });

  describe('bad usage: exit 2', () => {
    const cases: Array<{ title: string; args: string[]; env?: NodeJS.ProcessEnv; expected: RegExp }> = [
      { title: 'no org URL', args: [], expected: /--dataverse-url: expected the org URL/ },
      {
        title: 'no Service Bus connection',
        args: ['--dataverse-url', 'https://contoso.crm.dynamics.com'],
        env: { SERVICEBUS_CONNECTION_STRING: '' },
        expected: /environment variable SERVICEBUS_CONNECTION_STRING: .*neither set/,
      },
      {
        title: 'a namespace without its key',
        args: ['--dataverse-url', 'https://contoso.crm.dynamics.com'],
        env: { SERVICEBUS_CONNECTION_STRING: '', SERVICEBUS_NAMESPACE: 'contoso' },
        expected: /SERVICEBUS_SAS_KEY_NAME[\s\S]*SERVICEBUS_SAS_KEY:/,
      },
      {
        title: 'not a URL (the flag is named, not DATAVERSE_URL)',
        args: ['--dataverse-url', 'ftp://contoso.crm.dynamics.com'],
        expected:
          /- --dataverse-url: expected an http\(s\) URL such as https:\/\/<org>\.crm\.dynamics\.com, found 'ftp:\/\/contoso\.crm\.dynamics\.com'/,
      },
      {
        title: 'DATAVERSE_URL not a URL',
        args: [],
        env: { DATAVERSE_URL: 'contoso.crm.dynamics.com' },
        expected: /environment variable DATAVERSE_URL: dataverse\.url: expected an http\(s\) URL/,
      },
      {
        title: 'an unknown option',
        args: ['--dataverse-url', 'https://x', '--frobnicate'],
        expected: /unknown option '--frobnicate'/,
      },
      {
        title:
          'an endpoint name of spaces and a queue name too long for serviceendpoint.path (every problem named, nothing called)',
        args: ['--dataverse-url', 'http://127.0.0.1:1', '--endpoint-name', ' ', '--queue', 'q'.repeat(161)],
        expected:
          /register: 2 problems:\n {2}- registerRelay: endpointName: expected a non-empty string, found " "\n {2}- registerRelay: queue: expected at most 160 characters \(serviceendpoint\.path\), found 161 characters/,
      },
      {
        title: '--realtime with a channels file that is not there',
        args: ['--dataverse-url', 'https://contoso.crm.dynamics.com', '--realtime'],
        env: { CHANNELS_FILE: 'no-such-channels.json' },
        expected: /no-such-channels\.json: \(root\): expected a readable JSON file of channels, found no such file/,
      },
      {
        title: '--realtime with a channels file without real-time channels',
        args: ['--dataverse-url', 'https://contoso.crm.dynamics.com', '--realtime'],
        env: { CHANNELS_FILE: marketingOnlyChannels() },
        expected:
          /--realtime: the channels file .* has no real-time journeys channel \(one with a channelDefinitionId\)/,
      },
    ];
    for (const c of cases) {
      it(c.title, async () => {
        const run = await cli(c.args, { ...env, ...c.env });
        assert.equal(run.code, 2, `${run.out}\n${run.err}`);
        assert.match(run.err, c.expected);
      });
    }
  });

  describe('Dataverse errors: exit 1, with the code, the message and what to check', () => {
    const cases: Array<{
      title: string;
      answer: (path: string) => { status: number; body?: unknown; headers?: Record<string, string> };
      expected: RegExp[];
    }> = [
      {
        title: '401: the credential and the application user',
        answer: () => ({
          status: 401,
          headers: {
            'WWW-Authenticate': 'Bearer authorization_uri=https://login.microsoftonline.com/x/oauth2/authorize',
          },
        }),
        expected: [
          /DataverseUnauthorized \(HTTP 401\)/,
          /check: check the credential: .*DefaultAzureCredential.*application user/,
        ],
      },
      {
        title: '403: the security role',
        answer: () => ({
          status: 403,
          body: {
            error: { code: '0x80040220', message: 'Principal user (Id=…) is missing prvReadServiceEndpoint privilege' },
          },
        }),
        expected: [
          /DataverseUnauthorized \(HTTP 403 0x80040220\): .*missing prvReadServiceEndpoint privilege/,
          /check: .*security role with Create, Read and Write on Service Endpoint/,
        ],
      },
      {
        title: '404 on the filter: is Customer Insights - Journeys installed',
        answer: (path) =>
          path.includes('sdkmessagefilters')
            ? {
                status: 404,
                body: {
                  error: { code: '0x80060888', message: "Could not find a property named 'primaryobjecttypecode'" },
                },
              }
            : path.includes('sdkmessages')
              ? {
                  status: 200,
                  body: { value: [{ sdkmessageid: '29cba0be-d3f2-59df-afc0-48f8293ebd20', name: 'Create' }] },
                }
              : { status: 200, body: { value: [] } },
        expected: [
          /DataverseNotFound \(HTTP 404 0x80060888\)/,
          /looking up the sdkmessagefilter for Create of msdyncrm_customerjourneycustomchannelactivity/,
          /check: is Customer Insights - Journeys \(outbound marketing\) installed/,
        ],
      },
      {
        title: '429: when to run again',
        answer: () => ({
          status: 429,
          headers: { 'Retry-After': '7' },
          body: {
            error: {
              code: '0x80072322',
              message: 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.',
            },
          },
        }),
        expected: [/DataverseThrottled \(HTTP 429 0x80072322\)/, /run again after 7 s/],
      },
    ];
    for (const c of cases) {
      it(c.title, async () => {
        const org = track(await fakeOrg(c.answer));
        const run = await cli(['--dataverse-url', org.url], env);
        assert.equal(run.code, 1, `${run.out}\n${run.err}`);
        for (const e of c.expected) assert.match(run.err, e);
        assert.equal(run.out, '');
      });
    }

    it('an org without the custom channel activity table (no filter row): the same hint, nothing written', async () => {
      const seed = smallSeed(1);
      (seed.rows as Record<string, unknown[]>)['sdkmessagefilters'] = [];
      const dv = track(await startEmulator({ seed }));
      const run = await cli(['--dataverse-url', dv.url], env);
      assert.equal(run.code, 1);
      assert.match(
        run.err,
        /DataverseNotFound: .*no sdkmessagefilter for Create of msdyncrm_customerjourneycustomchannelactivity/,
      );
      assert.match(run.err, /check: is Customer Insights - Journeys \(outbound marketing\) installed/);
      const stats = (await (await fetch(`${dv.url}/_emulator/stats`)).json()) as { rows: Record<string, number> };
      assert.equal(stats.rows['serviceendpoints'], 0);
    });

    it('an unreachable org', async () => {
      const org = await fakeOrg(() => ({ status: 200 }));
      await org.close();
      const run = await cli(['--dataverse-url', org.url], env);
      assert.equal(run.code, 1);
      assert.match(run.err, /DataverseUnavailable.*cannot reach Dataverse/);
      assert.match(run.err, /check: Dataverse was not reached/);
    });
  });
});
