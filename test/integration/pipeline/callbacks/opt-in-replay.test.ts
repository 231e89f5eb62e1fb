import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { DEFAULT_OPT_IN_MAX_AGE_MS, loadChannels, providerSettings } from '../../../../src/channels/index.js';
import { startProviderSimulators } from '../../../../src/emulators/providers/index.js';
import { createLogger } from '../../../../src/log.js';
import { createCallbackDirectory } from '../../../../src/dataverse/index.js';
import { CallbacksStage, parseCallbackKeys } from '../../../../src/pipeline/callbacks/index.js';
import type { InteractionMessage, OutboundMessage } from '../../../../src/pipeline/index.js';
import { createProvider } from '../../../../src/providers/index.js';
import { twilioMessageFetchers } from '../../../../src/relay/callbacks.js';
import { CaptureStream } from '../../../helpers/capture.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import { client, contactId, smallSeed, startEmulator, TILE_XML } from '../../emulators/dataverse/helpers.js';
import { ManualClock } from '../../emulators/providers/helpers.js';

const ACCOUNT = 'AC00000000000000000000000000000007';
const TOKEN = 'twilio-auth-token-for-the-replay-test';
const SENDER = '+4915100000001';

interface Captured {
  url: string;
  headers: Record<string, string>;
  body: string;
  status: number;
}

/**
 * The TLS-terminating proxy in front of the callbacks service (publicBaseUrl is its URL), keeping a log of what it
 * forwards: the place a signed request can be captured from.
 */
async function startProxy(): Promise<{
  url: string;
  log: Captured[];
  target: { url: string };
  close(): Promise<void>;
}> {
  const log: Captured[] = [];
  const target = { url: '' };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'x-twilio-signature'])
        if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
      fetch(`${target.url}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers, body })
        .then(async (answer) => {
          const text = await answer.text();
          log.push({ url: req.url ?? '/', headers, body, status: answer.status });
          res
            .writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' })
            .end(text);
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, log, target, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/**
 * A real simulated reply is accepted; the same signed request replayed after `optInMaxAgeMs` is refused: the provider
 * simulators (Twilio send, recipient's START, inbound webhook, Message fetch) and the Dataverse emulator, the callbacks
 * stage with the relay's Twilio message fetch, and one clock for the simulators and the service.
 */
describe('callbacks: a replayed START after optInMaxAgeMs (simulators + Dataverse emulator)', function () {
  this.timeout(30_000);
  const track = closedAfterEach();
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('accepts the real START and refuses its replay once it is older than the limit', async () => {
    const clock = new ManualClock();
    const dv = track(await startEmulator({ seed: smallSeed(1) }));
    const api = client(dv.url);
    const contact = contactId(0);
    const phone = (
      (await api.retrieve({ collection: 'contacts', key: contact, select: ['mobilephone'] })) as { mobilephone: string }
    ).mobilephone;
    await api.update({ collection: 'contacts', key: contact, data: { donotphone: true } });
    const optedOut = async (): Promise<boolean> =>
      (
        (await api.retrieve({ collection: 'contacts', key: contact, select: ['donotphone'] })) as {
          donotphone: boolean;
        }
      ).donotphone;

    const proxy = await startProxy();
    track({ close: () => proxy.close() });
    const sim = track(
      await startProviderSimulators({
        port: 0,
        clock: clock.read,
        callbacks: { delayMs: 0, retryDelayMs: 1 },
        twilio: {
          authTokens: { [ACCOUNT]: TOKEN },
          inboundUrls: { [SENDER]: `${proxy.url}/callbacks/sms/twilio/inbound` },
        },
        recipients: { replyRate: 1, keywords: ['START'] },
      }),
    );

    dir = mkdtempSync(path.join(os.tmpdir(), 'opt-in-replay-'));
    writeFileSync(
      path.join(dir, 'tile.xml'),
      TILE_XML.replace(
        '</ResponseTypes>',
        '<ResponseType id="opened"><Labels><Label locId="1033">Opened</Label></Labels></ResponseType></ResponseTypes>',
      ),
    );
    writeFileSync(
      path.join(dir, 'channels.json'),
      JSON.stringify({
        channels: [
          {
            name: 'sms',
            tile: 'tile.xml',
            provider: { type: 'twilio', accountSid: ACCOUNT, authToken: 'env:TWILIO_AUTH_TOKEN', baseUrl: sim.url },
            sender: SENDER,
            addressField: 'mobilephone',
            textField: 'sample_text',
            rateLimit: { messages: 10 },
            callbacks: { publicBaseUrl: '${PUBLIC_URL}', optInConfirmation: 'Welcome back.' },
          },
        ],
      }),
    );
    const channels = loadChannels(path.join(dir, 'channels.json'), {
      env: { TWILIO_AUTH_TOKEN: TOKEN, PUBLIC_URL: proxy.url },
    });
    assert.equal(channels.byName('sms')?.callbacks?.optInMaxAgeMs, DEFAULT_OPT_IN_MAX_AGE_MS);

    const interactions: InteractionMessage[] = [];
    const outbound: OutboundMessage[] = [];
    const logs = new CaptureStream();
    const log = createLogger({ level: 'debug', stream: logs, pretty: false });
    const registry = new Registry();
    const stage = new CallbacksStage({
      channels,
      keys: parseCallbackKeys(`k1:${Buffer.alloc(32, 1).toString('base64')}`, 'test'),
      interactions: { send: async (ms) => void interactions.push(...ms.map((m) => m.body)) },
      outbound: { send: async (ms) => void outbound.push(...ms.map((m) => m.body)) },
      directory: createCallbackDirectory({ client: api, messageRecord: async () => undefined }),
      twilioMessages: twilioMessageFetchers((channel) =>
        createProvider(providerSettings(channel), { timeoutMs: channel.timeoutMs, log }),
      ),
      now: clock.read,
      log,
      registry,
      host: '127.0.0.1',
      port: 0,
    });
    track({ close: () => stage.close() });
    proxy.target.url = (await stage.start()).url;
    const outcome = async (o: string): Promise<number | undefined> =>
      (await registry.getSingleMetric('channel_relay_callbacks_received_total')!.get()).values.find(
        (v) => v.labels['route'] === 'twilio-inbound' && v.labels['outcome'] === o,
      )?.value;

    // A journey message; the simulated recipient answers START, which Twilio posts (signed) through the proxy.
    const twilio = createProvider(providerSettings(channels.byName('sms')!), { timeoutMs: 5000 });
    await twilio.send({ to: phone, from: SENDER, text: 'Reply START to subscribe again', idempotencyKey: 'k-1' });
    await sim.callbacksIdle();
    const [reply] = sim.inboundReplies();
    assert.equal(reply?.body, 'START');
    assert.equal(proxy.log.length, 1);
    const captured = proxy.log[0]!;
    assert.equal(captured.status, 200);
    assert.equal(await optedOut(), false, 'the real, fresh START opted the contact in');
    assert.deepEqual(
      outbound.map((m) => [m.to, m.text, m.purpose]),
      [[phone, 'Welcome back.', 'confirmation']],
    );
    assert.equal(await outcome('opted-in'), 1);

    // The contact opts out again; later, the captured START is replayed, byte for byte, after the limit.
    await api.update({ collection: 'contacts', key: contact, data: { donotphone: true } });
    clock.advance(DEFAULT_OPT_IN_MAX_AGE_MS + 1_000);
    const replay = await fetch(`${proxy.url}${captured.url}`, {
      method: 'POST',
      headers: captured.headers,
      body: captured.body,
    });
    assert.equal(replay.status, 200, 'acknowledged (no retry asked for)');
    assert.equal(await optedOut(), true, 'the replayed START changed nothing');
    assert.equal(outbound.length, 1, 'no second confirmation');
    assert.equal(interactions.length, 0);
    assert.equal(await outcome('stale'), 1);
    const refused = logs.lines().find((l) => String(l['message']).startsWith('opt-in refused'));
    assert.equal(refused?.['ageMs'], DEFAULT_OPT_IN_MAX_AGE_MS + 1_000);
    for (const secret of [TOKEN, phone, phone.slice(1)])
      assert.ok(!logs.text.includes(secret), 'no token or phone number in the logs');
  });
});
