/**
 * How many SMS segments Twilio counts for a message body: Twilio's throughput (MPS) and its queue are counted in
 * segments, not API calls. Sources: twilio.com/docs/glossary/what-sms-character-limit (GSM-7 160 in one segment,
 * 153 per segment when concatenated; UCS-2 70 / 67), /what-is-gsm-7-character-encoding (the basic set and the
 * extension table, whose characters take an escape plus a septet), /what-is-ucs-2-character-encoding ("we'll
 * automatically send messages in the most compact encoding possible … fall back to UCS-2"), and Twilio's own segment
 * calculator (github.com/TwilioDevEd/message-segment-calculator, `SegmentedMessage`), which never splits a character
 * across two segments: an escape stays with its character, a surrogate pair (and a whole grapheme) with itself.
 *
 * Where the readings differ the relay counts the larger number: a grapheme is kept whole (a flag or a family emoji
 * is one unit, several code points); Smart Encoding (a Messaging Service option that turns curly quotes and such
 * into GSM-7) is not assumed. Counting too many segments only sends slower; too few would exceed the sender's rate.
 */

/** The GSM 03.38 basic character set (one septet each). */
const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
/** The GSM 03.38 extension table (an escape and a septet: two septets each). */
const GSM7_EXTENSION = new Set('\f^{}\\[~]|€');

/** Septets in one segment: alone, and each part of a concatenated message (the 6-byte header takes the rest). */
const GSM7_SINGLE = 160;
const GSM7_PART = 153;
/** UTF-16 code units in one segment: alone, and per part. */
const UCS2_SINGLE = 70;
const UCS2_PART = 67;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

export interface SmsSegmentCount {
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
}

/**
 * Packs units (their sizes, in order) into segments of `single` when they all fit in one, else of `part` each, never
 * splitting a unit. An empty body is one segment.
 */
function pack(sizes: number[], single: number, part: number): number {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total <= single) return 1;
  let segments = 1;
  let used = 0;
  for (const size of sizes) {
    if (used > 0 && used + size > part) {
      segments += 1;
      used = 0;
    }
    used += size;
    // A unit longer than a part (hundreds of combining marks in one grapheme) cannot stay whole.
    while (used > part) {
      segments += 1;
      used -= part;
    }
  }
  return segments;
}

/** The encoding Twilio picks for `body` and the number of segments it counts (see the file's comment). */
export function smsSegmentCount(body: string): SmsSegmentCount {
  const septets: number[] = [];
  let gsm7 = true;
  for (const ch of body) {
    if (GSM7_BASIC.has(ch)) septets.push(1);
    else if (GSM7_EXTENSION.has(ch)) septets.push(2);
    else {
      gsm7 = false;
      break;
    }
  }
  if (gsm7) return { encoding: 'GSM-7', segments: pack(septets, GSM7_SINGLE, GSM7_PART) };
  const units = Array.from(graphemes.segment(body), (g) => g.segment.length);
  return { encoding: 'UCS-2', segments: pack(units, UCS2_SINGLE, UCS2_PART) };
}

/** The number of segments Twilio counts for `body`. */
export function smsSegments(body: string): number {
  return smsSegmentCount(body).segments;
}
