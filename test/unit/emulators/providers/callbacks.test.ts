import assert from 'node:assert/strict';
import {
  callbackOptionsProblems,
  maskUrl,
  recipientOptionsProblems,
} from '../../../../src/emulators/providers/callbacks.js';
import { linksOf, signTwilio } from '../../../../src/emulators/providers/feedback.js';

describe('provider simulators: callback details', () => {
  it("signTwilio gives the signature of Twilio's documented example (auth token 12345)", () => {
    const params = new URLSearchParams({
      To: '+18005551212',
      From: '+14158675310',
      Digits: '1234',
      CallSid: 'CA1234567890ABCDE',
      Caller: '+14158675310',
    });
    assert.equal(
      signTwilio('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2', params),
      'GvWf1cFY/Q7PnoempGyD5oXAezc=',
    );
  });

  it('maskUrl hides query values, bot tokens and long opaque path segments', () => {
    assert.equal(
      maskUrl('https://relay.example/callbacks/sms/twilio/status?t=abcdef&x=1'),
      'https://relay.example/callbacks/sms/twilio/status?t=***&x=***',
    );
    assert.equal(maskUrl('https://relay.example/l/AbCdEfGhIjKlMnOpQrStUvWxYz0123'), 'https://relay.example/l/AbCd***');
    assert.equal(
      maskUrl('https://hooks.example/bot123456:AAEhBOweik6ad9r_QXMENQ/update'),
      'https://hooks.example/bot123456:***/update',
    );
    assert.equal(maskUrl('http://127.0.0.1:8080/inbound'), 'http://127.0.0.1:8080/inbound');
    assert.equal(maskUrl('nonsense'), '<invalid url>');
  });

  it('linksOf finds http(s) links in order, without trailing punctuation', () => {
    assert.deepEqual(linksOf('See https://a.example/x?y=1, and (http://b.example/z). Not ftp://c.example'), [
      'https://a.example/x?y=1',
      'http://b.example/z',
    ]);
    assert.deepEqual(linksOf('no links'), []);
  });

  it('option checks name each key, what was expected and what was found', () => {
    assert.deepEqual(callbackOptionsProblems(undefined), []);
    assert.deepEqual(callbackOptionsProblems({ delayMs: { min: 1, max: 5 }, repeatRate: 0.1, maxRetries: 3 }), []);
    assert.deepEqual(
      callbackOptionsProblems({ delayMs: -1, readRate: 'x', timeoutMs: 0, maxRetries: 11, retryDelayMs: 1.5 }),
      [
        'callbacks.delayMs: expected whole ms >= 0 or {min, max} with 0 <= min <= max, found -1',
        'callbacks.readRate: expected a fraction from 0 to 1, found "x"',
        'callbacks.timeoutMs: expected whole ms >= 1, found 0',
        'callbacks.maxRetries: expected an integer from 0 to 10, found 11',
        'callbacks.retryDelayMs: expected whole ms >= 0, found 1.5',
      ],
    );
    assert.deepEqual(callbackOptionsProblems([]), ['callbacks: expected an object, found []']);
    assert.deepEqual(
      recipientOptionsProblems({ clickRate: 1, replyRate: 0.5, keywords: ['YES'], stopRate: 0.5, stopWord: 'STOPP' }),
      [],
    );
    assert.deepEqual(recipientOptionsProblems({ keywords: ['', 3], stopWord: ' ' }), [
      'recipients.keywords: expected an array of non-empty strings, found ["",3]',
      'recipients.stopWord: expected a non-empty string, found " "',
    ]);
    assert.deepEqual(recipientOptionsProblems({ replyRate: 0.2 }), [
      'recipients.keywords: expected at least one keyword when replyRate > 0, found []',
    ]);
  });
});
