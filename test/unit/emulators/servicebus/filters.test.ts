import assert from 'node:assert/strict';
import rhea from 'rhea';
import type { CorrelationFilter } from '../../../../src/emulators/servicebus/config.js';
import { matchesCorrelation, subscriptionAccepts } from '../../../../src/emulators/servicebus/filters.js';
import { parseMessage } from '../../../../src/emulators/servicebus/message.js';
import { normalize } from '../../../../src/emulators/servicebus/namespace.js';

const encode = (rhea.message as unknown as { encode(m: object): Buffer }).encode;

const message = parseMessage(
  encode({
    message_id: 'm1',
    correlation_id: 'c1',
    subject: 'sms',
    to: 'provider-a',
    reply_to: 'r',
    group_id: 's1',
    content_type: 'application/json',
    application_properties: { tier: 'gold', attempts: 3, urgent: true },
    body: 'x',
  }),
);

describe('Service Bus emulator correlation filters', () => {
  const cases: Array<[string, CorrelationFilter, boolean]> = [
    ['subject (Label)', { subject: 'sms' }, true],
    ['subject mismatch', { subject: 'email' }, false],
    [
      'several system properties',
      { correlationId: 'c1', to: 'provider-a', sessionId: 's1', contentType: 'application/json' },
      true,
    ],
    ['one of several mismatches', { correlationId: 'c1', replyTo: 'other' }, false],
    ['user property', { properties: { tier: 'gold' } }, true],
    ['user number given as a number', { properties: { attempts: 3 } }, true],
    ['user number given as text', { properties: { attempts: '3' } }, true],
    ['user boolean', { properties: { urgent: true } }, true],
    ['missing user property', { properties: { region: 'eu' } }, false],
    ['system and user together', { messageId: 'm1', properties: { tier: 'gold' } }, true],
  ];
  for (const [name, filter, expected] of cases) {
    it(`${expected ? 'matches' : 'does not match'}: ${name}`, () => {
      assert.equal(matchesCorrelation(filter, message), expected);
    });
  }

  it('takes a message when any rule matches; no rules or a true rule take everything', () => {
    assert.equal(subscriptionAccepts([], message), true);
    assert.equal(subscriptionAccepts([{ name: 'all' }], message), true);
    assert.equal(
      subscriptionAccepts(
        [
          { name: 'a', filter: { subject: 'no' } },
          { name: 'b', filter: { to: 'provider-a' } },
        ],
        message,
      ),
      true,
    );
    assert.equal(subscriptionAccepts([{ name: 'a', filter: { subject: 'no' } }], message), false);
  });

  it('normalizes addresses: case, leading slash, sb:// prefix', () => {
    const cases: Array<[string, string]> = [
      ['Orders', 'orders'],
      ['/orders', 'orders'],
      ['sb://127.0.0.1:5672/Orders/$DeadLetterQueue', 'orders/$deadletterqueue'],
      ['amqps://ns.servicebus.windows.net/t/Subscriptions/S', 't/subscriptions/s'],
    ];
    for (const [address, expected] of cases) assert.equal(normalize(address), expected, address);
  });
});
