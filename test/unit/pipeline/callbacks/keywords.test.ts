import assert from 'node:assert/strict';
import { DEFAULT_OPT_IN_WORDS, DEFAULT_OPT_OUT_WORDS } from '../../../../src/channels/index.js';
import { firstWord, matchReply } from '../../../../src/pipeline/callbacks/index.js';

describe('callbacks: reply words', () => {
  const words = {
    optOutWords: DEFAULT_OPT_OUT_WORDS,
    optInWords: DEFAULT_OPT_IN_WORDS,
    keywords: { YES: 'YES', INFO: 'Info', PROMO: 'Offer' },
  };
  const table: Array<[string, ReturnType<typeof matchReply>]> = [
    ['STOP', { kind: 'opt-out', word: 'STOP' }],
    ['  stop.', { kind: 'opt-out', word: 'STOP' }],
    ['Unsubscribe me please', { kind: 'opt-out', word: 'UNSUBSCRIBE' }],
    ['start', { kind: 'opt-in', word: 'START' }],
    // An opt-in word wins over a keyword of the same spelling.
    ['yes', { kind: 'opt-in', word: 'YES' }],
    ['info?', { kind: 'keyword', word: 'INFO', keyword: 'Info' }],
    ['promo now', { kind: 'keyword', word: 'PROMO', keyword: 'Offer' }],
    ['please stop', { kind: 'none' }],
    ['', { kind: 'none' }],
    ['!!!', { kind: 'none' }],
  ];
  for (const [text, expected] of table) {
    it(`${JSON.stringify(text)} → ${expected.kind}`, () => assert.deepEqual(matchReply(text, words), expected));
  }
  describe('bot commands (Telegram)', () => {
    const bot = { botCommands: true };
    const slashed = {
      ...words,
      optOutWords: [...words.optOutWords, '/stop'],
      keywords: { ...words.keywords, '/Info': 'Info' },
    };
    const commands: Array<[string, typeof words, ReturnType<typeof matchReply>]> = [
      // Telegram sends /start when a chat with the bot is opened: no opt-in.
      ['/start', words, { kind: 'command', word: '/START' }],
      ['/start@relaybot deep-link', words, { kind: 'command', word: '/START' }],
      ['/stop', words, { kind: 'command', word: '/STOP' }],
      ['/stop', slashed, { kind: 'opt-out', word: '/STOP' }],
      ['/STOP@relaybot', slashed, { kind: 'opt-out', word: '/STOP' }],
      ['/info please', slashed, { kind: 'keyword', word: '/INFO', keyword: 'Info' }],
      // Not a command: words as usual.
      ['start', words, { kind: 'opt-in', word: 'START' }],
      [' stop /now', words, { kind: 'opt-out', word: 'STOP' }],
    ];
    for (const [text, w, expected] of commands) {
      it(`${JSON.stringify(text)} → ${expected.kind}${w === slashed ? ' (listed with the slash)' : ''}`, () =>
        assert.deepEqual(matchReply(text, w, bot), expected));
    }
    it('elsewhere a leading slash is punctuation, as before', () => {
      assert.deepEqual(matchReply('/stop', words), { kind: 'opt-out', word: 'STOP' });
    });
  });
  it('a channel without keywords records no free text', () => {
    assert.deepEqual(matchReply('INFO', { ...words, keywords: {} }), { kind: 'none' });
  });
  it('the first word keeps letters of any script, upper case', () => {
    assert.equal(firstWord('  ¡Stopp! bitte'), 'STOPP');
    assert.equal(firstWord('ja.'), 'JA');
  });
});
