/**
 * The Twilio simulator signs its callbacks each way Twilio may (`twilio.signing`), with its own signer, and the relay's
 * callbacks service, listening on loopback, verifies them: the auth token with HMAC-SHA1, a SharedKey with HMAC-SHA256
 * or HMAC-SHA1 and its settings header, the URL without its port, the legacy query encoding. A key the relay does not
 * have is refused.
 */
import assert from 'node:assert/strict';
import type { Channel } from '../../../../src/channels/index.js';
import type { ProviderSimulatorsOptions, TwilioSigning } from '../../../../src/emulators/providers/index.js';
import { freePort } from '../../../../src/http/index.js';
import { CallbacksStage, sealContext } from '../../../../src/pipeline/callbacks/index.js';
import { ACCOUNT, LONG_CODE, simulators, sms, TOKEN, twilioSend } from '../../emulators/providers/helpers.js';
import { context, harness, KEYS, PHONE, SMS, type Harness } from '../../../unit/pipeline/callbacks/fakes.js';

const SHARED_KEY = { sid: 'KS00000000000000000000000000000001', secret: 'a-shared-key-secret-of-the-rule' };

describe('callbacks: the Twilio simulator signs each way, the relay verifies', function () {
  this.timeout(30_000);
  const start = simulators();
  let stage: CallbacksStage | undefined;
  let h: Harness;
  afterEach(async () => {
    await stage?.close();
    stage = undefined;
  });

  /** The relay on a free port, its `sms` channel on the simulator's account, public at that port. */
  async function relay(): Promise<string> {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const channel: Channel = {
      ...SMS,
      provider: { type: 'twilio', accountSid: ACCOUNT, authToken: TOKEN },
      sender: LONG_CODE,
      callbacks: { ...SMS.callbacks!, publicBaseUrl: base, sharedKeySecret: SHARED_KEY.secret },
    };
    h = harness({ channels: { byName: (n) => (n === 'sms' ? channel : undefined), all: () => [channel] } });
    stage = new CallbacksStage({ ...h.deps, host: '127.0.0.1', port });
    await stage.start();
    return base;
  }

  /** Sends one message whose StatusCallback (and replies) go to the relay; resolves to the simulator's records of its callbacks. */
  async function roundTrip(signing: TwilioSigning, query = '') {
    const base = await relay();
    const options: ProviderSimulatorsOptions = {
      seed: 7,
      callbacks: { delayMs: 0, maxRetries: 0 },
      recipients: { replyRate: 1, keywords: ['INFO'] },
      twilio: { signing, inboundUrls: { [LONG_CODE]: `${base}/callbacks/sms/twilio/inbound` } },
    };
    const sim = await start(options);
    const statusCallback = `${base}/callbacks/sms/twilio/status?t=${sealContext(context(1), 'sms', KEYS)}${query}`;
    const sent = await twilioSend(sim.url, { ...sms(PHONE, 'Reply INFO'), StatusCallback: statusCallback });
    assert.equal(sent.status, 201);
    await sim.callbacksIdle();
    return sim.callbacks({ provider: 'twilio' });
  }

  const accepted: Array<[string, TwilioSigning, string?]> = [
    ['the auth token, HMAC-SHA1, the URL as called (the default)', {}],
    [
      'a SharedKey with HMAC-SHA256 and its settings header',
      { sharedKey: { ...SHARED_KEY, algorithm: 'HMAC_SHA256' } },
    ],
    ['a SharedKey with HMAC-SHA1 and its settings header', { sharedKey: { ...SHARED_KEY, algorithm: 'HMAC_SHA1' } }],
    ['the URL without its port', { url: 'port-removed' }],
    ["the legacy query encoding (a bare ' where the request has %27)", { url: 'legacy-query' }, "&note=it's"],
    [
      'a SharedKey with HMAC-SHA256 over the URL without its port',
      { sharedKey: { ...SHARED_KEY, algorithm: 'HMAC_SHA256' }, url: 'port-removed' },
    ],
  ];
  for (const [what, signing, query] of accepted) {
    it(`accepts status callbacks and a reply signed with ${what}`, async () => {
      const records = await roundTrip(signing, query);
      assert.deepEqual(
        records.map((r) => [r.kind, r.status]),
        [
          ['status', 204],
          ['status', 204],
          ['inbound', 200],
        ],
      );
      assert.equal(
        h.interactions.sent.filter((m) => m.body.responseType === 'delivered').length,
        1,
        'the delivery is recorded',
      );
      assert.doesNotMatch(h.logs.text, /twilio callback refused/);
    });
  }

  it('the simulator names what is wrong with twilio.signing, the secret hidden', async () => {
    const bad = {
      url: 'sideways',
      sharedKey: { sid: 'KS1', secret: 'do-not-show-me', algorithm: 'HMAC_MD5' },
      extra: 1,
    } as unknown as TwilioSigning;
    await assert.rejects(start({ twilio: { signing: bad } }), (err: Error) => {
      assert.match(
        err.message,
        /twilio\.signing\.url: expected one of as-called, port-removed, default-port-added, legacy-query, found "sideways"/,
      );
      assert.match(
        err.message,
        /twilio\.signing\.sharedKey: expected \{sid, secret, algorithm: HMAC_SHA1 \| HMAC_SHA256\}/,
      );
      assert.match(err.message, /twilio\.signing\.extra: unknown option/);
      assert.doesNotMatch(err.message, /do-not-show-me/);
      return true;
    });
  });

  it('refuses callbacks signed with a SharedKey the relay does not have (403, reason mismatch)', async () => {
    const records = await roundTrip({
      sharedKey: { sid: SHARED_KEY.sid, secret: 'another-secret', algorithm: 'HMAC_SHA256' },
    });
    assert.deepEqual(
      records.map((r) => [r.kind, r.status]),
      [
        ['status', 403],
        ['status', 403],
        ['inbound', 403],
      ],
    );
    assert.equal(h.interactions.sent.length, 0);
    const reasons = h.logs
      .lines()
      .filter((l) => String(l['message']).includes('twilio callback refused'))
      .map((l) => l['reason']);
    assert.deepEqual(reasons, ['mismatch', 'mismatch', 'mismatch']);
  });
});
