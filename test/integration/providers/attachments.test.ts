import assert from 'node:assert/strict';
import { createLogger } from '../../../src/log.js';
import { createProvider, mediaFetcher, type SendRequest } from '../../../src/providers/index.js';
import type { MediaFetcher } from '../../../src/pipeline/index.js';
import { CaptureStream } from '../../helpers/capture.js';
import { ACCOUNT_SID, AUTH_TOKEN, BOT_TOKEN, providerError, SIGNING_SECRET, simulators } from './helpers.js';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const PDF = Buffer.from('%PDF-1.4 simulated document body', 'utf8');

const files = [
  { url: 'https://blob.example/agent/map.png', contentType: 'image/png', name: 'map.png' },
  { url: 'https://blob.example/agent/form.pdf', contentType: 'application/pdf', name: 'form.pdf' },
];

const request = (to: string, extra: Partial<SendRequest> = {}): SendRequest => ({
  idempotencyKey: 'dl:conv-1:act-1',
  from: '+15550000000',
  to,
  text: 'Here you are',
  attachments: files,
  ...extra,
});

describe('attachments against the provider simulators', () => {
  const start = simulators();

  describe('sending (agents’ attachments)', () => {
    it('Twilio: one MediaUrl per attachment, logged by the simulator; more than 10 refused before any call', async () => {
      const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
      const twilio = createProvider({
        type: 'twilio',
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        baseUrl: sim.urls.twilio,
      });
      assert.equal(twilio.maxAttachments, 10);
      await twilio.send(request('+15551234567'));
      const [logged] = sim.messages({ provider: 'twilio' });
      assert.equal(logged?.text, 'Here you are');
      assert.deepEqual(logged?.attachments, [{ url: files[0]!.url }, { url: files[1]!.url }]);
      const eleven = Array.from({ length: 11 }, (_, i) => ({ url: `https://blob.example/${i}.png` }));
      await assert.rejects(twilio.send(request('+15551234567', { attachments: eleven })), /at most 10 media/);
      assert.equal(sim.messages({ provider: 'twilio' }).length, 1);
    });

    it('Telegram: the text, then a photo (PNG) and a document (PDF), one message each, within the per-chat limit', async () => {
      const sim = await start({ windowToleranceMs: 50 });
      const telegram = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram });
      const result = await telegram.send(request('987654321'));
      const logged = sim.messages({ provider: 'telegram', recipient: '987654321' });
      assert.deepEqual(
        logged.map((m) => [m.text, m.attachments, m.idempotencyKey]),
        [
          ['Here you are', undefined, 'dl:conv-1:act-1'],
          ['', [{ url: files[0]!.url, kind: 'photo' }], 'dl:conv-1:act-1#1'],
          ['', [{ url: files[1]!.url, kind: 'document' }], 'dl:conv-1:act-1#2'],
        ],
      );
      assert.equal(result.providerMessageId, logged[0]?.providerMessageId);
      assert.equal(sim.stats().telegram.rateLimited, 0, 'spaced as Telegram asks: no 429');
    });

    it('Telegram: a send that failed part-way goes on from the failed message when retried, repeating nothing', async () => {
      const sim = await start({ windowToleranceMs: 50 });
      let calls = 0;
      const flaky = async (input: string, init: RequestInit): Promise<Response> => {
        calls++;
        if (calls === 2) throw new TypeError('fetch failed', { cause: new Error('socket hang up') });
        return fetch(input, init);
      };
      const telegram = createProvider(
        { type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram },
        { fetch: flaky },
      );
      const failed = await providerError(telegram.send(request('555')));
      assert.equal(failed.code, 'ProviderUnavailable');
      assert.equal(sim.messages({ provider: 'telegram' }).length, 1);
      await new Promise((r) => setTimeout(r, 1000));
      await telegram.send(request('555'));
      const logged = sim.messages({ provider: 'telegram', recipient: '555' });
      assert.deepEqual(
        logged.map((m) => m.idempotencyKey),
        ['dl:conv-1:act-1', 'dl:conv-1:act-1#1', 'dl:conv-1:act-1#2'],
      );
      assert.equal(sim.stats().telegram.repeatedKeys, 0);
    });

    it('the contract: one file by URL per media part, recorded by the simulator; none without mediaParts', async () => {
      const sim = await start({ contract: { mediaParts: ['image', 'document'] } });
      const contract = createProvider({
        type: 'contract',
        url: `${sim.urls.contract}/ct/messages`,
        signingSecret: SIGNING_SECRET,
        mediaParts: ['image', 'document'],
      });
      assert.equal(contract.maxAttachments, 2);
      await contract.send(request('+15551234567'));
      const [logged] = sim.messages({ provider: 'contract' });
      assert.equal(logged?.text, 'Here you are');
      assert.deepEqual(logged?.parts, { text: 'Here you are', image: files[0]!.url, document: files[1]!.url });
      assert.deepEqual(
        logged?.attachments?.map((a) => a.url),
        files.map((f) => f.url),
      );
      const plain = createProvider({
        type: 'contract',
        url: `${sim.urls.contract}/ct/messages`,
        signingSecret: SIGNING_SECRET,
      });
      assert.equal(plain.maxAttachments, 0);
      await assert.rejects(plain.send(request('+15551234567')), /0 media parts/);
      assert.equal(sim.stats().contract.requests, 1);
    });

    it('the contract simulator refuses a media part that is not an http(s) URL', async () => {
      const sim = await start({ contract: { mediaParts: ['image'] } });
      const contract = createProvider({
        type: 'contract',
        url: `${sim.urls.contract}/ct/messages`,
        signingSecret: SIGNING_SECRET,
      });
      const refused = await providerError(
        contract.send(request('+15551234567', { attachments: [], parts: { text: 'hi', image: 'file:///etc/x' } })),
      );
      assert.equal(refused.upstream?.status, 400);
    });
  });

  describe('fetching (customers’ attachments)', () => {
    it('Twilio: the media URL with basic auth, its redirect followed without the credentials', async () => {
      const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
      const media = sim.addMedia('twilio', ACCOUNT_SID, { contentType: 'image/png', data: PNG });
      assert.ok(media.provider === 'twilio');
      // The conversations stage's port, as the relay wires it.
      const fetcher: MediaFetcher = mediaFetcher({
        type: 'twilio',
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        baseUrl: sim.urls.twilio,
      })!;
      const file = await fetcher.fetch({ url: media.url, contentType: 'image/png' });
      assert.deepEqual(file.data, PNG);
      assert.equal(file.contentType, 'image/png');
      assert.equal(file.name, `${media.mediaSid}.png`);
      assert.equal(sim.mediaDownloads(), 1);
    });

    it('Twilio: wrong credentials are ProviderUnauthorized; a URL of another account or origin gets no request', async () => {
      const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
      const media = sim.addMedia('twilio', ACCOUNT_SID, { contentType: 'image/png', data: PNG });
      assert.ok(media.provider === 'twilio');
      const settings = { type: 'twilio', accountSid: ACCOUNT_SID, baseUrl: sim.urls.twilio } as const;
      const wrong = await providerError(mediaFetcher({ ...settings, authToken: 'not-the-token' })!.fetch(media));
      assert.deepEqual([wrong.code, wrong.upstream?.status], ['ProviderUnauthorized', 401]);
      const fetcher = mediaFetcher({ ...settings, authToken: AUTH_TOKEN })!;
      const other = media.url.replace(ACCOUNT_SID, 'AC00000000000000000000000000000000');
      assert.equal((await providerError(fetcher.fetch({ url: other }))).code, 'ProviderRejected');
      const elsewhere = await providerError(fetcher.fetch({ url: 'https://evil.example/2010-04-01/Accounts/x' }));
      assert.match(elsewhere.message, /not a media URL of this account/);
      assert.equal(sim.mediaDownloads(), 0);
    });

    it('Twilio: media over the size limit is ProviderRejected, naming the limit', async () => {
      const sim = await start();
      const media = sim.addMedia('twilio', ACCOUNT_SID, { contentType: 'application/pdf', data: PDF });
      assert.ok(media.provider === 'twilio');
      const fetcher = mediaFetcher(
        { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: sim.urls.twilio },
        { maxBytes: 10 },
      )!;
      const err = await providerError(fetcher.fetch({ url: media.url }));
      assert.equal(err.code, 'ProviderRejected');
      assert.match(err.message, /larger than the limit of 10 bytes/);
    });

    it('Telegram: getFile then the file download; the type and name of the update win; the token never logged', async () => {
      const sim = await start({ telegram: { tokens: [BOT_TOKEN] } });
      const media = sim.addMedia('telegram', BOT_TOKEN, {
        contentType: 'application/pdf',
        data: PDF,
        name: 'invoice.pdf',
      });
      assert.ok(media.provider === 'telegram');
      const logs = new CaptureStream();
      const fetcher = mediaFetcher(
        { type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram },
        { log: createLogger({ level: 'debug', stream: logs, pretty: false }) },
      )!;
      const file = await fetcher.fetch({
        url: `telegram-file:${media.fileId}`,
        contentType: 'application/pdf',
        name: 'invoice.pdf',
      });
      assert.deepEqual([file.name, file.contentType, file.data], ['invoice.pdf', 'application/pdf', PDF]);
      assert.match(logs.text, /getFile/);
      assert.ok(!logs.text.includes(BOT_TOKEN.split(':')[1]!), 'the bot token is never logged');
    });

    it('Telegram: a file over the limit is refused from getFile’s size, before the download; an unknown file id is ProviderRejected', async () => {
      const sim = await start({ telegram: { tokens: [BOT_TOKEN] } });
      const media = sim.addMedia('telegram', BOT_TOKEN, { contentType: 'application/pdf', data: PDF });
      assert.ok(media.provider === 'telegram');
      const settings = { type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram } as const;
      const big = await providerError(
        mediaFetcher(settings, { maxBytes: 10 })!.fetch({ url: `telegram-file:${media.fileId}` }),
      );
      assert.match(big.message, /larger than the limit of 10 bytes/);
      assert.equal(sim.mediaDownloads(), 0);
      const unknown = await providerError(mediaFetcher(settings)!.fetch({ url: 'telegram-file:nope' }));
      assert.deepEqual([unknown.code, unknown.upstream?.status], ['ProviderRejected', 400]);
      assert.ok(!unknown.message.includes(BOT_TOKEN), 'no token in the error');
    });
  });
});
