/**
 * Journey runs at the scale the relay is built for: more contacts than the seed holds, 100,000 in one run, the
 * posting backlog draining in creation order, and interactions recorded against a large run as cheaply as a small one.
 */
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import { client, IDS, runJourney, smallSeed, startEmulator, waitFor } from './helpers.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

interface RunResult {
  created: Array<{ contactId: string; activityRowId: string }>;
  skipped: Array<{ contactId: string }>;
}

async function run(url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${url}/_emulator/journeys/${IDS.journey}/run`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const CREATE_INTERACTION = 'msdyncrm_CustomChannelActivityCreateInteraction';

/** CreateInteraction parameters for one activity of a run. */
function interaction(activity: { activityId: string; contactId: string }): Record<string, unknown> {
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
    ResponseType: 'sent',
  };
}

interface Stats {
  rows: Record<string, number>;
  posting: { backlog: number; posted: number; eventsQueued: number };
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/_emulator/stats`)).json()) as Stats;
}

describe('Dataverse emulator: journey runs at scale', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('refuses a count above the contacts held (400, saying how to generate them) and generates them on request: 10,000 and 100,000', async () => {
    const emulator = track(await startEmulator({ seed: smallSeed(300, 10) }));
    const refused = await run(emulator.url, { count: 10_000 });
    assert.equal(refused.status, 400);
    assert.match(
      JSON.stringify(refused.json),
      /count 10000 asks for more contacts than the organization holds \(300\).*generateContacts/,
    );
    assert.equal(
      (await stats(emulator.url)).rows['msdyncrm_customerjourneycustomchannelactivities'],
      0,
      'nothing was created',
    );

    const ten = (await run(emulator.url, { count: 10_000, generateContacts: true })).json as RunResult;
    assert.equal(ten.created.length + ten.skipped.length, 10_000);
    assert.equal(ten.skipped.length, 30, 'only the seed opted out; generated contacts have the compliance field false');
    const generated = await client(emulator.url).retrieveMultiple({
      collection: 'contacts',
      select: ['fullname', 'mobilephone', 'donotphone'],
      filter: "lastname eq 'Contact 301'",
    });
    assert.deepEqual(
      generated.value.map((c) => [c.fullname, c.mobilephone, c.donotphone]),
      [['Generated Contact 301', '+15550000301', false]],
    );

    const hundred = await run(emulator.url, { count: 100_000, generateContacts: true });
    assert.equal(hundred.status, 200);
    const result = hundred.json as RunResult;
    assert.equal(result.created.length, 100_000 - 30);
    assert.equal(new Set(result.created.map((c) => c.activityRowId)).size, result.created.length);
    const s = await stats(emulator.url);
    assert.equal(s.rows['contacts'], 100_000);
    assert.equal(s.rows['msdyncrm_customerjourneycustomchannelactivities'], 10_000 - 30 + 100_000 - 30);

    const over = await run(emulator.url, { count: 100_001, generateContacts: true });
    assert.equal(over.status, 400);
    assert.match(JSON.stringify(over.json), /limit of 100000 contacts per run/);
  });

  it('posts 5,000 activities in creation order; the backlog only goes down and posted + backlog always equals the events queued', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(10) }));
    const api = client(emulator.url, 'relay-admin');
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: {
        name: 'e',
        contract: 2,
        authtype: 2,
        messageformat: 2,
        userclaim: 1,
        connectionmode: 1,
        namespaceaddress: `sb://127.0.0.1:${bus.port}/`,
        solutionnamespace: 'sbemulatorns',
        path: 'activities',
        saskeyname: 'k',
        saskey: 'v',
      },
    })) as string;
    await api.create({
      collection: 'sdkmessageprocessingsteps',
      data: {
        name: 's',
        mode: 1,
        stage: 40,
        'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
        'sdkmessageid@odata.bind': `/sdkmessages(${IDS.createMessage})`,
        'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${IDS.activityFilter})`,
      },
    });
    const result = (await run(emulator.url, { count: 5000, generateContacts: true })).json as RunResult;
    assert.equal(result.created.length, 5000);

    const samples: Stats['posting'][] = [];
    const sb = new ServiceBusClient(bus.connectionString);
    const receiver = sb.createReceiver('activities', { receiveMode: 'receiveAndDelete' });
    const received: string[] = [];
    try {
      await waitFor(
        '5,000 messages',
        async () => {
          samples.push((await stats(emulator.url)).posting);
          for (const m of await receiver.receiveMessages(500, { maxWaitTimeInMs: 100 })) {
            const raw: unknown = m.body;
            const body = (Buffer.isBuffer(raw) ? JSON.parse(raw.toString('utf8')) : raw) as { PrimaryEntityId: string };
            received.push(body.PrimaryEntityId);
          }
          return received.length >= 5000 ? true : undefined;
        },
        25_000,
      );
    } finally {
      await receiver.close();
      await sb.close();
    }
    assert.deepEqual(
      received,
      result.created.map((c) => c.activityRowId),
      'creation order',
    );
    for (const [i, s] of samples.entries()) {
      assert.equal(s.posted + s.backlog, s.eventsQueued, `sample ${i}`);
      if (i > 0) assert.ok(s.backlog <= samples[i - 1]!.backlog, `backlog went up at sample ${i}`);
    }
    assert.deepEqual((await stats(emulator.url)).posting, {
      backlog: 0,
      posted: 5000,
      failedAttempts: 0,
      eventsQueued: 5000,
      partialTargets: 0,
    });
  });

  it("records an interaction against a run of 40,000 as fast as against a run of 500 (the row is found through the contact's index) and against the right run's row", async () => {
    const emulator = track(await startEmulator({ seed: smallSeed(10) }));
    // The same first 500 contacts are in both runs: each has a row per run, told apart by the run's activity id.
    const big = await runJourney(emulator.url, { count: 40_000, generateContacts: true });
    const small = await runJourney(emulator.url, { count: 500 });
    const api = client(emulator.url, 'recorder');
    const record = async (activities: typeof small.created): Promise<number> => {
      api.startBatch();
      for (const a of activities) void api.callAction({ actionName: CREATE_INTERACTION, action: interaction(a) });
      const started = performance.now();
      const results = (await api.executeBatch({ inChangeSet: false })) as unknown[];
      const ms = performance.now() - started;
      assert.equal(results.filter((r) => r !== undefined).length, 0, 'every CreateInteraction answered 204');
      return ms;
    };
    // Alternated, best of five each: the machine's load moves both alike. A walk over the run's rows made the big
    // run's batch about ten times the small one's.
    const times = { big: [] as number[], small: [] as number[] };
    for (let i = 0; i < 5; i++) {
      times.small.push(await record(small.created));
      times.big.push(await record(big.created.slice(0, 500)));
    }
    const ratio = Math.min(...times.big) / Math.min(...times.small);
    assert.ok(ratio < 3, `big run / small run = ${ratio.toFixed(2)} (${JSON.stringify(times)})`);

    const recorded = (await (await fetch(`${emulator.url}/_emulator/interactions?responseType=sent`)).json()) as {
      value: Array<{ activityId: string; activityRowId: string }>;
    };
    const rowOf = new Map(recorded.value.map((i) => [`${i.activityId}/${i.activityRowId}`, i]));
    for (const a of [...small.created, ...big.created.slice(0, 500)])
      assert.ok(rowOf.has(`${a.activityId}/${a.activityRowId}`), `interaction of row ${a.activityRowId}`);
    assert.equal(rowOf.size, 1000, "no interaction went to another run's row");
  });
});
