/**
 * What a reply asks for: opt-out, opt-in, a keyword of the channel, or nothing. Matching is on the first word of the
 * reply, case-insensitive, with surrounding punctuation ignored ("Stop.", " stop please" → STOP).
 *
 * Bot commands (Telegram): when `botCommands` is set, a reply whose first character is `/` is a command (Telegram
 * sends `/start` when someone opens a chat with the bot): it matches only a word listed with its slash (`/stop` in
 * `optOutWords`), compared case-insensitively and without a `@botname` suffix; any other command is `command`
 * (acknowledged, nothing recorded, consent unchanged), never the word without its slash.
 */

export type ReplyIntent =
  | { kind: 'opt-out'; word: string }
  | { kind: 'opt-in'; word: string }
  /** `keyword` is the TriggerKeyword the channel maps the word to. */
  | { kind: 'keyword'; word: string; keyword: string }
  /** A bot command that the channel's words do not list (with the slash). */
  | { kind: 'command'; word: string }
  | { kind: 'none' };

/** The words of a channel: opt-out and opt-in lists and the keyword map (word → TriggerKeyword). */
export interface ReplyWords {
  optOutWords: readonly string[];
  optInWords: readonly string[];
  keywords: Readonly<Record<string, string>>;
}

const LETTER_OR_DIGIT = /^[\p{L}\p{N}]$/u;
const LETTER_DIGIT_OR_UNDERSCORE = /^[\p{L}\p{N}_]$/u;

/** The length (1 or 2 UTF-16 units) of the code point that ends at `end` in `s`. */
function lastCodePointLength(s: string, end: number): number {
  const low = s.charCodeAt(end - 1);
  const high = end >= 2 ? s.charCodeAt(end - 2) : 0;
  return low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff ? 2 : 1;
}

/**
 * `word` without the characters `keep` refuses at its start (when `start`) and at its end, in one pass over the
 * characters removed. A regular expression such as `[^\p{L}\p{N}]+$` retries from every position of a long run of
 * punctuation (`a` + 64,000 dots + `a` took seconds); this is linear.
 */
function trimEnds(word: string, keep: RegExp, start: boolean): string {
  let from = 0;
  let to = word.length;
  if (start) {
    while (from < to) {
      const cp = word.codePointAt(from)!;
      if (keep.test(String.fromCodePoint(cp))) break;
      from += cp > 0xffff ? 2 : 1;
    }
  }
  while (to > from) {
    const size = lastCodePointLength(word, to);
    if (keep.test(word.slice(to - size, to))) break;
    to -= size;
  }
  return word.slice(from, to);
}

/** The first whitespace-separated word of `text` after leading whitespace (one linear search, no backtracking). */
function leadingWord(text: string): string {
  const rest = text.trimStart();
  const end = rest.search(/\s/u);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The first word of a reply, without surrounding punctuation, upper case; '' for none. */
export function firstWord(text: string): string {
  return trimEnds(leadingWord(text), LETTER_OR_DIGIT, true).toLocaleUpperCase('en-US');
}

const upper = (w: string): string => w.trim().toLocaleUpperCase('en-US');

/** The command a reply starts with (`/start@relaybot now` → `/START`), upper case; undefined when it starts with no `/`. */
export function botCommand(text: string): string | undefined {
  const token = leadingWord(text);
  if (!token.startsWith('/')) return undefined;
  const at = token.indexOf('@');
  return trimEnds(at < 0 ? token : token.slice(0, at), LETTER_DIGIT_OR_UNDERSCORE, false).toLocaleUpperCase('en-US');
}

/** How a reply is read. */
export interface MatchOptions {
  /** Text starting with `/` is a bot command (Telegram). @defaultValue false */
  botCommands?: boolean;
}

/**
 * Classifies a reply. Opt-out words win over opt-in words, both over keywords. A channel without keywords records no
 * keyword replies (a free-text reply is never turned into a TriggerKeyword).
 */
export function matchReply(text: string, words: ReplyWords, options: MatchOptions = {}): ReplyIntent {
  const command = options.botCommands === true ? botCommand(text) : undefined;
  const word = command ?? firstWord(text);
  if (word === '') return { kind: 'none' };
  if (words.optOutWords.some((w) => upper(w) === word)) return { kind: 'opt-out', word };
  if (words.optInWords.some((w) => upper(w) === word)) return { kind: 'opt-in', word };
  for (const [w, keyword] of Object.entries(words.keywords)) {
    if (upper(w) === word) return { kind: 'keyword', word, keyword };
  }
  return command === undefined ? { kind: 'none' } : { kind: 'command', word: command };
}
