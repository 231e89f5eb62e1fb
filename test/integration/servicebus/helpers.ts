/**
 * Set-up of the Service Bus layer's integration tests: an emulator per test (port 0, small timings) through the
 * emulator suite's `emulatorConfig`, relay clients from `createServiceBusClient`, everything closed after the test.
 */
import type { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import { createServiceBusClient } from '../../../src/servicebus/index.js';
import type { Delivery } from '../../../src/pipeline/ports.js';
import { emulatorConfig, type TestEntities } from '../emulators/servicebus/helpers.js';

export { waitFor } from '../../helpers/wait.js';
export { delayUnlessAborted } from '../../../src/abort.js';
export { closedAfterEach } from '../../helpers/fixtures.js';

export async function startBus(
  entities: TestEntities,
  options: { maxMessageSizeBytes?: number } = {},
): Promise<ServiceBusEmulator> {
  return startServiceBusEmulator({ port: 0, config: emulatorConfig(entities), tickMs: 20, ...options });
}

/** A relay client on the emulator; `timeoutInMs` also bounds how long `acceptNextSession` waits. */
export function relayClient(emulator: ServiceBusEmulator, timeoutInMs = 2_000): ServiceBusClient {
  return createServiceBusClient({
    connectionString: emulator.connectionString,
    retry: { maxRetries: 1, retryDelayInMs: 50, timeoutInMs },
  });
}

/** Receives and removes everything in `queue` (or its dead-letter queue) until `count` arrived. */
export async function takeAll(
  client: ServiceBusClient,
  queue: string,
  count: number,
  deadLetter = false,
  timeoutMs = 5_000,
): Promise<ServiceBusReceivedMessage[]> {
  const receiver = client.createReceiver(queue, {
    receiveMode: 'receiveAndDelete',
    ...(deadLetter ? { subQueueType: 'deadLetter' as const } : {}),
  });
  const got: ServiceBusReceivedMessage[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    while (got.length < count) {
      if (Date.now() > deadline)
        throw new Error(`only ${got.length} of ${count} messages in ${queue}${deadLetter ? '/$DeadLetterQueue' : ''}`);
      got.push(...(await receiver.receiveMessages(Math.min(200, count - got.length), { maxWaitTimeInMs: 200 })));
    }
  } finally {
    await receiver.close();
  }
  return got;
}

/** How a delivery the loops handed over was settled (the port's `outcome`). */
export function outcomeOf(d: Delivery | undefined): string {
  return String(d?.outcome);
}
