/**
 * The messages of one queue, subscription or session that a receiver may take, oldest sequence number first.
 * New messages arrive in sequence order (a FIFO); returned ones (abandoned, lock expired) go to a min-heap and are
 * taken before newer messages. Entries are invalidated lazily: a message that left meanwhile is skipped. A message
 * carries which queue it waits in and the number of its live entry there (`waitingIn`, `waitingEntry`), so that an
 * entry costs two array slots and no object or weak-map entry per message (a backlog of a million is a million).
 */
import type { StoredMessage } from './message.js';

export class AvailableQueue {
  #fifo: StoredMessage[] = [];
  /** The entry number of each FIFO slot: the slot is live while its message's `waitingEntry` is that number. */
  #fifoEntry: number[] = [];
  #head = 0;
  #heap: StoredMessage[] = [];
  #heapEntry: number[] = [];
  #nextEntry = 1;
  #count = 0;

  /** How many messages are waiting. */
  get size(): number {
    return this.#count;
  }

  /** Adds a new message (higher sequence number than every message added before). */
  push(msg: StoredMessage): void {
    this.#fifo.push(msg);
    this.#fifoEntry.push(this.#enter(msg));
  }

  /** Puts a message back, in sequence-number order among the other returned ones. */
  putBack(msg: StoredMessage): void {
    const heap = this.#heap;
    const entries = this.#heapEntry;
    heap.push(msg);
    entries.push(this.#enter(msg));
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.seq <= heap[i]!.seq) break;
      this.#swap(heap, entries, parent, i);
      i = parent;
    }
  }

  /** Marks `msg` as waiting here under a new entry number (an older entry of it becomes stale). */
  #enter(msg: StoredMessage): number {
    if (msg.waitingIn !== this) {
      if (msg.waitingIn instanceof AvailableQueue) msg.waitingIn.remove(msg);
      this.#count++;
    }
    const entry = this.#nextEntry++;
    msg.waitingIn = this;
    msg.waitingEntry = entry;
    return entry;
  }

  /** Whether the message is waiting here. */
  has(msg: StoredMessage): boolean {
    return msg.waitingIn === this;
  }

  /** Forgets a waiting message (expired, cancelled); its entry is skipped later. */
  remove(msg: StoredMessage): void {
    if (msg.waitingIn !== this) return;
    msg.waitingIn = undefined;
    msg.waitingEntry = 0;
    this.#count--;
  }

  /** Takes the waiting message with the lowest sequence number. */
  take(): StoredMessage | undefined {
    this.#dropStale();
    const fromFifo = this.#head < this.#fifo.length ? this.#fifo[this.#head] : undefined;
    const fromHeap = this.#heap[0];
    let msg: StoredMessage | undefined;
    if (fromHeap && (!fromFifo || fromHeap.seq < fromFifo.seq)) {
      msg = fromHeap;
      this.#popHeap();
    } else if (fromFifo) {
      msg = fromFifo;
      this.#shiftFifo();
    }
    if (msg) this.remove(msg);
    return msg;
  }

  #live(msg: StoredMessage, entry: number): boolean {
    return msg.waitingIn === this && msg.waitingEntry === entry;
  }

  /** Drops stale entries from the front of both: after it, each front (if any) is a live entry. */
  #dropStale(): void {
    while (this.#heap.length > 0 && !this.#live(this.#heap[0]!, this.#heapEntry[0]!)) this.#popHeap();
    while (this.#head < this.#fifo.length && !this.#live(this.#fifo[this.#head]!, this.#fifoEntry[this.#head]!))
      this.#shiftFifo();
  }

  #shiftFifo(): void {
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#head);
      this.#fifoEntry = this.#fifoEntry.slice(this.#head);
      this.#head = 0;
    }
  }

  #swap(heap: StoredMessage[], entries: number[], a: number, b: number): void {
    [heap[a], heap[b]] = [heap[b]!, heap[a]!];
    [entries[a], entries[b]] = [entries[b]!, entries[a]!];
  }

  #popHeap(): void {
    const heap = this.#heap;
    const entries = this.#heapEntry;
    const last = heap.pop()!;
    const lastEntry = entries.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    entries[0] = lastEntry;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && heap[l]!.seq < heap[m]!.seq) m = l;
      if (r < heap.length && heap[r]!.seq < heap[m]!.seq) m = r;
      if (m === i) break;
      this.#swap(heap, entries, m, i);
      i = m;
    }
  }
}
