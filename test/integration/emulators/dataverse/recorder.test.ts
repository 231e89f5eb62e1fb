/**
 * The recorder's writes through dynamics-web-api: many `callAction`s in one `$batch` outside change sets with
 * `continueOnError`, what the client returns per operation, how the batch counts toward the limits, and what happens
 * to a duplicate interaction.
 */
import assert from 'node:assert/strict';
import type { DataverseEmulator, Interaction } from '../../../../src/emulators/dataverse/index.js';
import { client, IDS, runJourney, smallSeed, startEmulator } from './helpers.js';

const CREATE_INTERACTION = 'msdyncrm_CustomChannelActivityCreateInteraction';
const NOTIFICATION = 'msdyn_D365ChannelsNotification';

function interaction(
  activity: { activityId: string; contactId: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ActivityId: activity.activityId,
    CustomerJourney: {
      '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourney',
      msdyncrm_customerjourneyid: IDS.journey,
    },
    CustomerJourneyIteration: {
      '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourneyiteration',
      msdyncrm_customerjourneyiterationid: IDS.iteration,
    },
    Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: activity.contactId },
    EntityType: 'sample_specialmessage',
    EntityId: IDS.message,
    ResponseType: 'delivered',
    ...extra,
  };
}

function notification(messageId: string, status: string): Record<string, unknown> {
  return {
    notificationPayLoad: JSON.stringify({
      ChannelDefinitionId: IDS.channelDefinition,
      RequestId: `req-${messageId}`,
      MessageId: messageId,
      From: '+4915100000001',
      OrganizationId: IDS.organization,
      Status: status,
    }),
  };
}

interface Stats {
  identities: Record<string, { served: number; executionMsTotal: number; requestsInWindow: number }>;
  traffic: { batches: number; batchOperations: number };
  interactions: number;
  interactionDuplicates: number;
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/_emulator/stats`)).json()) as Stats;
}

async function interactions(
  url: string,
  query: string,
): Promise<{ count: number; duplicates: number; value: Interaction[] }> {
  return (await (await fetch(`${url}/_emulator/interactions?${query}`)).json()) as never;
}

/** What dynamics-web-api resolves for a failed operation inside a batch: an Error carrying Dataverse's body. */
interface BatchPartError extends Error {
  status: number;
  statusText: string;
  error: { code: string; message: string };
  headers: Record<string, string>;
}

describe('Dataverse emulator: the recorder writing interactions in one $batch', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('returns undefined per success and an Error with the Dataverse code at the failing index; counts one request and N x cost', async () => {
    emulator = await startEmulator({ seed: smallSeed(30), limits: { operationCostMs: 7 } });
    const api = client(emulator.url, 'recorder');
    const run = await runJourney(emulator.url, { count: 30 });
    api.startBatch();
    run.created.forEach((a, i) => {
      const extra = i === 11 ? { ResponseType: 'clicked' } : i === 20 ? { Contact: { contactid: 'not-a-guid' } } : {};
      void api.callAction({ actionName: CREATE_INTERACTION, action: interaction(a, extra) });
    });
    void api.callAction({ actionName: NOTIFICATION, action: notification('m-1', 'Delivered') });
    void api.callAction({ actionName: NOTIFICATION, action: notification('m-2', 'Read') });
    const results = (await api.executeBatch({ continueOnError: true, inChangeSet: false })) as unknown[];

    assert.equal(results.length, 32);
    const failed = results.flatMap((r, i) => (r instanceof Error ? [i] : []));
    assert.deepEqual(failed, [11, 20, 31]);
    for (const [i, r] of results.entries())
      if (!failed.includes(i) && i !== 30) assert.equal(r, undefined, `operation ${i} succeeded with 204: undefined`);
    // The notification answers 200 with its output.
    assert.equal((results[30] as { responseMessage?: unknown }).responseMessage, 'Accepted');
    const e11 = results[11] as BatchPartError;
    assert.equal(e11.status, 400);
    assert.equal(e11.statusText, 'Bad Request');
    // Inside a batch the code and message are under `error` (outside one they are on the error itself).
    assert.equal(e11.error.code, '0x80040203');
    assert.match(e11.error.message, /the response type 'clicked' is not defined by the tile/);
    assert.equal((results[20] as BatchPartError).error.code, '0x80040203');
    assert.match((results[20] as BatchPartError).error.message, /'Contact.contactid' is not a valid GUID/);
    assert.match(
      (results[31] as BatchPartError).error.message,
      /'Status' must be one of Delivered, NotDelivered, found 'Read'/,
    );

    const s = await stats(emulator.url);
    assert.equal(s.identities['recorder']!.served, 1, 'the batch is one request');
    assert.equal(s.identities['recorder']!.requestsInWindow, 1);
    assert.equal(s.identities['recorder']!.executionMsTotal, 32 * 7, 'every operation, failed or not, adds its cost');
    assert.deepEqual([s.traffic.batches, s.traffic.batchOperations], [1, 32]);
    assert.equal(s.interactions, 29);
    assert.equal((await interactions(emulator.url, 'kind=interaction&responseType=delivered')).count, 28);
  });

  it('stops at the first failure without continueOnError: earlier operations are kept, the rest never run', async () => {
    emulator = await startEmulator({ seed: smallSeed(5) });
    const api = client(emulator.url, 'recorder');
    const run = await runJourney(emulator.url, { count: 5 });
    api.startBatch();
    run.created.forEach(
      (a, i) =>
        void api.callAction({
          actionName: CREATE_INTERACTION,
          action: interaction(a, i === 2 ? { ResponseType: 'clicked' } : {}),
        }),
    );
    let rejected: unknown;
    try {
      await api.executeBatch({ inChangeSet: false });
    } catch (err) {
      rejected = err;
    }
    // dynamics-web-api rejects with the parsed parts: the two successes, then the failure.
    assert.ok(Array.isArray(rejected));
    const parts = rejected as unknown[];
    assert.equal(parts.length, 3);
    assert.deepEqual(parts.slice(0, 2), [undefined, undefined]);
    assert.equal((parts[2] as BatchPartError).error.code, '0x80040203');
    assert.equal((await interactions(emulator.url, 'kind=interaction')).count, 2);
  });

  it('records the same activity and response type twice (as Dataverse is believed to) and marks the repeat so a test can count it', async () => {
    emulator = await startEmulator({ seed: smallSeed(2) });
    const api = client(emulator.url, 'recorder');
    const [a, b] = (await runJourney(emulator.url, { count: 2 })).created;
    await api.callAction({ actionName: CREATE_INTERACTION, action: interaction(a!) });
    await api.callAction({ actionName: CREATE_INTERACTION, action: interaction(a!) });
    await api.callAction({ actionName: CREATE_INTERACTION, action: interaction(b!) });
    await api.callAction({
      actionName: CREATE_INTERACTION,
      action: interaction(a!, { ResponseType: 'keyword', TriggerKeyword: 'YES' }),
    });
    await api.callAction({
      actionName: CREATE_INTERACTION,
      action: interaction(a!, { ResponseType: 'keyword', TriggerKeyword: 'yes' }),
    });
    await api.callAction({
      actionName: CREATE_INTERACTION,
      action: interaction(a!, { ResponseType: 'keyword', TriggerKeyword: 'STOP' }),
    });
    await api.callAction({ actionName: NOTIFICATION, action: notification('m-1', 'Delivered') });
    await api.callAction({ actionName: NOTIFICATION, action: notification('m-1', 'Delivered') });

    const forA = await interactions(emulator.url, `activityRowId=${a!.activityRowId}`);
    assert.equal(forA.count, 5);
    assert.equal(forA.duplicates, 2);
    assert.deepEqual(
      forA.value.map((i) => [i.responseType, i.triggerKeyword, i.duplicateOf]),
      [
        ['delivered', undefined, undefined],
        ['delivered', undefined, forA.value[0]!.seq],
        ['keyword', 'YES', undefined],
        ['keyword', 'yes', forA.value[2]!.seq],
        ['keyword', 'STOP', undefined],
      ],
    );
    assert.equal((await interactions(emulator.url, 'duplicates=true')).count, 3);
    assert.equal((await interactions(emulator.url, 'duplicates=false&kind=interaction')).count, 4);
    assert.equal((await stats(emulator.url)).interactionDuplicates, 3);
    const bad = await fetch(`${emulator.url}/_emulator/interactions?duplicates=maybe`);
    assert.equal(bad.status, 400);
  });
});
