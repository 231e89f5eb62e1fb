/** What a command may touch of the outside world; tests pass their own. */
export interface CliIo {
  /** Machine-readable output and results. */
  out: (text: string) => void;
  /** Problems and human messages. */
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * Where a command may draw a progress bar (cli-progress), redrawn in place when it is a terminal. Absent or not a
   * terminal, commands report progress as lines through `err`. @defaultValue process.stderr (processIo)
   */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function processIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    env: process.env,
    cwd: process.cwd(),
    progressStream: process.stderr,
  };
}
