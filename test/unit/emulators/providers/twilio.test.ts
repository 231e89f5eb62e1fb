import assert from 'node:assert/strict';
import { smsSegments, twilioDate } from '../../../../src/emulators/providers/twilio.js';

describe('provider simulators: Twilio details', () => {
  const table: Array<[string, string, number]> = [
    ['empty', '', 1],
    ['160 GSM-7 characters', 'a'.repeat(160), 1],
    ['161 GSM-7 characters: 153 per part', 'a'.repeat(161), 2],
    ['306 GSM-7', 'a'.repeat(306), 2],
    ['307 GSM-7', 'a'.repeat(307), 3],
    ['extension characters count twice', '€'.repeat(80), 1],
    ['81 euro signs', '€'.repeat(81), 2],
    ['GSM accents', 'Grüße aus Köln, señor à bientôt'.replace('ô', 'o'), 1],
    ['70 UCS-2 characters', 'ж'.repeat(70), 1],
    ['71 UCS-2 characters: 67 per part', 'ж'.repeat(71), 2],
    ['an emoji forces UCS-2 (two code units each)', `${'a'.repeat(60)}👋👋👋👋👋👋`, 2],
  ];
  for (const [name, body, segments] of table) it(`segments: ${name}`, () => assert.equal(smsSegments(body), segments));

  it('dates in RFC 2822 with +0000', () => {
    assert.equal(twilioDate(Date.UTC(2026, 10, 22, 1, 2, 3)), 'Sun, 22 Nov 2026 01:02:03 +0000');
  });
});
