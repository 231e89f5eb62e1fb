/**
 * Loads the fixtures of this folder. They were produced by the project's emulators through the real SDKs with
 * `npx tsx test/unit/dataverse/fixtures/generate.ts` (see that file for what each one is).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface EventFixture {
  description: string;
  contentType: string;
  messageId: string;
  applicationProperties: Record<string, unknown>;
  bodyText?: string;
  bodyBase64?: string;
}

export function fixture<T = Record<string, unknown>>(rel: string): T {
  return JSON.parse(readFileSync(join(HERE, rel), 'utf8')) as T;
}

export function eventFixture(name: string): EventFixture {
  return fixture<EventFixture>(`events/${name}.json`);
}

/** The body bytes exactly as they were received. */
export function bodyBytes(f: EventFixture): Buffer {
  return f.bodyBase64 !== undefined ? Buffer.from(f.bodyBase64, 'base64') : Buffer.from(f.bodyText ?? '', 'utf8');
}

/** The context object of a JSON fixture. */
export function contextOf(name: string): Record<string, unknown> {
  return JSON.parse(eventFixture(name).bodyText!) as Record<string, unknown>;
}

/** Rebuilds what dynamics-web-api rejected with, from a captured error shape (errors/*.json). */
export function rebuildError(shape: Record<string, unknown>): unknown {
  if (Array.isArray(shape['array'])) return (shape['array'] as Array<Record<string, unknown>>).map(rebuildError);
  const { name, message, cause, ...own } = shape;
  const err = new Error(
    String(message ?? ''),
    cause === undefined ? undefined : { cause: rebuildError(cause as Record<string, unknown>) },
  );
  err.name = String(name ?? 'Error');
  return Object.assign(err, own);
}
