import assert from 'node:assert/strict';
import { smsSegmentCount } from '../../../src/providers/twilio/segments.js';

const EMOJI = '\u{1F600}'; // 😀: one code point, two UTF-16 code units (a surrogate pair)
const FAMILY = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'; // 👨‍👩‍👧: one grapheme, 8 UTF-16 code units

describe('twilio segment counting', () => {
  const cases: Array<[name: string, body: string, encoding: 'GSM-7' | 'UCS-2', segments: number]> = [
    ['empty', '', 'GSM-7', 1],
    ['GSM-7, 160 characters: one segment', 'a'.repeat(160), 'GSM-7', 1],
    ['GSM-7, 161 characters: two (153 + 8)', 'a'.repeat(161), 'GSM-7', 2],
    ['GSM-7, 306 characters: two', 'a'.repeat(306), 'GSM-7', 2],
    ['GSM-7, 307 characters: three', 'a'.repeat(307), 'GSM-7', 3],
    ['GSM-7 basic set beyond ASCII (£ é Ä Ω) counts one septet each', '£éÄΩ'.repeat(40), 'GSM-7', 1],
    ['an extension character (€) counts two septets: 159 + € = 161', `${'a'.repeat(159)}€`, 'GSM-7', 2],
    ['80 extension characters are 160 septets: one segment', '{'.repeat(80), 'GSM-7', 1],
    [
      'an escape is not split from its character: 152 + ] + 152 = 306 septets takes three parts (152 | 153 | 1)',
      `${'a'.repeat(152)}]${'a'.repeat(152)}`,
      'GSM-7',
      3,
    ],
    ['the same 306 septets with the ] inside a part: two', `${'a'.repeat(151)}]${'a'.repeat(153)}`, 'GSM-7', 2],
    ['UCS-2, 70 characters: one segment', 'ж'.repeat(70), 'UCS-2', 1],
    ['UCS-2, 71 characters: two (67 + 4)', 'ж'.repeat(71), 'UCS-2', 2],
    ['UCS-2, 134 characters: two', 'ж'.repeat(134), 'UCS-2', 2],
    ['UCS-2, 135 characters: three', 'ж'.repeat(135), 'UCS-2', 3],
    ['one non-GSM character makes the whole message UCS-2', `${'a'.repeat(69)}ç`, 'UCS-2', 1],
    ['…and 71 of them two segments', `${'a'.repeat(70)}ç`, 'UCS-2', 2],
    ['an emoji counts two UTF-16 code units: 68 + 😀 = 70, one segment', `${'a'.repeat(68)}${EMOJI}`, 'UCS-2', 1],
    ['69 + 😀 = 71 code units: two segments', `${'a'.repeat(69)}${EMOJI}`, 'UCS-2', 2],
    [
      'a surrogate pair is not split: 66 + 😀 + 66 needs three parts (67 | 68 does not fit)',
      `${'a'.repeat(66)}${EMOJI}${'a'.repeat(66)}`,
      'UCS-2',
      3,
    ],
    [
      'the same length with the pair at a part boundary otherwise: 65 + 😀 + 67 fits two parts',
      `${'a'.repeat(65)}${EMOJI}${'a'.repeat(67)}`,
      'UCS-2',
      2,
    ],
    [
      'a grapheme of several code points stays whole: 61 + family (8 units) + 65 takes three parts (61 | 67 | 6)',
      `${'a'.repeat(61)}${FAMILY}${'a'.repeat(65)}`,
      'UCS-2',
      3,
    ],
    ['a 1,600-character GSM-7 body: 11 segments', 'a'.repeat(1600), 'GSM-7', 11],
  ];
  for (const [name, body, encoding, segments] of cases) {
    it(name, () => assert.deepEqual(smsSegmentCount(body), { encoding, segments }));
  }
});
