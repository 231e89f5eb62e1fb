import assert from 'node:assert/strict';
import { createProvider } from '../../../src/providers/index.js';
import { ACCOUNT_SID, AUTH_TOKEN, providerError, simulators } from './helpers.js';

const LONG_CODE = '+4915100000001';
const request = (n: number) => ({
  idempotencyKey: `0000000${n}-aaaa-4bbb-8ccc-000000000001`,
  from: LONG_CODE,
  to: `+4917000000${String(n).padStart(3, '0')}`,
  text: `Hello ${n}`,
});

describe('twilio adapter against the Twilio simulator', () => {
  const start = simulators();
  const twilio = (url: string, timeoutMs = 5000) =>
    createProvider({ type: 'twilio', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, baseUrl: url }, { timeoutMs });

  it('sends: the simulator logs the message with sender, recipient, text, idempotency key and status callback', async () => {
    const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
    const result = await twilio(sim.urls.twilio).send({
      ...request(1),
      statusCallbackUrl: 'https://relay.example/callbacks/twilio',
    });
    assert.match(result.providerMessageId, /^SM[0-9a-f]{32}$/);
    assert.equal(result.status, 'queued');
    const [logged, ...rest] = sim.messages({ provider: 'twilio' });
    assert.equal(rest.length, 0);
    assert.deepEqual(
      {
        sender: logged?.sender,
        recipient: logged?.recipient,
        text: logged?.text,
        key: logged?.idempotencyKey,
        callback: logged?.statusCallback,
        sid: logged?.providerMessageId,
      },
      {
        sender: LONG_CODE,
        recipient: request(1).to,
        text: 'Hello 1',
        key: request(1).idempotencyKey,
        callback: 'https://relay.example/callbacks/twilio',
        sid: result.providerMessageId,
      },
    );
  });

  it('a Messaging Service sender is accepted as such', async () => {
    const sim = await start();
    const service = 'MG9752274e9e519418a7406176694466fa';
    const result = await twilio(sim.urls.twilio).send({ ...request(2), from: service });
    assert.equal(result.status, 'accepted');
    assert.equal(sim.messages({ provider: 'twilio' })[0]?.sender, service);
  });

  it('the same idempotency key twice gives two messages: Twilio ignores the header (the simulator counts the repeat)', async () => {
    const sim = await start();
    const provider = twilio(sim.urls.twilio);
    const first = await provider.send(request(3));
    const second = await provider.send(request(3));
    assert.notEqual(second.providerMessageId, first.providerMessageId);
    assert.equal(sim.messages({ provider: 'twilio' }).length, 2);
    assert.deepEqual([sim.stats().twilio.duplicates, sim.stats().twilio.repeatedKeys], [0, 1]);
  });

  it('a lost answer (timeout after acceptance) retried with the same key sends twice, unless the simulator is told to honour the key', async () => {
    for (const honourIdempotencyToken of [false, true]) {
      const sim = await start({ twilio: { honourIdempotencyToken } });
      sim.setFaults({ twilio: { timeoutNext: 1, timeoutAfterAccept: true } });
      const timedOut = await providerError(twilio(sim.urls.twilio, 200).send(request(4)));
      assert.equal(timedOut.code, 'ProviderTimeout');
      const retried = await twilio(sim.urls.twilio).send(request(4));
      const logged = sim.messages({ provider: 'twilio' });
      assert.equal(logged.length, honourIdempotencyToken ? 1 : 2, `honourIdempotencyToken: ${honourIdempotencyToken}`);
      assert.equal(logged[logged.length - 1]?.providerMessageId, retried.providerMessageId);
    }
  });

  it('permanent refusals: unsubscribed (21610) and invalid To (21211) are ProviderRejected, nothing logged', async () => {
    const sim = await start({ twilio: { unsubscribed: ['+4917000000005'] } });
    const provider = twilio(sim.urls.twilio);
    const stop = await providerError(provider.send(request(5)));
    assert.deepEqual([stop.code, stop.upstream?.code, stop.retryable], ['ProviderRejected', 21610, false]);
    const invalid = await providerError(provider.send({ ...request(6), to: '0170 not a number' }));
    assert.deepEqual([invalid.code, invalid.upstream?.code], ['ProviderRejected', 21211]);
    assert.equal(sim.messages({ provider: 'twilio' }).length, 0);
  });

  it('429 (20429) is ProviderRateLimited with Retry-After in ms; 503 is ProviderUnavailable; a wrong token ProviderUnauthorized', async () => {
    const sim = await start({ twilio: { authTokens: { [ACCOUNT_SID]: AUTH_TOKEN } } });
    const provider = twilio(sim.urls.twilio);
    sim.setFaults({ twilio: { rateLimitBurst: { count: 1, retryAfterSeconds: 3 } } });
    const limited = await providerError(provider.send(request(7)));
    assert.deepEqual(
      [limited.code, limited.upstream?.code, limited.retryAfterMs],
      ['ProviderRateLimited', 20429, 3000],
    );
    sim.setFaults({ twilio: { errorNext: 1, errorStatus: 503 } });
    assert.equal((await providerError(provider.send(request(7)))).code, 'ProviderUnavailable');
    const wrong = createProvider({
      type: 'twilio',
      accountSid: ACCOUNT_SID,
      authToken: 'not-the-token',
      baseUrl: sim.urls.twilio,
    });
    const refused = await providerError(wrong.send(request(7)));
    assert.deepEqual([refused.code, refused.upstream?.code], ['ProviderUnauthorized', 20003]);
    assert.doesNotMatch(JSON.stringify(refused), /not-the-token/);
    assert.equal(sim.messages({ provider: 'twilio' }).length, 0);
  });

  it('the account concurrency limit answers 429 20429, mapped to ProviderRateLimited with the default pause', async () => {
    // Each call is held 600 ms, so the second arrives while the first is still in flight.
    const sim = await start({ twilio: { concurrency: 1 }, faults: { twilio: { latencyMs: 600 } } });
    const provider = twilio(sim.urls.twilio);
    const outcomes = await Promise.allSettled([provider.send(request(8)), provider.send(request(9))]);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    assert.equal(refused.length, 1, 'one of two concurrent calls is refused');
    const err = refused[0]!.reason as { code: string; retryAfterMs?: number; upstream?: { code?: unknown } };
    assert.deepEqual([err.code, err.upstream?.code, err.retryAfterMs], ['ProviderRateLimited', 20429, 1000]);
  });
});
