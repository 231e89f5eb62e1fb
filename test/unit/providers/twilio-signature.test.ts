/**
 * Twilio signatures verified as twilio-node's `validateRequest` does (twilio/twilio-node src/webhooks/webhooks.ts):
 * the URL with and without its port, the legacy query encoding, repeated parameters, and HMAC-SHA256 with a SharedKey.
 * The expected signatures are literals computed with twilio-node's own `getExpectedTwilioSignature` (its file run as
 * is; for SHA-256 with its `createHmac("sha1", …)` given "sha256"), not with the code under test.
 */
import assert from 'node:assert/strict';
import {
  signatureSettings,
  twilioSignature,
  twilioSignedUrls,
  verifyTwilioSignature,
} from '../../../src/providers/index.js';

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

describe('Twilio signatures as twilio-node verifies them', () => {
  it('signs as Twilio documents it (the published example)', () => {
    const params = new URLSearchParams({
      CallSid: 'CA1234567890ABCDE',
      Caller: '+14158675309',
      Digits: '1234',
      From: '+14158675309',
      To: '+18005551212',
    });
    assert.equal(
      twilioSignature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', params),
      'RSOYDt4T1cUTdK1PDd93/VVr8B8=',
    );
    assert.equal(
      verifyTwilioSignature(
        'RSOYDt4T1cUTdK1PDd93/VVr8B8=',
        ['other', '12345'],
        'https://mycompany.com/myapp.php?foo=1&bar=2',
        params,
      ),
      true,
    );
  });

  it('signs as twilio-node does (SHA-1 and SHA-256)', () => {
    assert.equal(twilioSignature(TOKEN, NO_PORT, PARAMS), SIGNED.noPort);
    assert.equal(twilioSignature(TOKEN, PORT_443, PARAMS), SIGNED.port443);
    assert.equal(twilioSignature(TOKEN, LEGACY, PARAMS), SIGNED.legacy);
    assert.equal(twilioSignature(TOKEN, NO_PORT, PARAMS, 'HMAC_SHA256'), SIGNED.sha256NoPort);
  });

  it('signs a repeated parameter as its name and each distinct value, sorted (twilio-node toFormUrlEncodedParam)', () => {
    // Express gives twilio-node {MediaUrl: ['b', 'a', 'b']}: it signs MediaUrla MediaUrlb.
    const params = new URLSearchParams('Body=hi&MediaUrl=b&MediaUrl=a&MediaUrl=b&From=%2B1555');
    assert.equal(
      twilioSignature(TOKEN, 'https://relay.example.com/callbacks/sms/twilio/inbound', params),
      'FIaUugZK8d0F0iKje+3VErnmoOs=',
    );
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
    assert.equal(
      verifyTwilioSignature(SIGNED.sha256NoPort, [TOKEN], NO_PORT, PARAMS),
      false,
      'a SHA-256 signature is not a SHA-1 one',
    );
    assert.equal(
      verifyTwilioSignature(SIGNED.noPort, [TOKEN], NO_PORT, PARAMS, 'HMAC_SHA256'),
      false,
      'a SHA-1 signature is not a SHA-256 one',
    );
  });

  it('tries the URL as received and the forms twilio-node tries, each once', () => {
    assert.deepEqual(twilioSignedUrls(`https://relay.example.com${PATH}`), [NO_PORT, PORT_443]);
    assert.deepEqual(twilioSignedUrls('http://relay.example.com:8080/x'), [
      'http://relay.example.com:8080/x',
      'http://relay.example.com/x',
    ]);
    // twilio-node's legacy form of the :443 URL parses it again, which drops the default port: the same as without it.
    assert.deepEqual(twilioSignedUrls(LEGACY), [
      LEGACY,
      WHATWG,
      'https://relay.example.com:443/callbacks/sms/twilio/status?t=a%27b(c)*d!',
    ]);
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
