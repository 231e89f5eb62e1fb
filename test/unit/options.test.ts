import assert from 'node:assert/strict';
import { functionOption, intOption, numberOption, stringOption } from '../../src/options.js';

describe("options: validation of components' options", () => {
  it('intOption: the value, or the default when undefined; else a TypeError naming component, option, expectation and value', () => {
    assert.equal(intOption('Thing', 'size', 3, 10, 1), 3);
    assert.equal(intOption('Thing', 'size', undefined, 10, 1), 10);
    assert.equal(intOption('Thing', 'gap', 0, 10, 0), 0);
    assert.throws(
      () => intOption('Thing', 'size', 0, 10, 1),
      /^TypeError: Thing: size must be an integer >= 1, found 0$/,
    );
    assert.throws(
      () => intOption('Thing', 'size', 1.5, 10, 1),
      /^TypeError: Thing: size must be an integer >= 1, found 1\.5$/,
    );
    assert.throws(() => intOption('Thing', 'size', Number.NaN, 10, 1), /found NaN$/);
    assert.throws(() => intOption('Thing', 'size', '3' as unknown as number, 10, 1), /found "3"$/);
  });

  it('intOption without a default: the option is required', () => {
    assert.equal(intOption('Thing', 'messages', 5, undefined, 1), 5);
    assert.throws(
      () => intOption('Thing', 'messages', undefined, undefined, 1),
      /^TypeError: Thing: messages must be an integer >= 1, found nothing$/,
    );
  });

  it('numberOption: a finite number above a bound or at least a bound', () => {
    assert.equal(numberOption('Thing', 'waitMs', 0.5, 100, { above: 0 }), 0.5);
    assert.equal(numberOption('Thing', 'waitMs', undefined, 100, { above: 0 }), 100);
    assert.equal(numberOption('Thing', 'pauseMs', 0, 100, { atLeast: 0 }), 0);
    assert.throws(
      () => numberOption('Thing', 'waitMs', 0, 100, { above: 0 }),
      /^TypeError: Thing: waitMs must be a finite number above 0, found 0$/,
    );
    assert.throws(() => numberOption('Thing', 'waitMs', Infinity, 100, { above: 0 }), /found Infinity$/);
    assert.throws(
      () => numberOption('Thing', 'pauseMs', -1, 100, { atLeast: 0 }),
      /^TypeError: Thing: pauseMs must be a finite number of at least 0, found -1$/,
    );
    assert.throws(() => numberOption('Thing', 'pauseMs', Number.NaN, 100, { atLeast: 0 }), /found NaN$/);
  });

  it('stringOption and functionOption', () => {
    assert.equal(stringOption('Thing', 'queue', 'outbound'), 'outbound');
    assert.throws(
      () => stringOption('Thing', 'queue', ' '),
      /^TypeError: Thing: queue must be a non-empty string, found " "$/,
    );
    const f = (): number => 1;
    assert.equal(functionOption('Thing', 'handler', f), f);
    assert.throws(
      () => functionOption('Thing', 'handler', {}),
      /^TypeError: Thing: handler must be a function, found object$/,
    );
  });
});
