import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_OPT_IN_MAX_AGE_MS, type Channel } from '../../../../src/channels/index.js';
import { ProviderError } from '../../../../src/errors.js';
import { createCallbacksServer, EMPTY_TWIML } from '../../../../src/pipeline/callbacks/index.js';
import { twilioSignature, webhookHeaders } from '../../../../src/providers/index.js';
import {
  AUTH_TOKEN,
  CHAT_ID,
  harness,
  NEVER_SHOWN,
  PHONE,
  PUBLIC_BASE,
  SMS,
  TG_SECRET,
  WHSEC_NEW,
  type Harness,
} from './fakes.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const LIMIT = DEFAULT_OPT_IN_MAX_AGE_MS;

/**
 * Consent from replies: an opt-out always applies; an opt-in only when the reply is proven real and recent (Twilio:
 * the message fetched by its MessageSid; Telegram: message.date), so that a replayed START cannot re-subscribe.
 */
describe('callbacks: opt-in only for a reply proven real and recent', () => {
  let h: Harness;
  let app: FastifyInstance;
  const optedOut = (): void => {
    h.directory.contacts[0]!['sample_optout'] = true;
  };
  const unchanged = (): void => {
    assert.equal(h.directory.contacts[0]!['sample_optout'], true, 'the compliance field is still set');
    assert.equal(h.directory.updates.length, 0, 'no PATCH');
    assert.equal(h.outbound.sent.length, 0, 'no confirmation');
    assert.equal(h.interactions.sent.length, 0);
  };
  const counted = async (route: string, outcome: string): Promise<number | undefined> => {
    const metric = await h.registry.getSingleMetric('channel_relay_callbacks_received_total')!.get();
    return metric.values.find((v) => v.labels['route'] === route && v.labels['outcome'] === outcome)?.value;
  };
  const start = (overrides: Parameters<typeof harness>[0] = {}): void => {
    h = harness({ now: () => NOW, ...overrides });
    app = createCallbacksServer(h.deps).app;
    optedOut();
  };
  afterEach(async () => {
    await app.close();
    for (const secret of [...NEVER_SHOWN, CHAT_ID])
      assert.ok(!h.logs.text.includes(secret), `a log line shows ${secret.slice(0, 4)}…`);
  });

  describe('Twilio', () => {
    const reply = (body: string, sid = 'SMin001', from = PHONE, to = SMS.sender) => {
      const form = new URLSearchParams({ MessageSid: sid, From: from, To: to, Body: body });
      const url = '/callbacks/sms/twilio/inbound';
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
    beforeEach(() => start());

    it('a fresh START: fetched once, opted in, one confirmation', async () => {
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'Start', NOW - 60_000);
      const res = await reply('Start');
      assert.equal(res.statusCode, 200);
      assert.equal(res.body, EMPTY_TWIML);
      assert.deepEqual(h.twilio.calls, ['SMin001']);
      assert.deepEqual(h.directory.updates, [
        { contactId: h.directory.contacts[0]!['contactid'], values: { sample_optout: false } },
      ]);
      assert.equal(h.outbound.sent.length, 1);
      assert.equal(h.outbound.sent[0]!.body.text, 'You are subscribed.');
      assert.equal(await counted('twilio-inbound', 'opted-in'), 1);
    });

    it('a START exactly at the limit applies; one a millisecond older is stale: nothing changed, no confirmation', async () => {
      h.twilio.receive('SMold', PHONE, SMS.sender, 'START', NOW - LIMIT - 1);
      const res = await reply('START', 'SMold');
      assert.equal(res.statusCode, 200, 'acknowledged: Twilio must not retry it');
      assert.equal(res.body, EMPTY_TWIML);
      unchanged();
      assert.equal(await counted('twilio-inbound', 'stale'), 1);
      const line = h.logs.lines().find((l) => String(l['message']).startsWith('opt-in refused'));
      assert.ok(line, 'the refusal is logged');
      assert.equal(line['reason'], 'older than optInMaxAgeMs');
      assert.equal(line['ageMs'], LIMIT + 1);
      assert.equal(line['replyId'], 'SMold');

      h.twilio.receive('SMedge', PHONE, SMS.sender, 'START', NOW - LIMIT);
      await reply('START', 'SMedge');
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
      assert.equal(h.outbound.sent.length, 1);
    });

    it("the channel's callbacks.optInMaxAgeMs is the limit", async () => {
      const strict: Channel = { ...SMS, callbacks: { ...SMS.callbacks!, optInMaxAgeMs: 60_000 } };
      await app.close();
      start({ channels: { byName: (n) => (n === 'sms' ? strict : undefined), all: () => [strict] } });
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW - 61_000);
      await reply('START');
      unchanged();
    });

    for (const [what, change, mismatch] of [
      ['another From', { from: '+15550009999' }, 'from'],
      ['another To', { to: '+15550001111' }, 'to'],
      ['another body', { body: 'STOP' }, 'body'],
      ['an outbound message', { direction: 'outbound-api' }, 'direction'],
    ] as const) {
      it(`a fetched message with ${what} is refused as unverified: nothing changed`, async () => {
        const m = h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW);
        Object.assign(m, change);
        const res = await reply('START');
        assert.equal(res.statusCode, 200);
        unchanged();
        assert.equal(await counted('twilio-inbound', 'unverified'), 1);
        const line = h.logs.lines().find((l) => String(l['message']).startsWith('opt-in refused'));
        assert.deepEqual(line?.['mismatch'], [mismatch]);
      });
    }

    it('a webhook without To cannot match the fetched message: refused', async () => {
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW);
      const form = new URLSearchParams({ MessageSid: 'SMin001', From: PHONE, Body: 'START' });
      const url = '/callbacks/sms/twilio/inbound';
      await app.inject({
        method: 'POST',
        url,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${url}`, form),
        },
        payload: form.toString(),
      });
      unchanged();
    });

    it('a MessageSid Twilio does not know (404, asked twice) is refused as unverified', async () => {
      const res = await reply('START', 'SMforged');
      assert.equal(res.statusCode, 200);
      assert.deepEqual(h.twilio.calls, ['SMforged', 'SMforged']);
      unchanged();
      assert.equal(await counted('twilio-inbound', 'unverified'), 1);
    });

    it('a fetch refused for good (credentials) is unverified, not retried', async () => {
      h.twilio.failWith = new ProviderError('ProviderUnauthorized', 'twilio 401: credentials refused');
      const res = await reply('START');
      assert.equal(res.statusCode, 200);
      unchanged();
      assert.equal(await counted('twilio-inbound', 'unverified'), 1);
    });

    for (const [what, error] of [
      ['a 5xx', new ProviderError('ProviderUnavailable', 'twilio 503: Service Unavailable')],
      ['a 429', new ProviderError('ProviderRateLimited', 'twilio 429: too many requests', { retryAfterMs: 1000 })],
      [
        'a network failure',
        new ProviderError('ProviderUnavailable', 'twilio could not be reached: connect ECONNREFUSED'),
      ],
      ['a timeout', new ProviderError('ProviderTimeout', 'twilio did not answer within 10000 ms')],
    ] as const) {
      it(`a fetch that fails with ${what} twice is unverified: 200 (Twilio retries no error answer), nothing changed`, async () => {
        h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW);
        h.twilio.failWith = error;
        const res = await reply('START');
        assert.equal(res.statusCode, 200);
        assert.deepEqual(h.twilio.calls, ['SMin001', 'SMin001']);
        unchanged();
        assert.equal(await counted('twilio-inbound', 'unverified'), 1);
      });

      it(`a fetch that fails with ${what} once is tried again and the opt-in applies`, async () => {
        h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW);
        h.twilio.failWith = error;
        h.twilio.failTimes = 1;
        const res = await reply('START');
        assert.equal(res.statusCode, 200);
        assert.equal(h.twilio.calls.length, 2);
        assert.equal(h.directory.contacts[0]!['sample_optout'], false);
        assert.equal(h.outbound.kept().length, 1);
      });
    }

    it('a message Twilio serves only at the second try (a 404 just after it was created) is verified', async () => {
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'START', NOW);
      h.twilio.unseenCalls = 1;
      await reply('START');
      assert.deepEqual(h.twilio.calls, ['SMin001', 'SMin001']);
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
    });

    for (const body of ['start', '  Start.', 'START please']) {
      it(`a START written as ${JSON.stringify(body)} matches the fetched message written the same way`, async () => {
        h.twilio.receive('SMin001', PHONE, SMS.sender, body, NOW);
        await reply(body);
        assert.equal(h.directory.contacts[0]!['sample_optout'], false);
        assert.equal(h.outbound.kept().length, 1);
      });
    }

    it('STOP never fetches and always applies, however old (a replayed STOP only opts out again)', async () => {
      h.directory.contacts[0]!['sample_optout'] = false;
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'STOP', NOW - 30 * LIMIT);
      await reply('STOP');
      await reply('STOP', 'SMunknown');
      assert.deepEqual(h.twilio.calls, []);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(h.outbound.kept().length, 2);
    });

    it('a keyword and free text never fetch', async () => {
      await reply('INFO');
      await reply('hello there');
      assert.deepEqual(h.twilio.calls, []);
    });

    it('without a message fetch for the channel, a START is refused (unverified)', async () => {
      await app.close();
      start({ twilioMessages: () => undefined });
      await reply('START');
      unchanged();
    });
  });

  describe('Telegram', () => {
    const update = (text: string, date: number | undefined, id = 1001) =>
      app.inject({
        method: 'POST',
        url: '/callbacks/tg/telegram',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
        payload: JSON.stringify({
          update_id: id,
          message: {
            message_id: 5,
            ...(date === undefined ? {} : { date }),
            chat: { id: Number(CHAT_ID), type: 'private' },
            text,
          },
        }),
      });
    beforeEach(() => start());

    it('a START whose message.date is recent opts in with one confirmation', async () => {
      assert.equal((await update('START', Math.floor((NOW - 5_000) / 1000))).statusCode, 200);
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
      assert.equal(h.outbound.sent.length, 1);
      assert.equal(h.outbound.sent[0]!.body.to, CHAT_ID);
    });

    it('a START older than optInMaxAgeMs (a replayed update) is refused: stale, nothing changed', async () => {
      assert.equal((await update('START', Math.floor((NOW - LIMIT) / 1000) - 1)).statusCode, 200);
      unchanged();
      assert.equal(await counted('telegram', 'stale'), 1);
    });

    it('a START without message.date is refused (unverified)', async () => {
      await update('START', undefined);
      unchanged();
      assert.equal(await counted('telegram', 'unverified'), 1);
    });

    it('an old STOP still opts out', async () => {
      h.directory.contacts[0]!['sample_optout'] = false;
      await update('STOP', 1);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(h.outbound.sent.length, 1);
    });
  });

  describe('contract', () => {
    beforeEach(() => start());
    it('a START applies as received: Standard Webhooks already refuses requests older than 5 minutes', async () => {
      const payload = JSON.stringify({ From: PHONE, Message: { text: 'START' } });
      const fresh = await app.inject({
        method: 'POST',
        url: '/callbacks/ct/contract/inbound',
        headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, 'in_1', payload, NOW) },
        payload,
      });
      assert.equal(fresh.statusCode, 204);
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
      assert.deepEqual(h.twilio.calls, []);
      optedOut();
      const stale = await app.inject({
        method: 'POST',
        url: '/callbacks/ct/contract/inbound',
        headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, 'in_2', payload, NOW - 301_000) },
        payload,
      });
      assert.equal(stale.statusCode, 401);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
    });
  });
});
