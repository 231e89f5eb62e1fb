import type { ServiceBusClient, ServiceBusMessage } from '@azure/service-bus';

/**
 * A ServiceBusClient whose senders keep the SDK messages they are given (every batch takes any message), for tests of
 * what `createQueueSender` puts on a message (application properties, ids).
 */
export function capturingClient(): { client: ServiceBusClient; sent: ServiceBusMessage[] } {
  const sent: ServiceBusMessage[] = [];
  const sender = {
    isClosed: false,
    createMessageBatch: async () => {
      const added: ServiceBusMessage[] = [];
      return {
        maxSizeInBytes: 256 * 1024,
        get count() {
          return added.length;
        },
        tryAddMessage: (m: ServiceBusMessage) => added.push(m) > 0,
        added,
      };
    },
    sendMessages: async (batch: { added: ServiceBusMessage[] }) => void sent.push(...batch.added),
    close: async () => undefined,
  };
  return { client: { createSender: () => sender } as unknown as ServiceBusClient, sent };
}
