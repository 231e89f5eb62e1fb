import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  existsSync,
} from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { userIdOf } from '../../src/emulators/dataverse/service.js';
import { packageRoot } from '../../src/paths.js';
import { completed, collectOutput, type CollectedOutput } from '../helpers/cli.js';
import { SEED, startSystem, until, type System } from './pipeline/harness.js';

/**
 * The operator's path, as the README's "Running in production" writes it: the sources compiled afresh into a folder of
 * their own, next to a `node_modules` that holds the production dependencies only (what `npm ci --omit=dev` installs,
 * read from package-lock.json: every package not marked `dev`), and the README's commands run there with bash, as
 * written. Each worker gets only the environment its stage requires (docs/operations.md's table); against the embedded system's
 * emulators, a journey goes through intake, dispatch and the recorder, each its own process and Dataverse identity.
 */

const root = packageRoot();
const SECTION = '## Running in production';

/** The first ```sh block of the README's "Running in production", one command per line, comments kept (bash drops them). */
function productionCommands(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  assert.notEqual(start, -1, `README.md has no "${SECTION}" section`);
  const block = /```sh\n([\s\S]*?)^```$/m.exec(readme.slice(start))?.[1];
  assert.ok(block, `"${SECTION}" has no sh block`);
  return block.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('#'));
}

/** Every `import … from '…'`, `export … from '…'`, `import '…'` and `import('…')` specifier of a compiled module. */
function specifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(
    /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm,
  ))
    out.push((m[1] ?? m[2])!);
  return out;
}

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name), ext) : e.name.endsWith(ext) ? [path.join(dir, e.name)] : [],
  );
}

/** A command of the README in `cwd` under bash, in a process group of its own. */
interface Running {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output: CollectedOutput;
}

describe('production form: the README commands on a fresh build with the production dependencies only', function () {
  this.timeout(300_000);
  const commands = productionCommands();
  let dir = '';
  const running: Running[] = [];
  let system: System | undefined;

  before(async function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'production-form-'));
    // The build, as the Dockerfile's build stage runs it, into this folder's dist/.
    await promisify(execFile)(
      process.execPath,
      [
        path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(dir, 'dist'),
        '--declaration',
        'false',
        '--sourceMap',
        'false',
      ],
      { cwd: root },
    );
    copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    symlinkSync(path.join(root, 'config'), path.join(dir, 'config'));
    // npm ci --omit=dev: the top-level packages of the lock file that are not development-only.
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const installed = realpathSync(path.join(root, 'node_modules'));
    for (const [key, entry] of Object.entries(lock.packages)) {
      const name = key.startsWith('node_modules/') ? key.slice('node_modules/'.length) : undefined;
      if (
        name === undefined ||
        name.includes('/node_modules/') ||
        entry.dev === true ||
        !existsSync(path.join(installed, name))
      )
        continue;
      mkdirSync(path.dirname(path.join(dir, 'node_modules', name)), { recursive: true });
      symlinkSync(path.join(installed, name), path.join(dir, 'node_modules', name));
    }
  });

  after(async () => {
    for (const r of running) {
      if (r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined)
        process.kill(-r.child.pid, 'SIGKILL');
    }
    await Promise.all(running.map((r) => r.output.exited));
    await system?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function run(command: string, env: Record<string, string>): Running {
    const child = spawn('bash', ['-c', command], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const r = { child, output: collectOutput(child) };
    running.push(r);
    return r;
  }

  it('the README installs the production dependencies and runs the built entry points with plain node, nothing from the sources', () => {
    assert.equal(commands[0], 'npm ci --omit=dev', 'the block starts with the production install');
    for (const command of commands.slice(1))
      assert.match(command, /^node dist\/\S+\.js(\s|$)/, `a built entry point under plain node: ${command}`);
    const entries = commands.slice(1).map((c) => /^node (dist\/\S+\.js)/.exec(c)![1]!);
    assert.deepEqual(
      entries.filter((e) => e.startsWith('dist/workers/')).sort(),
      ['all', 'callbacks', 'dispatch', 'intake', 'recorder'].map((w) => `dist/workers/${w}.js`),
    );
    const bin = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> })
      .bin['channel-relay'];
    assert.ok(entries.includes(bin!), `the channel-relay command (${bin}) is shown`);
    for (const entry of entries) assert.ok(existsSync(path.join(dir, entry)), `${entry} is built`);
  });

  it('nothing in dist/ imports a development dependency: every bare import is a builtin or in "dependencies"', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const wrong: string[] = [];
    let bare = 0;
    for (const file of filesUnder(path.join(dir, 'dist'), '.js')) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.') || spec.startsWith('/') || isBuiltin(spec)) continue;
        bare += 1;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (pkg.dependencies[name] === undefined)
          wrong.push(
            `${path.relative(dir, file)}: '${spec}'${pkg.devDependencies[name] === undefined ? '' : ' (a devDependency)'}`,
          );
      }
    }
    assert.ok(bare > 10, `found the compiled modules' package imports (${bare})`);
    assert.deepEqual(wrong, []);
    // The emulated install is what --omit=dev leaves: tsx is not there, as on a production host.
    const tsx = spawnSync(process.execPath, ['--import', 'tsx', '-e', '0'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(tsx.status, 0);
    assert.match(tsx.stderr, /ERR_MODULE_NOT_FOUND/);
  });

  it('each entry point loads under plain node: without configuration it stops with exit 2 and names the problems', async () => {
    for (const command of commands.filter((c) => c.startsWith('node dist/workers/'))) {
      const r = run(command, {});
      const code = await r.output.exited;
      assert.equal(code, 2, `${command}\n${r.output.stderr()}`);
      assert.match(
        r.output.stderr(),
        /^(relay|intake|dispatch|recorder|callbacks): cannot start: configuration has \d+ problems?/,
        command,
      );
    }
  });

  it('intake, dispatch and the recorder, each with only what its stage requires and its own Dataverse identity, deliver a journey', async () => {
    system = await startSystem({ smsPerSecond: 50 });
    const e = system.env;
    const bus = {
      SERVICEBUS_CONNECTION_STRING: e['SERVICEBUS_CONNECTION_STRING']!,
      HEALTH_HOST: '127.0.0.1',
      HEALTH_PORT: '0',
      LOG_LEVEL: 'info',
    };
    const dataverse = { DATAVERSE_URL: e['DATAVERSE_URL']!, DATAVERSE_AUTH: 'emulator' };
    const env = {
      intake: {
        ...bus,
        ...dataverse,
        DATAVERSE_CLIENT_ID: 'channel-relay-intake',
        CHANNELS_FILE: e['CHANNELS_FILE']!,
        TELEGRAM_BOT_TOKEN: e['TELEGRAM_BOT_TOKEN']!,
      },
      dispatch: {
        ...bus,
        CHANNELS_FILE: e['CHANNELS_FILE']!,
        PROVIDERS_URL: e['PROVIDERS_URL']!,
        TWILIO_AUTH_TOKEN: e['TWILIO_AUTH_TOKEN']!,
        TELEGRAM_BOT_TOKEN: e['TELEGRAM_BOT_TOKEN']!,
        CONTRACT_SIGNING_SECRET: e['CONTRACT_SIGNING_SECRET']!,
      },
      recorder: { ...bus, ...dataverse, DATAVERSE_CLIENT_ID: 'channel-relay-recorder' },
    };

    // The README's config check, as written, with the recorder's environment.
    const check = commands.find((c) => c.startsWith('node dist/src/cli/main.js config check --stage recorder'));
    assert.ok(check, 'the README shows config check --stage recorder');
    const checked = await completed(
      spawn('bash', ['-c', check], {
        cwd: dir,
        env: { PATH: process.env['PATH'] ?? '', ...env.recorder },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    assert.equal(checked.code, 0, checked.stderr);
    assert.match(checked.stdout, /^configuration is valid for recorder/);

    const workers = (['intake', 'dispatch', 'recorder'] as const).map((stage) => {
      const command = commands.find((c) => c.startsWith(`node dist/workers/${stage}.js`));
      assert.ok(command, `the README runs ${stage}`);
      return { stage, worker: run(command, env[stage]) };
    });
    for (const { stage, worker } of workers) {
      await until(`${stage} to log "worker ready"`, () => {
        if (worker.child.exitCode !== null)
          assert.fail(`${stage} exited with ${worker.child.exitCode}:\n${worker.output.stderr()}`);
        return worker.output.stderr().includes('"worker ready"') || undefined;
      });
    }

    const journey = await system.runJourney(SEED.journey, 20);
    const expected = journey.created.map((c) => c.activityRowId.toLowerCase()).sort();
    assert.ok(expected.length > 0);
    const sent = await until(`${expected.length} sent interactions`, async () => {
      const s = (await system!.interactions()).filter((i) => i.responseType === 'sent');
      return s.length >= expected.length ? s : undefined;
    });
    assert.deepEqual(
      sent.map((i) => String(i.activityRowId).toLowerCase()).sort(),
      expected,
      'one sent interaction per activity row',
    );
    assert.ok(
      sent.every((i) => i.userId === userIdOf('channel-relay-recorder')),
      'every interaction recorded as the recorder identity',
    );

    // /_emulator/stats tells the identities apart: intake reads, the recorder writes, dispatch is not there.
    const stats = (await (await fetch(`${system.dv.url}/_emulator/stats`)).json()) as {
      traffic: { identities: Record<string, { requests: number; reads: number; writes: number }> };
    };
    const ids = stats.traffic.identities;
    assert.ok((ids['channel-relay-intake']?.reads ?? 0) > 0, JSON.stringify(ids));
    assert.equal(ids['channel-relay-intake']?.writes, 0, 'intake only reads');
    assert.ok((ids['channel-relay-recorder']?.writes ?? 0) > 0, JSON.stringify(ids));
    assert.equal(
      ids['channel-relay'],
      undefined,
      'no worker called Dataverse as the default identity (dispatch never calls it)',
    );

    for (const { stage, worker } of workers) {
      process.kill(-worker.child.pid!, 'SIGTERM');
      assert.equal(
        await worker.output.exited,
        0,
        `${stage} stops cleanly on SIGTERM:\n${worker.output.stderr().slice(-2000)}`,
      );
    }
  });
});
