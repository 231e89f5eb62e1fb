/**
 * The append-only journal behind `--data-dir`.
 *
 * Sync policy: a send is acknowledged only after the records of its messages are written and `fdatasync`ed (with
 * `fsync: true`, the default). Writes are group-committed: every record appended while one write+sync is in
 * flight goes into the next single write+sync, so concurrent senders share the cost of one sync. Settlements
 * (complete, dead-letter, defer) are written in the same batches but nobody waits for them: after a crash a
 * settled message can come back (at-least-once), an acknowledged send is never lost.
 *
 * Compaction: when the file grows past `compactBytes` (and past twice its size after the previous compaction),
 * the live state is written to a new file, synced, and renamed over the journal, between two batches.
 */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EmulatorError } from '../errors.js';
import type { Logger } from '../../log.js';
import { RECORD, RecordReader, readEnqueue, splitRecords } from './journal-codec.js';
import type { StoredMessage } from './message.js';

export const JOURNAL_FILE = 'servicebus.journal';
/** Holds the pid of the emulator using the folder: two emulators on one journal would corrupt it. */
export const OWNER_FILE = 'servicebus.pid';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims the folder for this process; refuses when another live process holds it. A claim left by a process that
 * died (kill -9) is taken over. Returns the release function.
 */
export function claimDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, OWNER_FILE);
  let owner = Number.NaN;
  try {
    owner = Number(readFileSync(file, 'utf8').trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
    throw new EmulatorError(
      'EmulatorDataDirInUse',
      `the data folder ${dir} is in use by another Service Bus emulator (pid ${owner})`,
      { context: { dataDir: dir, pid: owner } },
    );
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => rmSync(file, { force: true });
}

/** What a replay found: live messages by store path, deferred and removed applied, session states. */
export interface ReplayedState {
  messages: Map<string, Map<number, StoredMessage>>;
  sessionStates: Map<string, Map<string, Buffer | undefined>>;
  /** The lowest sequence number each store may give out: past every message it ever journaled. */
  nextSeq: Map<string, number>;
  /** Message ids for duplicate detection, in journal order: [store, queue or topic path; id; time seen]. */
  seenIds: Array<[string, string, number]>;
  records: number;
  /** Bytes of a torn or corrupt tail that were cut off. */
  discardedBytes: number;
}

export interface JournalOptions {
  dir: string;
  fsync: boolean;
  compactBytes: number;
  log: Logger;
  /** The records of the whole live state, for compaction. */
  snapshot: () => Buffer[];
}

interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Reads the journal of `dir` (creating the folder), cutting off a torn tail. */
export function replayJournal(dir: string): ReplayedState {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, JOURNAL_FILE);
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') data = Buffer.alloc(0);
    else throw err;
  }
  const { bodies, validBytes } = splitRecords(data);
  const state: ReplayedState = {
    messages: new Map(),
    sessionStates: new Map(),
    nextSeq: new Map(),
    seenIds: [],
    records: bodies.length,
    discardedBytes: data.length - validBytes,
  };
  const storeOf = (p: string): Map<number, StoredMessage> => {
    let m = state.messages.get(p);
    if (!m) state.messages.set(p, (m = new Map()));
    return m;
  };
  const advance = (p: string, next: number): void => {
    if (next > (state.nextSeq.get(p) ?? 1)) state.nextSeq.set(p, next);
  };
  for (const body of bodies) {
    const r = new RecordReader(body);
    const type = r.u8();
    if (type === RECORD.enqueue) {
      const { path: p, msg } = readEnqueue(r);
      storeOf(p).set(msg.seq, msg);
      advance(p, msg.seq + 1);
      if (msg.deliveryCount === 0 && msg.deadLetterSource === undefined)
        state.seenIds.push([p, msg.props.messageId, msg.enqueuedAt]);
    } else if (type === RECORD.nextSeq) {
      const p = r.str();
      advance(p, r.f64());
    } else if (type === RECORD.duplicateId) {
      const p = r.str();
      const id = r.str();
      state.seenIds.push([p, id, r.f64()]);
    } else if (type === RECORD.remove || type === RECORD.defer) {
      const p = r.str();
      const seq = r.f64();
      if (type === RECORD.remove) storeOf(p).delete(seq);
      else {
        const msg = storeOf(p).get(seq);
        if (msg) msg.state = 'deferred';
      }
    } else if (type === RECORD.sessionState) {
      const p = r.str();
      const sessionId = r.str();
      const value = r.optBytes();
      let m = state.sessionStates.get(p);
      if (!m) state.sessionStates.set(p, (m = new Map()));
      m.set(sessionId, value);
    }
  }
  if (validBytes < data.length) truncateSync(file, validBytes);
  return state;
}

export class Journal {
  readonly #options: JournalOptions;
  readonly #file: string;
  #handle: FileHandle | undefined;
  #pending: Buffer[] = [];
  #batch = newBatch();
  #writing = false;
  #scheduled = false;
  #size = 0;
  #compactAt: number;
  #closed = false;
  #failure: unknown;

  private constructor(options: JournalOptions, handle: FileHandle, size: number) {
    this.#options = options;
    this.#file = path.join(options.dir, JOURNAL_FILE);
    this.#handle = handle;
    this.#size = size;
    this.#compactAt = options.compactBytes;
  }

  static async open(options: JournalOptions): Promise<Journal> {
    const file = path.join(options.dir, JOURNAL_FILE);
    const handle = await open(file, 'a');
    const { size } = await handle.stat();
    return new Journal(options, handle, size);
  }

  /** Adds a record to the next batch. */
  append(record: Buffer): void {
    if (this.#closed) return;
    this.#pending.push(record);
    this.#schedule();
  }

  /** Resolves when every record appended so far is durable (per the sync policy). */
  commit(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed)
      return Promise.reject(new EmulatorError('EmulatorClosed', 'the Service Bus emulator journal is closed'));
    this.#schedule();
    return this.#batch.promise;
  }

  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing || !this.#handle) return;
    this.#writing = true;
    try {
      while (this.#pending.length > 0 && this.#handle) {
        const records = this.#pending;
        const batch = this.#batch;
        this.#pending = [];
        this.#batch = newBatch();
        try {
          if (this.#size >= this.#compactAt) {
            this.#compact();
          } else {
            let bytes = 0;
            for (const r of records) bytes += r.length;
            await this.#handle.writev(records);
            if (this.#options.fsync) await this.#handle.datasync();
            this.#size += bytes;
          }
          batch.resolve();
        } catch (err) {
          this.#failure = err;
          this.#options.log.error('journal write failed; sends are refused from now on', { err, file: this.#file });
          batch.reject(err);
          this.#batch.reject(err);
        }
      }
    } finally {
      this.#writing = false;
    }
    if (this.#pending.length > 0) this.#schedule();
  }

  /** Writes the live state to a new file and renames it over the journal; the live state covers pending records. */
  #compact(): void {
    const before = this.#size;
    const tmp = `${this.#file}.compact`;
    const records = this.#options.snapshot();
    const fd = openSync(tmp, 'w');
    let size = 0;
    try {
      for (const r of records) size += writeSync(fd, r);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#file);
    const dirFd = openSync(this.#options.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    const old = this.#handle;
    this.#handle = undefined;
    void old?.close();
    this.#size = size;
    this.#compactAt = Math.max(this.#options.compactBytes, size * 2);
    this.#options.log.info('journal compacted', { beforeBytes: before, afterBytes: size, records: records.length });
    this.#reopen();
  }

  #reopen(): void {
    const fd = openSync(this.#file, 'a');
    closeSync(fd);
    this.#writing = true;
    void open(this.#file, 'a').then(
      (h) => {
        this.#handle = h;
        this.#writing = false;
        if (this.#pending.length > 0) this.#schedule();
      },
      (err: unknown) => {
        this.#failure = err;
        this.#writing = false;
        this.#options.log.error('journal reopen failed after compaction', { err });
      },
    );
  }

  /** Writes what is pending, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#pending.length > 0) await this.commit().catch(() => undefined);
    while (this.#writing) await new Promise((r) => setImmediate(r));
    this.#closed = true;
    const h = this.#handle;
    this.#handle = undefined;
    await h?.close();
  }
}
