import assert from 'node:assert/strict';
import { isConfigError, type ConfigProblem } from '../../src/errors.js';
import { Closer, type Closeable } from '../../src/lifecycle.js';
import type { InteractionMessage } from '../../src/pipeline/messages.js';

/**
 * For a `describe` block: returns `track`, which registers what a test starts (emulators, clients) to be closed
 * after that test, last started first (so a Dataverse emulator closes before the bus it posts to).
 */
export function closedAfterEach(): <T extends Closeable>(item: T) => T {
  let closer = new Closer();
  afterEach(async () => {
    const done = closer;
    closer = new Closer();
    await done.close();
  });
  return (item) => closer.add('test resource', item);
}

/** The problems of the `ConfigError` that `fn` throws; fails the test if it returns or throws anything else. */
export function configProblems(fn: () => unknown): ConfigProblem[] {
  try {
    fn();
  } catch (err) {
    assert.ok(isConfigError(err), `expected a ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

/** An outbound-marketing interaction of the sample's message table, its activity row `activityId`. */
export function marketingInteraction(activityId: string, responseType = 'sent'): InteractionMessage {
  return {
    v: 1,
    context: {
      kind: 'marketing',
      activityId,
      activityRowId: activityId,
      contactId: 'c-1',
      journeyId: 'j-1',
      iterationId: 'i-1',
      entityType: 'sample_specialmessage',
      entityId: 'e-1',
    },
    responseType,
    channel: 'sms',
    occurredAt: 1,
  };
}
