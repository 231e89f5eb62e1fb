/**
 * The feedback benchmark (#15 §2): Dataverse requests made by the callbacks service's identity per feedback event
 * (delivered, opened, keyword reply, opt-out), from `npm start`'s demo with the feedback path (`runDemo`, the workers
 * in this process, the provider simulators sending delivery reports, clicks and replies at the demo's rates) over
 * FEEDBACK_CONTACTS contacts per journey. See docs/benchmarks.md, "Feedback".
 */
import { PassThrough } from 'node:stream';
import { runDemo, type DemoSummary } from '../../src/demo/index.js';
import { silentLogger } from '../../src/log.js';
import { fmt, per, setting, verdict } from './pipeline/measure.js';
import type { BenchSection } from './section.js';

const SETTINGS = {
  /** Contacts each of the demo's journeys runs over. */
  contacts: setting('FEEDBACK_CONTACTS', 1000),
};
const TARGET = 0.05;

export async function benchFeedback(): Promise<BenchSection> {
  console.error(`bench feedback: the demo with the feedback path over ${SETTINGS.contacts} contacts per journey …`);
  let err = '';
  const result = await runDemo({
    contacts: SETTINGS.contacts,
    feedback: true,
    customers: 0,
    signal: new AbortController().signal,
    out: () => undefined,
    err: (t) => (err += t),
    progressStream: new PassThrough().resume(),
    log: silentLogger(),
  });
  if (result.code !== 0 || result.summary === undefined)
    throw new Error(`the demo ended with code ${result.code}: ${err.slice(-2000)}`);
  return { title: 'Feedback', markdown: report(result.summary) };
}

function report(s: DemoSummary): string {
  const f = s.feedback ?? { delivered: 0, opened: 0, keywordReplies: 0, optOuts: 0 };
  const events = f.delivered + f.opened + f.keywordReplies + f.optOuts;
  const requests = s.callbacksDataverseRequests ?? 0;
  const perEvent = per(requests, events);
  return [
    "`npm start`'s demo with the feedback path (`runDemo`: the emulators and the workers in one process, the demo's",
    `journeys over ${fmt(SETTINGS.contacts)} contacts each, the provider simulators sending delivery reports, clicks, keyword replies and`,
    "opt-outs at the demo's rates). Requests are the Dataverse emulator's count for the callbacks service's own identity",
    '(a `$batch` is one), over every feedback event stored as an interaction or an opt-out.',
    '',
    '| Measure | Result |',
    '|---|---|',
    `| Activities (sent) | ${fmt(s.activities)} (${fmt(s.sent)}) |`,
    `| Feedback events: delivered, opened, keyword replies, opt-outs | ${fmt(events)}: ${fmt(f.delivered)}, ${fmt(f.opened)}, ${fmt(f.keywordReplies)}, ${fmt(f.optOuts)} |`,
    `| Dataverse requests by the callbacks service | ${fmt(requests)} |`,
    `| **Requests per feedback event** | **${fmt(perEvent, 3)}** |`,
    '',
    '| Target | Measured | |',
    '|---|---|---|',
    `| <= ${TARGET} Dataverse requests per feedback event at >= 1,000 contacts | ${fmt(perEvent, 3)} | ${verdict(perEvent <= TARGET && SETTINGS.contacts >= 1000)} |`,
    '',
    `Settings (environment variables): \`FEEDBACK_CONTACTS\`. This run: ${fmt(SETTINGS.contacts)} contacts per journey.`,
  ].join('\n');
}
