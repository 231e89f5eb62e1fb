/**
 * Deterministic ids: a name-based UUID (RFC 9562 version 5, SHA-1) of the publisher prefix, the channel name and the
 * component, so that `channel new` run twice writes the same files and the channels entry can name them. Lowercase,
 * as the real-time channel docs require of GUIDs in customization files.
 */
import { createHash } from 'node:crypto';

/** The namespace of every id the generator derives (a fixed random UUID: it only has to be this project's own). */
const NAMESPACE = 'c2f4b0a6-6d3e-4c1b-9a57-3e8f0d1b7a24';

function bytesOf(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** The version-5 UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string = NAMESPACE): string {
  const hash = createHash('sha1').update(bytesOf(namespace)).update(name, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The id of one component of one channel (`component` e.g. `form:instance`, `part:text`). */
export function componentId(publisherPrefix: string, channelName: string, component: string): string {
  return uuidV5(`${publisherPrefix}/${channelName}/${component}`);
}

/** `{id}`, as forms, views and web resources write their own id. */
export function braced(id: string): string {
  return `{${id}}`;
}
