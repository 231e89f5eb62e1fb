import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { packageRoot } from '../../src/paths.js';
import type { CliIo } from '../../src/cli/io.js';

/** An in-process CliIo that records what a command printed. */
export function recordingIo(
  env: NodeJS.ProcessEnv = {},
  cwd = process.cwd(),
): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (t) => void stdout.push(t), err: (t) => void stderr.push(t), env, cwd };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the real `channel-relay` executable from the sources (through tsx) in the package root, with stdout and
 * stderr piped. The child never inherits NODE_V8_COVERAGE: c8 merges coverage per file, and a child's separately
 * transformed copy of the same sources corrupts the parent's figures.
 */
export function spawnCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): ChildProcessByStdio<null, Readable, Readable> {
  const childEnv = { ...env, NODE_V8_COVERAGE: '' };
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: packageRoot(),
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** A child's output as it arrives, and its exit code once it has closed. */
export interface CollectedOutput {
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
  /** The first match of `pattern` in stdout, once it is there; rejects (with stdout) if the child closes first. */
  stdoutMatch: (pattern: RegExp) => Promise<RegExpExecArray>;
}

/** Collects a piped child's stdout and stderr; `exited` resolves with its code on 'close' (its output complete). */
export function collectOutput(child: ChildProcessByStdio<null, Readable, Readable>): CollectedOutput {
  let stdout = '';
  let stderr = '';
  let closed: number | null | undefined;
  const watchers = new Set<() => void>();
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const check of watchers) check();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      closed = code;
      for (const check of watchers) check();
      resolve(code);
    }),
  );
  const stdoutMatch = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(stdout);
        if (m === null && closed === undefined) return;
        watchers.delete(check);
        if (m) resolve(m);
        else reject(new Error(`exited with ${String(closed)} before printing ${String(pattern)}; stdout: ${stdout}`));
      };
      watchers.add(check);
      check();
    });
  return { stdout: () => stdout, stderr: () => stderr, exited, stdoutMatch };
}

/** Waits for a piped child to close: its exit code and everything it printed; rejects if it could not start. */
export function completed(child: ChildProcessByStdio<null, Readable, Readable>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const output = collectOutput(child);
    child.on('error', reject);
    void output.exited.then((code) => resolve({ code, stdout: output.stdout(), stderr: output.stderr() }));
  });
}

/** Runs the real `channel-relay` executable to completion, with only PATH and `env` in its environment. */
export function runCliProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return completed(spawnCli(args, { PATH: process.env['PATH'], ...env }));
}
