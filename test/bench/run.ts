/**
 * `npm run bench [-- NAME …]`: runs the benchmark modules (all, or those named) and writes their sections into
 * docs/benchmarks.md (or the file BENCH_OUT names, e.g. for a quick run at small sizes), each stamped with the
 * machine, the date it was measured on and how long it took. Sections of modules not run this time are kept as they were.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../src/paths.js';
import type { BenchSection } from './section.js';

type Bench = () => Promise<BenchSection>;

const BENCHES: Record<string, () => Promise<Bench>> = {
  servicebus: async () => (await import('./servicebus.js')).benchServiceBus,
  dataverse: async () => (await import('./dataverse.js')).benchDataverse,
  pipeline: async () => (await import('./pipeline.js')).benchPipeline,
  peer: async () => (await import('./peer.js')).benchPeer,
  latency: async () => (await import('./latency.js')).benchLatency,
  backlog: async () => (await import('./backlog.js')).benchBacklog,
  feedback: async () => (await import('./feedback.js')).benchFeedback,
  tracing: async () => (await import('./tracing.js')).benchTracing,
};

const HEADER = `# Benchmarks

Written by \`npm run bench\` (all sections; each stamp says how long its section took, the peer's run under the limits
alone about 9 minutes) or \`npm run bench -- NAME …\` for some of them (servicebus, dataverse, pipeline, peer, latency,
backlog, feedback, tracing). Every figure is measured on the machine named in its
section, on loopback, and compared only with figures from the same run: these machines are shared, so absolute
numbers move from run to run while ratios measured together hold. Each section lists the environment variables that
set its sizes; with small sizes and \`BENCH_OUT=/tmp/bench.md\` (another file than this one) a quick run checks the code.
`;

function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/** Splits an existing benchmarks file into its `## ` sections by title. */
function existingSections(file: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(file)) return out;
  const parts = readFileSync(file, 'utf8').split(/^## /m).slice(1);
  for (const part of parts) {
    const newline = part.indexOf('\n');
    out.set(part.slice(0, newline).trim(), part.slice(newline + 1).trim());
  }
  return out;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !(w in BENCHES));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exitCode = 2;
    return;
  }
  const out = process.env['BENCH_OUT'];
  const file = out === undefined || out === '' ? path.join(packageRoot(), 'docs', 'benchmarks.md') : path.resolve(out);
  const sections = existingSections(file);
  for (const name of wanted.length > 0 ? wanted : Object.keys(BENCHES)) {
    console.error(`bench: ${name} …`);
    const started = Date.now();
    // Other work on the machine moves the absolute figures: its load when the section started says how much.
    const load = os.loadavg()[0] ?? 0;
    const section = await (await BENCHES[name]!())();
    const stamp = `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, load average ${load.toFixed(1)} at the start; took ${((Date.now() - started) / 1000).toFixed(0)} s.`;
    sections.set(section.title, `${stamp}\n\n${section.markdown.trim()}`);
    // Written after each section, so that a later one failing does not lose what was measured.
    const body = [...sections].map(([title, text]) => `## ${title}\n\n${text}\n`).join('\n');
    writeFileSync(file, `${HEADER}\n${body}`);
    console.error(
      `bench: ${name} done in ${((Date.now() - started) / 1000).toFixed(0)} s; wrote ${path.relative(process.cwd(), file)}`,
    );
  }
}

await main();
