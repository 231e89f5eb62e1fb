/**
 * Service Bus emulator throughput: the emulator runs in its own process (the CLI, as an operator runs it) and the
 * real `@azure/service-bus` SDK runs here, on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { packageRoot } from '../../src/paths.js';
import type { BenchSection } from './section.js';

const BATCH_MESSAGES = 50_000;
const DURABLE_MESSAGES = 20_000;
const BATCH_SIZE = 500;
const SEND_CONCURRENCY = 4;
const SINGLE_MESSAGES = 5_000;
const SINGLE_CONCURRENCY = 50;
const RECEIVE_BATCH = 500;
const SUBSCRIBE_CONCURRENCY = 100;
const TARGETS = { batchSend: 15_000, receiveComplete: 8_000 } as const;

const QUEUES = ['bench-batch', 'bench-single', 'bench-subscribe'] as const;
const SESSION_QUEUE = 'bench-sessions';
const SESSION_MESSAGES = 20_000;
const SESSIONS = 50;
const SESSION_RECEIVERS = 4;

function benchConfig(): object {
  return {
    UserConfig: {
      Namespaces: [
        {
          Name: 'sbemulatorns',
          Queues: [
            ...QUEUES.map((name) => ({ Name: name, Properties: { LockDuration: 'PT5M', MaxDeliveryCount: 10 } })),
            {
              Name: SESSION_QUEUE,
              Properties: { LockDuration: 'PT5M', RequiresSession: true, RequiresDuplicateDetection: true },
            },
          ],
          Topics: [],
        },
      ],
      Logging: { Type: 'Console' },
    },
  };
}

/** Starts `channel-relay emulate servicebus --port 0` and reads its connection string from stdout. */
async function spawnEmulator(
  configFile: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; connectionString: string }> {
  const args = [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'emulate',
    'servicebus',
    '--port',
    '0',
    '--config',
    configFile,
    '--log-level',
    'warn',
    ...extra,
  ];
  const child = spawn(process.execPath, args, {
    cwd: packageRoot(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const connectionString = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the emulator did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`the emulator exited with ${String(code)} before it was ready`)));
    lines.on('line', (line) => {
      const m = /^SERVICEBUS_CONNECTION_STRING=(.+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, connectionString };
}

function body(i: number): object {
  return {
    activityId: `bench-${i}`,
    channel: 'sms',
    to: 'contact-000',
    text: 'Your appointment is confirmed for tomorrow at 10:00.',
  };
}

async function timed(fn: () => Promise<number>): Promise<{ count: number; ms: number; perSecond: number }> {
  const started = process.hrtime.bigint();
  const count = await fn();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { count, ms, perSecond: Math.round((count * 1000) / ms) };
}

async function batchSend(client: ServiceBusClient, queue: string, total: number): Promise<number> {
  const sender = client.createSender(queue);
  await sender.sendMessages({ body: 'warm-up' });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const start = next;
      next = Math.min(total, next + BATCH_SIZE);
      const messages = [];
      for (let i = start; i < next; i++) messages.push({ body: body(i), messageId: `m-${i}` });
      await sender.sendMessages(messages);
    }
  };
  await Promise.all(Array.from({ length: SEND_CONCURRENCY }, worker));
  await sender.close();
  return total;
}

async function singleSend(client: ServiceBusClient, queue: string, total: number): Promise<number> {
  const sender = client.createSender(queue);
  await sender.sendMessages({ body: 'warm-up' });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) await sender.sendMessages({ body: body(next++) });
  };
  await Promise.all(Array.from({ length: SINGLE_CONCURRENCY }, worker));
  await sender.close();
  return total;
}

async function receiveComplete(client: ServiceBusClient, queue: string, expected: number): Promise<number> {
  const receiver = client.createReceiver(queue);
  let received = 0;
  while (received < expected) {
    // Ask for exactly what is left: a short last batch would otherwise wait for more before returning.
    const messages = await receiver.receiveMessages(Math.min(RECEIVE_BATCH, expected - received), {
      maxWaitTimeInMs: 2000,
    });
    if (messages.length === 0) break;
    await Promise.all(messages.map((m) => receiver.completeMessage(m)));
    received += messages.length;
  }
  await receiver.close();
  return received;
}

async function subscribeComplete(client: ServiceBusClient, queue: string, expected: number): Promise<number> {
  const receiver = client.createReceiver(queue);
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const sub = receiver.subscribe(
      {
        processMessage: async (_m: ServiceBusReceivedMessage) => {
          received++;
          if (received >= expected) resolve();
        },
        processError: async (args) => reject(args.error),
      },
      { maxConcurrentCalls: SUBSCRIBE_CONCURRENCY, autoCompleteMessages: true },
    );
    void sub;
  });
  await receiver.close();
  return received;
}

/** Like the relay's outbound queue: messages spread over sessions, taken by a few session receivers. */
async function sessionSendAndReceive(connectionString: string): Promise<{ send: Timed; receive: Timed }> {
  const client = new ServiceBusClient(connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 2000 } });
  try {
    const sender = client.createSender(SESSION_QUEUE);
    const send = await timed(async () => {
      for (let i = 0; i < SESSION_MESSAGES; i += BATCH_SIZE) {
        await sender.sendMessages(
          Array.from({ length: BATCH_SIZE }, (_, j) => ({
            body: body(i + j),
            messageId: `s-${i + j}`,
            sessionId: `sender-${(i + j) % SESSIONS}`,
          })),
        );
      }
      return SESSION_MESSAGES;
    });
    const perSession = SESSION_MESSAGES / SESSIONS;
    let received = 0;
    let done!: () => void;
    const allReceived = new Promise<void>((resolve) => (done = resolve));
    const worker = async (): Promise<void> => {
      while (received < SESSION_MESSAGES) {
        const session = await client.acceptNextSession(SESSION_QUEUE).catch(() => undefined);
        if (!session) return;
        let mine = 0;
        while (mine < perSession) {
          const messages = await session.receiveMessages(perSession - mine, { maxWaitTimeInMs: 2000 });
          if (messages.length === 0) break;
          await Promise.all(messages.map((m) => session.completeMessage(m)));
          mine += messages.length;
          received += messages.length;
        }
        await session.close();
        if (received >= SESSION_MESSAGES) done();
      }
    };
    let workers: Promise<void[]> | undefined;
    const receive = await timed(async () => {
      workers = Promise.all(Array.from({ length: SESSION_RECEIVERS }, worker));
      await Promise.race([allReceived, workers]);
      return received;
    });
    await workers;
    return { send, receive };
  } finally {
    await client.close();
  }
}

function row(name: string, r: { count: number; ms: number; perSecond: number }, target?: number): string {
  const verdict =
    target === undefined
      ? '—'
      : r.perSecond >= target
        ? `≥ ${target.toLocaleString('en')}: met`
        : `≥ ${target.toLocaleString('en')}: **not met**`;
  return `| ${name} | ${r.count.toLocaleString('en')} | ${(r.ms / 1000).toFixed(2)} s | **${r.perSecond.toLocaleString('en')}** | ${verdict} |`;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface Figures {
  send: Timed;
  receive: Timed;
}
type Timed = Awaited<ReturnType<typeof timed>>;

/** Batch send then receive + complete against one emulator process. */
async function sendAndReceive(
  configFile: string,
  extra: string[],
  total: number,
): Promise<Figures & { single?: Timed; subscribe?: Timed; sessions?: Figures }> {
  const { child, connectionString } = await spawnEmulator(configFile, extra);
  const client = new ServiceBusClient(connectionString);
  try {
    const send = await timed(() => batchSend(client, 'bench-batch', total));
    const receive = await timed(() => receiveComplete(client, 'bench-batch', total + 1));
    if (extra.length > 0) return { send, receive };
    const single = await timed(() => singleSend(client, 'bench-single', SINGLE_MESSAGES));
    await batchSend(client, 'bench-subscribe', total);
    const subscribe = await timed(() => subscribeComplete(client, 'bench-subscribe', total + 1));
    const sessions = await sessionSendAndReceive(connectionString);
    return { send, receive, single, subscribe, sessions };
  } finally {
    await client.close();
    await stop(child);
  }
}

export async function benchServiceBus(): Promise<BenchSection> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-'));
  const configFile = path.join(dir, 'Config.json');
  writeFileSync(configFile, JSON.stringify(benchConfig()));
  try {
    const memory = await sendAndReceive(configFile, [], BATCH_MESSAGES);
    const durable = await sendAndReceive(configFile, ['--data-dir', path.join(dir, 'data')], DURABLE_MESSAGES);
    const markdown = [
      'The emulator runs in its own process (`channel-relay emulate servicebus --port 0`), the real `@azure/service-bus`',
      '7.9.5 SDK in the benchmark process; one connection, loopback. Messages are small JSON bodies (~130 bytes) with a',
      'message id. Each figure is one timed run after a warm-up message. "Memory" is the default; "journal" adds',
      '`--data-dir` (every acknowledged send is `fdatasync`ed first, group-committed across concurrent sends).',
      '',
      '| Test | Messages | Time | msg/s | Target |',
      '|---|---|---|---|---|',
      row(
        `Batch send (memory): \`sendMessages\` arrays of ${BATCH_SIZE}, ${SEND_CONCURRENCY} batches in flight`,
        memory.send,
        TARGETS.batchSend,
      ),
      row(
        `Receive + complete (memory): \`receiveMessages(${RECEIVE_BATCH})\`, then every \`completeMessage\` at once`,
        memory.receive,
        TARGETS.receiveComplete,
      ),
      row(`Single sends (memory), ${SINGLE_CONCURRENCY} in flight`, memory.single!),
      row(`\`subscribe\` (memory), \`maxConcurrentCalls: ${SUBSCRIBE_CONCURRENCY}\`, auto-complete`, memory.subscribe!),
      row(`Sessions: batch send over ${SESSIONS} sessions, duplicate detection on (memory)`, memory.sessions!.send),
      row(
        `Sessions: ${SESSION_RECEIVERS} receivers, \`acceptNextSession\` + \`receiveMessages\` + complete, a session at a time (memory)`,
        memory.sessions!.receive,
      ),
      row('Batch send (journal, fsync)', durable.send),
      row('Receive + complete (journal)', durable.receive),
      '',
      'Receive + complete is bound by the SDK: the client process uses about twice the CPU time of the emulator for it.',
      'The session figure includes opening a receive link (with its token exchange) for each of the sessions.',
    ].join('\n');
    return { title: 'Service Bus emulator', markdown };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
