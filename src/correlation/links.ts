/**
 * Tracked links. When a channel asks for it (`callbacks.trackLinks`), intake replaces each trackable link of a
 * journey message's template with `${publicBaseUrl}/l/${code}`, where the code (`sealLink`) names the activity row, its
 * contact, its tile (a digest) and the link's index; a click is resolved by opening the code, finding the tile (known
 * from an earlier token or row, else the activity row read), reading the message record (cached) and taking link N
 * of the record's text again (`linkAt`). The rewriting is done on the template, before
 * rendering: a link that a placeholder's value brings in is never tracked, and link N means the same thing to intake
 * and to the click handler.
 */
import type { MarketingContext } from './context.js';
import { MAX_TRACKED_LINKS, sealLink, type CallbackKeys } from './token.js';

/** A link found in a text: where it is and whether it can be tracked. */
export interface FoundLink {
  url: string;
  /** Offset of the first character in the text. */
  start: number;
  /** Offset after the last character. */
  end: number;
  /** No placeholder (`{` or `}`) in it. */
  trackable: boolean;
}

const URL_START = /https?:\/\/[^\s<>"]+/gi;
/** Punctuation that ends a sentence rather than a URL; stripped by a scan from the end (a `[…]+$` pattern backtracks quadratically on a long run inside the URL). */
const TRAILING = new Set(['.', ',', ';', ':', '!', '?', "'", '"']);
const PAIRS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

function trimEnd(url: string): string {
  for (;;) {
    const before = url;
    let end = url.length;
    while (end > 0 && TRAILING.has(url[end - 1]!)) end--;
    url = url.slice(0, end);
    const last = url.at(-1);
    const open = last === undefined ? undefined : PAIRS[last];
    if (open !== undefined && last !== undefined) {
      const opens = url.split(open).length - 1;
      const closes = url.split(last).length - 1;
      if (closes > opens) url = url.slice(0, -1);
    }
    if (url === before) return url;
  }
}

/**
 * The http(s) links of a text (a message template or a rendered text), in order. A link is an `http://` or `https://`
 * URL up to the next whitespace, without trailing punctuation (`.,;:!?'"` and a closing bracket that has no opening
 * one inside the URL). It is trackable when it holds no `{` or `}`: a link with a placeholder differs per contact, so
 * link N of the template could not be found again; such links are sent as rendered, untracked. Only the first
 * {@link MAX_TRACKED_LINKS} trackable links are tracked.
 */
export function findLinks(text: string): FoundLink[] {
  const out: FoundLink[] = [];
  for (const m of text.matchAll(URL_START)) {
    const url = trimEnd(m[0]);
    // A bare scheme ("https://") is no link.
    if (/^https?:\/\/$/i.test(url)) continue;
    out.push({ url, start: m.index, end: m.index + url.length, trackable: !/[{}]/.test(url) });
  }
  return out;
}

/** The trackable links of a template, in order: index N is link N of `rewriteLinks` and `linkAt`. */
export function trackableLinks(templateText: string): string[] {
  return findLinks(templateText)
    .filter((l) => l.trackable)
    .slice(0, MAX_TRACKED_LINKS)
    .map((l) => l.url);
}

/**
 * The template with each trackable link replaced by `${baseUrl}/l/${sealLink(context, n, keys)}` (n counting the
 * trackable links from 0); untrackable links and the rest of the text unchanged. `baseUrl` without a trailing slash.
 */
export function rewriteLinks(
  templateText: string,
  context: MarketingContext,
  baseUrl: string,
  keys: CallbackKeys,
): string {
  const base = baseUrl.replace(/\/+$/, '');
  let out = '';
  let at = 0;
  let n = 0;
  for (const link of findLinks(templateText)) {
    if (!link.trackable || n >= MAX_TRACKED_LINKS) continue;
    out += `${templateText.slice(at, link.start)}${base}/l/${sealLink(context, n, keys)}`;
    at = link.end;
    n += 1;
  }
  return n === 0 ? templateText : out + templateText.slice(at);
}

/** Trackable link `index` of a template (what a click on `/l/:code` redirects to); undefined when there is none. */
export function linkAt(templateText: string, index: number): string | undefined {
  if (!Number.isInteger(index) || index < 0) return undefined;
  return trackableLinks(templateText)[index];
}

/**
 * The `Location` a click redirects to: the link as an absolute URL in ASCII (`new URL(link).href`: a non-ASCII path or
 * query percent-encoded, an international host in punycode), so that an IRI in a message (`https://example.com/日本?q=ü`)
 * redirects instead of failing the response. Undefined for anything but an http(s) URL (nothing else is redirected to).
 */
export function redirectTarget(link: string): string | undefined {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return undefined;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
}
