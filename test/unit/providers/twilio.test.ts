import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { createProvider } from '../../../src/providers/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { ACCOUNT_SID, AUTH_TOKEN, rejection, twilioError, twilioMessage } from './fixtures.js';
import { refusedUrl, startRecordingServer } from './recording-server.js';

const request = {
  idempotencyKey: 'a1b2c3d4-0000-4000-8000-000000000001',
  from: '+15005550006',
  to: '+15551234567',
  text: 'Hello Ada & co = 100%',
};

describe('twilio adapter', () => {
  const track = closedAfterEach();

  it('posts the form to the Messages resource with basic auth and the idempotency header', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 201, body: twilioMessage() });
    const provider = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: `${server.url}/`,
    });
    assert.equal(provider.type, 'twilio');
    const result = await provider.send({
      ...request,
      statusCallbackUrl: 'https://relay.example/callbacks/twilio?c=sms',
    });
    assert.deepEqual(result, { providerMessageId: 'SM304417148af644198a0efaceebc965a5', status: 'queued' });
    const got = server.requests[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    assert.equal(
      got.headers['authorization'],
      `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`,
    );
    assert.equal(got.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(got.headers['i-twilio-idempotency-token'], request.idempotencyKey);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(got.body)), {
      To: '+15551234567',
      From: '+15005550006',
      Body: 'Hello Ada & co = 100%',
      StatusCallback: 'https://relay.example/callbacks/twilio?c=sms',
    });
    assert.match(got.body, /To=%2B15551234567/);
  });

  it('sends MessagingServiceSid instead of From for an MG sender, and no StatusCallback when there is none', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 201, body: twilioMessage({ status: 'accepted' }) });
    const provider = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: server.url,
    });
    const result = await provider.send({ ...request, from: 'MG9752274e9e519418a7406176694466fa' });
    assert.equal(result.status, 'accepted');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(server.requests[0]!.body)), {
      To: '+15551234567',
      MessagingServiceSid: 'MG9752274e9e519418a7406176694466fa',
      Body: request.text,
    });
  });

  it('throws the mapped error with the upstream answer (21610 → ProviderRejected, 20429 → ProviderRateLimited)', async () => {
    const server = track(await startRecordingServer());
    const provider = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: server.url,
    });
    server.reply({ status: 400, body: twilioError(21610, 'Attempt to send to unsubscribed recipient', 400) });
    const refused = await rejection(provider.send(request));
    assert.ok(isProviderError(refused));
    assert.deepEqual(
      [refused.code, refused.upstream?.code, refused.upstream?.status],
      ['ProviderRejected', 21610, 400],
    );
    server.reply({ status: 429, headers: { 'retry-after': '2' }, body: twilioError(20429, 'Too Many Requests', 429) });
    const limited = await rejection(provider.send(request));
    assert.deepEqual(
      [limited.code, limited.retryAfterMs, limited.upstream?.headers?.['retry-after']],
      ['ProviderRateLimited', 2000, '2'],
    );
  });

  it('never shows the auth token or the basic credentials in an error', async () => {
    const server = track(await startRecordingServer());
    const basic = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64');
    // A (misbehaving) answer that echoes the credentials back.
    server.reply((r) => ({
      status: 401,
      headers: { 'www-authenticate': 'Basic realm="Twilio API"' },
      body: { ...twilioError(20003, `Authenticate ${AUTH_TOKEN}`, 401), echo: r.headers['authorization'] },
    }));
    const provider = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: server.url,
    });
    const err = await rejection(provider.send(request));
    assert.equal(err.code, 'ProviderUnauthorized');
    const everything = `${err.message} ${JSON.stringify(err)} ${err.stack ?? ''}`;
    assert.doesNotMatch(everything, new RegExp(AUTH_TOKEN));
    assert.doesNotMatch(everything, new RegExp(basic.replace(/[+/=]/g, '\\$&')));
  });

  it('times out, honours the caller abort, and reports a refused connection', async () => {
    const server = track(await startRecordingServer());
    server.reply('hang');
    const quick = createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: server.url },
      { timeoutMs: 100 },
    );
    assert.equal((await rejection(quick.send(request))).code, 'ProviderTimeout');

    const slow = createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: server.url },
      { timeoutMs: 10_000 },
    );
    const controller = new AbortController();
    const pending = rejection(slow.send({ ...request, signal: controller.signal }));
    await waitFor('the second request', () => (server.requests.length === 2 ? true : undefined));
    controller.abort();
    const aborted = await pending;
    assert.equal(aborted.name, 'AbortError');
    assert.equal(isProviderError(aborted), false);

    const gone = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      baseUrl: await refusedUrl(),
    });
    assert.equal((await rejection(gone.send(request))).code, 'ProviderUnavailable');
  });

  it('calls the fetch it was given', async () => {
    const seen: string[] = [];
    const provider = createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN },
      {
        fetch: async (url) => {
          seen.push(url);
          return Response.json(twilioMessage(), { status: 201 });
        },
      },
    );
    await provider.send(request);
    assert.deepEqual(seen, [`https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`]);
  });
});
