import assert from 'node:assert/strict';
import {
  startProviderSimulators,
  type FaultsSpec,
  type SimulatedMessage,
  type SimulatorStats,
} from '../../../../src/emulators/providers/index.js';
import { waitFor } from '../../../helpers/wait.js';
import {
  BOT_ID,
  contractPayload,
  contractSend,
  control,
  LONG_CODE,
  ManualClock,
  simulators,
  sms,
  telegramSend,
  twilioSend,
} from './helpers.js';

const TO = '+4915112345678';

describe('provider simulators: message log, statistics, fault knobs', () => {
  const start = simulators();

  describe('the log and the statistics', () => {
    it('GET /_simulator/messages lists accepted messages of all providers, filtered by provider, sender or recipient', async () => {
      const clock = new ManualClock();
      const sim = await start({ clock: clock.read });
      await twilioSend(sim.url, sms(TO, 'sms'));
      clock.advance(5);
      await telegramSend(sim.url, { chat_id: 42, text: 'tg' });
      clock.advance(5);
      await contractSend(sim.url, contractPayload('r1', TO));
      const all = await control<SimulatedMessage[]>(sim.url, 'GET', 'messages');
      assert.deepEqual(
        all.body.map((m) => [m.time - clock.now, m.provider, m.sender, m.recipient, m.text]),
        [
          [-10, 'twilio', LONG_CODE, TO, 'sms'],
          [-5, 'telegram', BOT_ID, '42', 'tg'],
          [0, 'contract', 'sender-1', TO, 'Hello'],
        ],
      );
      assert.deepEqual(
        (await control<SimulatedMessage[]>(sim.url, 'GET', 'messages?provider=telegram')).body.map((m) => m.text),
        ['tg'],
      );
      assert.deepEqual(
        (
          await control<SimulatedMessage[]>(sim.url, 'GET', `messages?sender=${encodeURIComponent(LONG_CODE)}`)
        ).body.map((m) => m.text),
        ['sms'],
      );
      assert.deepEqual(
        (await control<SimulatedMessage[]>(sim.url, 'GET', `messages?recipient=${encodeURIComponent(TO)}`)).body.map(
          (m) => m.text,
        ),
        ['sms', 'Hello'],
      );
      assert.equal((await control(sim.url, 'GET', 'messages?provider=carrier-pigeon')).status, 400);
      assert.deepEqual(sim.messages({ provider: 'contract' }), all.body.slice(2));
    });

    it('GET /_simulator/stats counts per provider and per sender; maxInAnyWindow is the busiest 1000 ms', async () => {
      const clock = new ManualClock();
      const sim = await start({ clock: clock.read, twilio: { longCodeMps: 10 } });
      // 4 at t=0, 2 at t=999 (6 within 1000 ms), 1 at t=1999.
      for (const at of [0, 0, 0, 0, 999, 999, 1999]) {
        clock.now = Date.UTC(2026, 0, 1, 12) + at;
        await twilioSend(sim.url, sms(TO));
      }
      await twilioSend(sim.url, sms('bad'));
      const stats = (await control<SimulatorStats>(sim.url, 'GET', 'stats')).body;
      const sender = stats.twilio.senders[LONG_CODE]!;
      assert.equal(sender.requests, 8);
      assert.equal(sender.accepted, 7);
      assert.deepEqual(sender.rejected, { '21211': 1 });
      assert.equal(sender.maxInAnyWindow, 6);
      assert.equal(sender.rateViolations, 0);
      assert.equal(sender.inFlight, 0);
      assert.equal(stats.twilio.maxInAnyWindow, 6);
      assert.equal(stats.telegram.requests, 0);
      assert.deepEqual(stats.contract.faults, { errors: 0, rateLimitBursts: 0, timeouts: 0 });
    });

    it('DELETE /_simulator/messages empties the log, the stats, the rate windows and idempotency records; configuration stays', async () => {
      const clock = new ManualClock();
      const sim = await start({ clock: clock.read, telegram: { blockedChats: [9] } });
      await twilioSend(sim.url, sms(TO), { idempotencyToken: 't1' });
      await telegramSend(sim.url, { chat_id: 1, text: 'x' });
      assert.equal((await control(sim.url, 'DELETE', 'messages')).status, 200);
      assert.deepEqual((await control(sim.url, 'GET', 'messages')).body, []);
      assert.equal(sim.stats().twilio.requests, 0);
      assert.equal(
        (await telegramSend(sim.url, { chat_id: 1, text: 'x' })).status,
        200,
        'the per-chat window was reset',
      );
      assert.equal((await twilioSend(sim.url, sms(TO), { idempotencyToken: 't1' })).status, 201);
      assert.equal(sim.messages().length, 2, 'the token is new again');
      assert.equal((await telegramSend(sim.url, { chat_id: 9, text: 'x' })).status, 403);
    });

    it('/_simulator/blocked marks and unmarks refusing recipients over HTTP', async () => {
      const sim = await start();
      assert.deepEqual((await control(sim.url, 'POST', 'blocked', { provider: 'twilio', recipient: TO })).body, {
        twilio: [TO],
        telegram: [],
        contract: [],
      });
      assert.equal((await twilioSend(sim.url, sms(TO))).body['code'], 21610);
      await control(sim.url, 'POST', 'blocked', { provider: 'telegram', recipient: 5 });
      assert.equal((await telegramSend(sim.url, { chat_id: 5, text: 'x' })).status, 403);
      await control(sim.url, 'DELETE', `blocked?provider=twilio&recipient=${encodeURIComponent(TO)}`);
      assert.deepEqual((await control(sim.url, 'GET', 'blocked')).body, { twilio: [], telegram: ['5'], contract: [] });
      assert.equal((await control(sim.url, 'POST', 'blocked', { provider: 'fax', recipient: 'x' })).status, 400);
    });
  });

  describe('fault knobs', () => {
    it("errorNext answers the next N calls with 5xx in each provider's error shape, only for its scope", async () => {
      const sim = await start();
      sim.setFaults({
        twilio: { errorNext: 1 },
        telegram: { errorNext: 1, errorStatus: 502 },
        contract: { errorNext: 1, errorStatus: 500 },
      });
      const twilio = await twilioSend(sim.url, sms(TO));
      assert.equal(twilio.status, 503);
      assert.deepEqual(twilio.body, {
        code: 20503,
        message: 'Service Unavailable',
        more_info: 'https://www.twilio.com/docs/errors/20503',
        status: 503,
      });
      const telegram = await telegramSend(sim.url, { chat_id: 1, text: 'x' });
      assert.deepEqual(
        [telegram.status, telegram.body],
        [502, { ok: false, error_code: 502, description: 'Bad Gateway' }],
      );
      const contract = await contractSend(sim.url, contractPayload('r1'));
      assert.deepEqual(
        [contract.status, contract.body],
        [500, { error: { code: 'InternalServerError', message: 'The provider failed to process the request.' } }],
      );
      assert.equal((await twilioSend(sim.url, sms(TO))).status, 201, 'the count is used up');
      assert.equal(sim.messages().length, 1);
      assert.equal(sim.stats().twilio.faults.errors, 1);
      assert.deepEqual(sim.faults(), {
        twilio: { errorNext: 0 },
        telegram: { errorNext: 0, errorStatus: 502 },
        contract: { errorNext: 0, errorStatus: 500 },
      });
    });

    it("rateLimitBurst: the next N calls get 429 with the provider's retry shape (Telegram retry_after, Retry-After header)", async () => {
      const sim = await start();
      sim.setFaults({ all: { rateLimitBurst: { count: 3, retryAfterSeconds: 7 } } });
      const telegram = await telegramSend(sim.url, { chat_id: 1, text: 'x' });
      assert.deepEqual(telegram.body, {
        ok: false,
        error_code: 429,
        description: 'Too Many Requests: retry after 7',
        parameters: { retry_after: 7 },
      });
      const twilio = await twilioSend(sim.url, sms(TO));
      assert.equal(twilio.status, 429);
      assert.equal(twilio.body['code'], 20429);
      assert.equal(twilio.headers.get('retry-after'), '7');
      const contract = await contractSend(sim.url, contractPayload('r1'));
      assert.equal(contract.status, 429);
      assert.equal(contract.headers.get('retry-after'), '7');
      assert.equal(
        (await contractSend(sim.url, contractPayload('r1'))).status,
        200,
        'the burst of 3 is over (shared by the `all` scope)',
      );
      const stats = sim.stats();
      assert.equal(stats.telegram.rateLimited, 1);
      assert.equal(stats.telegram.faults.rateLimitBursts, 1);
      assert.equal(stats.telegram.senders[BOT_ID]!.rateLimited, 1);
    });

    it('errorRate and timeoutRate are drawn from a seeded generator: the same seed gives the same answers', async () => {
      const run = async (seed: number): Promise<number[]> => {
        const sim = await start({ seed, faults: { contract: { errorRate: 0.5 } } });
        const statuses: number[] = [];
        for (let i = 0; i < 12; i++)
          statuses.push((await contractSend(sim.url, contractPayload(`r${i}`, 'to', `s${i}`))).status);
        return statuses;
      };
      const first = await run(42);
      assert.deepEqual(await run(42), first);
      assert.ok(first.includes(503) && first.includes(200), `a mix of answers: ${first.join(',')}`);
      const sim = await start({ seed: 1 });
      sim.setFaults({ telegram: { errorRate: 1 } });
      assert.equal((await telegramSend(sim.url, { chat_id: 1, text: 'x' })).status, 503);
      sim.setFaults({ telegram: { errorRate: 0 } });
      assert.equal((await telegramSend(sim.url, { chat_id: 1, text: 'x' })).status, 200);
    });

    it('timeoutNext holds the call without an answer until the client gives up; nothing is accepted', async () => {
      const sim = await start();
      sim.setFaults({ telegram: { timeoutNext: 1 } });
      const aborter = new AbortController();
      const call = telegramSend(sim.url, { chat_id: 1, text: 'x' }, { signal: aborter.signal });
      await waitFor('the call to be held', () => (sim.heldCalls() === 1 ? true : undefined));
      assert.equal(sim.stats().telegram.inFlight, 1);
      aborter.abort();
      await assert.rejects(call, { name: 'AbortError' });
      await waitFor('the held call to end', () =>
        sim.heldCalls() === 0 && sim.stats().telegram.inFlight === 0 ? true : undefined,
      );
      assert.equal(sim.messages().length, 0);
      assert.equal(sim.stats().telegram.faults.timeouts, 1);
      assert.equal((await telegramSend(sim.url, { chat_id: 1, text: 'x' })).status, 200, 'only the next one was held');
    });

    it('timeoutAfterAccept: the message is accepted and logged, only the answer is lost (a retry then duplicates)', async () => {
      const sim = await start({ seed: 7 });
      sim.setFaults({ telegram: { timeoutRate: 1, timeoutAfterAccept: true } });
      const aborter = new AbortController();
      const call = telegramSend(sim.url, { chat_id: 1, text: 'x' }, { signal: aborter.signal, idempotencyKey: 'a1' });
      await waitFor('the message to be logged', () => (sim.messages().length === 1 ? true : undefined));
      assert.equal(sim.heldCalls(), 1);
      aborter.abort();
      await assert.rejects(call);
      assert.equal(sim.messages()[0]!.idempotencyKey, 'a1');
    });

    it('errorAfterAccept: the message is accepted and logged, and the answer is the 5xx all the same', async () => {
      const sim = await start({ seed: 7 });
      sim.setFaults({ twilio: { errorNext: 1, errorStatus: 502, errorAfterAccept: true } });
      const res = await twilioSend(sim.url, sms(TO));
      assert.equal(res.status, 502);
      assert.equal(sim.messages({ provider: 'twilio' }).length, 1, 'Twilio has the message');
      assert.equal(sim.stats().twilio.faults.errors, 1);
      assert.equal((await twilioSend(sim.url, sms(TO))).status, 201, 'only the next one failed');
      assert.equal(sim.messages({ provider: 'twilio' }).length, 2);
    });

    it('latencyMs holds each answer: the call stays in flight while another provider answers', async () => {
      const sim = await start();
      sim.setFaults({ twilio: { latencyMs: { min: 60_000, max: 61_000 } } });
      const aborter = new AbortController();
      const slow = twilioSend(sim.url, sms(TO), { signal: aborter.signal });
      await waitFor('the Twilio call in flight', () => (sim.stats().twilio.inFlight === 1 ? true : undefined));
      assert.equal((await telegramSend(sim.url, { chat_id: 1, text: 'x' })).status, 200);
      assert.equal(sim.stats().twilio.inFlight, 1, 'still waiting');
      assert.equal(sim.messages({ provider: 'twilio' }).length, 0);
      aborter.abort();
      await assert.rejects(slow);
    });

    it('PUT/GET/DELETE /_simulator/faults set, show and clear the knobs; bad settings are a 400 naming the key', async () => {
      const sim = await start();
      const spec: FaultsSpec = { all: { latencyMs: 0 }, contract: { errorNext: 2 } };
      assert.deepEqual((await control(sim.url, 'PUT', 'faults', spec)).body, spec);
      assert.equal((await contractSend(sim.url, contractPayload('r1'))).status, 503);
      assert.deepEqual((await control(sim.url, 'GET', 'faults')).body, {
        all: { latencyMs: 0 },
        contract: { errorNext: 1 },
      });
      // A scope named again is replaced; others stay.
      await control(sim.url, 'PUT', 'faults', { contract: { errorRate: 0 } });
      assert.deepEqual(sim.faults(), { all: { latencyMs: 0 }, contract: { errorRate: 0 } });
      const bad = await control<{ error: { code: string; message: string } }>(sim.url, 'PUT', 'faults', {
        telegram: { errorRate: 2, timeoutNext: -1 },
        sms: {},
      });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error.message, /faults\.telegram\.errorRate: expected a fraction from 0 to 1, found 2/);
      assert.match(bad.body.error.message, /faults\.telegram\.timeoutNext: expected an integer >= 0/);
      assert.match(bad.body.error.message, /faults\.sms: unknown scope/);
      assert.deepEqual((await control(sim.url, 'DELETE', 'faults')).body, {});
      assert.throws(
        () => sim.setFaults({ twilio: { errorStatus: 404 as 503 } }),
        /faults\.twilio\.errorStatus: expected 500, 502 or 503/,
      );
    });
  });

  describe('options', () => {
    it('bad options fail at start with every problem named', async () => {
      await assert.rejects(
        startProviderSimulators({
          port: -1,
          latencyMs: -5,
          twilio: { longCodeMps: 0, mpsBySender: { '+49': 1.5 } },
          telegram: { perChat: 0 },
          contract: { secrets: ['not base64!'] },
        }),
        (err: Error) => {
          assert.equal(err.name, 'TypeError');
          for (const part of [
            'port: expected an integer 0-65535',
            'latencyMs: expected ms >= 0',
            'twilio.longCodeMps: expected an integer >= 1',
            'twilio.mpsBySender.+49',
            'telegram.perChat',
            "contract.secrets[0]: expected 'whsec_' followed by base64",
          ]) {
            assert.ok(err.message.includes(part), `mentions ${part}: ${err.message}`);
          }
          return true;
        },
      );
    });

    it('close() is idempotent and ends held calls', async () => {
      const sim = await startProviderSimulators({ faults: { all: { timeoutNext: 1 } } });
      const call = twilioSend(sim.url, sms(TO));
      await waitFor('the call to be held', () => (sim.heldCalls() === 1 ? true : undefined));
      await Promise.all([sim.close(), sim.close()]);
      await assert.rejects(call);
    });
  });
});
