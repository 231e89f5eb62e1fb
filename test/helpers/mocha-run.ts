/**
 * Mocha's global fixtures (`require` in .mocharc.json): run once in mocha's main process around the whole run, also
 * under `--parallel`, whose worker processes inherit the environment set here. They give the run an id and a scratch
 * folder that files in different worker processes can share (`buildWorkers` builds dist/ once per run through it),
 * removed at the end.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const RUN_ENV = 'CHANNEL_RELAY_TEST_RUN';

/** The run's shared scratch folder (not created here), or undefined outside a mocha run (e.g. a bench). */
export function runScratchDir(): string | undefined {
  const id = process.env[RUN_ENV];
  return id === undefined ? undefined : path.join(os.tmpdir(), `channel-relay-test-run-${id}`);
}

export function mochaGlobalSetup(): void {
  process.env[RUN_ENV] = randomUUID();
}

export function mochaGlobalTeardown(): void {
  const dir = runScratchDir();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}
