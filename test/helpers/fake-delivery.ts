/**
 * A `Delivery` (src/pipeline/ports.ts) that records how it was settled, for stage unit tests.
 */
import type { Delivery } from '../../src/pipeline/ports.js';

export type Settlement =
  { how: 'complete' } | { how: 'abandon' } | { how: 'deadLetter'; reason: string; description: string };

export interface FakeDelivery extends Delivery {
  /** Every settlement call, in order (a correct stage makes exactly one). */
  readonly settlements: Settlement[];
}

export function fakeDelivery(
  body: unknown,
  fields: Partial<
    Pick<Delivery, 'messageId' | 'contentType' | 'applicationProperties' | 'deliveryCount' | 'sessionId'>
  > = {},
): FakeDelivery {
  const settlements: Settlement[] = [];
  return {
    body,
    messageId: fields.messageId,
    contentType: fields.contentType,
    applicationProperties: fields.applicationProperties ?? {},
    deliveryCount: fields.deliveryCount ?? 1,
    sessionId: fields.sessionId,
    settlements,
    complete: async () => void settlements.push({ how: 'complete' }),
    abandon: async () => void settlements.push({ how: 'abandon' }),
    deadLetter: async (reason, description) => void settlements.push({ how: 'deadLetter', reason, description }),
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
