import assert from 'node:assert/strict';
import { placeholders, renderText } from '../../../../src/pipeline/intake/render.js';

const contact = {
  firstname: 'Ann',
  lastname: 'Lee',
  sample_points: 42,
  donotphone: false,
  emptycol: '',
  nullcol: null,
  nested: { a: 1 },
};

describe('renderText', () => {
  const cases: Array<[string, string, string]> = [
    ['no placeholder', 'Hello there', 'Hello there'],
    ['one placeholder', 'Hi {firstname}!', 'Hi Ann!'],
    ['several, repeated', '{firstname} {lastname}, {firstname}', 'Ann Lee, Ann'],
    ['a number column', 'You have {sample_points} points', 'You have 42 points'],
    ['a boolean column', 'opted out: {donotphone}', 'opted out: false'],
    ['an unknown column renders empty', 'Hi {nickname}.', 'Hi .'],
    ['an empty value', '[{emptycol}]', '[]'],
    ['a null value renders empty', '[{nullcol}]', '[]'],
    ['an object value renders empty', '[{nested}]', '[]'],
    ['names match in lower case', 'Hi {FirstName}', 'Hi Ann'],
    ['{{ and }} are literal braces', '{{firstname}}', '{firstname}'],
    ['an escaped brace around a placeholder', '{{{firstname}}}', '{Ann}'],
    ['a lone brace stays', 'a { b } c', 'a { b } c'],
    ['empty braces stay', 'x{}y', 'x{}y'],
    ['a name starting with a digit is not a placeholder', '{1st}', '{1st}'],
    ['a name with a space is not a placeholder', '{first name}', '{first name}'],
    ['a lone closing brace stays', 'a } b', 'a } b'],
    ['inherited properties are not columns', '{constructor}{tostring}', ''],
    ['an empty template', '', ''],
  ];
  for (const [name, template, expected] of cases) {
    it(`${name}: ${JSON.stringify(template)} → ${JSON.stringify(expected)}`, () =>
      assert.equal(renderText(template, contact), expected));
  }

  it('does not read a placeholder inside a rendered value again', () => {
    assert.equal(renderText('{firstname}', { firstname: '{lastname}', lastname: 'X' }), '{lastname}');
  });
});

describe('placeholders', () => {
  const cases: Array<[string, string[]]> = [
    ['Hello', []],
    ['Hi {firstname} {lastname}', ['firstname', 'lastname']],
    ['{FirstName} {firstname}', ['firstname']],
    ['{{firstname}} {x}', ['x']],
    ['{1st} { a } {}', []],
    ['{b}{a}{b}', ['b', 'a']],
  ];
  for (const [template, expected] of cases) {
    it(`${JSON.stringify(template)} names ${JSON.stringify(expected)}`, () =>
      assert.deepEqual(placeholders(template), expected));
  }
});
