import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { packageRoot } from '../../src/paths.js';
import type { CliIo } from '../../src/cli/io.js';

/** An in-process CliIo that records what a command printed. */
export function recordingIo(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()): CliIo & { stdout: string[]; stderr: string[] } {
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
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcessByStdio<null, Readable, Readable> {
  const childEnv = { ...env, NODE_V8_COVERAGE: '' };
  return spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: packageRoot(), env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the real `channel-relay` executable to completion, with only PATH and `env` in its environment. */
export function runCliProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, { PATH: process.env['PATH'], ...env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
