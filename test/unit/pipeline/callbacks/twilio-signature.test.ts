/**
 * Twilio signatures verified as twilio-node's `validateRequest` does (twilio/twilio-node src/webhooks/webhooks.ts):
 * the URL with and without its port, the legacy query encoding, repeated parameters, and HMAC-SHA256 with a SharedKey.
 * The expected signatures are literals computed with twilio-node's own `getExpectedTwilioSignature` (its file run as
 * is; for SHA-256 with its `createHmac("sha1", …)` given "sha256"), not with the code under test.
 */
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createCallbacksServer, MAX_TWILIO_PARAMETERS, sealContext, signatureSettings, twilioSignature, twilioSignedUrls, verifyTwilioSignature } from '../../../../src/pipeline/callbacks/index.js';
import { AUTH_TOKEN, context, harness, KEYS, PHONE, PUBLIC_BASE, SHARED_KEY, SMS, type Harness } from './fakes.js';

const TOKEN = 'twilio-auth-token-vectors-01';
const PARAMS = new URLSearchParams('MessageSid=SM0001&MessageStatus=delivered&To=%2B15551234567&From=%2B15550000000');
const PATH = '/callbacks/sms/twilio/status?t=abc';
const NO_PORT = `https://relay.example.com${PATH}`;
const PORT_443 = `https://relay.example.com:443${PATH}`;
const PORT_8443 = `https://relay.example.com:8443${PATH}`;
/** `?t=a'b(c)*d!`: WHATWG URL serializes the `'` as `%27`, Node's legacy `querystring.stringify` leaves it bare. */
const LEGACY = "https://relay.example.com/callbacks/sms/twilio/status?t=a'b(c)*d!";
const WHATWG = 'https://relay.example.com/callbacks/sms/twilio/status?t=a%27b(c)*d!';

/** getExpectedTwilioSignature(TOKEN, url, PARAMS) as twilio-node computes it. */
const SIGNED = {
  noPort: 'x1/RWna7jsl5MR7WCmkFbAgNKf4=',
  port443: 'O/wn1Prodhj9Xw/nrxi9/6KGlO8=',
  port8443: 'A/tXBhbOlcsf2iL9IWtpK0+Qpr8=',
  legacy: 'cKBHqqecEDKYW3KYwu6BFys8QA4=',
  whatwg: '23pqovD6rnC4GvBIGLCpaJG52J0=',
  sha256NoPort: '087Ysf4gUubwCLXppVMQ67FwAJEEAjMoRFnQyzjF7u4=',
  sha256Port443: 'wQbF1YXhnZiDhQLv640uQZeXnLnmFgnJ0S0/9OPvfck=',
};

describe('callbacks: Twilio signatures as twilio-node verifies them', () => {
  it('signs as twilio-node does (SHA-1 and SHA-256)', () => {
    assert.equal(twilioSignature(TOKEN, NO_PORT, PARAMS), SIGNED.noPort);
    assert.equal(twilioSignature(TOKEN, PORT_443, PARAMS), SIGNED.port443);
    assert.equal(twilioSignature(TOKEN, LEGACY, PARAMS), SIGNED.legacy);
    assert.equal(twilioSignature(TOKEN, NO_PORT, PARAMS, 'HMAC_SHA256'), SIGNED.sha256NoPort);
  });

  it('signs a repeated parameter as its name and each distinct value, sorted (twilio-node toFormUrlEncodedParam)', () => {
    // Express gives twilio-node {MediaUrl: ['b', 'a', 'b']}: it signs MediaUrla MediaUrlb.
    const params = new URLSearchParams('Body=hi&MediaUrl=b&MediaUrl=a&MediaUrl=b&From=%2B1555');
    assert.equal(twilioSignature(TOKEN, 'https://relay.example.com/callbacks/sms/twilio/inbound', params), 'FIaUugZK8d0F0iKje+3VErnmoOs=');
  });

  const table: Array<[string, string, string, boolean]> = [
    ['signed with :443, configured without a port', SIGNED.port443, NO_PORT, true],
    ['signed without a port, configured with :443', SIGNED.noPort, PORT_443, true],
    ['signed with :8443, configured with :8443', SIGNED.port8443, PORT_8443, true],
    ['signed without a port, configured with :8443', SIGNED.noPort, PORT_8443, true],
    ['signed with :443, configured with :8443 (another port)', SIGNED.port443, PORT_8443, false],
    ['signed with the legacy query, received WHATWG-encoded', SIGNED.legacy, WHATWG, true],
    ['signed WHATWG-encoded, received with a bare quote', SIGNED.whatwg, LEGACY, true],
    ['signed over another path', SIGNED.noPort, 'https://relay.example.com/callbacks/sms/twilio/inbound?t=abc', false],
    ['signed over another host', SIGNED.noPort, `https://other.example.com${PATH}`, false],
  ];
  for (const [what, signature, url, valid] of table) {
    it(`${valid ? 'accepts' : 'refuses'} a signature ${what}`, () => {
      assert.equal(verifyTwilioSignature(signature, ['another-token', TOKEN], url, PARAMS), valid);
    });
  }

  it('verifies HMAC-SHA256 only when asked for it, with and without the port', () => {
    assert.equal(verifyTwilioSignature(SIGNED.sha256NoPort, [TOKEN], NO_PORT, PARAMS, 'HMAC_SHA256'), true);
    assert.equal(verifyTwilioSignature(SIGNED.sha256Port443, [TOKEN], NO_PORT, PARAMS, 'HMAC_SHA256'), true);
    assert.equal(verifyTwilioSignature(SIGNED.sha256NoPort, [TOKEN], NO_PORT, PARAMS), false, 'a SHA-256 signature is not a SHA-1 one');
    assert.equal(verifyTwilioSignature(SIGNED.noPort, [TOKEN], NO_PORT, PARAMS, 'HMAC_SHA256'), false, 'a SHA-1 signature is not a SHA-256 one');
  });

  it('tries the URL as received and the forms twilio-node tries, each once', () => {
    assert.deepEqual(twilioSignedUrls(`https://relay.example.com${PATH}`), [NO_PORT, PORT_443]);
    assert.deepEqual(twilioSignedUrls('http://relay.example.com:8080/x'), ['http://relay.example.com:8080/x', 'http://relay.example.com/x']);
    // twilio-node's legacy form of the :443 URL parses it again, which drops the default port: the same as without it.
    assert.deepEqual(twilioSignedUrls(LEGACY), [LEGACY, WHATWG, 'https://relay.example.com:443/callbacks/sms/twilio/status?t=a%27b(c)*d!']);
    assert.deepEqual(twilioSignedUrls('not a url'), ['not a url']);
  });

  it('reads X-Twilio-Webhooks-Signature-Settings', () => {
    assert.equal(signatureSettings(undefined), undefined);
    assert.deepEqual(signatureSettings('key=KS0123,algorithm=HMAC_SHA256'), { algorithm: 'HMAC_SHA256' });
    assert.deepEqual(signatureSettings(' key=KS0123 , Algorithm=hmac_sha1'), { algorithm: 'HMAC_SHA1' });
    assert.deepEqual(signatureSettings('key=KS0123,algorithm=HMAC_SHA512'), { unsupported: true });
    assert.deepEqual(signatureSettings('key=KS0123'), { unsupported: true });
  });
});

describe('callbacks: Twilio routes with SharedKey signatures and parameter limits', () => {
  let h: Harness;
  let app: FastifyInstance;
  const path = `/callbacks/sms/twilio/status?t=${sealContext(context(1), 'sms', KEYS)}`;
  const form = (extra: Record<string, string> = {}): URLSearchParams => new URLSearchParams({ MessageSid: 'SM0001', MessageStatus: 'delivered', To: PHONE, From: SMS.sender, ...extra });
  const post = (params: URLSearchParams, headers: Record<string, string>) =>
    app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: params.toString() });
  const settings = { 'x-twilio-webhooks-signature-settings': 'key=KS00000000000000000000000000000001,algorithm=HMAC_SHA256' };

  beforeEach(() => {
    h = harness();
    app = createCallbacksServer(h.deps).app;
  });
  afterEach(() => app.close());

  it('records a status callback signed with the SharedKey and HMAC-SHA256, as the settings header says', async () => {
    const res = await post(form(), { ...settings, 'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') });
    assert.equal(res.statusCode, 204);
    assert.equal(h.interactions.sent.length, 1);
  });

  it('records a status callback Twilio signed with the default port written out', async () => {
    const res = await post(form(), { 'x-twilio-signature': twilioSignature(AUTH_TOKEN, `https://relay.example.com:443${path}`, form()) });
    assert.equal(res.statusCode, 204);
  });

  const refusals: Array<[string, () => Record<string, string>, string]> = [
    ['the settings header with an auth-token signature', () => ({ ...settings, 'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') }), 'mismatch'],
    ['a SharedKey signature without the settings header', () => ({ 'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') }), 'mismatch'],
    ['an algorithm this service does not know', () => ({ 'x-twilio-webhooks-signature-settings': 'key=KS1,algorithm=HMAC_SHA512', 'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') }), 'unsupported-algorithm'],
  ];
  for (const [what, headers, reason] of refusals) {
    it(`refuses ${what} (403, reason ${reason})`, async () => {
      const res = await post(form(), headers());
      assert.equal(res.statusCode, 403);
      assert.equal(h.interactions.sent.length, 0);
      const logged = h.logs.lines().filter((l) => String(l['message']).includes('twilio callback refused')).map((l) => l['reason']);
      assert.deepEqual(logged, [reason]);
    });
  }

  it('refuses the settings header on a channel without a SharedKey secret (403, reason no-shared-key)', async () => {
    const { sharedKeySecret: _, ...callbacks } = SMS.callbacks!;
    const channel = { ...SMS, callbacks };
    h = harness({ channels: { byName: (n) => (n === 'sms' ? channel : undefined), all: () => [channel] } });
    await app.close();
    app = createCallbacksServer(h.deps).app;
    const res = await post(form(), { ...settings, 'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') });
    assert.equal(res.statusCode, 403);
    assert.deepEqual(h.logs.lines().filter((l) => String(l['message']).includes('twilio callback refused')).map((l) => l['reason']), ['no-shared-key']);
  });

  it(`refuses a body of more than ${MAX_TWILIO_PARAMETERS} parameters before its signature (400), even when signed`, async () => {
    const extra = Object.fromEntries(Array.from({ length: MAX_TWILIO_PARAMETERS - 3 }, (_, i) => [`P${i}`, '']));
    const params = form(extra);
    assert.equal([...params.keys()].length, MAX_TWILIO_PARAMETERS + 1);
    const res = await post(params, { 'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, params) });
    assert.equal(res.statusCode, 400);
    assert.equal(h.interactions.sent.length, 0);
    const line = h.logs.lines().find((l) => String(l['message']).includes('more parameters than Twilio sends'));
    assert.equal(line?.['fields'], MAX_TWILIO_PARAMETERS + 1);
    params.delete('P0');
    const accepted = await post(params, { 'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, params) });
    assert.equal(accepted.statusCode, 204, `${MAX_TWILIO_PARAMETERS} parameters are accepted`);
  });
});
