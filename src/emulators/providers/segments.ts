/**
 * The simulated Twilio's segment count and its senders' queues. Written from Twilio's documents, apart from the
 * relay's own count (src/providers/twilio/segments.ts), so that each checks the other.
 *
 * Segments (twilio.com/docs/glossary/what-sms-character-limit, /what-is-gsm-7-character-encoding,
 * /what-is-ucs-2-character-encoding; Twilio's calculator github.com/TwilioDevEd/message-segment-calculator): a body
 * of GSM 03.38 characters only is GSM-7, 160 septets in one segment or 153 per part, an extension-table character
 * taking two; any other character makes the whole body UCS-2, 70 UTF-16 code units in one segment or 67 per part.
 * Nothing is split across parts: the calculator keeps each grapheme whole, which is the reading that counts the most
 * segments (the worst plausible one for the relay), so the simulator keeps graphemes whole in both encodings.
 */

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const GSM_EXTENDED = '^{}\\[~]|€\f';
const splitter = new Intl.Segmenter('en', { granularity: 'grapheme' });

/** Septets of one grapheme in GSM-7, or undefined when it has a character GSM-7 lacks. */
function septets(grapheme: string): number | undefined {
  let n = 0;
  for (const ch of grapheme) {
    if (GSM_BASIC.includes(ch)) n += 1;
    else if (GSM_EXTENDED.includes(ch)) n += 2;
    else return undefined;
  }
  return n;
}

/** Segments of an SMS body as Twilio counts them (its `num_segments`): see the file's comment. */
export function smsSegments(body: string): number {
  const parts = [...splitter.segment(body)].map((s) => s.segment);
  const gsm = parts.map(septets);
  const sizes = gsm.every((n) => n !== undefined) ? (gsm as number[]) : parts.map((p) => p.length);
  const [single, part] = sizes === gsm ? [160, 153] : [70, 67];
  if (sizes.reduce((a, b) => a + b, 0) <= single) return 1;
  let segments = 0;
  let room = 0;
  for (let size of sizes) {
    while (size > 0) {
      if (room === 0 || (size <= part && size > room)) {
        segments += 1;
        room = part;
      }
      const used = Math.min(size, room);
      room -= used;
      size -= used;
    }
  }
  return segments;
}

/** Where a message stands in its sender's queue (`SegmentQueue.enqueue`). */
export interface QueuePlace {
  /** When its first segment goes (ms since the epoch). */
  firstAt: number;
  /** How much later its last segment goes than it would from an idle sender: > 0 when it waits behind the sender's rate. */
  queuedMs: number;
}

/**
 * A sender's outgoing queue, in segments: Twilio sends at most `mps` segments in any window of `windowMs` (a window
 * ending at t holds the sends after t - windowMs) and queues the rest in arrival order (twilio.com/docs/api/errors/30001:
 * "Twilio queues messages based on the sending rate of a sender … one message segment per second").
 */
export class SegmentQueue {
  readonly #windowMs: number;
  /** Send times of the segments of the last window and of those still queued, ascending, from `#head` on. */
  #sends: number[] = [];
  /** Where the live part of `#sends` starts: what is before it has left the window (dropped in bulk, see `#prune`). */
  #head = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Segments queued at `now` (their send time is later). */
  waiting(now: number): number {
    this.#prune(now);
    return this.#sends.length - this.#firstAfter(now);
  }

  /**
   * Queues `segments` arriving at `now` and returns where they go; when `keep` (told that place) says no, they take no
   * place (the queue is as it was) and the place they would have had is returned.
   */
  enqueue(now: number, segments: number, mps: number, keep: (place: QueuePlace) => boolean = () => true): QueuePlace {
    this.#prune(now);
    const sends = this.#sends;
    const before = sends.length;
    let firstAt: number | undefined;
    let at = now;
    for (let i = 0; i < segments; i++) {
      at = Math.max(now, sends.length > this.#head ? (sends[sends.length - 1] as number) : now);
      // The segment `mps` places back must have left the window.
      if (sends.length - this.#head >= mps) at = Math.max(at, (sends[sends.length - mps] as number) + this.#windowMs);
      sends.push(at);
      firstAt ??= at;
    }
    const idle = now + (Math.ceil(segments / mps) - 1) * this.#windowMs;
    const place = { firstAt: firstAt ?? now, queuedMs: Math.max(0, at - idle) };
    if (!keep(place)) sends.length = before;
    return place;
  }

  /** The index of the first send after `t` (binary search: the sends are ascending). */
  #firstAfter(t: number): number {
    let lo = this.#head;
    let hi = this.#sends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#sends[mid] as number) <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Drops the sends that have left the window; the array is compacted once the dropped part is its larger half. */
  #prune(now: number): void {
    this.#head = this.#firstAfter(now - this.#windowMs);
    if (this.#head > 1024 && this.#head * 2 > this.#sends.length) {
      this.#sends = this.#sends.slice(this.#head);
      this.#head = 0;
    }
  }
}
