/**
 * The feedback path end to end (issue #7): the embedded system with the callbacks service, and the simulators posting
 * delivery reports, read reports, tracked-link clicks, keyword replies and STOPs, some of them twice. What lands in
 * the Dataverse emulator must match what the simulators report, once each.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { DEFAULT_OPT_OUT_CONFIRMATION } from '../../../src/channels/index.js';
import { FEEDBACK_RATES, runDemo, type DemoSummary } from '../../../src/demo/index.js';
import type { FeedbackFunnel } from '../../../src/demo/records.js';
import type { EmbeddedSystem } from '../../../src/demo/index.js';
import type { Interaction } from '../../../src/emulators/dataverse/index.js';
import { silentLogger } from '../../../src/log.js';

const JOURNEY = 'a7bf09dd-7b81-51ce-9fac-9dcbbb837cae';

describe('feedback path end to end', function () {
  this.timeout(180_000);

  it('a journey over 1,000 contacts: one sent per message, delivered / opened / keyword interactions as the simulators report, every STOP opted out with one confirmation, nothing twice; at most 0.05 Dataverse requests per feedback event (delivered, opened and keyword replies read nothing)', async () => {
    let system: EmbeddedSystem | undefined;
    let err = '';
    const abort = new AbortController();
    let checked: Promise<FeedbackFunnel> | undefined;
    const result = await runDemo({
      contacts: 1000,
      // The demo's rates with more repeats, so that repeated replies (a STOP, a YES) are certain to be among them.
      feedback: { ...FEEDBACK_RATES, callbacks: { ...FEEDBACK_RATES.callbacks, repeatRate: 0.3 } },
      serve: true,
      signal: abort.signal,
      out: () => undefined,
      err: (t) => (err += t),
      progressStream: new PassThrough().resume(),
      log: silentLogger(),
      stallTimeoutMs: 60_000,
      onServing: (s) => {
        system = s;
        checked = check(s).finally(() => abort.abort());
      },
    });
    assert.equal(result.code, 0, err);
    const expected = await checked;
    assert.ok(system);
    // The funnel npm start prints counts what the simulators report.
    const summary = result.summary as DemoSummary;
    assert.deepEqual(summary.feedback, expected);
    assert.ok(
      expected && expected.delivered > 0 && expected.opened > 0 && expected.keywordReplies > 0 && expected.optOuts > 0,
      JSON.stringify(expected),
    );

    // The callbacks identity's requests (counted by the Dataverse emulator per identity): a STOP costs its contact
    // query and a PATCH per contact it opts out; a delivery report, a click or a keyword reply none, but for the
    // journey's one tile and message record read before they are known (a few at most, when the first clicks come
    // before any token of the tile). Every attempt of every reply counts, repeats included.
    const inbound = system.sim.callbacks().filter((c) => c.kind === 'inbound');
    const stops = inbound.filter((c) => c.summary['intent'] === 'stop').length;
    const keywords = inbound.filter((c) => c.summary['intent'] === 'keyword').length;
    const requests = summary.callbacksDataverseRequests ?? -1;
    const writes = summary.callbacksDataverseWrites ?? -1;
    const events = expected.delivered + expected.opened + expected.keywordReplies + expected.optOuts;
    assert.equal(summary.feedbackEvents, events);
    assert.equal(summary.callbacksRequestsPerEvent, Math.round((requests / events) * 1000) / 1000);
    assert.ok(writes >= expected.optOuts, `${writes} writes for ${expected.optOuts} opt-outs`);
    const figures =
      `${requests} requests (${writes} writes) for ${events} events: ${stops} STOPs (${expected.optOuts} opted out), ` +
      `${keywords} keyword replies, ${expected.delivered} delivered, ${expected.opened} opened`;
    // A keyword reply follows its message's status callbacks (the simulators send them first): it reads nothing. A
    // STOP reads its holders (every attempt: a read is the only way to find every holder of now) and writes only a
    // contact not yet opted out, so a repeated STOP writes nothing.
    assert.ok(writes <= expected.optOuts, `one write per contact opted out: ${figures}`);
    assert.ok(requests - writes <= stops + 5, `a read per STOP, none per keyword reply, report or click: ${figures}`);
    // #15 §2's goal.
    assert.ok(requests / events <= 0.05, `at most 0.05 requests per feedback event: ${figures}`);
  });
});

/** Compares the Dataverse emulator's interactions and contacts with the simulators' records. */
async function check(system: EmbeddedSystem): Promise<FeedbackFunnel> {
  const res = await fetch(`${system.dv.url}/_emulator/interactions?journeyId=${JOURNEY}`);
  const interactions = ((await res.json()) as { value: Interaction[] }).value;
  assert.equal(interactions.filter((i) => i.duplicateOf !== undefined).length, 0, 'nothing recorded twice');
  const ofType = (type: string): Interaction[] => interactions.filter((i) => i.responseType === type);
  // By row: the emulator's journey runs give every row of a run one msdyncrm_activityid (the tile's).
  const activities = (list: Interaction[]): Set<string> =>
    new Set(list.map((i) => (i.activityRowId ?? '').toLowerCase()));

  const journeyMessages = system.sim.messages().filter((m) => m.statusCallback !== undefined);
  const callbacks = system.sim.callbacks().filter((c) => !c.repeat && c.attempt === 1);
  const repeated = system.sim.callbacks().filter((c) => c.repeat);
  for (const kind of ['status', 'click', 'inbound'] as const)
    assert.ok(
      repeated.some((c) => c.kind === kind),
      `the simulators repeated some ${kind} callbacks`,
    );
  assert.ok(
    repeated.some((c) => c.kind === 'inbound' && c.summary['intent'] === 'stop'),
    'the simulators repeated a STOP',
  );

  // One sent per message.
  assert.equal(ofType('sent').length, journeyMessages.length);
  assert.deepEqual(
    activities(ofType('sent')),
    new Set(journeyMessages.map((m) => (m.idempotencyKey ?? '').toLowerCase())),
  );

  // Delivered: one per delivery report; opened: one per activity read or clicked.
  const keyOf = (providerMessageId: string): string =>
    (journeyMessages.find((m) => m.providerMessageId === providerMessageId)?.idempotencyKey ?? '').toLowerCase();
  const delivered = new Set(
    callbacks
      .filter((c) => c.kind === 'status' && c.summary['status'] === 'delivered')
      .map((c) => keyOf(c.providerMessageId)),
  );
  assert.deepEqual(activities(ofType('delivered')), delivered);
  assert.equal(ofType('delivered').length, delivered.size);
  const opened = new Set(
    callbacks
      .filter((c) => (c.kind === 'status' && c.summary['status'] === 'read') || c.kind === 'click')
      .map((c) => keyOf(c.providerMessageId)),
  );
  assert.deepEqual(activities(ofType('opened')), opened);
  assert.equal(ofType('opened').length, opened.size);

  // Keyword replies: each recorded once, with its keyword, on the replying contact's (only) activity, whichever
  // message the reply answered (a simulated recipient may answer an opt-out confirmation too).
  const activityOf = (recipient: string): string =>
    (journeyMessages.find((m) => m.recipient === recipient)?.idempotencyKey ?? '').toLowerCase();
  const replies = callbacks.filter((c) => c.kind === 'inbound');
  const keywordReplies = replies.filter((c) => c.summary['intent'] === 'keyword');
  assert.equal(ofType('keyword').length, keywordReplies.length);
  assert.ok(ofType('keyword').every((i) => i.triggerKeyword === 'YES'));
  assert.deepEqual(activities(ofType('keyword')), new Set(keywordReplies.map((c) => activityOf(c.recipient))));

  // Every STOP: the contact's compliance field set, one confirmation message to them.
  const stops = replies.filter((c) => c.summary['intent'] === 'stop');
  assert.ok(stops.length > 0);
  const confirmations = system.sim.messages().filter((m) => m.text === DEFAULT_OPT_OUT_CONFIRMATION);
  assert.equal(confirmations.length, stops.length, 'one confirmation per STOP');
  assert.deepEqual(new Set(confirmations.map((m) => m.recipient)), new Set(stops.map((c) => c.recipient)));
  const phones = stops.map((c) => c.recipient);
  const contacts = (
    await system.admin.retrieveMultiple({
      collection: 'contacts',
      select: ['mobilephone', 'donotphone'],
      filter: `Microsoft.Dynamics.CRM.In(PropertyName='mobilephone',PropertyValues=[${phones.map((p) => `'${p}'`).join(',')}])`,
    })
  ).value as Array<{ mobilephone: string; donotphone: boolean }>;
  assert.equal(contacts.length, stops.length);
  assert.ok(
    contacts.every((c) => c.donotphone === true),
    'every contact who replied STOP is opted out',
  );
  return {
    delivered: delivered.size,
    opened: opened.size,
    keywordReplies: keywordReplies.length,
    optOuts: new Set(stops.map((c) => c.recipient)).size,
  };
}
