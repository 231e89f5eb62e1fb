import assert from 'node:assert/strict';
import { isProviderError, type ProviderError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { createProvider } from '../../../src/providers/index.js';
import { CaptureStream } from '../../helpers/capture.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { waitFor } from '../../helpers/wait.js';
import { BOT_TOKEN, rejection, telegramError, telegramMessage } from './fixtures.js';
import { refusedUrl, startRecordingServer } from './recording-server.js';

const request = {
  idempotencyKey: 'b1b2c3d4-0000-4000-8000-000000000002',
  from: 'relay_bot',
  to: '987654321',
  text: 'Hello Ada',
};

function tokenFree(err: ProviderError): void {
  const everything = `${err.message} ${JSON.stringify(err)} ${err.stack ?? ''} ${err.cause instanceof Error ? err.cause.message : ''}`;
  assert.doesNotMatch(everything, /AAE-abcdefghijklmnopqrstuvwxyz0123456/);
  assert.doesNotMatch(everything, /123456789:/);
}

describe('telegram adapter', () => {
  const track = closedAfterEach();

  it('posts {chat_id, text} as JSON to /bot<token>/sendMessage with the idempotency header', async () => {
    const server = track(await startRecordingServer());
    server.reply({ status: 200, body: telegramMessage(4242) });
    const provider = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: server.url });
    assert.equal(provider.type, 'telegram');
    assert.deepEqual(await provider.send(request), { providerMessageId: '4242', status: 'sent' });
    const got = server.requests[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, `/bot${BOT_TOKEN}/sendMessage`);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers['x-idempotency-key'], request.idempotencyKey);
    assert.equal(got.headers['authorization'], undefined);
    assert.deepEqual(JSON.parse(got.body), { chat_id: '987654321', text: 'Hello Ada' });
  });

  it('maps 429 retry_after, 403 blocked and 401 token, keeping the upstream answer', async () => {
    const server = track(await startRecordingServer());
    const provider = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: server.url });
    server.reply({ status: 429, body: telegramError(429, 'Too Many Requests: retry after 5', { retry_after: 5 }) });
    const limited = await rejection(provider.send(request));
    assert.deepEqual(
      [limited.code, limited.retryAfterMs, limited.upstream?.status],
      ['ProviderRateLimited', 5000, 429],
    );
    server.reply({ status: 403, body: telegramError(403, 'Forbidden: bot was blocked by the user') });
    const blocked = await rejection(provider.send(request));
    assert.deepEqual([blocked.code, blocked.retryable], ['ProviderRejected', false]);
    server.reply({ status: 401, body: telegramError(401, 'Unauthorized') });
    assert.equal((await rejection(provider.send(request))).code, 'ProviderUnauthorized');
  });

  it('never lets the bot token (it is in the URL) into an error or a log line', async () => {
    const server = track(await startRecordingServer());
    const stream = new CaptureStream();
    const log = createLogger({ stream, level: 'debug' });
    // An answer that echoes the request path back, token included.
    server.reply((r) => ({ status: 404, body: { ok: false, error_code: 404, description: `Not Found: ${r.url}` } }));
    const provider = createProvider(
      { type: 'telegram', botToken: BOT_TOKEN, baseUrl: server.url },
      { log, timeoutMs: 100 },
    );
    const notFound = await rejection(provider.send(request));
    assert.equal(notFound.code, 'ProviderUnauthorized');
    assert.match(notFound.message, /\[REDACTED\]/);
    tokenFree(notFound);

    server.reply('hang');
    const timedOut = await rejection(provider.send(request));
    assert.equal(timedOut.code, 'ProviderTimeout');
    tokenFree(timedOut);

    const gone = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: await refusedUrl() });
    const refused = await rejection(gone.send(request));
    assert.equal(refused.code, 'ProviderUnavailable');
    tokenFree(refused);

    await waitFor('the debug line', () => (stream.text.includes('provider answered') ? true : undefined));
    assert.doesNotMatch(stream.text, /AAE-abcdefghijklmnopqrstuvwxyz0123456/);
  });

  it("rethrows the caller's abort as is", async () => {
    const server = track(await startRecordingServer());
    server.reply('hang');
    const provider = createProvider({ type: 'telegram', botToken: BOT_TOKEN, baseUrl: server.url });
    const controller = new AbortController();
    const pending = rejection(provider.send({ ...request, signal: controller.signal }));
    await waitFor('the request', () => (server.requests.length > 0 ? true : undefined));
    controller.abort();
    const err = await pending;
    assert.equal(err.name, 'AbortError');
    assert.equal(isProviderError(err), false);
  });
});
