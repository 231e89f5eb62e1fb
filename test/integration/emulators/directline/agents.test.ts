import assert from 'node:assert/strict';
import type { ConversationRecord } from '../../../../src/emulators/directline/index.js';
import { waitFor } from '../../../helpers/wait.js';
import { customerMessage, emulators, post, readAll, startConversation, type Started } from './helpers.js';

const CHANNELS = [
  {
    channelType: 'sms',
    workstream: 'SMS FR',
    language: 'fr-FR',
    customerAttachments: false,
    agentAttachments: false,
    surveyUrl: 'https://survey.example.com/fr',
  },
  {
    channelType: 'contoso',
    workstream: 'Contoso app',
    language: 'de-DE',
    greeting: 'Hallo von Contoso!',
    customerAttachments: true,
    agentAttachments: true,
  },
];

async function record(url: string, c: Started): Promise<ConversationRecord> {
  return (await (await fetch(`${url}/_simulator/conversations/${c.conversationId}`)).json()) as ConversationRecord;
}

function upload(
  url: string,
  c: Started,
  body: Buffer | string,
  headers: Record<string, string>,
  userId: string | null = 'customer-1',
): Promise<Response> {
  const q = userId === null ? '' : `?userId=${encodeURIComponent(userId)}`;
  return fetch(`${url}/v3/directline/conversations/${c.conversationId}/upload${q}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${c.token}`, ...headers },
    body,
  });
}

describe('Direct Line emulator: the Omnichannel agents and uploads', () => {
  const start = emulators();

  it('routes by the first activity’s channelData: the channel’s workstream, its greeting in its language, the survey link, and records everything', async () => {
    const em = await start({ agents: { channels: CHANNELS, endAfterTurns: 2, attachmentEvery: 1 } });
    const fr = await startConversation(em.url);
    const de = await startConversation(em.url);
    await post(em.url, fr, customerMessage('bonjour', 'sms'));
    await post(em.url, fr, customerMessage('merci', 'sms'));
    await post(em.url, de, customerMessage('hallo', 'contoso'));
    await waitFor(
      'the French conversation ended',
      async () => (await record(em.url, fr)).activities.some((a) => a.type === 'endOfConversation') || undefined,
    );
    await waitFor(
      'the German reply',
      async () =>
        (await record(em.url, de)).activities.some((a) => a.direction === 'agent' && a.text?.startsWith('Agent 1')) ||
        undefined,
    );
    const r = await record(em.url, fr);
    assert.deepEqual(r.routing, {
      channelType: 'sms',
      workstream: 'SMS FR',
      language: 'fr-FR',
      conversationContext: { source: 'test' },
      customerContext: { phonenumber: '+15550000001' },
    });
    assert.equal(r.turns, 2);
    assert.equal(r.ended, true);
    assert.equal(r.surveyUrl, 'https://survey.example.com/fr');
    const agentTexts = r.activities.filter((a) => a.direction === 'agent').map((a) => a.text ?? `<${a.type}>`);
    assert.deepEqual(agentTexts, [
      'Merci de nous avoir contactés. Un agent va vous répondre sous peu.',
      'Agent 1 (SMS FR) got your message 1: "bonjour"',
      'Agent 1 (SMS FR) got your message 2: "merci"',
      'Dites-nous ce que vous en avez pensé : https://survey.example.com/fr',
      '<endOfConversation>',
    ]);
    assert.equal(r.agentAttachments, 0, 'agents may not send attachments on this channel');
    const d = await record(em.url, de);
    assert.equal(d.activities.find((a) => a.direction === 'agent')?.text, 'Hallo von Contoso!');
    const reply = d.activities.find((a) => a.text?.startsWith('Agent 1'))!;
    assert.equal(reply.attachments?.length, 1, 'an agent attachment where allowed');
    const blob = await fetch(reply.attachments![0]!.contentUrl!);
    assert.equal(blob.headers.get('content-type'), 'image/png');
    const list = (await (await fetch(`${em.url}/_simulator/conversations`)).json()) as ConversationRecord[];
    assert.deepEqual(
      list.map((x) => x.conversationId),
      [fr.conversationId, de.conversationId],
    );
  });

  it('answers nothing on an unrouted conversation and nothing after the end, and counts both', async () => {
    const em = await start({ agents: { channels: CHANNELS, endAfterTurns: 1 } });
    const lost = await startConversation(em.url);
    await post(em.url, lost, { type: 'message', from: { id: 'c' }, text: 'no channelData' });
    await post(em.url, lost, customerMessage('now with one', 'sms'));
    const ended = await startConversation(em.url);
    await post(em.url, ended, customerMessage('one', 'contoso'));
    await waitFor('the end', async () => (await record(em.url, ended)).ended || undefined);
    await waitFor(
      'the endOfConversation',
      async () => (await record(em.url, ended)).activities.some((a) => a.type === 'endOfConversation') || undefined,
    );
    await post(em.url, ended, customerMessage('anyone there?', 'contoso'));
    assert.equal(em.pendingReplies(), 0);
    const l = await record(em.url, lost);
    assert.equal(l.routed, false, 'routing is decided by the first message');
    assert.deepEqual(
      l.activities.map((a) => [a.direction, a.handling]),
      [
        ['customer', 'unrouted'],
        ['customer', 'unrouted'],
      ],
    );
    const e = await record(em.url, ended);
    assert.equal(e.postedAfterEnd, 1);
    assert.equal(e.activities.at(-1)?.handling, 'afterEnd');
    assert.equal((await readAll(em.url, ended)).activities.at(-1)?.text, 'anyone there?', 'Direct Line still took it');
  });

  it('uploads one file or a multipart body with an activity; the attachments are served back; a channel without customer attachments drops them', async () => {
    const em = await start({ agents: { channels: CHANNELS } });
    const c = await startConversation(em.url);
    await post(em.url, c, customerMessage('hi', 'sms'));
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    const single = await upload(em.url, c, png, {
      'Content-Type': 'image/png',
      'Content-Disposition': 'name="file"; filename="photo.png"',
    });
    assert.equal(single.status, 200);
    const boundary = '----DL-TEST';
    const multipart = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nalpha\r\n`,
      ),
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/pdf\r\nContent-Disposition: form-data; name="file"; filename="b.pdf"\r\n\r\n`,
      ),
      png,
      Buffer.from(
        `\r\n--${boundary}\r\nContent-Type: application/vnd.microsoft.activity\r\n\r\n${JSON.stringify({ type: 'message', from: { id: 'customer-1' }, text: 'two files' })}\r\n--${boundary}--\r\n`,
      ),
    ]);
    assert.equal(
      (await upload(em.url, c, multipart, { 'Content-Type': `multipart/form-data; boundary=${boundary}` })).status,
      200,
    );
    const uploaded = (await readAll(em.url, c)).activities.filter((a) => a.attachments?.length);
    assert.deepEqual(
      uploaded.map((a) => [a.text, a.from?.id, a.attachments!.map((x) => [x.name, x.contentType])]),
      [
        [undefined, 'customer-1', [['photo.png', 'image/png']]],
        [
          'two files',
          'customer-1',
          [
            ['a.txt', 'text/plain'],
            ['b.pdf', 'application/pdf'],
          ],
        ],
      ],
    );
    const served = await fetch(uploaded[0]!.attachments![0]!.contentUrl!);
    assert.deepEqual(Buffer.from(await served.arrayBuffer()), png);
    assert.equal(await (await fetch(uploaded[1]!.attachments![0]!.contentUrl!)).text(), 'alpha');
    await waitFor('the uploads answered', async () => ((await record(em.url, c)).turns === 3 ? true : undefined));
    assert.equal((await record(em.url, c)).attachmentsDropped, 3, 'customers may not send attachments on this channel');
  });

  it('refuses an upload without userId (400), with a broken multipart body (400) or over maxUploadBytes (413)', async () => {
    const em = await start({ maxUploadBytes: 1024 });
    const c = await startConversation(em.url);
    const noUser = await upload(em.url, c, 'x', { 'Content-Type': 'text/plain' }, null);
    assert.equal(noUser.status, 400);
    assert.match(((await noUser.json()) as { error: { message: string } }).error.message, /userId/);
    const broken = await upload(em.url, c, '--b\r\nContent-Type: text/plain\r\n\r\nno end', {
      'Content-Type': 'multipart/form-data; boundary=b',
    });
    assert.equal(broken.status, 400);
    assert.match(((await broken.json()) as { error: { message: string } }).error.message, /not closed by its boundary/);
    assert.equal(
      (await upload(em.url, c, Buffer.alloc(2048), { 'Content-Type': 'application/octet-stream' })).status,
      413,
    );
    assert.equal((await readAll(em.url, c)).activities.length, 0);
  });
});
