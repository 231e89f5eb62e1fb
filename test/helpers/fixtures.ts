import { Closer, type Closeable } from '../../src/lifecycle.js';

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
