import assert from 'node:assert/strict';
import { providerSettings, type Channel, type MessagingChannel } from '../../../../src/channels/index.js';
import { CallbacksStage } from '../../../../src/pipeline/callbacks/index.js';
import type { ConversationMessage } from '../../../../src/pipeline/index.js';
import { mediaFetcher } from '../../../../src/providers/index.js';
import { AUTH_TOKEN, FakeSender, harness, SMS, TG, TG_SECRET } from '../../../unit/pipeline/callbacks/fakes.js';
import { simulators } from '../../emulators/providers/helpers.js';
import { waitFor } from '../../../helpers/wait.js';

const ACCOUNT = 'AC0001';
const BOT_TOKEN = '123456:abc-simulated-bot-token';
const CUSTOMER = '+15557654321';
const PHOTO = Buffer.from('ffd8ffe000104a464946000101', 'hex');
const PDF = Buffer.from('%PDF-1.4 the customer invoice', 'utf8');

const bridged = (relayChannel: string): MessagingChannel => ({
  name: `support-${relayChannel}`,
  account: 'contoso',
  channelId: 'c0000000-0000-4000-8000-000000000001',
  relayChannel,
  workstream: 'Support',
  language: 'en-US',
  conversationContext: {},
  attachments: { customer: true, agent: true },
  attachmentRefusal: 'No files, sorry.',
});

/**
 * A customer writes first, with files, through the provider simulators; the callbacks service forwards the message
 * to `conversations` with its attachments, and the media fetchers get the files back from the simulators, byte for
 * byte: what the conversations stage then uploads to Direct Line.
 */
describe('customers’ files: simulator → callbacks → conversations → media fetcher', function () {
  this.timeout(30_000);
  const start = simulators();
  let stage: CallbacksStage | undefined;
  afterEach(async () => {
    await stage?.close();
    stage = undefined;
  });

  async function callbacks(
    channels: Channel[],
  ): Promise<{ url: string; conversations: FakeSender<ConversationMessage> }> {
    const conversations = new FakeSender<ConversationMessage>();
    const byName = new Map(channels.map((c) => [c.name, c]));
    const h = harness({
      channels: { byName: (n) => byName.get(n), all: () => channels },
      messaging: { byRelayChannel: (name) => (byName.has(name) ? bridged(name) : undefined) },
      conversations,
    });
    stage = new CallbacksStage({ ...h.deps, host: '127.0.0.1', port: 0 });
    const { url } = await stage.start();
    return { url, conversations };
  }

  it('Twilio: an MMS with a photo and a PDF and no text', async () => {
    const sms: Channel = {
      ...SMS,
      provider: { type: 'twilio', accountSid: ACCOUNT, authToken: AUTH_TOKEN },
      callbacks: { ...SMS.callbacks!, publicBaseUrl: 'http://placeholder' },
    };
    const { url, conversations } = await callbacks([sms]);
    sms.callbacks!.publicBaseUrl = url;
    const sim = await start({
      twilio: {
        authTokens: { [ACCOUNT]: AUTH_TOKEN },
        inboundUrls: { [sms.sender]: `${url}/callbacks/sms/twilio/inbound` },
      },
    });
    const sid = sim.customerMessage({
      provider: 'twilio',
      account: ACCOUNT,
      from: CUSTOMER,
      to: sms.sender,
      text: '',
      files: [
        { contentType: 'image/jpeg', data: PHOTO },
        { contentType: 'application/pdf', data: PDF },
      ],
    });
    assert.match(sid ?? '', /^MM/);
    await sim.callbacksIdle();
    await waitFor('the message on conversations', async () => (conversations.sent.length > 0 ? true : undefined), 5000);
    const [m] = conversations.sent;
    assert.ok(m?.body.kind === 'customer');
    assert.equal(m.body.messageId, sid);
    assert.equal(m.body.customer, CUSTOMER);
    assert.equal(m.body.attachments?.length, 2);
    const settings = providerSettings(sms);
    assert.ok(settings.type === 'twilio');
    const fetcher = mediaFetcher({ ...settings, baseUrl: sim.urls.twilio })!;
    const files = await Promise.all(m.body.attachments!.map((a) => fetcher.fetch(a)));
    assert.deepEqual(
      files.map((f) => [f.contentType, f.data]),
      [
        ['image/jpeg', PHOTO],
        ['application/pdf', PDF],
      ],
    );
  });

  it('Telegram: a document with a caption', async () => {
    const tg: Channel = { ...TG, provider: { type: 'telegram', botToken: BOT_TOKEN } };
    const { url, conversations } = await callbacks([tg]);
    const sim = await start();
    const hook = await fetch(`${sim.urls.telegram}/bot${BOT_TOKEN}/setWebhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${url}/callbacks/tg/telegram`, secret_token: TG_SECRET }),
    });
    assert.equal(hook.status, 200);
    const id = sim.customerMessage({
      provider: 'telegram',
      account: BOT_TOKEN,
      chatId: '987654321',
      text: 'my invoice',
      files: [{ kind: 'document', contentType: 'application/pdf', data: PDF, name: 'invoice.pdf' }],
    });
    await sim.callbacksIdle();
    await waitFor('the message on conversations', async () => (conversations.sent.length > 0 ? true : undefined), 5000);
    const [m] = conversations.sent;
    assert.ok(m?.body.kind === 'customer');
    assert.equal(m.body.messageId, id);
    assert.equal(m.body.text, 'my invoice');
    const fetcher = mediaFetcher({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: sim.urls.telegram })!;
    const file = await fetcher.fetch(m.body.attachments![0]!);
    assert.deepEqual([file.name, file.contentType, file.data], ['invoice.pdf', 'application/pdf', PDF]);
  });
});
