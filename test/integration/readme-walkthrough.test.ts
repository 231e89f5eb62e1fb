import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_FILE_ENV, ENV_OVERRIDES } from '../../src/config/index.js';
import { freePort } from '../../src/http/index.js';
import { packageRoot } from '../../src/paths.js';
import { completed, type CliRun } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The walkthrough "Against the three emulators, by hand" (docs/walkthrough.md, linked from the README), run as
 * written: its ```sh blocks are read from the page and run with bash from the repository root, in order, the way its
 * text says a person runs them. The long-running commands (each emulator, the worker) are what the page puts in
 * terminals of their own: each runs in the background in its own process group; the `NAME=value` line each emulator
 * prints is exported for the blocks that follow, as the page asks the reader to. Everything else runs to completion, and its output is what the
 * assertions read.
 */

const PAGE = 'docs/walkthrough.md';
const SECTION = '# Against the three emulators, by hand';
const JOURNEY_CONTACTS = 20;

/** The ```sh blocks of the walkthrough, in order, exactly as the page has them. */
function walkthroughBlocks(page: string): string[] {
  const start = page.indexOf(SECTION);
  assert.notEqual(start, -1, `${PAGE} has no "${SECTION}" section`);
  const rest = page.slice(start + SECTION.length);
  const next = rest.search(/^#{1,3} /m);
  const section = next === -1 ? rest : rest.slice(0, next);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

/** A block's commands, one per logical line (`\`-continued lines joined), without blank and comment-only lines. */
function commandsOf(block: string): string[] {
  return block
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
}

/** One "terminal": a bash running a walkthrough command in the background, in its own process group. */
interface Terminal {
  name: string;
  role: 'emulator' | 'worker';
  pid: number;
  stdout: string;
  stderr: string;
  exited: CliRun | undefined;
}

const tail = (text: string, lines = 15) => text.trimEnd().split('\n').slice(-lines).join('\n');
const describeRun = (what: string, run: CliRun) =>
  `${what} exited with ${run.code}\n--- stdout\n${tail(run.stdout)}\n--- stderr\n${tail(run.stderr)}`;

/** What a command printed, as JSON; a failure that shows what it printed otherwise. */
function json(run: CliRun, what: string): unknown {
  try {
    assert.equal(run.code, 0);
    return JSON.parse(run.stdout);
  } catch {
    return assert.fail(describeRun(`${what} (expected JSON on stdout)`, run));
  }
}

describe('docs/walkthrough.md: the walkthrough against the three emulators, by hand', function () {
  this.timeout(60_000);

  const root = packageRoot();
  const blocks = walkthroughBlocks(readFileSync(path.join(root, PAGE), 'utf8'));

  it('has the six blocks this test runs: options, emulators, registration, worker, journey, watch', () => {
    assert.equal(blocks.length, 6, `found ${blocks.length} \`\`\`sh blocks in "${SECTION}"`);
  });

  describe('run with bash, as written', () => {
    const terminals: Terminal[] = [];
    let tmp = '';
    let healthPort = 0;
    // What a reader's shell holds: their environment without the relay's own variables, then what the page exports.
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_V8_COVERAGE: '' };
    for (const name of [
      ...Object.keys(ENV_OVERRIDES),
      CONFIG_FILE_ENV,
      'PROVIDERS_URL',
      'TWILIO_AUTH_TOKEN',
      'TELEGRAM_BOT_TOKEN',
      'CONTRACT_SIGNING_SECRET',
    ]) {
      delete env[name];
    }

    /** Runs a block (or one command of one) with bash to completion, as the reader's shell would. */
    function run(script: string, timeoutMs = 15_000): Promise<CliRun> {
      return completed(
        spawn('bash', ['-c', script], {
          cwd: root,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
        }),
      );
    }

    /** Starts a long-running block or command with bash in the background, in a process group of its own. */
    function open(name: string, role: Terminal['role'], script: string): Terminal {
      const child = spawn('bash', ['-c', script], {
        cwd: root,
        env: { ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      assert.ok(child.pid, `could not start bash for ${name}`);
      const terminal: Terminal = { name, role, pid: child.pid, stdout: '', stderr: '', exited: undefined };
      terminals.push(terminal);
      child.stdout.on('data', (d: Buffer) => (terminal.stdout += d.toString()));
      // Logs: keep the last part, enough to say why something failed.
      child.stderr.on('data', (d: Buffer) => (terminal.stderr = (terminal.stderr + d.toString()).slice(-20_000)));
      child.on('close', (code) => (terminal.exited = { code, stdout: terminal.stdout, stderr: terminal.stderr }));
      return terminal;
    }

    /** Waits until a terminal's output matches, failing at once (with its output) if it exits first. */
    function waitForOutput(
      terminal: Terminal,
      stream: 'stdout' | 'stderr',
      pattern: RegExp,
      what: string,
    ): Promise<RegExpMatchArray> {
      return waitFor(
        `${what} from ${terminal.name}`,
        () => {
          const match = pattern.exec(terminal[stream]);
          if (match) return match;
          if (terminal.exited) assert.fail(describeRun(`${terminal.name} (waiting for ${what})`, terminal.exited));
          return undefined;
        },
        20_000,
      );
    }

    const groupAlive = (pid: number) => {
      try {
        process.kill(-pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    /** SIGTERM to the terminal's whole process group (bash, npm, tsx, node), then SIGKILL if it lingers. */
    async function close(terminal: Terminal): Promise<void> {
      if (!groupAlive(terminal.pid)) return;
      process.kill(-terminal.pid, 'SIGTERM');
      try {
        await waitFor(
          `${terminal.name} to stop after SIGTERM`,
          () => (groupAlive(terminal.pid) ? undefined : true),
          15_000,
        );
      } catch {
        if (groupAlive(terminal.pid)) process.kill(-terminal.pid, 'SIGKILL');
      }
    }

    // Should the test process end without the after hook (an uncaught failure, a signal mocha turns into an exit), the
    // process groups it started must not outlive it.
    const killAll = () => {
      for (const t of terminals) if (groupAlive(t.pid)) process.kill(-t.pid, 'SIGKILL');
    };

    before(async function () {
      if (spawnSync('bash', ['-c', 'command -v curl'], { stdio: 'ignore' }).status !== 0) {
        console.log('    curl is not installed: the walkthrough uses curl, so it cannot run as written here; skipped');
        this.skip();
      }
      process.once('exit', killAll);
      tmp = mkdtempSync(path.join(os.tmpdir(), 'readme-walkthrough-'));
      healthPort = await freePort();
      // The page writes its simulator options to ${TMPDIR:-/tmp}: this run's own folder, so that runs do not meet.
      env['TMPDIR'] = tmp;
      env['HEALTH_PORT'] = String(healthPort);
    });

    after(async () => {
      // The worker first, so that it drains against live emulators; then the emulators, together.
      for (const terminal of terminals.filter((t) => t.role === 'worker')) await close(terminal);
      await Promise.all(terminals.filter((t) => t.role === 'emulator').map(close));
      process.removeListener('exit', killAll);
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('delivers the sample journey: one provider message and one sent interaction per activity, and counts them', async () => {
      const [options, emulators, register, worker, journey, watch] = blocks as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];

      // The simulators' options file.
      const written = await run(options);
      assert.equal(written.code, 0, describeRun('the options block', written));
      const optionsFile = /"\$\{TMPDIR:-\/tmp\}\/([^"]+)"/.exec(options)?.[1];
      assert.ok(
        optionsFile && existsSync(path.join(tmp, optionsFile)),
        `the options block wrote no file under TMPDIR:\n${options}`,
      );

      // The emulators, one terminal each, in order; each one's ready line (named in its comment) exported after it.
      const starts = commandsOf(emulators);
      assert.equal(starts.length, 3, `expected three emulator commands, found:\n${emulators}`);
      for (const [i, command] of starts.entries()) {
        const name = /#\s*([A-Z_]+)=…\s*$/.exec(command)?.[1];
        assert.ok(name, `the emulator command does not say which line it prints: ${command}`);
        const terminal = open(`emulator ${i + 1} (${name})`, 'emulator', command);
        const match = await waitForOutput(terminal, 'stdout', new RegExp(`^${name}=(.+)$`, 'm'), `its ${name}= line`);
        env[name] = match[1] as string;
      }

      // Registration through `channel-relay register`: the service endpoint and the step bound to it, created.
      const registered = await run(register);
      assert.equal(registered.code, 0, describeRun('the registration block', registered));
      assert.match(
        registered.stdout,
        /^serviceendpoint 'channel-relay activities' .*: created/m,
        describeRun('the registration block', registered),
      );
      assert.match(
        registered.stdout,
        /^step 'channel-relay: Create of msdyncrm_customerjourneycustomchannelactivity' .*: created/m,
        describeRun('the registration block', registered),
      );

      // The worker.
      const relay = open('the worker', 'worker', worker);
      await waitForOutput(relay, 'stderr', /worker ready/, '"worker ready"');

      // The journey.
      const ran = await run(journey);
      const result = json(ran, 'the journey block') as {
        created: Array<{ activityRowId: string }>;
        skipped: unknown[];
      };
      assert.equal(result.created.length + result.skipped.length, JOURNEY_CONTACTS);
      assert.ok(
        result.skipped.length > 0,
        'the sample seed has opted-out contacts among the first 20: some should be skipped',
      );
      const expected = result.created.map((c) => c.activityRowId.toLowerCase()).sort();

      // Watching, as a reader does: the watch commands again until every message and interaction is there.
      const [messagesCommand, interactionsCommand, metricsCommand] = commandsOf(watch) as [string, string, string];
      assert.equal(commandsOf(watch).length, 3, `expected three watch commands, found:\n${watch}`);
      const seen = await waitFor(
        `${expected.length} provider messages and ${expected.length} sent interactions`,
        async () => {
          const [messages, interactions] = await Promise.all([run(messagesCommand), run(interactionsCommand)]);
          const m = json(messages, messagesCommand) as Array<{ idempotencyKey?: string }>;
          const i = (
            json(interactions, interactionsCommand) as {
              value: Array<{ activityRowId?: string; responseType?: string }>;
            }
          ).value.filter((x) => x.responseType === 'sent');
          if (m.length >= expected.length && i.length >= expected.length) return { messages: m, sent: i };
          await new Promise((r) => setTimeout(r, 250)); // poll gently: each look starts two bash and two curl
          return undefined;
        },
        25_000,
      );
      assert.deepEqual(
        seen.messages.map((m) => String(m.idempotencyKey).toLowerCase()).sort(),
        expected,
        'one provider message per created activity, keyed by its id',
      );
      assert.deepEqual(
        seen.sent.map((i) => String(i.activityRowId).toLowerCase()).sort(),
        expected,
        'one sent interaction per created activity',
      );

      const metrics = await run(metricsCommand);
      assert.equal(metrics.code, 0, describeRun(`the metrics command (health port ${healthPort})`, metrics));
      const sentCounted = [
        ...metrics.stdout.matchAll(/^channel_relay_dispatch_messages_total\{[^}]*outcome="sent"[^}]*\} (\d+)$/gm),
      ].reduce((n, m) => n + Number(m[1]), 0);
      assert.equal(sentCounted, expected.length, `dispatch counted ${sentCounted} sent:\n${metrics.stdout}`);

      // The options file took: the sender stayed within the simulator's limit, raised to the channel's rate.
      const stats = (await (await fetch(`${env['PROVIDERS_URL']}/_simulator/stats`)).json()) as {
        twilio: { accepted: number; rateViolations: number };
      };
      assert.equal(stats.twilio.accepted, expected.length);
      assert.equal(
        stats.twilio.rateViolations,
        0,
        'the Twilio simulator counted rate violations: the options file did not raise its limit',
      );
    });
  });
});
