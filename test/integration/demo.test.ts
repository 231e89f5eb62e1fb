/**
 * `channel-relay demo` as a user runs it (the real executable, in a child process): the funnel it prints and the
 * summary JSON it writes agree with the emulators' own records, read independently while `--serve` keeps them up;
 * Ctrl-C stops it cleanly mid-run and after serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { collectOutput, spawnCli, type CollectedOutput } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { runDemo, type DemoOptions, type DemoSummary } from '../../src/demo/index.js';
import { silentLogger } from '../../src/log.js';
import { configPath } from '../../src/paths.js';

const SAMPLE_JOURNEY = 'a7bf09dd-7b81-51ce-9fac-9dcbbb837cae';

interface Running extends CollectedOutput {
  child: ChildProcessByStdio<null, Readable, Readable>;
}

function start(args: string[]): Running {
  const child = spawnCli(['demo', ...args], { PATH: process.env['PATH'] });
  return { child, ...collectOutput(child) };
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

describe('channel-relay demo', function () {
  this.timeout(120_000);
  let dir: string;
  let running: Running | undefined;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'demo-test-'));
  });
  afterEach(async () => {
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exited;
    }
    running = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the funnel and writes a summary that matches the emulators’ records; --serve keeps them up until Ctrl-C', async () => {
    const summaryFile = path.join(dir, 'summary.json');
    running = start(['--contacts', '60', '--summary-json', summaryFile, '--serve']);
    const r = running;
    await waitFor('the demo to serve', () => (r.stdout().includes('Ctrl-C stops it') ? true : undefined), 90_000).catch(
      (err: unknown) => {
        throw new Error(`${String(err)}\nstdout:\n${r.stdout()}\nstderr:\n${r.stderr()}`);
      },
    );
    const out = r.stdout();
    const dataverse = /DATAVERSE_URL=(\S+)/.exec(out)?.[1];
    const providers = /PROVIDERS_URL=(\S+)/.exec(out)?.[1];
    assert.ok(dataverse && providers, `URLs printed:\n${out}`);
    assert.match(out, /Spring offer journey\s+\d+\s+\d+\s+\d+\s+0\s+0/);
    assert.match(out, /SERVICEBUS_CONNECTION_STRING='Endpoint=sb:\/\/127\.0\.0\.1:\d+;/);
    // Before the journey: each sample channel's solution generated, packed, checked, imported and registered, a line
    // each; the real-time one's registration adds the step on its outbound Custom API.
    const steps = out.split('\n').filter((l) => /^(channel (new|pack|check|import)|register) /.test(l));
    assert.equal(steps.length, 10, `one line per step:\n${out}`);
    assert.match(
      steps[0]!,
      /^channel new special --contract outbound-marketing --publisher-prefix sample … ok \(\d+ files\)$/,
    );
    assert.match(steps[1]!, /^channel pack special … \d+\.\d kB$/);
    assert.match(steps[2]!, /^channel check sample_Special\.zip … ok$/);
    assert.match(steps[3]!, /^channel import sample_Special\.zip … 100 % in \d+\.\d s$/);
    assert.match(steps[4]!, /^register special … ok \(0 created, 0 updated, 2 unchanged\)$/);
    assert.match(
      steps[5]!,
      /^channel new realtime-sms --contract realtime --channel-type SMS --inbound --delivery-reports --publisher-prefix sample … ok \(\d+ files\)$/,
    );
    assert.match(steps[6]!, /^channel pack realtime-sms … \d+\.\d kB$/);
    assert.match(steps[7]!, /^channel check sample_RealtimeSms\.zip … ok$/);
    assert.match(steps[8]!, /^channel import sample_RealtimeSms\.zip … 100 % in \d+\.\d s$/);
    assert.match(steps[9]!, /^register realtime-sms … ok \(1 created, 0 updated, 2 unchanged\)$/);
    assert.ok(out.indexOf(steps[9]!) < out.indexOf('running the sample journey'), 'before the journey runs');

    const summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as DemoSummary;
    for (const key of [
      'activities',
      'skippedByCompliance',
      'sent',
      'failed',
      'deadLettered',
      'providerMessages',
      'duplicates',
      'dataverseRequests',
      'durationMs',
    ] as const) {
      assert.equal(typeof summary[key], 'number', `summary.${key}`);
    }
    // The emulators' own records, read here, independently of the demo.
    const interactions = await getJson<{
      value: Array<{ activityRowId: string; responseType: string; duplicateOf?: number }>;
    }>(`${dataverse}/_emulator/interactions?journeyId=${SAMPLE_JOURNEY}`);
    const stats = await getJson<{
      rows: Record<string, number>;
      interactionDuplicates: number;
      traffic: { identities: Record<string, { requests: number }> };
    }>(`${dataverse}/_emulator/stats`);
    const messages = await getJson<{ count?: number; value?: unknown[] } | unknown[]>(
      `${providers}/_simulator/messages`,
    );
    const messageCount = Array.isArray(messages) ? messages.length : (messages.value?.length ?? messages.count);

    assert.equal(summary.activities + summary.skippedByCompliance, 60, 'every contact is an activity or skipped');
    assert.ok(summary.skippedByCompliance > 0, 'the sample contacts include opted-out ones');
    assert.equal(summary.activities, stats.rows['msdyncrm_customerjourneycustomchannelactivities']);
    assert.equal(
      summary.sent,
      new Set(interactions.value.filter((i) => i.responseType === 'sent').map((i) => i.activityRowId)).size,
    );
    assert.equal(summary.sent, summary.activities, 'every activity sent');
    assert.equal(summary.failed + summary.deadLettered, 0);
    assert.equal(summary.providerMessages, messageCount);
    assert.equal(summary.duplicates, stats.interactionDuplicates, 'no provider message repeated an activity either');
    assert.equal(summary.duplicates, 0);
    assert.equal(summary.dataverseRequests, stats.traffic.identities['channel-relay']?.requests);
    assert.ok(
      summary.dataverseRequests > 0 && summary.dataverseRequests < summary.activities,
      `${summary.dataverseRequests} requests for ${summary.activities} activities`,
    );
    assert.equal(summary.journeys.length, 1);
    assert.equal(summary.journeys[0]?.sent, summary.sent);

    // The conversations part (20 customers by default), against the two emulators' records read here.
    const directLine = /DIRECTLINE_URL=(\S+)/.exec(out)?.[1];
    assert.ok(directLine, `the Direct Line emulator's URL printed:\n${out}`);
    const conversations = await getJson<
      Array<{ ended: boolean; activities: Array<{ direction: string; type: string }> }>
    >(`${directLine}/_simulator/conversations`);
    const customers = await getJson<{ stats: { customers: number; written: number; received: number; ended: number } }>(
      `${providers}/_simulator/customers`,
    );
    const c = summary.conversations;
    assert.ok(c, 'the summary has the conversations');
    assert.equal(c.customers, 20);
    assert.equal(customers.stats.customers, 20);
    assert.equal(c.started, conversations.length);
    assert.equal(c.startedOver, 0);
    assert.equal(c.ended, conversations.filter((x) => x.ended).length);
    assert.equal(c.ended, 20, 'every conversation ended');
    assert.equal(c.surveysSent, 20);
    assert.equal(c.toAgents, customers.stats.written, 'every customer message reached the agents');
    assert.equal(
      c.toAgents,
      conversations.flatMap((x) => x.activities).filter((a) => a.direction === 'customer' && a.type === 'message')
        .length,
    );
    assert.equal(c.toCustomers, customers.stats.received);
    assert.ok(c.attachmentsAccepted > 0, 'customers sent files and the channel took them');
    assert.equal(c.attachmentsRefused, 0);
    assert.equal(c.duplicates, 0);
    assert.match(out, /Conversations: 20 customers, 20 started \(0 started over\)/);

    r.child.kill('SIGINT');
    assert.equal(await r.exited, 0, r.stderr());
  });

  it('stops cleanly on Ctrl-C while the journey runs, with exit code 130', async () => {
    running = start(['--contacts', '2000', '--sms-per-second', '20']);
    const r = running;
    await waitFor('the journey to start', () => (r.stdout().includes('activities') ? true : undefined), 90_000);
    r.child.kill('SIGINT');
    assert.equal(await r.exited, 130, r.stderr());
    assert.match(r.stderr(), /interrupted: stopping the workers and the emulators/);
    assert.doesNotMatch(r.stdout(), /Provider messages/);
  });

  describe('in process', () => {
    /** runDemo with its output collected and nothing on the terminal. */
    async function demo(
      options: Partial<DemoOptions>,
    ): Promise<{ code: number; summary?: DemoSummary; out: string; err: string }> {
      let out = '';
      let err = '';
      const result = await runDemo({
        contacts: 30,
        signal: new AbortController().signal,
        out: (t) => (out += `${t}\n`),
        err: (t) => (err += `${t}\n`),
        progressStream: new PassThrough().resume(),
        log: silentLogger(),
        stallTimeoutMs: 20_000,
        ...options,
      });
      return { ...result, out, err };
    }

    it('counts contacts who opted out after their activity was created as skipped, and finishes without a stall', async () => {
      const run = await demo({ contacts: 30, lateOptOuts: 4 });
      assert.equal(run.code, 0, run.err);
      const s = run.summary as DemoSummary;
      assert.equal(s.optedOutAfterCreation, 4);
      assert.equal(s.sent, s.activities - 4, 'the relay sent them nothing');
      assert.equal(s.providerMessages, s.sent);
      assert.equal(s.skippedByCompliance, 30 - s.activities + 4);
      assert.match(run.out, /^4 of the skipped contacts opted out after their activity was created/m);
    });

    it('fails (exit 1) when simulated customers give up waiting for an answer, saying how many', async () => {
      // Agents who answer after 10 minutes; customers who wait 1.5 s: every conversation is given up.
      const run = await demo({
        contacts: 10,
        customers: 2,
        customerReplyTimeoutMs: 1_500,
        system: { conversations: { agents: { replyDelayMs: 600_000 } } },
      });
      assert.equal(run.code, 1, run.out);
      assert.match(run.err, /^stalled: 2 of 2 customers gave up waiting for an answer/m);
      assert.equal(run.summary?.conversations?.customers, 2);
    });

    it('matches dead letters to their activities and names the reasons', async () => {
      // The sample messages name the channel `sms`; without a channel of that name intake dead-letters every event.
      const channels = JSON.parse(readFileSync(configPath('channels.json'), 'utf8')) as {
        channels: Array<{ name: string; tile?: string }>;
      };
      for (const c of channels.channels) {
        if (c.name === 'sms') c.name = 'sms-elsewhere';
        if (c.tile !== undefined) c.tile = configPath(c.tile);
      }
      const file = path.join(dir, 'channels.json');
      writeFileSync(file, JSON.stringify(channels));
      const run = await demo({ contacts: 20, system: { channelsFile: file } });
      assert.equal(run.code, 0, run.err);
      const s = run.summary as DemoSummary;
      assert.ok(s.activities > 0);
      assert.equal(s.deadLettered, s.activities);
      assert.equal(s.sent + s.failed + s.providerMessages, 0);
      assert.deepEqual(s.deadLetterReasons, { activities: { EventUnknownChannel: s.activities } });
      assert.match(run.out, /Dead letters: activities: EventUnknownChannel × \d+/);
    });
  });
});
