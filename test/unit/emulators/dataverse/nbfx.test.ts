import assert from 'node:assert/strict';
import { encodeNbfx, multiByteInt31 } from '../../../../src/emulators/dataverse/nbfx.js';
import { element, writeXml, type XmlElement } from '../../../../src/emulators/dataverse/xml-infoset.js';
import { decodeNbfx } from './nbfx-decoder.js';

/** Hex with spaces (`40 03 64 6F 63`) → bytes. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** Bytes of a string record's UTF-8 (without its length). */
function ascii(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex');
}

describe('[MC-NBFX] encoder', () => {
  describe('MultiByteInt31 (MC-NBFX 2.1.2 examples)', () => {
    const cases: Array<[number, string]> = [
      [0x00, '00'],
      [0x11, '11'],
      [0x7f, '7F'],
      [0x80, '80 01'],
      [0x3fff, 'FF 7F'],
      [0x4000, '80 80 01'],
      [0x1fffff, 'FF FF 7F'],
      [0x200000, '80 80 80 01'],
      [0x0fffffff, 'FF FF FF 7F'],
      [0x10000000, '80 80 80 80 01'],
      [0x7fffffff, 'FF FF FF FF 07'],
    ];
    for (const [value, bytes] of cases) {
      it(`0x${value.toString(16)} → ${bytes}`, () => assert.deepEqual(Buffer.from(multiByteInt31(value)), hex(bytes)));
    }
    it('refuses negative and too-large values', () => {
      assert.throws(() => multiByteInt31(-1), RangeError);
      assert.throws(() => multiByteInt31(0x80000000), RangeError);
    });
  });

  describe('records (byte-level; the MC-NBFX section 3 examples where they apply)', () => {
    const abc = { prefix: 'p', uri: 'http://abc' };
    const cases: Array<[string, XmlElement, string]> = [
      ['EndElement: <doc></doc>', element('', 'doc'), '40 03 646F63 01'],
      [
        'ShortElement with Chars8TextWithEndElement: <a>hello</a>',
        element('', 'a', ['hello']),
        '40 01 61 99 05 68656C6C6F',
      ],
      [
        'ShortAttribute: <doc str="hello"/>',
        element('', 'doc', [], { attributes: [{ prefix: '', name: 'str', value: 'hello' }] }),
        '40 03 646F63 04 03 737472 98 05 68656C6C6F 01',
      ],
      [
        'XmlnsAttribute + PrefixAttributeP: <doc p:attr="hello" xmlns:p="http://abc"/>',
        element('', 'doc', [], { namespaces: [abc], attributes: [{ prefix: 'p', name: 'attr', value: 'hello' }] }),
        `40 03 646F63 09 01 70 0A ${ascii('http://abc')} 35 04 61747472 98 05 68656C6C6F 01`,
      ],
      [
        'Attribute (multi-letter prefix): <doc pre:attr="hello" xmlns:pre="http://abc"/>',
        element('', 'doc', [], {
          namespaces: [{ prefix: 'pre', uri: 'http://abc' }],
          attributes: [{ prefix: 'pre', name: 'attr', value: 'hello' }],
        }),
        `40 03 646F63 09 03 707265 0A ${ascii('http://abc')} 05 03 707265 04 61747472 98 05 68656C6C6F 01`,
      ],
      [
        'ShortXmlnsAttribute: <doc xmlns="http://abc"></doc>',
        element('', 'doc', [], { namespaces: [{ prefix: '', uri: 'http://abc' }] }),
        `40 03 646F63 08 0A ${ascii('http://abc')} 01`,
      ],
      [
        'Element (multi-letter prefix): <pre:doc xmlns:pre="http://abc"></pre:doc>',
        element('pre', 'doc', [], { namespaces: [{ prefix: 'pre', uri: 'http://abc' }] }),
        `41 03 707265 03 646F63 09 03 707265 0A ${ascii('http://abc')} 01`,
      ],
      [
        'PrefixElementX: <x:doc xmlns:x="http://abc"></x:doc>',
        element('x', 'doc', [], { namespaces: [{ prefix: 'x', uri: 'http://abc' }] }),
        `75 03 646F63 09 01 78 0A ${ascii('http://abc')} 01`,
      ],
      [
        'PrefixElementA and PrefixAttributeI: <a:v i:nil="true"/>',
        element('a', 'v', [], { attributes: [{ prefix: 'i', name: 'nil', value: 'true' }] }),
        `5E 01 76 2E 03 6E696C 98 04 74727565 01`,
      ],
      ['PrefixElementZ', element('z', 'v'), '77 01 76 01'],
      [
        'EmptyText for an empty attribute value',
        element('', 'd', [], { attributes: [{ prefix: '', name: 'a', value: '' }] }),
        '40 01 64 04 01 61 A8 01',
      ],
      [
        'text then an element: plain Chars8Text, then EndElement',
        element('', 'd', ['t', element('', 'e')]),
        '40 01 64 98 01 74 40 01 65 01 01',
      ],
      [
        'an element then text: the text ends the element',
        element('', 'd', [element('', 'e'), 't']),
        '40 01 64 40 01 65 01 99 01 74',
      ],
      ['UTF-8 text counts bytes, not characters', element('', 'd', ['→é']), '40 01 64 99 05 E28692C3A9'],
      [
        'a name of 128 bytes has a two-byte length',
        element('', 'n'.repeat(128)),
        `40 80 01 ${ascii('n'.repeat(128))} 01`,
      ],
    ];
    for (const [name, tree, bytes] of cases) {
      it(name, () => {
        const encoded = encodeNbfx(tree);
        assert.equal(encoded.toString('hex').toUpperCase(), hex(bytes).toString('hex').toUpperCase());
        assert.deepEqual(decodeNbfx(encoded), tree);
      });
    }

    it('Chars16Text above 255 bytes, Chars32Text above 65535 (with their WithEndElement forms)', () => {
      const t300 = 'x'.repeat(300);
      const e16 = encodeNbfx(element('', 'd', [t300]));
      assert.equal(e16.subarray(0, 6).toString('hex'), '4001649b2c01');
      assert.equal(e16.length, 6 + 300);
      const e16Attr = encodeNbfx(element('', 'd', [], { attributes: [{ prefix: '', name: 'a', value: t300 }] }));
      assert.equal(e16Attr.subarray(0, 9).toString('hex'), '4001640401619a2c01');
      const t70k = 'y'.repeat(70_000);
      const e32 = encodeNbfx(element('', 'd', [t70k]));
      assert.equal(e32.subarray(0, 8).toString('hex'), '4001649d70110100');
      assert.equal(e32.length, 8 + 70_000);
      const e32Plain = encodeNbfx(element('', 'd', [t70k, element('', 'e')]));
      assert.equal(e32Plain[3], 0x9c);
      for (const buf of [e16, e16Attr, e32, e32Plain]) assert.equal(writeXml(decodeNbfx(buf)).length > 0, true);
      assert.deepEqual(decodeNbfx(e32), element('', 'd', [t70k]));
    });
  });

  describe('test decoder', () => {
    it('reads the fixed and typed text records WCF writes (ZeroText, OneText, TrueText, Int8Text, UuidText…)', () => {
      // <d>1</d> <d>true</d> <d>-2</d> <d>{uuid}</d> inside <r>.
      const bytes = hex(
        '40 01 72  40 01 64 83  40 01 64 87  40 01 64 89 FE  40 01 64 AD 33221100 5544 7766 8899 AABBCCDDEEFF  01',
      );
      assert.deepEqual(
        decodeNbfx(bytes),
        element('', 'r', [
          element('', 'd', ['1']),
          element('', 'd', ['true']),
          element('', 'd', ['-2']),
          element('', 'd', ['00112233-4455-6677-8899-aabbccddeeff']),
        ]),
      );
    });
    it('refuses dictionary records, truncated data and trailing bytes', () => {
      assert.throws(() => decodeNbfx(hex('42 02 01')), /not an element record/);
      assert.throws(() => decodeNbfx(hex('40 03 64 6F')), /end of data/);
      assert.throws(() => decodeNbfx(hex('40 01 64')), /ends inside an element/);
      assert.throws(() => decodeNbfx(hex('40 01 64 01 40 01 65 01')), /after the root element/);
    });
  });
});
