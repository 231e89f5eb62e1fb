import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { secretKey, verifyStandardWebhook } from '../../../../src/emulators/providers/standard-webhooks.js';

// The example of the Standard Webhooks specification's reference libraries.
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TS = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

function sign(secret: string, id: string, ts: number, body: string): string {
  return `v1,${createHmac('sha256', secretKey(secret)).update(`${id}.${ts}.${body}`).digest('base64')}`;
}

describe('provider simulators: Standard Webhooks verification', () => {
  const base = { secrets: [SPEC_SECRET], body: SPEC_BODY, nowSeconds: SPEC_TS };

  it('verifies the specification example', () => {
    assert.deepEqual(
      verifyStandardWebhook({
        ...base,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      }),
      { ok: true },
    );
    assert.equal(sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIGNATURE);
  });

  const table: Array<[string, Parameters<typeof verifyStandardWebhook>[0], RegExp | true]> = [
    [
      'missing id',
      { ...base, headers: { timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE } },
      /missing webhook-id/,
    ],
    [
      'missing timestamp',
      { ...base, headers: { id: SPEC_ID, signature: SPEC_SIGNATURE } },
      /missing webhook-timestamp/,
    ],
    [
      'missing signature',
      { ...base, headers: { id: SPEC_ID, timestamp: String(SPEC_TS) } },
      /missing webhook-signature/,
    ],
    [
      'timestamp not seconds',
      { ...base, headers: { id: SPEC_ID, timestamp: '2021-02-25', signature: SPEC_SIGNATURE } },
      /must be Unix seconds/,
    ],
    [
      'timestamp 301 s old',
      {
        ...base,
        nowSeconds: SPEC_TS + 301,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      /301 s from now \(tolerance 300 s\)/,
    ],
    [
      'timestamp 300 s old',
      {
        ...base,
        nowSeconds: SPEC_TS + 300,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      true,
    ],
    [
      'timestamp in the future',
      {
        ...base,
        nowSeconds: SPEC_TS - 301,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      /-301 s from now/,
    ],
    [
      'custom tolerance',
      {
        ...base,
        nowSeconds: SPEC_TS + 20,
        toleranceSeconds: 10,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      /tolerance 10 s/,
    ],
    [
      'other id',
      { ...base, headers: { id: 'msg_other', timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE } },
      /no webhook-signature entry matches/,
    ],
    [
      'changed body',
      {
        ...base,
        body: '{"test": 2432232315}',
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      /no webhook-signature entry matches/,
    ],
    [
      'v2 only',
      {
        ...base,
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE.replace('v1,', 'v2,') },
      },
      /no 'v1,<base64>' entry/,
    ],
    [
      'one good among several',
      { ...base, headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: `v1,Zm9v v1a,xx ${SPEC_SIGNATURE}` } },
      true,
    ],
    [
      'rotated secrets',
      {
        ...base,
        secrets: ['whsec_b2xkIHNlY3JldA==', SPEC_SECRET],
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      true,
    ],
    [
      'bare base64 secret',
      {
        ...base,
        secrets: [SPEC_SECRET.slice(6)],
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      true,
    ],
    [
      'a Buffer body',
      {
        ...base,
        body: Buffer.from(SPEC_BODY),
        headers: { id: SPEC_ID, timestamp: String(SPEC_TS), signature: SPEC_SIGNATURE },
      },
      true,
    ],
  ];
  for (const [name, options, expected] of table) {
    it(name, () => {
      const result = verifyStandardWebhook(options);
      if (expected === true) assert.deepEqual(result, { ok: true });
      else {
        assert.equal(result.ok, false);
        assert.match((result as { reason: string }).reason, expected);
      }
    });
  }

  it('refuses a secret that is not base64', () => {
    assert.throws(() => secretKey('whsec_not base64!'), /'whsec_' followed by base64/);
  });
});
