/**
 * The messages of one queue, subscription or session that a receiver may take, oldest sequence number first.
 * New messages arrive in sequence order (a FIFO); returned ones (abandoned, lock expired) go to a min-heap and are
 * taken before newer messages. Entries are invalidated lazily: a message that left meanwhile is skipped.
 */
import type { StoredMessage } from './message.js';

interface Entry {
  msg: StoredMessage;
}

export class AvailableQueue {
  #fifo: Entry[] = [];
  #head = 0;
  #heap: Entry[] = [];
  /** The live entry of each queued message: an entry is valid only while it is the message's current one. */
  readonly #current = new WeakMap<StoredMessage, Entry>();
  #count = 0;

  /** How many messages are waiting. */
  get size(): number {
    return this.#count;
  }

  /** Adds a new message (higher sequence number than every message added before). */
  push(msg: StoredMessage): void {
    const entry = { msg };
    this.#current.set(msg, entry);
    this.#fifo.push(entry);
    this.#count++;
  }

  /** Puts a message back, in sequence-number order among the other returned ones. */
  putBack(msg: StoredMessage): void {
    const entry = { msg };
    this.#current.set(msg, entry);
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.msg.seq <= heap[i]!.msg.seq) break;
      [heap[parent], heap[i]] = [heap[i]!, heap[parent]!];
      i = parent;
    }
    this.#count++;
  }

  /** Whether the message is waiting here. */
  has(msg: StoredMessage): boolean {
    return this.#current.has(msg);
  }

  /** Forgets a waiting message (expired, cancelled); its entry is skipped later. */
  remove(msg: StoredMessage): void {
    if (this.#current.delete(msg)) this.#count--;
  }

  /** Takes the waiting message with the lowest sequence number. */
  take(): StoredMessage | undefined {
    for (;;) {
      this.#dropStale();
      const fromFifo = this.#fifo[this.#head];
      const fromHeap = this.#heap[0];
      const entry =
        fromHeap && (!fromFifo || fromHeap.msg.seq < fromFifo.msg.seq)
          ? this.#popHeap()
          : fromFifo
            ? this.#shiftFifo()
            : undefined;
      if (!entry) return undefined;
      if (this.#current.get(entry.msg) !== entry) continue;
      this.#current.delete(entry.msg);
      this.#count--;
      return entry.msg;
    }
  }

  #dropStale(): void {
    while (this.#heap.length > 0 && this.#current.get(this.#heap[0]!.msg) !== this.#heap[0]) this.#popHeap();
    while (this.#head < this.#fifo.length && this.#current.get(this.#fifo[this.#head]!.msg) !== this.#fifo[this.#head])
      this.#shiftFifo();
  }

  #shiftFifo(): Entry | undefined {
    const entry = this.#fifo[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  #popHeap(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && heap[l]!.msg.seq < heap[m]!.msg.seq) m = l;
        if (r < heap.length && heap[r]!.msg.seq < heap[m]!.msg.seq) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  }
}
