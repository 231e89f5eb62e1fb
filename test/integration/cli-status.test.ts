/**
 * `channel-relay status` end to end against the Service Bus emulator (its AMQP side and its management API, both
 * through the real SDK) and a worker's real health server: the counts of every state, the dead-letter reasons, the
 * oldest message, the workers' readiness and counters, --watch's redraws and Ctrl-C, and the errors.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ServiceBusClient } from '@azure/service-bus';
import { Command } from 'commander';
import { registerStatusCommand } from '../../src/cli/commands/status.js';
import { runCli } from '../../src/cli/program.js';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../src/emulators/servicebus/index.js';
import { createMetricsRegistry, startHealthServer, type HealthServer } from '../../src/health/index.js';
import { serviceBusMetrics } from '../../src/servicebus/index.js';
import { collectOutput, recordingIo, spawnCli } from '../helpers/cli.js';
import { closedAfterEach } from '../helpers/fixtures.js';
import { waitFor } from '../helpers/wait.js';
import { emulatorConfig } from './emulators/servicebus/helpers.js';

interface QueueJson {
  role: string;
  queue: string;
  requiresSession?: boolean;
  active?: number;
  scheduled?: number;
  deadLettered?: number;
  deadLetterReasons?: { peeked: number; of: number; complete: boolean; byReason: Record<string, number> };
  oldestActive?: { enqueuedAt?: string; ageSeconds?: number; unknown?: string };
  sessionsHeld?: number | null;
  error?: string;
  missing?: boolean;
}
interface WorkerJson {
  url: string;
  service?: string;
  ready?: boolean;
  failing?: string[];
  totals?: Record<string, number>;
  perSecond?: Record<string, number> | null;
  error?: string;
}
interface StatusJson {
  at: string;
  queues: QueueJson[];
  workers: WorkerJson[];
}

describe('channel-relay status (against the Service Bus emulator)', function () {
  this.timeout(30_000);
  const track = closedAfterEach();
  let emulator: ServiceBusEmulator;
  let client: ServiceBusClient;

  beforeEach(async () => {
    emulator = track(
      await startServiceBusEmulator({
        port: 0,
        tickMs: 20,
        config: emulatorConfig({
          queues: { activities: {}, outbound: { RequiresSession: true }, interactions: {}, conversations: {} },
        }),
      }),
    );
    client = track(
      new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } }),
    );
  });

  const env = (): NodeJS.ProcessEnv => ({ SERVICEBUS_CONNECTION_STRING: emulator.connectionString });
  const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string; lines: string[] }> => {
    const io = recordingIo(env());
    const code = await runCli(['status', '--management-port', String(emulator.managementPort), ...args], io);
    return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n'), lines: io.stdout };
  };
  const queueOf = (doc: StatusJson, role: string): QueueJson => {
    const q = doc.queues.find((x) => x.role === role);
    assert.ok(q, `queue ${role} in ${JSON.stringify(doc)}`);
    return q;
  };

  /** activities: 3 active (one of them locked), 2 scheduled, 3 dead letters with two reasons; outbound: 2 in a session. */
  async function fill(): Promise<void> {
    const sender = client.createSender('activities');
    await sender.sendMessages([1, 2, 3, 4, 5, 6].map((n) => ({ body: `a${n}`, messageId: `a${n}` })));
    await sender.scheduleMessages([{ body: 'later 1' }, { body: 'later 2' }], new Date(Date.now() + 3_600_000));
    const receiver = client.createReceiver('activities');
    const got = await receiver.receiveMessages(4, { maxWaitTimeInMs: 2000 });
    assert.equal(got.length, 4);
    const reasons = ['EventUnknownChannel', 'EventUnknownChannel', 'EventUndecodable'];
    for (const [i, reason] of reasons.entries())
      await receiver.deadLetterMessage(got[i]!, { deadLetterReason: reason, deadLetterErrorDescription: 'test' });
    // got[3] stays locked: still active.
    await client.createSender('outbound').sendMessages([
      { body: 'o1', sessionId: 'sender-1' },
      { body: 'o2', sessionId: 'sender-1' },
    ]);
  }

  it('--json: every state counted, the dead-letter reasons, the oldest active message, sessions said', async () => {
    await fill();
    const { code, lines, err } = await cli('--json');
    assert.equal(code, 0, err);
    assert.equal(lines.length, 1);
    const doc = JSON.parse(lines[0]!) as StatusJson;
    const activities = queueOf(doc, 'activities');
    assert.equal(activities.active, 3);
    assert.equal(activities.scheduled, 2);
    assert.equal(activities.deadLettered, 3);
    assert.deepEqual(activities.deadLetterReasons, {
      peeked: 3,
      of: 3,
      complete: true,
      byReason: { EventUnknownChannel: 2, EventUndecodable: 1 },
    });
    assert.ok(activities.oldestActive?.enqueuedAt, JSON.stringify(activities.oldestActive));
    assert.ok((activities.oldestActive.ageSeconds ?? -1) >= 0);
    const outbound = queueOf(doc, 'outbound');
    assert.equal(outbound.requiresSession, true);
    assert.equal(outbound.active, 2);
    assert.deepEqual(outbound.oldestActive, { unknown: 'sessions' });
    assert.equal(outbound.sessionsHeld, null, 'no worker given: not known');
    const interactions = queueOf(doc, 'interactions');
    assert.equal(interactions.active, 0);
    assert.deepEqual(interactions.oldestActive, { unknown: 'empty' });
    assert.deepEqual(doc.workers, []);
  });

  it('the human output shows the counts and the reasons, and "of N peeked" when the sample is smaller', async () => {
    await fill();
    const { code, out, err } = await cli('--dead-letter-sample', '2');
    assert.equal(code, 0, err);
    assert.match(out, /^activities\s+3\s+2\s+3\s+\d+ s\s+-$/m);
    assert.match(out, /^outbound\s+2\s+0\s+0\s+n\/a \(sessions\)\s+\?$/m);
    assert.match(out, /^interactions\s+0\s+0\s+0\s+-\s+-$/m);
    assert.match(out, /activities \(2 of 3 peeked\): EventUnknownChannel 2$/m);
    const full = await cli();
    assert.match(full.out, /activities \(all 3\): EventUnknownChannel 2, EventUndecodable 1$/m);
  });

  describe('--metrics', () => {
    async function worker(
      service: string,
      ready: boolean,
    ): Promise<{ server: HealthServer; count: (n: number) => void }> {
      const registry = createMetricsRegistry({ labels: { service } });
      const metrics = serviceBusMetrics(registry);
      const server = track(
        await startHealthServer({
          host: '127.0.0.1',
          port: 0,
          registry,
          readiness: () => [
            { name: 'accepting work', ok: true },
            ...(ready ? [] : [{ name: 'outbound loop', ok: false, detail: 'namespace unreachable' }]),
          ],
        }),
      );
      return { server, count: (n) => metrics.received('outbound', n) };
    }

    it("reads each worker's readiness and counters from its health server", async () => {
      const dispatch = await worker('dispatch', true);
      dispatch.count(5);
      const recorder = await worker('recorder', false);
      const { code, lines, err } = await cli(
        '--json',
        '--metrics',
        dispatch.server.url,
        '--metrics',
        recorder.server.url,
      );
      assert.equal(code, 0, err);
      const doc = JSON.parse(lines[0]!) as StatusJson;
      const [d, r] = doc.workers;
      assert.equal(d?.service, 'dispatch');
      assert.equal(d.ready, true);
      assert.equal(d.totals?.['received:outbound'], 5);
      assert.equal(d.perSecond, null);
      assert.equal(r?.service, 'recorder');
      assert.equal(r.ready, false);
      assert.deepEqual(r.failing, ['outbound loop: namespace unreachable']);
      const text = await cli('--metrics', `${dispatch.server.url}/metrics`, '--metrics', recorder.server.url);
      assert.match(text.out, new RegExp(`dispatch ${dispatch.server.url.replace(/[.]/g, '\\.')}/metrics: ready`));
      assert.match(text.out, /received:outbound 5/);
      assert.match(text.out, /recorder .*: NOT READY \(outbound loop: namespace unreachable\)/);
    });

    it('a worker that cannot be read is said, and the exit code is 1', async () => {
      const gone = await worker('intake', true);
      const url = gone.server.url;
      await gone.server.close();
      const { code, out } = await cli('--metrics', url);
      assert.equal(code, 1);
      assert.match(out, new RegExp(`${url.replace(/[.]/g, '\\.')}: not read: .*unreachable`));
    });
  });

  it('--watch redraws in place on a terminal with changing numbers and rates, and Ctrl-C exits 0', async () => {
    const registry = createMetricsRegistry({ labels: { service: 'intake' } });
    const metrics = serviceBusMetrics(registry);
    const health = track(await startHealthServer({ host: '127.0.0.1', port: 0, registry }));
    const io = recordingIo(env());
    const signals = new EventEmitter();
    let code: number | undefined;
    const program = new Command('channel-relay').exitOverride();
    registerStatusCommand(program, io, (c) => (code = c), { signals, isTTY: true });
    const run = program.parseAsync(
      [
        'status',
        '--watch',
        '--interval',
        '100ms',
        '--management-port',
        String(emulator.managementPort),
        '--metrics',
        health.url,
      ],
      { from: 'user' },
    );
    await waitFor('the first frame', () => (io.stdout.length >= 1 ? true : undefined), 10_000);
    await client.createSender('activities').sendMessages([{ body: 'x' }, { body: 'y' }]);
    metrics.received('activities', 7);
    const frame = await waitFor(
      'a frame with the new messages',
      () => io.stdout.find((f) => /^activities\s+2\s/m.test(f) && /received:activities 7 \([\d.]+\/s\)/.test(f)),
      10_000,
    );
    assert.ok(io.stdout.length >= 2);
    assert.match(io.stdout[0]!, /^activities\s+0\s/m);
    for (const f of io.stdout) assert.ok(f.startsWith('\u001b[H\u001b[2J'), 'each frame clears the screen first');
    assert.match(frame, /Ctrl-C to stop/);
    signals.emit('SIGINT', 'SIGINT');
    await run;
    assert.equal(code, 0);
    assert.equal(signals.listenerCount('SIGINT'), 0);
  });

  it('--watch --json when not a terminal: one JSON document per line, no escape codes', async () => {
    const io = recordingIo(env());
    const signals = new EventEmitter();
    let code: number | undefined;
    const program = new Command('channel-relay').exitOverride();
    registerStatusCommand(program, io, (c) => (code = c), { signals, isTTY: false });
    const run = program.parseAsync(
      ['status', '--watch', '--json', '--interval', '100ms', '--management-port', String(emulator.managementPort)],
      { from: 'user' },
    );
    await waitFor('two documents', () => (io.stdout.length >= 2 ? true : undefined), 10_000);
    signals.emit('SIGTERM', 'SIGTERM');
    await run;
    assert.equal(code, 0);
    for (const line of io.stdout) {
      assert.ok(!line.includes('\u001b'));
      assert.equal((JSON.parse(line) as StatusJson).queues.length, 4);
    }
  });

  it('the executable under --watch: plain repeated blocks on a pipe, and SIGINT ends it with 0', async () => {
    const child = spawnCli(
      ['status', '--watch', '--interval', '200ms', '--management-port', String(emulator.managementPort)],
      { PATH: process.env.PATH, ...env() },
    );
    const output = collectOutput(child);
    await output.stdoutMatch(/(channel-relay status at [^\n]*\n[\s\S]*){2}/);
    child.kill('SIGINT');
    assert.equal(await output.exited, 0, output.stderr());
    assert.ok(!output.stdout().includes('\u001b'), 'no escape codes on a pipe');
  });

  describe('errors', () => {
    it('a configured queue the namespace does not have: named, exit 2', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'status-'));
      try {
        const file = path.join(dir, 'relay.json');
        writeFileSync(file, JSON.stringify({ serviceBus: { queues: { conversations: 'talks' } } }));
        const { code, out } = await cli('--config', file);
        assert.equal(code, 2);
        assert.match(
          out,
          /talks \(conversations\): the namespace has no queue 'talks' \(serviceBus\.queues\.conversations\)/,
        );
        const json = await cli('--json', '--config', file);
        assert.equal(json.code, 2);
        const q = queueOf(JSON.parse(json.lines[0]!) as StatusJson, 'conversations');
        assert.equal(q.missing, true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('an unreachable namespace: a Service Bus failure, exit 1', async () => {
      const port = emulator.managementPort;
      await emulator.close();
      const io = recordingIo(env());
      const code = await runCli(['status', '--management-port', String(port)], io);
      assert.equal(code, 1);
      assert.match(io.stderr.join('\n'), /^status: Service Bus failed: .*ECONNREFUSED/m);
    });

    it('bad arguments and configuration: every one named, exit 2', async () => {
      const bad = async (args: string[], pattern: RegExp, e: NodeJS.ProcessEnv = env()): Promise<void> => {
        const io = recordingIo(e);
        assert.equal(await runCli(['status', ...args], io), 2, args.join(' '));
        assert.match(io.stderr.join('\n'), pattern);
      };
      await bad(
        ['--metrics', 'ftp://host:1'],
        /--metrics.*expected a worker's health endpoint such as http:\/\/127\.0\.0\.1:9464, found 'ftp:\/\/host:1'/,
      );
      await bad(['--interval', '5 parsecs'], /--interval.*expected a duration of at least 100 ms .*found '5 parsecs'/);
      await bad(['--dead-letter-sample', '-1'], /--dead-letter-sample.*expected a whole number/);
      await bad([], /no Service Bus connection: set SERVICEBUS_CONNECTION_STRING/, {});
      await bad(['--management-port', '5300'], /--management-port: applies only to a development emulator/, {
        SERVICEBUS_CONNECTION_STRING:
          'Endpoint=sb://relay.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v',
      });
      await bad(
        [],
        /SERVICEBUS_CONNECTION_STRING: serviceBus\.connectionString: expected a Service Bus connection string with Endpoint=sb:\/\//,
        {
          SERVICEBUS_CONNECTION_STRING:
            'Endpoint=localhost:5672;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
        },
      );
    });
  });
});
