import assert from 'node:assert/strict';
import { createProvider, type FetchLike } from '../../../src/providers/index.js';
import { TWILIO_LOOKUP_SKEW_MS } from '../../../src/providers/twilio/adapter.js';
import { ACCOUNT_SID, AUTH_TOKEN, providerError, simulators } from './helpers.js';

const LONG_CODE = '+4915100000001';
const SERVICE = 'MG9752274e9e519418a7406176694466fa';
const TO = '+4917000000001';

describe('twilio adapter: finding a message sent before a crash (findSent)', () => {
  const start = simulators();
  const twilio = (url: string, fetch?: FetchLike) =>
    createProvider(
      { type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: url },
      { timeoutMs: 5000, ...(fetch ? { fetch } : {}) },
    );
  const send = (provider: ReturnType<typeof twilio>, text: string, from = LONG_CODE, to = TO) =>
    provider.send({ idempotencyKey: `key-${text}`, from, to, text });

  it('finds the message by recipient, sender and body within the span; not one already matched, another text or another span', async () => {
    const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
    const provider = twilio(sim.urls.twilio);
    assert.ok(provider.findSent, 'the Twilio adapter can be asked');
    const since = Date.now();
    await send(provider, 'Hello Ada');
    const target = await send(provider, 'Hello Bob');
    await send(provider, 'Hello Bob', LONG_CODE, '+4917000000002');
    const until = Date.now();
    const query = { from: LONG_CODE, to: TO, text: 'Hello Bob', since, until };
    assert.deepEqual(await provider.findSent(query), {
      providerMessageId: target.providerMessageId,
      status: 'delivered',
    });
    assert.equal(
      await provider.findSent({ ...query, exclude: new Set([target.providerMessageId]) }),
      undefined,
      'a sid matched before is not matched again',
    );
    assert.equal(await provider.findSent({ ...query, text: 'Hello Cy' }), undefined);
    const later = until + TWILIO_LOOKUP_SKEW_MS + 60_000;
    assert.equal(
      await provider.findSent({ ...query, since: later, until: later }),
      undefined,
      'created before the span',
    );
  });

  it('finds a message still queued (no date_sent: a DateSent filter could miss it)', async () => {
    const sim = await start({ callbacks: { delayMs: 60_000 } });
    const provider = twilio(sim.urls.twilio);
    const since = Date.now();
    const sent = await provider.send({
      idempotencyKey: 'k',
      from: LONG_CODE,
      to: TO,
      text: 'queued one',
      statusCallbackUrl: 'http://127.0.0.1:9/status',
    });
    const found = await provider.findSent?.({ from: LONG_CODE, to: TO, text: 'queued one', since, until: Date.now() });
    assert.deepEqual(found, { providerMessageId: sent.providerMessageId, status: 'queued' });
  });

  it('a Messaging Service sender: listed by To only, matched on messaging_service_sid', async () => {
    const sim = await start();
    const provider = twilio(sim.urls.twilio);
    const since = Date.now();
    const sent = await send(provider, 'via service', SERVICE);
    await send(provider, 'via service', LONG_CODE);
    const found = await provider.findSent?.({ from: SERVICE, to: TO, text: 'via service', since, until: Date.now() });
    assert.equal(found?.providerMessageId, sent.providerMessageId);
  });

  it('follows next_page_uri, and past its page bound rejects (it cannot tell)', async () => {
    const sim = await start({ twilio: { statusCallbacks: false } });
    // Pages of 2 instead of 1000, so that a few messages make several pages.
    const small: FetchLike = (url, init) => fetch(url.replace('PageSize=1000', 'PageSize=2'), init);
    const provider = twilio(sim.urls.twilio, small);
    const since = Date.now();
    for (const text of ['oldest', 'b', 'c', 'd', 'e']) await send(provider, text);
    const found = await provider.findSent?.({ from: LONG_CODE, to: TO, text: 'oldest', since, until: Date.now() });
    assert.ok(found, 'found on the third page');
    for (let i = 0; i < 6; i++) await send(provider, `more ${i}`);
    const err = await providerError(
      provider.findSent?.({ from: LONG_CODE, to: TO, text: 'not there', since, until: Date.now() }) ??
        Promise.resolve(),
    );
    assert.equal(err.code, 'ProviderBadResponse');
    assert.match(err.message, /no match in 5 pages .* cannot tell whether the message was sent/);
  });

  it('rejects with the mapped error when Twilio refuses the credentials', async () => {
    const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: 'another token' } } });
    const err = await providerError(
      twilio(sim.urls.twilio).findSent?.({ from: LONG_CODE, to: TO, text: 'x', since: 0, until: Date.now() }) ??
        Promise.resolve(),
    );
    assert.equal(err.code, 'ProviderUnauthorized');
    assert.doesNotMatch(err.message, new RegExp(AUTH_TOKEN));
  });
});
