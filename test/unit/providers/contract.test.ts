import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { ContractProvider } from '../../../src/providers/contract/adapter.js';
import { adapterOptions } from '../../../src/providers/options.js';
import { createProvider, verifyWebhook } from '../../../src/providers/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { rejection, SIGNING_SECRET } from './fixtures.js';
import { startRecordingServer, type Recorded } from './recording-server.js';

const DEFINITION = 'b7c0e3a2-1111-4f00-8000-000000000001';
const request = {
  idempotencyKey: 'c1b2c3d4-0000-4000-8000-000000000003',
  from: 'sender-1',
  to: '+15551234567',
  text: 'Hello Ada',
  channelDefinitionId: DEFINITION,
};
const NEW_SECRET = `whsec_${Buffer.from('the new secret, thirty-two bytes').toString('base64')}`;

function echo(Status: string, extra: Record<string, unknown> = {}): (r: Recorded) => { status: number; body: unknown } {
  return (r) => {
    const payload = JSON.parse(r.body) as { ChannelDefinitionId?: string; RequestId: string };
    return {
      status: 200,
      body: { ChannelDefinitionId: payload.ChannelDefinitionId, RequestId: payload.RequestId, Status, ...extra },
    };
  };
}

describe('contract adapter', () => {
  const track = closedAfterEach();

  it('posts the contract payload, signed with Standard Webhooks headers that verify', async () => {
    const server = track(await startRecordingServer());
    server.reply(echo('Sent', { MessageId: 'msg-1' }));
    const provider = createProvider({
      type: 'contract',
      url: `${server.url}/api/outbound`,
      signingSecret: SIGNING_SECRET,
    });
    assert.equal(provider.type, 'contract');
    assert.deepEqual(await provider.send({ ...request, parts: { title: 'Hi', text: 'Hello Ada' } }), {
      providerMessageId: 'msg-1',
      status: 'Sent',
    });
    const got = server.requests[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/api/outbound');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(got.body), {
      ChannelDefinitionId: DEFINITION,
      RequestId: request.idempotencyKey,
      From: 'sender-1',
      To: '+15551234567',
      Message: { title: 'Hi', text: 'Hello Ada' },
    });
    assert.equal(got.headers['webhook-id'], request.idempotencyKey);
    assert.match(String(got.headers['webhook-timestamp']), /^\d+$/);
    assert.match(String(got.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]+=*$/);
    const verified = verifyWebhook(got.body, got.headers, { secrets: SIGNING_SECRET });
    assert.deepEqual(verified.ok && verified.id, request.idempotencyKey);
  });

  it('sends {text} when there are no parts, omits a missing ChannelDefinitionId, and uses RequestId as the id', async () => {
    const server = track(await startRecordingServer());
    server.reply(echo('Sent'));
    const provider = createProvider({ type: 'contract', url: server.url, signingSecret: SIGNING_SECRET });
    const { channelDefinitionId: _omitted, ...plain } = request;
    assert.deepEqual(await provider.send(plain), { providerMessageId: request.idempotencyKey, status: 'Sent' });
    assert.deepEqual(JSON.parse(server.requests[0]!.body), {
      RequestId: request.idempotencyKey,
      From: 'sender-1',
      To: '+15551234567',
      Message: { text: 'Hello Ada' },
    });
  });

  it('puts the i-th attachment URL in the i-th media part next to the text; refuses more than the media parts', async () => {
    const server = track(await startRecordingServer());
    server.reply(echo('Sent'));
    const provider = createProvider({
      type: 'contract',
      url: server.url,
      signingSecret: SIGNING_SECRET,
      mediaParts: ['image', 'document'],
    });
    assert.equal(provider.maxAttachments, 2);
    await provider.send({
      ...request,
      attachments: [
        { url: 'https://files.example/a.png', contentType: 'image/png' },
        { url: 'https://files.example/b.pdf' },
      ],
    });
    assert.deepEqual(JSON.parse(server.requests[0]!.body).Message, {
      text: 'Hello Ada',
      image: 'https://files.example/a.png',
      document: 'https://files.example/b.pdf',
    });
    await provider.send({ ...request, attachments: [{ url: 'https://files.example/c.png' }] });
    assert.deepEqual(JSON.parse(server.requests[1]!.body).Message, {
      text: 'Hello Ada',
      image: 'https://files.example/c.png',
    });
    const three = [1, 2, 3].map((i) => ({ url: `https://files.example/${i}` }));
    await assert.rejects(provider.send({ ...request, attachments: three }), TypeError);
    const plain = createProvider({ type: 'contract', url: server.url, signingSecret: SIGNING_SECRET });
    assert.equal(plain.maxAttachments, 0);
    await assert.rejects(plain.send({ ...request, attachments: [three[0]!] }), /no media parts|0 media parts/);
    assert.equal(server.requests.length, 2);
  });

  it('refuses mediaParts that are empty, repeated or named text, naming the key', () => {
    for (const mediaParts of [[], ['image', 'image'], ['text'], ['']]) {
      assert.throws(
        () => createProvider({ type: 'contract', url: 'http://x', signingSecret: SIGNING_SECRET, mediaParts }),
        (e: Error & { problems?: Array<{ path: string }> }) =>
          (e.problems ?? []).some((p) => p.path.startsWith('provider.mediaParts')),
      );
    }
  });

  it('signs with each secret of a rotation (space-separated), so receivers on either verify', async () => {
    const server = track(await startRecordingServer());
    server.reply(echo('Sent'));
    const provider = createProvider({
      type: 'contract',
      url: server.url,
      signingSecret: `${NEW_SECRET} ${SIGNING_SECRET}`,
    });
    await provider.send(request);
    const got = server.requests[0]!;
    assert.equal(String(got.headers['webhook-signature']).split(' ').length, 2);
    assert.equal(verifyWebhook(got.body, got.headers, { secrets: SIGNING_SECRET }).ok, true);
    assert.equal(verifyWebhook(got.body, got.headers, { secrets: NEW_SECRET }).ok, true);
  });

  it('stamps the signing time of each attempt, with the same webhook-id', async () => {
    const server = track(await startRecordingServer());
    server.reply(echo('Sent'));
    let now = Date.parse('2026-11-22T01:00:00Z');
    const provider = new ContractProvider(
      { url: server.url, signingSecret: SIGNING_SECRET },
      adapterOptions(),
      () => now,
    );
    await provider.send(request);
    now += 90_000;
    await provider.send(request);
    const [first, second] = server.requests;
    assert.deepEqual(
      [first?.headers['webhook-timestamp'], second?.headers['webhook-timestamp']],
      [String(Date.parse('2026-11-22T01:00:00Z') / 1000), String(Date.parse('2026-11-22T01:01:30Z') / 1000)],
    );
    assert.equal(first?.headers['webhook-id'], second?.headers['webhook-id']);
  });

  it('maps NotSent, 429 with Retry-After, 5xx and an answer for another RequestId', async () => {
    const server = track(await startRecordingServer());
    const provider = createProvider({ type: 'contract', url: server.url, signingSecret: SIGNING_SECRET });
    server.reply(echo('NotSent'));
    assert.equal((await rejection(provider.send(request))).code, 'ProviderRejected');
    server.reply({ status: 429, headers: { 'retry-after': '3' }, body: '' });
    const limited = await rejection(provider.send(request));
    assert.deepEqual([limited.code, limited.retryAfterMs], ['ProviderRateLimited', 3000]);
    server.reply({ status: 502, body: 'bad gateway' });
    assert.equal((await rejection(provider.send(request))).code, 'ProviderUnavailable');
    server.reply({ status: 200, body: { RequestId: 'other', Status: 'Sent' } });
    assert.equal(
      (await rejection(provider.send(request))).code,
      'ProviderAnswerUnreadable',
      'a 2xx the adapter cannot read: maybe sent',
    );
    server.reply({ status: 302, headers: { location: 'https://elsewhere.example' }, body: '' });
    assert.equal((await rejection(provider.send(request))).code, 'ProviderBadResponse');
  });

  it('times out and rethrows the caller abort as is', async () => {
    const server = track(await startRecordingServer());
    server.reply('hang');
    const quick = createProvider(
      { type: 'contract', url: server.url, signingSecret: SIGNING_SECRET },
      { timeoutMs: 100 },
    );
    assert.equal((await rejection(quick.send(request))).code, 'ProviderTimeout');
    const provider = createProvider({ type: 'contract', url: server.url, signingSecret: SIGNING_SECRET });
    const controller = new AbortController();
    const pending = rejection(provider.send({ ...request, signal: controller.signal }));
    await waitFor('the request', () => (server.requests.length === 2 ? true : undefined));
    controller.abort();
    const err = await pending;
    assert.equal(err.name, 'AbortError');
    assert.equal(isProviderError(err), false);
  });
});
