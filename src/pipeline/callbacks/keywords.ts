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

/** The first word of a reply, without surrounding punctuation, upper case; '' for none. */
export function firstWord(text: string): string {
  const word = text.trim().split(/\s+/, 1)[0] ?? '';
  return word.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '').toLocaleUpperCase('en-US');
}

const upper = (w: string): string => w.trim().toLocaleUpperCase('en-US');

/** The command a reply starts with (`/start@relaybot now` → `/START`), upper case; undefined when it starts with no `/`. */
export function botCommand(text: string): string | undefined {
  const token = text.trimStart().split(/\s+/, 1)[0] ?? '';
  if (!token.startsWith('/')) return undefined;
  return token.replace(/@.*$/s, '').replace(/[^\p{L}\p{N}_]+$/u, '').toLocaleUpperCase('en-US');
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
