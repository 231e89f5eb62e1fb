/**
 * Lock tokens. The SDK reads a lock token from the 16-byte delivery tag as a .NET GUID (the first three groups
 * byte-swapped) and sends `string_to_uuid(token)` back in management calls. So the broker generates 16 bytes L,
 * keys the lock on L, and sends the byte-swapped L as the delivery tag.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 1024;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

/** 16 random bytes (from a pooled buffer: one crypto call per 1024 tokens). */
export function newLockToken(): Buffer {
  if (poolOffset >= POOL_SIZE) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_SIZE));
    poolOffset = 0;
  }
  const token = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  poolOffset += 16;
  return token;
}

/** The .NET GUID byte order swap: an involution, so it maps a tag to L and L to a tag. */
export function reorderGuidBytes(bytes: Buffer): Buffer {
  return Buffer.from([
    bytes[3]!,
    bytes[2]!,
    bytes[1]!,
    bytes[0]!,
    bytes[5]!,
    bytes[4]!,
    bytes[7]!,
    bytes[6]!,
    ...bytes.subarray(8, 16),
  ]);
}

/** The map key of a lock: the hex of L. */
export function lockKey(bytes: Buffer): string {
  return bytes.toString('hex');
}

/** The token as the SDK shows it (`lockToken` on a received message), from L. */
export function lockTokenString(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
