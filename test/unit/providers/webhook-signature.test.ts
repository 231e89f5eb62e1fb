import assert from 'node:assert/strict';
import {
  signWebhook,
  verifyWebhook,
  webhookHeaders,
  webhookSecretKey,
  WEBHOOK_TOLERANCE_SECONDS,
} from '../../../src/providers/index.js';

// The test vector of the Standard Webhooks reference library (standard-webhooks/standard-webhooks,
// libraries/javascript/src/webhook.test.ts, "sign function works").
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const OTHER_SECRET = `whsec_${Buffer.from('another secret of thirty-two bytes').toString('base64')}`;

function headersAt(secret: string | string[], nowMs: number, body = VECTOR.payload): Record<string, string> {
  return { ...webhookHeaders(secret, VECTOR.id, body, nowMs) };
}

describe('Standard Webhooks signatures', () => {
  it("signs the spec library's test vector", () => {
    assert.equal(signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.payload), VECTOR.signature);
    assert.equal(
      signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, Buffer.from(VECTOR.payload)),
      VECTOR.signature,
    );
  });

  it('accepts the secret with or without its whsec_ prefix', () => {
    assert.deepEqual(webhookSecretKey(VECTOR.secret), webhookSecretKey(VECTOR.secret.slice('whsec_'.length)));
  });

  it('verifies the test vector at its own time', () => {
    const headers = {
      'webhook-id': VECTOR.id,
      'webhook-timestamp': String(VECTOR.timestamp),
      'webhook-signature': VECTOR.signature,
    };
    assert.deepEqual(
      verifyWebhook(VECTOR.payload, headers, { secrets: VECTOR.secret, nowMs: VECTOR.timestamp * 1000 }),
      { ok: true, id: VECTOR.id, timestamp: VECTOR.timestamp },
    );
  });

  it('round-trips: the headers made now verify now, from a plain object or a fetch Headers, in any case', () => {
    const now = Date.now();
    const headers = headersAt(VECTOR.secret, now);
    assert.equal(headers['webhook-timestamp'], String(Math.floor(now / 1000)));
    assert.equal(verifyWebhook(VECTOR.payload, headers, { secrets: VECTOR.secret }).ok, true);
    assert.equal(verifyWebhook(VECTOR.payload, new Headers(headers), { secrets: VECTOR.secret }).ok, true);
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    assert.equal(verifyWebhook(Buffer.from(VECTOR.payload), upper, { secrets: VECTOR.secret }).ok, true);
  });

  it('refuses a tampered body', () => {
    const headers = headersAt(VECTOR.secret, Date.now());
    const result = verifyWebhook('{"test": 2432232315}', headers, { secrets: VECTOR.secret });
    assert.deepEqual(result.ok ? undefined : result.reason, 'no-matching-signature');
  });

  it('refuses another secret, a changed id and a signature of another version', () => {
    const now = Date.now();
    const headers = headersAt(VECTOR.secret, now);
    const wrongSecret = verifyWebhook(VECTOR.payload, headers, { secrets: OTHER_SECRET });
    assert.equal(wrongSecret.ok ? 'ok' : wrongSecret.reason, 'no-matching-signature');
    const wrongId = verifyWebhook(
      VECTOR.payload,
      { ...headers, 'webhook-id': 'msg_other' },
      { secrets: VECTOR.secret },
    );
    assert.equal(wrongId.ok ? 'ok' : wrongId.reason, 'no-matching-signature');
    const v2 = verifyWebhook(
      VECTOR.payload,
      { ...headers, 'webhook-signature': headers['webhook-signature']!.replace('v1,', 'v2,') },
      { secrets: VECTOR.secret },
    );
    assert.equal(v2.ok ? 'ok' : v2.reason, 'no-matching-signature');
    const partial = verifyWebhook(
      VECTOR.payload,
      { ...headers, 'webhook-signature': headers['webhook-signature']!.slice(0, 8) },
      { secrets: VECTOR.secret },
    );
    assert.equal(partial.ok ? 'ok' : partial.reason, 'no-matching-signature');
  });

  it('refuses a timestamp outside the 5 minute tolerance, either way, and accepts one at its edge', () => {
    const now = Date.now();
    const stale = headersAt(VECTOR.secret, now - (WEBHOOK_TOLERANCE_SECONDS + 1) * 1000);
    const r1 = verifyWebhook(VECTOR.payload, stale, { secrets: VECTOR.secret, nowMs: now });
    assert.equal(r1.ok ? 'ok' : r1.reason, 'timestamp-too-old');
    const future = headersAt(VECTOR.secret, now + (WEBHOOK_TOLERANCE_SECONDS + 1) * 1000);
    const r2 = verifyWebhook(VECTOR.payload, future, { secrets: VECTOR.secret, nowMs: now });
    assert.equal(r2.ok ? 'ok' : r2.reason, 'timestamp-too-new');
    const edge = headersAt(VECTOR.secret, now - (WEBHOOK_TOLERANCE_SECONDS - 1) * 1000);
    assert.equal(verifyWebhook(VECTOR.payload, edge, { secrets: VECTOR.secret, nowMs: now }).ok, true);
    const r3 = verifyWebhook(VECTOR.payload, headersAt(VECTOR.secret, now - 20_000), {
      secrets: VECTOR.secret,
      nowMs: now,
      toleranceSeconds: 10,
    });
    assert.equal(r3.ok ? 'ok' : r3.reason, 'timestamp-too-old');
  });

  it('refuses missing headers and a timestamp that is not Unix seconds', () => {
    const headers = headersAt(VECTOR.secret, Date.now());
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
      const without = { ...headers };
      delete without[name];
      const r = verifyWebhook(VECTOR.payload, without, { secrets: VECTOR.secret });
      assert.equal(r.ok ? 'ok' : r.reason, 'missing-headers', name);
    }
    const r = verifyWebhook(VECTOR.payload, { ...headers, 'webhook-timestamp': 'hello' }, { secrets: VECTOR.secret });
    assert.equal(r.ok ? 'ok' : r.reason, 'invalid-timestamp');
  });

  describe('rotation', () => {
    it('signs with every secret given, one v1 entry each', () => {
      const value = signWebhook([OTHER_SECRET, VECTOR.secret], VECTOR.id, VECTOR.timestamp, VECTOR.payload);
      const entries = value.split(' ');
      assert.equal(entries.length, 2);
      assert.equal(entries[1], VECTOR.signature);
    });

    it('accepts a header with several signatures when one matches (new and old secret)', () => {
      const now = Date.now();
      const headers = headersAt([OTHER_SECRET, VECTOR.secret], now);
      assert.equal(
        verifyWebhook(VECTOR.payload, headers, { secrets: VECTOR.secret }).ok,
        true,
        'a receiver still on the old secret',
      );
      assert.equal(
        verifyWebhook(VECTOR.payload, headers, { secrets: OTHER_SECRET }).ok,
        true,
        'a receiver already on the new one',
      );
    });

    it('accepts several secrets at once (a sender still on the old one)', () => {
      const headers = headersAt(VECTOR.secret, Date.now());
      assert.equal(verifyWebhook(VECTOR.payload, headers, { secrets: [OTHER_SECRET, VECTOR.secret] }).ok, true);
    });

    it('accepts unknown signature entries around the matching one', () => {
      const headers = headersAt(VECTOR.secret, Date.now());
      const noisy = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc ${headers['webhook-signature']} v1,`;
      assert.equal(
        verifyWebhook(VECTOR.payload, { ...headers, 'webhook-signature': noisy }, { secrets: VECTOR.secret }).ok,
        true,
      );
    });
  });

  it('throws a TypeError for a secret that is not base64, without showing it', () => {
    assert.throws(
      () => webhookSecretKey('whsec_not*base64!'),
      (err: Error) => err instanceof TypeError && !err.message.includes('not*base64'),
    );
    assert.throws(() => webhookSecretKey('whsec_'), TypeError);
    assert.throws(() => signWebhook([], 'id', 1, 'x'), TypeError);
  });
});
