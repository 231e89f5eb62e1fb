/**
 * The demo's progress bar on stderr (cli-progress): redrawn in place on a terminal, one line every few seconds
 * otherwise (CI logs, pipes), so that a long run always shows it is moving.
 */
import { Presets, SingleBar } from 'cli-progress';

export interface ProgressFigures {
  /** Activities with a final outcome. */
  done: number;
  /** Interactions recorded (sent, and with the feedback path delivered, opened …). */
  sent: number;
  /** Activities per second so far. */
  rate: number;
}

export interface Progress {
  update(figures: ProgressFigures): void;
  stop(): void;
}

export interface ProgressOptions {
  total: number;
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** Seconds between lines when the stream is not a terminal. @defaultValue 5 */
  lineEverySeconds?: number;
}

export function startProgress(options: ProgressOptions): Progress {
  const bar = new SingleBar(
    {
      format:
        'relaying  {bar} {percentage}% | {value}/{total} activities | {sent} interactions | {rate}/s | ETA {eta_formatted}',
      stream: options.stream,
      noTTYOutput: true,
      notTTYSchedule: (options.lineEverySeconds ?? 5) * 1000,
      hideCursor: options.stream.isTTY === true,
      etaBuffer: 50,
    },
    Presets.shades_classic,
  );
  bar.start(options.total, 0, { sent: 0, rate: '0' });
  let stopped = false;
  return {
    update: (f) => bar.update(f.done, { sent: f.sent, rate: f.rate.toFixed(0) }),
    stop: () => {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
