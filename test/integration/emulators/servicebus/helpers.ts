/**
 * Shared set-up of the Service Bus emulator integration tests: an emulator per test on port 0 with small timings,
 * SDK clients that are all closed in `afterEach`, and waiting on conditions with deadlines.
 */
import { Writable } from 'node:stream';
import { ServiceBusClient } from '@azure/service-bus';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import { createLogger, type Logger } from '../../../../src/log.js';

export interface QueueProps {
  LockDuration?: string;
  MaxDeliveryCount?: number;
  DefaultMessageTimeToLive?: string;
  DeadLetteringOnMessageExpiration?: boolean;
  RequiresSession?: boolean;
  RequiresDuplicateDetection?: boolean;
  DuplicateDetectionHistoryTimeWindow?: string;
}

export interface TestEntities {
  queues?: Record<string, QueueProps>;
  topics?: Record<
    string,
    { Properties?: object; Subscriptions: Array<{ Name: string; Properties?: QueueProps; Rules?: object[] }> }
  >;
}

export function emulatorConfig(entities: TestEntities): object {
  return {
    UserConfig: {
      Namespaces: [
        {
          Name: 'sbemulatorns',
          Queues: Object.entries(entities.queues ?? {}).map(([Name, Properties]) => ({ Name, Properties })),
          Topics: Object.entries(entities.topics ?? {}).map(([Name, t]) => ({ Name, ...t })),
        },
      ],
      Logging: { Type: 'Console' },
    },
  };
}

/** One emulator and its clients; `close()` closes every client, then the emulator. */
export class TestBed {
  readonly #clients: ServiceBusClient[] = [];
  private constructor(readonly emulator: ServiceBusEmulator) {}

  static async start(
    entities: TestEntities,
    options: { dataDir?: string; tickMs?: number; logger?: Logger; deflateAboveBytes?: number } = {},
  ): Promise<TestBed> {
    const emulator = await startServiceBusEmulator({
      port: 0,
      config: emulatorConfig(entities),
      tickMs: options.tickMs ?? 20,
      ...options,
    });
    return new TestBed(emulator);
  }

  /** A client with no retries; `timeoutInMs` also bounds how long `acceptNextSession` waits. */
  client(timeoutInMs = 10_000): ServiceBusClient {
    const c = new ServiceBusClient(this.emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs } });
    this.#clients.push(c);
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.#clients.splice(0)) await c.close();
    await this.emulator.close();
  }
}

export { waitFor } from '../../../helpers/wait.js';

/** The error code of a rejected promise (fails when it resolves). */
export async function errorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
  throw new Error('expected the call to fail');
}

/** A logger that keeps the JSON lines it gets at `warn` and above. */
export function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done): void {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'warn', pretty: false, stream }), lines };
}
