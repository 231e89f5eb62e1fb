import assert from 'node:assert/strict';
import { formatFunnel } from '../../../src/demo/index.js';
import {
  activityIndex,
  callbacksFigures,
  feedbackCounts,
  funnels,
  interactionOutcomes,
  repeatedProviderMessages,
  withoutOutcome,
  type DemoSummary,
} from '../../../src/demo/records.js';
import type { Interaction, JourneyRunResult } from '../../../src/emulators/dataverse/index.js';
import type { SimulatedMessage } from '../../../src/emulators/providers/index.js';

const J1 = '11111111-1111-4111-8111-111111111111';
const J2 = '22222222-2222-4222-8222-222222222222';

/** The rows of one run share `msdyncrm_activityid` (the tile's id), as the emulator's journey runs give it. */
const TILE = 'tile-1';

function run(journeyId: string, ids: string[], skipped = 0): JourneyRunResult {
  return {
    journeyId,
    iterationId: journeyId,
    createdAtMs: 0,
    created: ids.map((id) => ({ contactId: `c-${id}`, activityId: TILE, activityRowId: id })),
    skipped: Array.from({ length: skipped }, (_, i) => ({ contactId: `s${i}`, reason: 'donotphone is true' })),
  };
}

/** An interaction the emulator resolved to row `activityRowId` (given `ActivityId` the tile's). */
function interaction(activityRowId: string, responseType: string, duplicateOf?: number): Interaction {
  return {
    seq: 0,
    kind: 'interaction',
    createdOn: '',
    userId: 'u',
    activityId: TILE,
    activityRowId,
    responseType,
    ...(duplicateOf === undefined ? {} : { duplicateOf }),
  };
}

describe('demo funnel', () => {
  it('counts each activity of the run once by its outcome: sent, failed (the tile’s failure types only), dead-lettered, opted out', () => {
    const runs = [run(J1, ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'], 2), run(J2, ['b1'])];
    const interactions = [
      interaction('a1', 'sent'),
      interaction('a1', 'sent', 1),
      interaction('a2', 'failed'),
      interaction('a3', 'delivered'),
      interaction('b1', 'sent'),
      interaction('zz', 'sent'), // not an activity of these runs: counted nowhere
    ];
    const { sent, failed } = interactionOutcomes(interactions, new Set(['failed']));
    // a4's event is dead-lettered (found by its row id); a1 is in a dead-letter queue too but was sent: it counts as sent;
    // a5's contact opted out after creation.
    const outcomes = { sent, failed, deadLettered: new Set(['a4', 'a1']), optedOut: new Set(['a5']) };
    assert.deepEqual(funnels(runs, outcomes), [
      {
        journeyId: J1,
        activities: 6,
        skippedByCompliance: 3,
        optedOutAfterCreation: 1,
        sent: 1,
        failed: 1,
        deadLettered: 1,
      },
      {
        journeyId: J2,
        activities: 1,
        skippedByCompliance: 0,
        optedOutAfterCreation: 0,
        sent: 1,
        failed: 0,
        deadLettered: 0,
      },
    ]);
    // a3 (only delivered) and a6 (nothing) have no outcome yet.
    assert.deepEqual(
      withoutOutcome(runs, outcomes).map((p) => p.activityRowId),
      ['a3', 'a6'],
    );
  });

  it('indexes activities by row id only, lower case: the shared tile id names no one activity', () => {
    const index = activityIndex([run(J1, ['A1', 'A2'])]);
    assert.deepEqual(
      [...index],
      [
        ['a1', J1],
        ['a2', J1],
      ],
    );
  });

  it('counts provider messages repeating an activity’s idempotency key', () => {
    const m = (key: string | undefined): SimulatedMessage => ({
      time: 0,
      provider: 'twilio',
      channel: 'AC',
      path: '/',
      sender: 's',
      recipient: 'r',
      text: 't',
      providerMessageId: 'SM',
      ...(key === undefined ? {} : { idempotencyKey: key }),
    });
    assert.deepEqual(repeatedProviderMessages({ messages: () => [m('a1'), m('a2'), m('a1'), m(undefined), m('a1')] }), {
      messages: 5,
      repeats: 2,
    });
  });

  it('prints one row per journey, a total when there are several, and the dead-letter reasons', () => {
    const summary: DemoSummary = {
      activities: 6,
      skippedByCompliance: 3,
      optedOutAfterCreation: 1,
      sent: 2,
      failed: 1,
      deadLettered: 1,
      providerMessages: 3,
      duplicates: 1,
      dataverseRequests: 3,
      durationMs: 1500,
      activitiesPerSecond: 4,
      deadLetterReasons: { activities: { EventUnknownChannel: 1 } },
      journeys: [
        {
          journeyId: J1,
          name: 'Spring offer journey',
          activities: 5,
          skippedByCompliance: 3,
          optedOutAfterCreation: 1,
          sent: 1,
          failed: 1,
          deadLettered: 1,
        },
        {
          journeyId: J2,
          activities: 1,
          skippedByCompliance: 0,
          optedOutAfterCreation: 0,
          sent: 1,
          failed: 0,
          deadLettered: 0,
        },
      ],
    };
    const text = formatFunnel(summary);
    assert.match(text, /^Journey\s+Activities\s+Skipped \(compliance\)\s+Sent\s+Failed\s+Dead-lettered$/m);
    assert.match(text, /^Spring offer journey\s+5\s+3\s+1\s+1\s+1$/m);
    assert.match(text, new RegExp(`^${J2}\\s+1\\s+0\\s+1\\s+0\\s+0$`, 'm'));
    assert.match(text, /^All journeys\s+6\s+3\s+2\s+1\s+1$/m);
    assert.match(text, /^1 of the skipped contacts opted out after their activity was created/m);
    assert.match(text, /Provider messages: 3 \(duplicates: 1\)/);
    assert.match(text, /6 activities in 1\.5 s \(4 per second\)/);
    assert.match(text, /Dataverse requests by the send path: 3 \(0\.500 per activity/);
    assert.match(text, /Dead letters: activities: EventUnknownChannel × 1/);
  });

  it('counts feedback per activity of the run: delivered and opened once each, every keyword reply, no duplicates or strangers', () => {
    const types = { delivered: new Set(['delivered']), opened: new Set(['opened']), keyword: new Set(['keyword']) };
    const counts = feedbackCounts(
      [
        interaction('a1', 'delivered'),
        interaction('a1', 'delivered', 1), // marked duplicate by the emulator: not counted
        interaction('a1', 'opened'),
        interaction('a2', 'opened'),
        interaction('a2', 'keyword'),
        interaction('a2', 'keyword'), // a second reply
        interaction('zz', 'delivered'), // not of this run
        interaction('a3', 'sent'),
      ],
      new Set(['a1', 'a2', 'a3']),
      types,
    );
    assert.deepEqual(counts, { delivered: 1, opened: 2, keywordReplies: 2 });
  });

  it('adds the feedback columns when the run had the feedback path', () => {
    const f = { delivered: 5, opened: 3, keywordReplies: 2, optOuts: 1 };
    const text = formatFunnel({
      activities: 6,
      skippedByCompliance: 0,
      optedOutAfterCreation: 0,
      sent: 6,
      failed: 0,
      deadLettered: 0,
      providerMessages: 7,
      duplicates: 0,
      dataverseRequests: 3,
      durationMs: 1000,
      activitiesPerSecond: 6,
      deadLetterReasons: {},
      feedback: f,
      journeys: [
        {
          journeyId: J1,
          name: 'Spring',
          activities: 6,
          skippedByCompliance: 0,
          optedOutAfterCreation: 0,
          sent: 6,
          failed: 0,
          deadLettered: 0,
          feedback: f,
        },
      ],
    });
    assert.match(
      text,
      /^Journey\s+Activities\s+Skipped \(compliance\)\s+Sent\s+Failed\s+Dead-lettered\s+Delivered\s+Opened\s+Keyword replies\s+Opt-outs$/m,
    );
    assert.match(text, /^Spring\s+6\s+0\s+6\s+0\s+0\s+5\s+3\s+2\s+1$/m);
    assert.doesNotMatch(text, /callbacks service/, 'no callbacks line without its figure');
  });

  it("reports the callbacks service's requests per feedback event, and what they were", () => {
    const f = { delivered: 948, opened: 393, keywordReplies: 96, optOuts: 27 };
    const kinds = {
      'PATCH contacts': 27,
      'GET contacts': 120,
      'GET msdyncrm_customerjourneycustomchannelactivities': 1,
      $batch: 2,
    };
    const figures = callbacksFigures({ requests: 150, writes: 27, kinds }, f);
    assert.deepEqual(figures, {
      callbacksDataverseRequests: 150,
      callbacksDataverseWrites: 27,
      callbacksDataverseRequestKinds: kinds,
      feedbackEvents: 1464,
      callbacksRequestsPerEvent: 0.102,
    });
    const summary = {
      activities: 6,
      skippedByCompliance: 0,
      optedOutAfterCreation: 0,
      sent: 6,
      failed: 0,
      deadLettered: 0,
      providerMessages: 7,
      duplicates: 0,
      dataverseRequests: 3,
      durationMs: 1000,
      activitiesPerSecond: 6,
      deadLetterReasons: {},
      journeys: [],
    };
    assert.match(
      formatFunnel({ ...summary, ...figures }),
      /^Dataverse requests by the callbacks service: 150 for 1464 feedback events \(0\.102 per event\): 27 opt-out\/opt-in writes and 123 reads \(by kind: 120 GET contacts, 27 PATCH contacts, 2 \$batch, 1 GET msdyncrm_customerjourneycustomchannelactivities\)$/m,
    );
    assert.match(
      formatFunnel({ ...summary, ...callbacksFigures({ requests: 5, writes: 1 }, f) }),
      /^Dataverse requests by the callbacks service: 5 for 1464 feedback events \(0\.003 per event\): 1 opt-out\/opt-in writes and 4 reads$/m,
    );
    assert.deepEqual(callbacksFigures({ requests: 0, writes: 0 }, undefined), {
      callbacksDataverseRequests: 0,
      callbacksDataverseWrites: 0,
    });
  });
});
