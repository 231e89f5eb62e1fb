import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createCallbacksServer } from '../../../../src/pipeline/callbacks/index.js';
import { twilioSignature, webhookHeaders } from '../../../../src/providers/index.js';
import {
  conversationMessageId,
  conversationSessionId,
  parseConversationMessage,
  type ConversationMessage,
} from '../../../../src/pipeline/index.js';
import type { MessagingChannel } from '../../../../src/channels/index.js';
import {
  AUTH_TOKEN,
  CHAT_ID,
  FakeSender,
  harness,
  NEVER_SHOWN,
  PHONE,
  PUBLIC_BASE,
  TG_SECRET,
  WHSEC_NEW,
  type Harness,
} from './fakes.js';

/** The relay channels bridged to Omnichannel in these tests: every one but `quiet`. */
const BRIDGED = new Set(['sms', 'tg', 'ct', 'rt']);
const messaging = {
  byRelayChannel: (relayChannel: string): MessagingChannel | undefined =>
    BRIDGED.has(relayChannel)
      ? {
          name: `support-${relayChannel}`,
          account: 'contoso',
          channelId: 'c0000000-0000-4000-8000-000000000001',
          relayChannel,
          workstream: 'Support',
          language: 'en-US',
          conversationContext: {},
          attachments: { customer: true, agent: true },
          attachmentRefusal: 'No files, sorry.',
        }
      : undefined,
};

describe('callbacks: customer messages of bridged channels go to conversations', () => {
  let h: Harness;
  let conversations: FakeSender<ConversationMessage>;
  let app: FastifyInstance;
  beforeEach(() => {
    conversations = new FakeSender<ConversationMessage>();
    h = harness({ messaging, conversations });
    app = createCallbacksServer(h.deps).app;
  });
  afterEach(async () => {
    await app.close();
    for (const secret of [...NEVER_SHOWN, CHAT_ID])
      assert.ok(!h.logs.text.includes(secret), `a log line shows ${secret.slice(0, 4)}…`);
  });

  const twilio = (params: Record<string, string>, channel = 'sms') => {
    const url = `/callbacks/${channel}/twilio/inbound`;
    const form = new URLSearchParams({ From: PHONE, To: '+15550000000', ...params });
    return app.inject({
      method: 'POST',
      url,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${url}`, form),
      },
      payload: form.toString(),
    });
  };
  const telegram = (message: Record<string, unknown>, updateId = 5001) =>
    app.inject({
      method: 'POST',
      url: '/callbacks/tg/telegram',
      headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
      payload: JSON.stringify({
        update_id: updateId,
        message: { message_id: 42, date: Math.floor(Date.now() / 1000), chat: { id: Number(CHAT_ID) }, ...message },
      }),
    });
  const contract = (channel: string, body: unknown, id: string) => {
    const payload = JSON.stringify(body);
    return app.inject({
      method: 'POST',
      url: `/callbacks/${channel}/contract/inbound`,
      headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, id, payload, Date.now()) },
      payload,
    });
  };
  /** The one message on `conversations`, checked as the conversations stage will read it. */
  const forwarded = (): { body: ConversationMessage; messageId: string; sessionId?: string } => {
    assert.equal(conversations.sent.length, 1, 'one message on conversations');
    const m = conversations.sent[0]!;
    assert.deepEqual(parseConversationMessage(JSON.parse(JSON.stringify(m.body))), m.body);
    return m;
  };
  const outcomes = async (): Promise<string> =>
    (await h.registry.getSingleMetricAsString('channel_relay_callbacks_received_total')) ?? '';

  describe('Twilio', () => {
    it('free text is forwarded: MessageId from the MessageSid, SessionId per customer, counted `conversation`', async () => {
      const res = await twilio({ MessageSid: 'SM100', Body: 'My order has not arrived' });
      assert.equal(res.statusCode, 200);
      const m = forwarded();
      assert.equal(m.messageId, conversationMessageId('sms', 'SM100'));
      assert.equal(m.sessionId, conversationSessionId('sms', PHONE));
      assert.equal(m.body.kind, 'customer');
      assert.ok(m.body.kind === 'customer');
      assert.equal(m.body.channel, 'sms');
      assert.equal(m.body.customer, PHONE);
      assert.equal(m.body.messageId, 'SM100');
      assert.equal(m.body.text, 'My order has not arrived');
      assert.equal(m.body.attachments, undefined);
      assert.equal(h.interactions.sent.length + h.outbound.sent.length, 0);
      assert.match(await outcomes(), /route="twilio-inbound",outcome="conversation"} 1/);
    });
    it('an MMS carries its media (MediaUrl{N}, MediaContentType{N} below NumMedia); media alone (empty Body) counts too', async () => {
      const media = (n: number) => `https://api.twilio.com/2010-04-01/Accounts/AC0001/Messages/MM200/Media/ME${n}`;
      const res = await twilio({
        MessageSid: 'MM200',
        Body: '',
        NumMedia: '2',
        MediaUrl0: media(0),
        MediaContentType0: 'image/jpeg',
        MediaUrl1: media(1),
        MediaContentType1: 'application/pdf',
        // Past NumMedia: not read.
        MediaUrl2: media(2),
      });
      assert.equal(res.statusCode, 200);
      const m = forwarded();
      assert.ok(m.body.kind === 'customer');
      assert.equal(m.body.text, '');
      assert.deepEqual(m.body.attachments, [
        { url: media(0), contentType: 'image/jpeg' },
        { url: media(1), contentType: 'application/pdf' },
      ]);
    });
    it('media that are not http(s) URLs, or past the tenth, are not forwarded', async () => {
      const params: Record<string, string> = { MessageSid: 'MM201', Body: 'look', NumMedia: '12' };
      for (let n = 0; n < 12; n++) params[`MediaUrl${n}`] = `https://api.twilio.com/m/${n}`;
      params['MediaUrl1'] = 'file:///etc/passwd';
      params['MediaUrl2'] = 'javascript:alert(1)';
      await twilio(params);
      const m = forwarded();
      assert.ok(m.body.kind === 'customer');
      assert.deepEqual(
        m.body.attachments?.map((a) => a.url),
        [0, 3, 4, 5, 6, 7, 8, 9].map((n) => `https://api.twilio.com/m/${n}`),
      );
    });
    it('an opt-in word with nothing to opt back in (no contact opted out, or no contact) is forwarded', async () => {
      await twilio({ MessageSid: 'SM310', Body: 'START please' });
      assert.equal(h.outbound.sent.length, 0, 'no confirmation');
      h.directory.contacts = [];
      await twilio({ MessageSid: 'SM311', Body: 'start' });
      assert.deepEqual(
        conversations.sent.map((m) => (m.body.kind === 'customer' ? m.body.text : '')),
        ['START please', 'start'],
      );
    });
    it('STOP and START are consumed (compliance, confirmation), never forwarded', async () => {
      await twilio({ MessageSid: 'SM300', Body: 'STOP' });
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      h.twilio.receive('SM301', PHONE, '+15550000000', 'START');
      await twilio({ MessageSid: 'SM301', Body: 'START' });
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
      assert.equal(h.outbound.sent.length, 2);
      assert.equal(conversations.sent.length, 0);
    });
    it('a keyword recorded for a journey is consumed; one that records nothing (unknown sender) is forwarded', async () => {
      await twilio({ MessageSid: 'SM400', Body: 'INFO' });
      assert.equal(h.interactions.sent[0]?.body.triggerKeyword, 'INFO');
      assert.equal(conversations.sent.length, 0);
      h.directory.contacts = [];
      await twilio({ MessageSid: 'SM401', Body: 'INFO please' });
      assert.equal(h.interactions.sent.length, 1);
      assert.ok(forwarded().body.kind === 'customer');
    });
    it('a keyword from a contact with no activity on the channel is forwarded', async () => {
      h.directory.activities = [];
      await twilio({ MessageSid: 'SM402', Body: 'YES' });
      assert.equal(h.interactions.sent.length, 0);
      const m = forwarded();
      assert.ok(m.body.kind === 'customer' && m.body.text === 'YES');
    });
    it('an empty message (no Body, no media) is not forwarded', async () => {
      await twilio({ MessageSid: 'SM500', Body: '  ' });
      assert.equal(conversations.sent.length, 0);
    });
    it('a channel that is not bridged keeps the old behaviour: free text is acknowledged and ignored', async () => {
      await app.close();
      h = harness({ messaging: { byRelayChannel: () => undefined }, conversations });
      app = createCallbacksServer(h.deps).app;
      const res = await twilio({ MessageSid: 'SM600', Body: 'hello' });
      assert.equal(res.statusCode, 200);
      assert.equal(conversations.sent.length, 0);
      assert.match(await outcomes(), /route="twilio-inbound",outcome="ignored"} 1/);
    });
    it('the queue failing answers 503 and is logged (Twilio only retries a failed connection)', async () => {
      conversations.failWith = new Error('bus down');
      const res = await twilio({ MessageSid: 'SM700', Body: 'hello?' });
      assert.equal(res.statusCode, 503);
      assert.equal(conversations.sent.length, 0);
      assert.match(h.logs.text, /bus down/);
    });
  });

  describe('Telegram', () => {
    it('free text is forwarded, MessageId chat_id:message_id', async () => {
      assert.equal((await telegram({ text: 'Hello, anyone there?' })).statusCode, 200);
      const m = forwarded();
      assert.equal(m.messageId, conversationMessageId('tg', `${CHAT_ID}:42`));
      assert.equal(m.sessionId, conversationSessionId('tg', CHAT_ID));
      assert.ok(m.body.kind === 'customer');
      assert.equal(m.body.customer, CHAT_ID);
      assert.equal(m.body.text, 'Hello, anyone there?');
    });
    it('a photo (largest size), a document, a voice note and a video become telegram-file: attachments; the caption is the text', async () => {
      await telegram({
        caption: 'the broken part',
        photo: [
          { file_id: 'small_1', width: 90, height: 90 },
          { file_id: 'large_1', width: 1280, height: 1280 },
        ],
      });
      await telegram(
        { message_id: 43, document: { file_id: 'doc_1', file_name: 'invoice.pdf', mime_type: 'application/pdf' } },
        5002,
      );
      await telegram({ message_id: 44, voice: { file_id: 'voice_1', duration: 3 } }, 5003);
      await telegram({ message_id: 45, video: { file_id: 'video_1', mime_type: 'video/quicktime' } }, 5004);
      const bodies = conversations.sent.map((m) => m.body);
      assert.equal(bodies.length, 4);
      assert.deepEqual(
        bodies.map((b) => (b.kind === 'customer' ? [b.text, b.attachments] : undefined)),
        [
          ['the broken part', [{ url: 'telegram-file:large_1', contentType: 'image/jpeg', name: 'photo.jpg' }]],
          ['', [{ url: 'telegram-file:doc_1', contentType: 'application/pdf', name: 'invoice.pdf' }]],
          ['', [{ url: 'telegram-file:voice_1', contentType: 'audio/ogg', name: 'voice.ogg' }]],
          ['', [{ url: 'telegram-file:video_1', contentType: 'video/quicktime', name: 'video.mp4' }]],
        ],
      );
    });
    it('STOP is consumed; /start (a bot command) is neither consumed nor forwarded', async () => {
      await telegram({ text: 'STOP' });
      await telegram({ message_id: 46, text: '/start' }, 5005);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(conversations.sent.length, 0);
    });
    it('a sticker (no text, no file read here), malformed files and a null message are ignored', async () => {
      await telegram({ sticker: { file_id: 'st_1' } });
      await telegram({ message_id: 47, photo: 'not-an-array', document: { file_id: 7 }, voice: null }, 5006);
      const res = await app.inject({
        method: 'POST',
        url: '/callbacks/tg/telegram',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
        payload: JSON.stringify({ update_id: 5007, message: null }),
      });
      assert.equal(res.statusCode, 200);
      assert.equal(conversations.sent.length, 0);
    });
  });

  describe('contract', () => {
    it('free text is forwarded keyed by MessageId; STOP is consumed', async () => {
      await contract('ct', { From: PHONE, Message: { text: 'Where is my parcel?' }, MessageId: 'in-1' }, 'wh_1');
      await contract('ct', { From: PHONE, Message: { text: 'STOP' }, MessageId: 'in-2' }, 'wh_2');
      const m = forwarded();
      assert.equal(m.messageId, conversationMessageId('ct', 'in-1'));
      assert.ok(m.body.kind === 'customer' && m.body.text === 'Where is my parcel?');
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
    });
    it('the media parts holding http(s) URLs become attachments, in mediaParts order; others are skipped with a log', async () => {
      const image = 'https://files.provider.example/in/photo.jpg';
      const document = 'https://files.provider.example/in/form.pdf';
      await contract(
        'ct',
        { From: PHONE, Message: { document, text: 'Here it is', image }, MessageId: 'in-3' },
        'wh_3',
      );
      const m = forwarded();
      assert.ok(m.body.kind === 'customer');
      assert.equal(m.body.text, 'Here it is');
      assert.deepEqual(m.body.attachments, [{ url: image }, { url: document }]);
      conversations.sent.length = 0;
      await contract('ct', { From: PHONE, Message: { image, document: 'file-id-42' }, MessageId: 'in-4' }, 'wh_4');
      const alone = forwarded();
      assert.ok(alone.body.kind === 'customer');
      assert.equal(alone.body.text, '');
      assert.deepEqual(alone.body.attachments, [{ url: image }]);
      assert.match(h.logs.text, /contract media part is not an http\(s\) URL: skipped/);
      assert.ok(!h.logs.text.includes('file-id-42'), 'the part value is not logged');
    });
    it('a channel without mediaParts forwards no attachments; a message without text nor media is refused', async () => {
      await contract('rt', { From: PHONE, To: 'rt-sender', Message: { image: 'https://f.example/a.png' } }, 'wh_5');
      assert.equal(conversations.sent.length, 0);
      const res = await contract('ct', { From: PHONE, Message: { image: 'not a url' }, MessageId: 'in-6' }, 'wh_6');
      assert.equal(res.statusCode, 400);
      assert.equal(conversations.sent.length, 0);
    });
    it('a real-time channel records the inbound message and, bridged, forwards it too', async () => {
      await contract('rt', { From: PHONE, To: 'rt-sender', Message: { text: 'Hi' }, MessageId: 'in-9' }, 'wh_9');
      assert.equal(h.interactions.sent[0]?.body.responseType, 'Inbound');
      assert.equal(forwarded().messageId, conversationMessageId('rt', 'in-9'));
    });
  });

  it('messaging without a conversations sender is refused at construction', () => {
    const bare = harness({ messaging });
    assert.throws(() => createCallbacksServer(bare.deps), /'conversations' is required with 'messaging'/);
  });
});
