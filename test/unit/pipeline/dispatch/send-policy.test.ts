import assert from 'node:assert/strict';
import sinon from 'sinon';
import { ProviderError, type CodeOf } from '../../../../src/errors.js';
import {
  ANSWER_MAX_CHARS,
  createSendPolicy,
  decide,
  describeProviderAnswer,
  describeProviderError,
  failureDetail,
  rateLimitPause,
  resolveSendRetryOptions,
  retryAfterMs,
  scrub,
  SEND_RETRY_DEFAULTS,
  type SendDecision,
} from '../../../../src/pipeline/dispatch/send-policy.js';
import {
  decodeSessionState,
  encodeSessionState,
  firstSendAt,
  MAX_HANDED_OVER_PAUSE_MS,
} from '../../../../src/pipeline/dispatch/session-state.js';

describe('send policy', () => {
  describe('decide', () => {
    const table: Array<[CodeOf<'provider'>, SendDecision]> = [
      ['ProviderRateLimited', 'rateLimited'],
      ['ProviderUnavailable', 'transient'],
      ['ProviderTimeout', 'transient'],
      ['ProviderBadResponse', 'transient'],
      ['ProviderAnswerUnreadable', 'unconfirmed'],
      ['ProviderRejected', 'rejected'],
      ['ProviderUnauthorized', 'unauthorized'],
    ];
    for (const [code, decision] of table) {
      it(`${code} → ${decision}`, () =>
        assert.equal(decide(new ProviderError(code, 'whatever the message says')), decision));
    }
    it('anything that is not a ProviderError is unexpected', () => {
      assert.equal(decide(new Error('ProviderRateLimited')), 'unexpected');
      assert.equal(decide('boom'), 'unexpected');
    });
  });

  describe('retries', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => (clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })));
    afterEach(() => clock.restore());

    async function runWith(failures: ProviderError[], options = {}) {
      const policy = createSendPolicy(resolveSendRetryOptions({ initialDelayMs: 100, maxDelayMs: 400, ...options }));
      let calls = 0;
      const times: number[] = [];
      const result = policy.execute(async () => {
        times.push(Date.now());
        const failure = failures[calls++];
        if (failure) throw failure;
        return 'ok';
      });
      result.catch(() => undefined);
      await clock.tickAsync(60_000);
      return { result, calls: () => calls, times };
    }

    it('retries transient failures with growing, bounded delays', async () => {
      const { result, calls, times } = await runWith(
        [0, 1, 2].map(() => new ProviderError('ProviderUnavailable', '503')),
      );
      assert.equal(await result, 'ok');
      assert.equal(calls(), 4);
      const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
      assert.ok(
        gaps.every((g) => g <= 400),
        `bounded by maxDelay: ${gaps.join(', ')}`,
      );
    });

    it('gives up after retry.attempts with the last error', async () => {
      const last = new ProviderError('ProviderTimeout', 'last');
      const { result, calls } = await runWith([new ProviderError('ProviderUnavailable', 'first'), last], {
        attempts: 2,
      });
      await assert.rejects(result, (err) => err === last);
      assert.equal(calls(), 2);
    });

    it('retries 429s at once (the sender pause is the wait), bounded separately', async () => {
      const rl = () => new ProviderError('ProviderRateLimited', '429');
      const { result, calls, times } = await runWith([rl(), rl(), rl()], { rateLimitAttempts: 3, attempts: 1 });
      await assert.rejects(result, /429/);
      assert.equal(calls(), 3);
      // (fake timers run a 0 ms timer set during a tick 1 ms later)
      assert.ok((times.at(-1) as number) - (times[0] as number) <= 2, `no backoff of its own: ${times.join(', ')}`);
    });

    it('does not retry a 2xx answer it cannot read, and retries one that is not 2xx', async () => {
      const unconfirmed = await runWith([
        new ProviderError('ProviderAnswerUnreadable', 'no sid', { upstream: { status: 201, body: {} } }),
      ]);
      await assert.rejects(unconfirmed.result, /no sid/);
      assert.equal(unconfirmed.calls(), 1);
      const proxy = await runWith([
        new ProviderError('ProviderBadResponse', 'html', { upstream: { status: 502, body: '<html>' } }),
      ]);
      assert.equal(await proxy.result, 'ok');
      assert.equal(proxy.calls(), 2);
    });

    it('does not retry a refusal', async () => {
      const { result, calls } = await runWith([new ProviderError('ProviderRejected', 'invalid number')]);
      await assert.rejects(result, /invalid number/);
      assert.equal(calls(), 1);
    });

    it('tells each transient backoff delay before it is waited, not the 429 retries', async () => {
      const delays: Array<[number, number]> = [];
      const policy = createSendPolicy(resolveSendRetryOptions({ initialDelayMs: 100, maxDelayMs: 400 }), (ms) =>
        delays.push([ms, Date.now()]),
      );
      const failures = [
        new ProviderError('ProviderUnavailable', '503'),
        new ProviderError('ProviderRateLimited', '429'),
        new ProviderError('ProviderTimeout', 'slow'),
      ];
      const times: number[] = [];
      let n = 0;
      const result = policy.execute(async () => {
        times.push(Date.now());
        const failure = failures[n++];
        if (failure) throw failure;
        return 'ok';
      });
      await clock.tickAsync(10_000);
      assert.equal(await result, 'ok');
      assert.equal(delays.length, 2, 'two transient backoffs');
      // Told when the backoff begins (the failed call's time), and the next call comes that much later.
      assert.equal(delays[0]?.[1], times[0]);
      assert.ok(
        (times[1] as number) - (times[0] as number) >= Math.floor(delays[0]?.[0] ?? Infinity),
        'the backoff told is the one waited',
      );
      assert.ok(
        delays.every(([ms]) => ms > 0 && ms <= 400),
        JSON.stringify(delays),
      );
    });

    it('caps a 429 pause at maxThrottleWaitMs, and names what the provider asked for', () => {
      const options = resolveSendRetryOptions({ maxThrottleWaitMs: 60_000 });
      assert.deepEqual(
        rateLimitPause(new ProviderError('ProviderRateLimited', '429', { retryAfterMs: 600_000 }), options),
        { pauseMs: 60_000, askedMs: 600_000 },
      );
      assert.deepEqual(
        rateLimitPause(new ProviderError('ProviderRateLimited', '429', { retryAfterMs: 7000 }), options),
        { pauseMs: 7000, askedMs: 7000 },
      );
      assert.deepEqual(rateLimitPause(new ProviderError('ProviderRateLimited', '429'), options), {
        pauseMs: 1000,
        askedMs: 1000,
      });
    });

    it('validates its options', () => {
      assert.deepEqual(resolveSendRetryOptions(), SEND_RETRY_DEFAULTS);
      assert.equal(SEND_RETRY_DEFAULTS.maxThrottleWaitMs, 60_000);
      assert.throws(
        () => resolveSendRetryOptions({ maxThrottleWaitMs: 0 }),
        /maxThrottleWaitMs must be an integer >= 1, found 0/,
      );
      assert.throws(
        () => resolveSendRetryOptions({ rateLimitAttempts: -1 }),
        /rateLimitAttempts must be an integer >= 1, found -1/,
      );
      assert.throws(
        () => resolveSendRetryOptions({ initialDelayMs: 500, maxDelayMs: 100 }),
        /maxDelayMs \(100\) must be >= initialDelayMs \(500\)/,
      );
    });
  });

  describe('describing errors', () => {
    it("keeps code, status, the provider's code and message, and masks the recipient", () => {
      const err = new ProviderError('ProviderRejected', "The 'To' number +15551234567 is not valid", {
        upstream: { status: 400, code: 21211 },
      });
      const text = describeProviderError(err, '+15551234567');
      assert.equal(
        text,
        "ProviderRejected, status 400, upstream code 21211: The 'To' number +*******4567 is not valid",
      );
      assert.deepEqual(failureDetail(err, '+15551234567'), {
        code: 21211,
        message: "The 'To' number +*******4567 is not valid",
      });
    });

    it('masks a chat id and names the retry delay', () => {
      const err = new ProviderError('ProviderRateLimited', 'Too Many Requests for chat 987654321', {
        upstream: { status: 429 },
        retryAfterMs: 3000,
      });
      assert.equal(
        describeProviderError(err, '987654321'),
        'ProviderRateLimited, status 429, retry after 3000 ms: Too Many Requests for chat *****4321',
      );
      assert.equal(retryAfterMs(err, 1000), 3000);
      assert.equal(retryAfterMs(new ProviderError('ProviderRateLimited', 'x'), 1000), 1000);
    });

    it("renders the provider's answer for a dead letter: status, content type, body, bounded, without the recipient", () => {
      const err = new ProviderError('ProviderAnswerUnreadable', 'no sid', {
        upstream: {
          status: 201,
          headers: { 'content-type': 'application/json' },
          body: { to: '+15551234567', status: 'queued' },
        },
      });
      assert.equal(
        describeProviderAnswer(err, '+15551234567'),
        'HTTP 201 (application/json), body: {"to":"+*******4567","status":"queued"}',
      );
      const long = new ProviderError('ProviderBadResponse', 'x', {
        upstream: { status: 200, body: 'y'.repeat(ANSWER_MAX_CHARS + 10) },
      });
      assert.match(
        describeProviderAnswer(long, 'z'),
        new RegExp(`^HTTP 200, body: y{${ANSWER_MAX_CHARS}}… \\(${ANSWER_MAX_CHARS + 10} characters\\)$`),
      );
      assert.equal(
        describeProviderAnswer(
          new ProviderError('ProviderBadResponse', 'x', { upstream: { status: 204, body: '' } }),
          'z',
        ),
        'HTTP 204, body: (empty)',
      );
      assert.equal(describeProviderAnswer(new Error('x'), 'z'), '(no answer)');
    });

    it('describes errors that are not ProviderErrors', () => {
      assert.equal(describeProviderError(new TypeError('fetch failed'), 'x'), 'TypeError: fetch failed');
      assert.deepEqual(failureDetail('odd', 'x'), { code: 'unexpected', message: 'odd' });
      assert.equal(scrub('to @someone', '@someone'), 'to ***');
    });
  });
});

describe('session state', () => {
  it('round-trips', () => {
    const buf = encodeSessionState({ v: 3, clean: true, holdMs: 3030, pauseMs: 99 });
    assert.equal(buf.toString(), '{"v":3,"clean":true,"holdMs":3030,"pauseMs":99}');
    assert.deepEqual(decodeSessionState(buf), { ok: true, state: { v: 3, clean: true, holdMs: 3030, pauseMs: 99 } });
    const before = encodeSessionState({
      v: 3,
      holdMs: 5,
      callHoldMs: 3030,
      inFlight: [
        ['act-1', 7],
        ['act-2', 7],
      ],
    });
    assert.equal(before.toString(), '{"v":3,"holdMs":5,"callHoldMs":3030,"inFlight":[["act-1",7],["act-2",7]]}');
    assert.deepEqual(decodeSessionState(before), {
      ok: true,
      state: {
        v: 3,
        holdMs: 5,
        callHoldMs: 3030,
        inFlight: [
          ['act-1', 7],
          ['act-2', 7],
        ],
      },
    });
  });

  it('reads a version 2 state as it was written, and a version 1 state (written only at a release) as a clean version 2 one', () => {
    assert.deepEqual(
      decodeSessionState(Buffer.from('{"v":2,"sentAt":[30,10],"pausedUntil":99,"inFlight":[["k",7]]}')),
      {
        ok: true,
        state: { v: 2, sentAt: [10, 30], pausedUntil: 99, inFlight: [['k', 7]] },
      },
    );
    assert.deepEqual(decodeSessionState(Buffer.from('{"v":1,"sentAt":[10],"pausedUntil":99}')), {
      ok: true,
      state: { v: 2, clean: true, sentAt: [10], pausedUntil: 99 },
    });
  });

  it('no state is not an error', () => {
    assert.deepEqual(decodeSessionState(undefined), { ok: true, state: undefined });
    assert.deepEqual(decodeSessionState(Buffer.alloc(0)), { ok: true, state: undefined });
  });

  const bad: Array<[string, string]> = [
    ['{', 'not JSON'],
    ['[1]', 'not a JSON object'],
    ['{"v":4,"holdMs":0}', 'version 4 is not 1, 2 or 3'],
    ['{"v":3}', 'holdMs must be a number >= 0, not undefined'],
    ['{"v":3,"holdMs":-1}', 'holdMs must be a number >= 0, not -1'],
    ['{"v":3,"holdMs":0,"callHoldMs":"3s"}', 'callHoldMs must be a number >= 0, not "3s"'],
    ['{"v":3,"holdMs":0,"pauseMs":null}', 'pauseMs must be a number >= 0, not null'],
    ['{"v":2,"sentAt":[],"inFlight":[["k"]]}', 'inFlight must be an array of \\[key, ms\\] pairs'],
    ['{"v":3,"holdMs":0,"inFlight":[["",1]]}', 'inFlight must be an array'],
    ['{"v":1,"sentAt":["x"]}', 'sentAt must be an array of numbers'],
    ['{"v":1,"sentAt":[],"pausedUntil":"soon"}', 'pausedUntil must be a number'],
  ];
  for (const [text, reason] of bad) {
    it(`refuses ${text}`, () => {
      const decoded = decodeSessionState(Buffer.from(text));
      assert.equal(decoded.ok, false);
      assert.match(decoded.ok ? '' : decoded.reason, new RegExp(reason.replace(/[()]/g, '\\$&')));
    });
  }

  /** A sender of 1 segment a second (1000 + 50 ms guard) whose costliest call counts 1,600 segments. */
  const limits = { windowMs: 1050, maxHoldMs: 1600 * 1050 };
  const now = 1000;

  it('after a clean release, the first send waits for the hold the last holder left, counted from now, and for a running pause', () => {
    assert.equal(firstSendAt(undefined, limits, now), now, 'no state: at once');
    assert.equal(firstSendAt({ v: 3, clean: true, holdMs: 0 }, limits, now), now, 'at once');
    assert.equal(firstSendAt({ v: 3, clean: true, holdMs: 400 }, limits, now), now + 400);
    assert.equal(
      firstSendAt({ v: 3, clean: true, holdMs: 3150 }, limits, now),
      now + 3150,
      'a 3-segment call: three windows, not one',
    );
    assert.equal(firstSendAt({ v: 3, clean: true, holdMs: 100, pauseMs: 4000 }, limits, now), now + 4000);
  });

  it('without a clean release, assumes the costliest call of the batch ended at the takeover: its hold from now, at least one window, and what the state records', () => {
    assert.equal(firstSendAt({ v: 3, holdMs: 0 }, limits, now), now + 1050, 'one window at least');
    assert.equal(
      firstSendAt({ v: 3, holdMs: 0, callHoldMs: 3150 }, limits, now),
      now + 3150,
      'a batch with a 3-segment message: three windows',
    );
    assert.equal(
      firstSendAt({ v: 3, holdMs: 5000, callHoldMs: 1050 }, limits, now),
      now + 5000,
      "an earlier call's longer hold",
    );
    assert.equal(firstSendAt({ v: 3, holdMs: 0, callHoldMs: 1050, pauseMs: 9000 }, limits, now), now + 9000);
    assert.equal(
      firstSendAt({ v: 3, clean: true, holdMs: 0, callHoldMs: 3150 }, limits, now),
      now,
      "a clean state's callHoldMs means nothing",
    );
  });

  it('honours a hold for at most the longest one call can cause, and a pause for at most 5 min', () => {
    assert.equal(firstSendAt({ v: 3, clean: true, holdMs: 86_400_000 }, limits, now), now + 1600 * 1050);
    assert.equal(firstSendAt({ v: 3, holdMs: 0, callHoldMs: 86_400_000 }, limits, now), now + 1600 * 1050);
    assert.equal(
      firstSendAt({ v: 3, holdMs: 0, callHoldMs: 86_400_000 }, { windowMs: 1050, maxHoldMs: 1050 }, now),
      now + 1050,
      'a sender whose calls all cost 1',
    );
    assert.equal(
      firstSendAt({ v: 3, clean: true, holdMs: 0, pauseMs: 86_400_000 }, limits, now),
      now + MAX_HANDED_OVER_PAUSE_MS,
    );
  });

  it("reads a version 2 state's times as they are: the last call's window, a pause, one window from the takeover without a clean release", () => {
    assert.equal(firstSendAt({ v: 2, clean: true, sentAt: [] }, limits, now), now);
    assert.equal(firstSendAt({ v: 2, clean: true, sentAt: [100, 400] }, limits, now), 1450);
    assert.equal(firstSendAt({ v: 2, clean: true, sentAt: [100], pausedUntil: 5000 }, limits, now), 5000);
    assert.equal(
      firstSendAt({ v: 2, clean: true, sentAt: [now + 2100] }, limits, now),
      now + 3150,
      "a 3-segment call (its last window's start): three windows",
    );
    assert.equal(
      firstSendAt({ v: 2, sentAt: [] }, limits, now),
      now + 1050,
      'no call recorded: its calls after the write are unknown',
    );
    assert.equal(firstSendAt({ v: 2, sentAt: [100, 400] }, limits, now), now + 1050);
    assert.equal(firstSendAt({ v: 2, sentAt: [], pausedUntil: 9000 }, limits, now), 9000);
    assert.equal(
      firstSendAt({ v: 2, sentAt: [], pausedUntil: now + 86_400_000 }, limits, now),
      now + MAX_HANDED_OVER_PAUSE_MS,
    );
  });

  it('a version 2 state from a clock ahead of ours costs at most the longest hold of one call, and 5 min of pause', () => {
    assert.equal(firstSendAt({ v: 2, clean: true, sentAt: [now + 3_600_000] }, limits, now), now + 1600 * 1050);
    assert.equal(
      firstSendAt({ v: 2, clean: true, sentAt: [now + 3_600_000] }, { windowMs: 1050, maxHoldMs: 1050 }, now),
      now + 1050,
    );
    assert.equal(
      firstSendAt({ v: 2, clean: true, sentAt: [], pausedUntil: now + 86_400_000 }, limits, now),
      now + MAX_HANDED_OVER_PAUSE_MS,
    );
  });
});
