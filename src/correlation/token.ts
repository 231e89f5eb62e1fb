/**
 * Correlation without a lookup table: a message's context sealed into a signed token (in its callback URL), each
 * tracked link into a short signed code; the callbacks service opens them.
 *
 * Token (base64url): `version(1) | keyIdLength(1) | keyId | bodyLength(2, BE) | body | mac(16)`; the body holds the
 * channel name and the MarketingContext fields (a GUID as 16 bytes, any other id as length-prefixed UTF-8, so nothing
 * is lost) and, in version 2, the send time (6 bytes, ms since the epoch, BE). Link code (version 3): `version(1) | keyIdLength(1) | keyId | row | contact | tile(6) | index(1) | mac(12)`,
 * where `tile` is {@link tileDigest} of the fields every row of a journey tile shares; versions 2 and 1 held the row
 * (or `msdyncrm_activityid`) and the index only. Each mac is
 * HMAC-SHA256(secret, 'ctx' or 'lnk' | everything before it), truncated, compared in constant time; the labels keep a
 * token from passing as a code and back. Keys: {@link parseCallbackKeys}.
 */
import crypto from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { MarketingContext } from './context.js';

/** A signing key: a short id (written in every token) and its secret. */
export interface CallbackKey {
  id: string;
  secret: Buffer;
}

/** The keys of the callbacks: `sign` seals new tokens; every key in `verify` (sign included) opens them. */
export interface CallbackKeys {
  sign: CallbackKey;
  verify: CallbackKey[];
}

/** Why a token or code was refused. `malformed`: not a token of this format; `bad-signature`: the MAC does not match; `unknown-key`: signed with a key no longer (or never) accepted. */
export type TokenRefusal = 'malformed' | 'bad-signature' | 'unknown-key';

/** An opened token; `sentAt` (ms) when the sender sealed one (version 2: dispatch's status callback URLs). */
export type OpenedContext =
  | { ok: true; context: MarketingContext; channel: string; keyId: string; sentAt?: number }
  | { ok: false; reason: TokenRefusal };
/** What a journey tile's rows share (everything of a `MarketingContext` but the row and the contact). */
export type TileFields = Pick<MarketingContext, 'activityId' | 'journeyId' | 'iterationId' | 'entityType' | 'entityId'>;

/**
 * An opened link code: `activityRowId`, `contactId` and `tile` ({@link tileDigest}) for a code written now;
 * `activityRowId` alone for a code of version 2; `activityId` (`msdyncrm_activityid`, shared by the rows of a tile) for
 * a code written before the relay keyed on the row.
 */
export type OpenedLink =
  | ({ ok: true; linkIndex: number; keyId: string } & (
      | { activityRowId: string; contactId: string; tile: string; activityId?: never }
      | { activityRowId: string; contactId?: never; tile?: never; activityId?: never }
      | { activityId: string; activityRowId?: never; contactId?: never; tile?: never }
    ))
  | { ok: false; reason: TokenRefusal };

/** Context tokens: 2 adds the send time; 1 (without it) is still opened. */
const VERSION = 2;
const UNTIMED_VERSION = 1;
/** Bytes of a token's send time: ms since the epoch fit 48 bits until the year 10889. */
const SENT_AT_BYTES = 6;
/**
 * Link codes: 3 seals the activity row id (`msdyncrm_customerjourneycustomchannelactivityid`), the contact and the
 * tile's digest, so that a click needs no read once the tile is known; 2 sealed the row id alone, 1 (written before
 * the relay keyed on the row) `msdyncrm_activityid`: both are still opened (links in messages already sent work).
 */
const LINK_VERSION = 3;
const ROW_LINK_VERSION = 2;
const LEGACY_LINK_VERSION = 1;
/** Bytes of a tile digest in a link code: 48 bits, content-addressed (see {@link tileDigest}). */
const TILE_DIGEST_BYTES = 6;
const CONTEXT_MAC_BYTES = 16;
const LINK_MAC_BYTES = 12;
/** The most links one message can have tracked (the index is one byte). */
export const MAX_TRACKED_LINKS = 256;
const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
const MIN_SECRET_BYTES = 32;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TAG_GUID = 0;
const TAG_TEXT = 1;

// ── keys ─────────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Reads `CALLBACK_SIGNING_KEYS`: `id1:base64secret,id2:base64secret`, the first signs, all verify (a new key is rolled
 * out by adding it second, then moving it first, then dropping the old one). Ids: 1–16 of `A-Z a-z 0-9 _ -`, unique;
 * secrets: base64 or base64url of at least 32 bytes (`openssl rand -base64 32`). Throws a `ConfigError` whose source
 * is `where` (e.g. `environment variable CALLBACK_SIGNING_KEYS`); the message never shows a secret.
 */
export function parseCallbackKeys(envValue: string | undefined, where: string): CallbackKeys {
  const problem = (expected: string, found: string): never => {
    throw new ConfigError('ConfigInvalid', [{ source: where, path: 'callbacks.signingKeys', expected, found }]);
  };
  const expected = `'id:base64secret' entries separated by commas (the first signs, all verify; id 1-16 of A-Z a-z 0-9 _ -; secret at least ${MIN_SECRET_BYTES} bytes, e.g. openssl rand -base64 32)`;
  const value = envValue?.trim() ?? '';
  if (value === '') problem(expected, 'nothing');
  const keys: CallbackKey[] = [];
  value.split(',').forEach((entry, n) => {
    const at = `entry ${n + 1}`;
    const colon = entry.indexOf(':');
    if (colon < 0)
      problem(expected, `${at} without ':' (${entry.trim() === '' ? 'empty' : 'not shown: it may hold a secret'})`);
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) problem(expected, `${at} with id ${JSON.stringify(id.slice(0, 20))}`);
    if (keys.some((k) => k.id === id)) problem(`${expected}; ids unique`, `id '${id}' twice`);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) problem(expected, `key '${id}' whose secret is not base64`);
    const secret = Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (secret.length < MIN_SECRET_BYTES) problem(expected, `key '${id}' with a ${secret.length}-byte secret`);
    keys.push({ id, secret });
  });
  const [sign] = keys;
  if (sign === undefined) return problem(expected, 'nothing');
  return { sign, verify: keys };
}

// ── encoding ─────────────────────────────────────────────────────────────────────────────────────────────────────

class Writer {
  readonly #parts: Buffer[] = [];
  byte(n: number): this {
    this.#parts.push(Buffer.from([n]));
    return this;
  }
  bytes(b: Buffer): this {
    this.#parts.push(b);
    return this;
  }
  /** A length-prefixed (one byte) UTF-8 string; at most 255 bytes. */
  text(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 255) throw new RangeError(`token field too long (${b.length} bytes; at most 255)`);
    return this.byte(b.length).bytes(b);
  }
  /** A GUID in canonical lower-case form as 16 bytes; anything else as text (round trips exactly). */
  id(s: string): this {
    return GUID.test(s)
      ? this.byte(TAG_GUID).bytes(Buffer.from(s.replace(/-/g, ''), 'hex'))
      : this.byte(TAG_TEXT).text(s);
  }
  done(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

class Malformed extends Error {}

class Reader {
  #at = 0;
  constructor(readonly buf: Buffer) {}
  get at(): number {
    return this.#at;
  }
  get left(): number {
    return this.buf.length - this.#at;
  }
  bytes(n: number): Buffer {
    if (this.left < n) throw new Malformed();
    const b = this.buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return b;
  }
  byte(): number {
    return this.bytes(1)[0] as number;
  }
  text(): string {
    const b = this.bytes(this.byte());
    const s = b.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(b)) throw new Malformed();
    return s;
  }
  id(): string {
    const tag = this.byte();
    if (tag === TAG_TEXT) return this.text();
    if (tag !== TAG_GUID) throw new Malformed();
    const h = this.bytes(16).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
}

function mac(label: 'ctx' | 'lnk', secret: Buffer, data: Buffer, bytes: number): Buffer {
  return crypto.createHmac('sha256', secret).update(label).update(data).digest().subarray(0, bytes);
}

/** base64url → bytes; anything that is not the canonical encoding of its bytes is refused (so no two strings open to one token). */
function decode(s: string): Buffer | undefined {
  if (typeof s !== 'string' || s === '' || s.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(s)) return undefined;
  const b = Buffer.from(s, 'base64url');
  return b.toString('base64url') === s ? b : undefined;
}

/**
 * Reads the header (one of `versions`), finds the key and checks the MAC over everything before it (the version
 * included); the reader is left at the body.
 */
function verify(
  label: 'ctx' | 'lnk',
  s: string,
  keys: CallbackKeys,
  macBytes: number,
  versions: readonly number[],
  bodyLength: (r: Reader, version: number) => number,
): { ok: true; body: Reader; keyId: string; version: number } | { ok: false; reason: TokenRefusal } {
  const buf = decode(s);
  if (buf === undefined) return { ok: false, reason: 'malformed' };
  try {
    const r = new Reader(buf);
    const version = r.byte();
    if (!versions.includes(version)) return { ok: false, reason: 'malformed' };
    const keyId = r.text();
    const length = bodyLength(r, version);
    const bodyStart = r.at;
    if (r.left !== length + macBytes) return { ok: false, reason: 'malformed' };
    const key = keys.verify.find((k) => k.id === keyId);
    if (key === undefined) return { ok: false, reason: 'unknown-key' };
    const signed = buf.subarray(0, bodyStart + length);
    const given = buf.subarray(bodyStart + length);
    if (!crypto.timingSafeEqual(mac(label, key.secret, signed, macBytes), given))
      return { ok: false, reason: 'bad-signature' };
    return { ok: true, body: new Reader(buf.subarray(bodyStart, bodyStart + length)), keyId, version };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, reason: 'malformed' };
    throw err;
  }
}

// ── context tokens ───────────────────────────────────────────────────────────────────────────────────────────────

/**
 * Seals a marketing message's context and its channel into a compact signed token (base64url, URL-safe); with
 * `sentAt` (ms since the epoch, an integer), the send time too (version 2), else a version 1 token.
 */
export function sealContext(context: MarketingContext, channel: string, keys: CallbackKeys, sentAt?: number): string {
  if (sentAt !== undefined && (!Number.isSafeInteger(sentAt) || sentAt < 0 || sentAt >= 2 ** (8 * SENT_AT_BYTES)))
    throw new RangeError(`sentAt must be an integer of ms since the epoch, found ${sentAt}`);
  const writer = new Writer()
    .text(channel)
    .id(context.activityId)
    .id(context.activityRowId)
    .id(context.contactId)
    .id(context.journeyId)
    .id(context.iterationId)
    .text(context.entityType)
    .id(context.entityId);
  if (sentAt !== undefined) {
    const time = Buffer.alloc(SENT_AT_BYTES);
    time.writeUIntBE(sentAt, 0, SENT_AT_BYTES);
    writer.bytes(time);
  }
  const body = writer.done();
  const head = new Writer()
    .byte(sentAt === undefined ? UNTIMED_VERSION : VERSION)
    .text(keys.sign.id)
    .byte(body.length >> 8)
    .byte(body.length & 0xff)
    .bytes(body)
    .done();
  return Buffer.concat([head, mac('ctx', keys.sign.secret, head, CONTEXT_MAC_BYTES)]).toString('base64url');
}

/** Opens a token from `sealContext`: the context and channel when its MAC verifies with one of `keys.verify`. */
export function openContext(token: string, keys: CallbackKeys): OpenedContext {
  const v = verify(
    'ctx',
    token,
    keys,
    CONTEXT_MAC_BYTES,
    [VERSION, UNTIMED_VERSION],
    (r) => (r.byte() << 8) | r.byte(),
  );
  if (!v.ok) return v;
  try {
    const r = v.body;
    const channel = r.text();
    const context: MarketingContext = {
      kind: 'marketing',
      activityId: r.id(),
      activityRowId: r.id(),
      contactId: r.id(),
      journeyId: r.id(),
      iterationId: r.id(),
      entityType: r.text(),
      entityId: r.id(),
    };
    const sentAt = v.version === VERSION ? r.bytes(SENT_AT_BYTES).readUIntBE(0, SENT_AT_BYTES) : undefined;
    if (r.left !== 0 || channel === '' || Object.values(context).some((x) => x === ''))
      return { ok: false, reason: 'malformed' };
    return { ok: true, context, channel, keyId: v.keyId, ...(sentAt === undefined ? {} : { sentAt }) };
  } catch (err) {
    // Only reachable with a valid MAC over a body this code did not write (a key used elsewhere).
    if (err instanceof Malformed) return { ok: false, reason: 'malformed' };
    throw err;
  }
}

// ── link codes ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The digest of what a journey tile's rows share (`msdyncrm_activityid`, journey, iteration, message table and
 * record): the first 6 bytes of SHA-256 over their length-prefixed encoding, base64url (8 characters). A link code
 * carries it instead of the fields (about 80 bytes more); the callbacks service resolves it from the tiles it has met
 * (in a context token, or an activity row it read), checking that the fields it holds give the same digest.
 */
export function tileDigest(tile: TileFields): string {
  const body = new Writer()
    .id(tile.activityId)
    .id(tile.journeyId)
    .id(tile.iterationId)
    .text(tile.entityType)
    .id(tile.entityId)
    .done();
  return crypto.createHash('sha256').update(body).digest().subarray(0, TILE_DIGEST_BYTES).toString('base64url');
}

/**
 * Seals "link `linkIndex` of the message of `context`" into a code for `/l/:code`: the activity row id
 * (`msdyncrm_customerjourneycustomchannelactivityid`), the contact and the tile's digest (76 characters with GUIDs and
 * a 2-character key id; see docs/callbacks.md for the choice).
 */
export function sealLink(
  context: Pick<MarketingContext, 'activityRowId' | 'contactId'> & TileFields,
  linkIndex: number,
  keys: CallbackKeys,
): string {
  if (!Number.isInteger(linkIndex) || linkIndex < 0 || linkIndex >= MAX_TRACKED_LINKS) {
    throw new RangeError(`link index must be an integer from 0 to ${MAX_TRACKED_LINKS - 1}, found ${linkIndex}`);
  }
  const body = new Writer()
    .id(context.activityRowId)
    .id(context.contactId)
    .bytes(Buffer.from(tileDigest(context), 'base64url'))
    .byte(linkIndex)
    .done();
  const head = new Writer().byte(LINK_VERSION).text(keys.sign.id).bytes(body).done();
  return Buffer.concat([head, mac('lnk', keys.sign.secret, head, LINK_MAC_BYTES)]).toString('base64url');
}

/** Bytes of a tagged id (see `Writer.id`) starting at `at`. */
function idLength(buf: Buffer, at: number): number {
  const tag = buf[at];
  if (tag === TAG_GUID) return 1 + 16;
  if (tag === TAG_TEXT) return 1 + 1 + (buf[at + 1] ?? 0);
  throw new Malformed();
}

/**
 * Opens a code from `sealLink` (or one written before, see {@link OpenedLink}): the activity and the link's index when
 * its MAC verifies with one of `keys.verify`.
 */
export function openLink(code: string, keys: CallbackKeys): OpenedLink {
  const v = verify(
    'lnk',
    code,
    keys,
    LINK_MAC_BYTES,
    [LINK_VERSION, ROW_LINK_VERSION, LEGACY_LINK_VERSION],
    (r, version) => {
      // Version 3: two ids, the digest and the index byte; before: one id and the index byte.
      const first = idLength(r.buf, r.at);
      if (version !== LINK_VERSION) return first + 1;
      return first + idLength(r.buf, r.at + first) + TILE_DIGEST_BYTES + 1;
    },
  );
  if (!v.ok) return v;
  try {
    const id = v.body.id();
    if (v.version === LINK_VERSION) {
      const contactId = v.body.id();
      const tile = v.body.bytes(TILE_DIGEST_BYTES).toString('base64url');
      const linkIndex = v.body.byte();
      if (v.body.left !== 0 || id === '' || contactId === '') return { ok: false, reason: 'malformed' };
      return { ok: true, activityRowId: id, contactId, tile, linkIndex, keyId: v.keyId };
    }
    const linkIndex = v.body.byte();
    if (v.body.left !== 0 || id === '') return { ok: false, reason: 'malformed' };
    return v.version === ROW_LINK_VERSION
      ? { ok: true, activityRowId: id, linkIndex, keyId: v.keyId }
      : { ok: true, activityId: id, linkIndex, keyId: v.keyId };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, reason: 'malformed' };
    throw err;
  }
}
