import assert from 'node:assert/strict';
import { createProvider } from '../../../src/providers/index.js';
import { BOT_TOKEN, ManualClock, providerError, simulators } from './helpers.js';

const request = (chat: string, n = 1) => ({
  idempotencyKey: `1111111${n}-aaaa-4bbb-8ccc-000000000002`,
  from: 'relay_bot',
  to: chat,
  text: `Hello ${n}`,
});

describe('telegram adapter against the Telegram simulator', () => {
  const start = simulators();
  const telegram = (url: string, botToken = BOT_TOKEN) =>
    createProvider({ type: 'telegram', botToken, baseUrl: url }, { timeoutMs: 5000 });

  it('sends: the simulator logs the message with chat, text and the relay idempotency key', async () => {
    const sim = await start({ telegram: { tokens: [BOT_TOKEN] } });
    const result = await telegram(sim.urls.telegram).send(request('987654321'));
    assert.deepEqual(result, { providerMessageId: '1', status: 'sent' });
    const logged = sim.messages({ provider: 'telegram' });
    assert.equal(logged.length, 1);
    assert.deepEqual(
      [logged[0]?.recipient, logged[0]?.text, logged[0]?.idempotencyKey],
      ['987654321', 'Hello 1', request('987654321').idempotencyKey],
    );
  });

  it('a blocked bot (403) and an unknown chat (400 chat not found) are ProviderRejected', async () => {
    const sim = await start({ telegram: { blockedChats: ['111'], unknownChats: ['222'] } });
    const provider = telegram(sim.urls.telegram);
    const blocked = await providerError(provider.send(request('111')));
    assert.deepEqual([blocked.code, blocked.upstream?.status], ['ProviderRejected', 403]);
    assert.match(blocked.message, /the user blocked the bot/);
    const unknown = await providerError(provider.send(request('222')));
    assert.deepEqual([unknown.code, unknown.upstream?.status], ['ProviderRejected', 400]);
    assert.match(unknown.message, /chat not found/);
    assert.equal(sim.messages({ provider: 'telegram' }).length, 0);
  });

  it('a second message to one chat within a second is ProviderRateLimited with retry_after in ms', async () => {
    const clock = new ManualClock(Date.now());
    const sim = await start({ clock: clock.read });
    const provider = telegram(sim.urls.telegram);
    await provider.send(request('333', 1));
    const limited = await providerError(provider.send(request('333', 2)));
    assert.deepEqual(
      [limited.code, limited.retryAfterMs, limited.upstream?.status],
      ['ProviderRateLimited', 1000, 429],
    );
    clock.advance(1000);
    await provider.send(request('333', 2));
    assert.equal(sim.messages({ provider: 'telegram', recipient: '333' }).length, 2);
  });

  it('a 429 burst carries its retry_after; a 502 is ProviderUnavailable', async () => {
    const sim = await start();
    const provider = telegram(sim.urls.telegram);
    sim.setFaults({ telegram: { rateLimitBurst: { count: 1, retryAfterSeconds: 7 } } });
    const limited = await providerError(provider.send(request('444')));
    assert.deepEqual([limited.code, limited.retryAfterMs], ['ProviderRateLimited', 7000]);
    sim.setFaults({ telegram: { errorNext: 1, errorStatus: 502 } });
    assert.equal((await providerError(provider.send(request('444')))).code, 'ProviderUnavailable');
  });

  it('an unknown token is ProviderUnauthorized, and the token appears nowhere in the error', async () => {
    const sim = await start({ telegram: { tokens: [BOT_TOKEN] } });
    const other = '987654321:AAHotherTokenOtherTokenOtherToken12';
    const err = await providerError(telegram(sim.urls.telegram, other).send(request('555')));
    assert.equal(err.code, 'ProviderUnauthorized');
    assert.doesNotMatch(`${err.message} ${JSON.stringify(err)} ${err.stack ?? ''}`, /AAHotherToken/);
  });
});
