import { Writable } from 'node:stream';

/** A stream that keeps what is written to it, for asserting on log output. */
export class CaptureStream extends Writable {
  readonly chunks: string[] = [];
  isTTY = false;
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }
  get text(): string {
    return this.chunks.join('');
  }
  /** The JSON lines written so far. */
  lines(): Array<Record<string, unknown>> {
    return this.text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}
