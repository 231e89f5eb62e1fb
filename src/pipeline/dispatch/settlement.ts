/**
 * The settlement of one `outbound` delivery by the dispatch stage: complete, abandon or dead-letter, exactly once,
 * counted; a failed settlement is logged and counted (the message comes back when its lock expires).
 */
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DispatchCounts } from './metrics.js';
import type { Delivery } from '../ports.js';

/** Settles one delivery once; a second settlement is a bug and is logged, a failed one is logged and counted. */
export class Settlement {
  #done = false;
  #result: 'completed' | 'abandoned' | 'deadLettered' | 'failed' | undefined;
  constructor(
    private readonly delivery: Delivery,
    private readonly counts: DispatchCounts,
    private readonly log: Logger,
  ) {}

  get done(): boolean {
    return this.#done;
  }

  /** How the settlement ended: `failed` when the bus refused it (the message comes back); undefined before. */
  get result(): 'completed' | 'abandoned' | 'deadLettered' | 'failed' | undefined {
    return this.#result;
  }

  async complete(): Promise<void> {
    if (this.#claim('complete')) await this.#run('complete', () => this.delivery.complete(), 'completed');
  }

  async abandon(): Promise<void> {
    if (this.#claim('abandon')) await this.#run('abandon', () => this.delivery.abandon(), 'abandoned');
  }

  async deadLetter(reason: string, description: string): Promise<void> {
    if (this.#claim('deadLetter'))
      await this.#run('deadLetter', () => this.delivery.deadLetter(reason, description), 'deadLettered');
  }

  #claim(what: string): boolean {
    if (this.#done) {
      this.log.error('delivery already settled: not settling again', {
        settlement: what,
        messageId: this.delivery.messageId,
      });
      return false;
    }
    this.#done = true;
    return true;
  }

  async #run(
    what: string,
    settle: () => Promise<void>,
    counter: 'completed' | 'abandoned' | 'deadLettered',
  ): Promise<void> {
    try {
      await settle();
      this.counts[counter]++;
      this.#result = counter;
    } catch (err) {
      this.#result = 'failed';
      this.counts.settleFailures++;
      this.log.warn('settlement failed: the message will be delivered again when its lock expires', {
        settlement: what,
        messageId: this.delivery.messageId,
        err: errorMessage(err),
      });
    }
  }
}
