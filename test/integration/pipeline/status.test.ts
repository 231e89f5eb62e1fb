/**
 * `channel-relay status` against a running relay: the built `all` worker (intake, dispatch, recorder) on the
 * emulators, a journey through it, then status with --metrics on the worker's health port. The queues drain to
 * zero, and the worker's counters say what went through.
 */
import assert from 'node:assert/strict';
import { runCli } from '../../../src/cli/program.js';
import { freePort } from '../../../src/http/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { recordingIo } from '../../helpers/cli.js';
import { SEED, buildWorkers, startSystem, until } from './harness.js';

interface StatusJson {
  queues: Array<{ role: string; active?: number; deadLettered?: number; sessionsHeld?: number | null; error?: string }>;
  workers: Array<{ service?: string; ready?: boolean; totals?: Record<string, number>; error?: string }>;
}

describe('channel-relay status on a running relay', function () {
  this.timeout(180_000);
  const track = closedAfterEach();
  before(() => buildWorkers());

  it("shows the drained queues and the built worker's readiness and counters", async () => {
    const system = track(await startSystem());
    const healthPort = await freePort();
    system.env['HEALTH_PORT'] = String(healthPort);
    const worker = system.spawnWorker('all', { compiled: true });
    const url = `http://127.0.0.1:${healthPort}`;
    const status = async (): Promise<StatusJson> => {
      const io = recordingIo({ ...system.env });
      const code = await runCli(
        ['status', '--json', '--management-port', String(system.sb.managementPort), '--metrics', url],
        io,
      );
      assert.ok(code === 0 || code === 1, `exit ${code}: ${io.stderr.join('\n')}`);
      return JSON.parse(io.stdout[0]!) as StatusJson;
    };
    await until('the worker ready', async () => ((await status()).workers[0]?.ready === true ? true : undefined));

    const run = await system.runJourney(SEED.journey, 20);
    const sent = run.created.length;
    assert.ok(sent > 0);
    await until(`${sent} sent interactions recorded`, async () =>
      (await system.interactions()).filter((i) => i.responseType === 'sent').length >= sent ? true : undefined,
    );
    const doc = await until('the queues drained', async () => {
      const d = await status();
      return d.queues.every((q) => q.active === 0) ? d : undefined;
    });
    for (const q of doc.queues) assert.equal(q.deadLettered, 0, `${q.role}: ${JSON.stringify(q)}`);
    // Dispatch's session loop reports what it holds (0 or more by now: idle sessions are released).
    const outbound = doc.queues.find((q) => q.role === 'outbound');
    assert.equal(typeof outbound?.sessionsHeld, 'number', JSON.stringify(outbound));
    const w = doc.workers[0]!;
    assert.equal(w.service, 'relay');
    assert.equal(w.ready, true);
    assert.ok((w.totals?.['received:activities'] ?? 0) >= sent, JSON.stringify(w.totals));
    assert.equal(w.totals?.['dispatched:sent'], sent, JSON.stringify(w.totals));
    assert.ok((w.totals?.['consumed_completed:interactions'] ?? 0) >= sent, JSON.stringify(w.totals));
    assert.equal(await worker.stop(), 0, worker.stderr());
  });
});
