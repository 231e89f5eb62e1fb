/**
 * What a reply asks for: opt-out, opt-in, a keyword of the channel, or nothing. Matching is on the first word of the
 * reply, case-insensitive, with surrounding punctuation ignored ("Stop.", " stop please" → STOP).
 */

export type ReplyIntent =
  | { kind: 'opt-out'; word: string }
  | { kind: 'opt-in'; word: string }
  /** `keyword` is the TriggerKeyword the channel maps the word to. */
  | { kind: 'keyword'; word: string; keyword: string }
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

/**
 * Classifies a reply. Opt-out words win over opt-in words, both over keywords. A channel without keywords records no
 * keyword replies (a free-text reply is never turned into a TriggerKeyword).
 */
export function matchReply(text: string, words: ReplyWords): ReplyIntent {
  const word = firstWord(text);
  if (word === '') return { kind: 'none' };
  if (words.optOutWords.some((w) => upper(w) === word)) return { kind: 'opt-out', word };
  if (words.optInWords.some((w) => upper(w) === word)) return { kind: 'opt-in', word };
  for (const [w, keyword] of Object.entries(words.keywords)) {
    if (upper(w) === word) return { kind: 'keyword', word, keyword };
  }
  return { kind: 'none' };
}
