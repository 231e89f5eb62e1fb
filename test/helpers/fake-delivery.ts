/**
 * A `Delivery` (src/pipeline/ports.ts) that records how it was settled, for stage unit tests.
 */
import type { Delivery, SettlementOutcome } from '../../src/pipeline/ports.js';

export type Settlement =
  { how: 'complete' } | { how: 'abandon' } | { how: 'deadLetter'; reason: string; description: string };

export interface FakeDelivery extends Delivery {
  /** Every settlement call, in order (a correct stage makes exactly one). */
  readonly settlements: Settlement[];
}

/**
 * `outcome` follows each settlement as the Service Bus delivery's does (src/servicebus/delivery.ts); with `lockLost`
 * every settlement resolves as one whose lock had run out: recorded, but with the outcome `lockLost`.
 */
export function fakeDelivery(
  body: unknown,
  fields: Partial<
    Pick<Delivery, 'messageId' | 'contentType' | 'applicationProperties' | 'deliveryCount' | 'sessionId'>
  > & { lockLost?: boolean } = {},
): FakeDelivery {
  const settlements: Settlement[] = [];
  let outcome: SettlementOutcome | undefined;
  const settle = (settlement: Settlement, done: SettlementOutcome): void => {
    settlements.push(settlement);
    outcome = fields.lockLost === true ? 'lockLost' : done;
  };
  return {
    body,
    messageId: fields.messageId,
    contentType: fields.contentType,
    applicationProperties: fields.applicationProperties ?? {},
    deliveryCount: fields.deliveryCount ?? 1,
    sessionId: fields.sessionId,
    settlements,
    get outcome() {
      return outcome;
    },
    complete: async () => settle({ how: 'complete' }, 'completed'),
    abandon: async () => settle({ how: 'abandon' }, 'abandoned'),
    deadLetter: async (reason, description) => settle({ how: 'deadLetter', reason, description }, 'deadLettered'),
  };
}

/** The single settlement of each delivery; fails the test when one was settled twice or not at all. */
export function settledAs(deliveries: readonly FakeDelivery[]): Array<Settlement['how']> {
  return deliveries.map((d, i) => {
    if (d.settlements.length !== 1)
      throw new Error(`delivery ${i} was settled ${d.settlements.length} times: ${JSON.stringify(d.settlements)}`);
    return (d.settlements[0] as Settlement).how;
  });
}
