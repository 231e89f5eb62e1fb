/** Runs the emulator as a child process through the CLI, as an operator would. */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { spawnCli } from '../../../helpers/cli.js';

export interface EmulatorProcess {
  child: ChildProcess;
  connectionString: string;
  /** Everything the process wrote to stderr (its logs). */
  stderr: () => string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<number | string>;
}

export async function spawnEmulator(args: string[]): Promise<EmulatorProcess> {
  const child = spawnCli(['emulate', 'servicebus', '--port', '0', ...args]);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const lines = createInterface({ input: child.stdout! });
  const connectionString = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the emulator did not start within 20 s; stderr: ${stderr}`)),
      20_000,
    );
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited (${code}) before it was ready; stderr: ${stderr}`));
    });
    lines.on('line', (line) => {
      const m = /^SERVICEBUS_CONNECTION_STRING=(.+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, connectionString, stderr: () => stderr, exited };
}
