/**
 * Dataverse's posting of Create events to Service Bus, end to end: the step and endpoint registered through the Web
 * API with dynamics-web-api, a journey run through the emulator endpoint, the messages received from the project's
 * Service Bus emulator with the real @azure/service-bus SDK.
 */
import assert from 'node:assert/strict';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import {
  asyncPostOperationStep,
  client,
  IDS,
  queueEndpoint,
  receiveAll,
  runJourney,
  smallSeed,
  startEmulator,
  waitFor,
} from './helpers.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

const CLAIMS = 'http://schemas.microsoft.com/xrm/2011/Claims';
const ACTIVITY_TABLE = 'msdyncrm_customerjourneycustomchannelactivity';

/** Registers a Queue service endpoint and an async post-operation Create step, the way a deployment script would. */
async function register(api: DynamicsWebApi, busPort: number, queue: string): Promise<void> {
  const endpointId = (await api.create({
    collection: 'serviceendpoints',
    data: { name: 'channel-relay activities', ...queueEndpoint(busPort, queue), saskey: 'SAS_KEY_VALUE' },
  })) as string;
  const messages = await api.retrieveMultiple({
    collection: 'sdkmessages',
    select: ['sdkmessageid'],
    filter: "name eq 'Create'",
  });
  const createId = messages.value[0]!.sdkmessageid as string;
  const filters = await api.retrieveMultiple({
    collection: 'sdkmessagefilters',
    select: ['sdkmessagefilterid'],
    filter: `primaryobjecttypecode eq '${ACTIVITY_TABLE}' and _sdkmessageid_value eq ${createId}`,
  });
  await api.create({
    collection: 'sdkmessageprocessingsteps',
    data: {
      name: 'Custom Channel Activity Create → Service Bus',
      ...asyncPostOperationStep(endpointId, createId, filters.value[0]!.sdkmessagefilterid as string),
    },
  });
}

function bodyOf(message: ServiceBusReceivedMessage): Record<string, unknown> {
  const raw: unknown = message.body;
  if (Buffer.isBuffer(raw)) return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  if (typeof raw === 'string') return JSON.parse(raw) as Record<string, unknown>;
  return raw as Record<string, unknown>;
}

function checkMessages(
  messages: ServiceBusReceivedMessage[],
  created: Array<{ contactId: string; activityId: string; activityRowId: string }>,
  apiUserId: string,
): void {
  assert.equal(messages.length, created.length);
  const bodies = messages.map(bodyOf);
  assert.deepEqual(
    bodies.map((b) => b['PrimaryEntityId']),
    created.map((c) => c.activityRowId),
    'every activity, in creation order',
  );
  for (const [i, message] of messages.entries()) {
    const body = bodies[i]!;
    assert.equal(message.contentType, 'application/json');
    assert.equal(message.applicationProperties?.[`${CLAIMS}/EntityLogicalName`], ACTIVITY_TABLE);
    assert.equal(message.applicationProperties?.[`${CLAIMS}/RequestName`], 'Create');
    assert.equal(message.applicationProperties?.[`${CLAIMS}/User`], apiUserId);
    assert.equal(message.applicationProperties?.[`${CLAIMS}/InitiatingUser`], apiUserId);
    assert.match(String(message.applicationProperties?.[`${CLAIMS}/Organization`]), /^127\.0\.0\.1:\d+$/);
    assert.equal(body['MessageName'], 'Create');
    assert.equal(body['Stage'], 40);
    assert.equal(body['Mode'], 1);
    assert.equal(body['PrimaryEntityName'], ACTIVITY_TABLE);
    assert.match(String(body['OperationCreatedOn']), /^\/Date\(\d+\)\/$/);
    const target = (body['InputParameters'] as Array<{ key: string; value: Record<string, unknown> }>)[0]!;
    assert.equal(target.key, 'Target');
    assert.equal(target.value['__type'], 'Entity:http://schemas.microsoft.com/xrm/2011/Contracts');
    const attrs = Object.fromEntries(
      (target.value['Attributes'] as Array<{ key: string; value: unknown }>).map((a) => [a.key, a.value]),
    );
    assert.equal(attrs['msdyncrm_activityid'], created[i]!.activityId);
    assert.equal(attrs['msdyncrm_entitytype'], 'sample_specialmessage');
    assert.equal(attrs['msdyncrm_entityid'], IDS.message);
    const contact = attrs['msdyncrm_contact'] as Record<string, unknown>;
    assert.equal(contact['__type'], 'EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts');
    assert.equal(contact['LogicalName'], 'contact');
    assert.equal(contact['Id'], created[i]!.contactId);
    assert.equal((attrs['msdyncrm_customerjourney'] as Record<string, unknown>)['Id'], IDS.journey);
    assert.equal((attrs['msdyncrm_customerjourneyiteration'] as Record<string, unknown>)['Id'], IDS.iteration);
  }
}

describe('Dataverse emulator: posting Create events to Service Bus', function () {
  this.timeout(40_000);
  const track = closedAfterEach();

  it('posts one RemoteExecutionContext per created activity: 100 contacts, the opted-out ones skipped', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(100, 7) }));
    const api = client(emulator.url, 'relay-admin');
    await register(api, bus.port, 'activities');
    const run = await runJourney(emulator.url, { count: 100 });
    assert.equal(run.created.length, 86);
    assert.equal(run.skipped.length, 14);
    const messages = await receiveAll(bus.connectionString, 'activities', run.created.length);
    const journeyEngine = (await (
      await fetch(`${emulator.url}/api/data/v9.2/WhoAmI`, { headers: { Authorization: 'Bearer journey-engine' } })
    ).json()) as { UserId: string };
    checkMessages(messages, run.created, journeyEngine.UserId);
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as {
      posting: { backlog: number; posted: number };
    };
    assert.deepEqual([stats.posting.backlog, stats.posting.posted], [0, 86]);
  });

  it('keeps every event while the bus is down and posts them in order once it is up', async () => {
    // Find a free port for the bus, then leave it down.
    const probe = await startServiceBusEmulator({ port: 0 });
    const port = probe.port;
    await probe.close();
    const emulator = track(
      await startEmulator({ seed: smallSeed(100, 7), postRetryMinMs: 50, postRetryMaxMs: 400, postTimeoutMs: 2000 }),
    );
    const api = client(emulator.url, 'relay-admin');
    await register(api, port, 'activities');
    const run = await runJourney(emulator.url, { count: 100 });
    type Stats = { posting: { backlog: number; posted: number; failedAttempts: number } };
    const stats = async (): Promise<Stats> => (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as Stats;
    await waitFor('failed posting attempts while the bus is down', async () =>
      (await stats()).posting.failedAttempts >= 2 ? true : undefined,
    );
    assert.equal((await stats()).posting.backlog, run.created.length);

    const bus = track(await startServiceBusEmulator({ port }));
    await emulator.postingIdle();
    const messages = await receiveAll(bus.connectionString, 'activities', run.created.length);
    const journeyEngine = (await (
      await fetch(`${emulator.url}/api/data/v9.2/WhoAmI`, { headers: { Authorization: 'Bearer journey-engine' } })
    ).json()) as { UserId: string };
    checkMessages(messages, run.created, journeyEngine.UserId);
    assert.equal((await stats()).posting.posted, 86);
  });

  it('keeps posting to a working queue while another step targets a queue that refuses every message', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(20), postRetryMinMs: 50, postRetryMaxMs: 200 }));
    const api = client(emulator.url, 'relay-admin');
    // "outbound" requires sessions: Dataverse sets no SessionId, so the bus refuses every post to it.
    await register(api, bus.port, 'outbound');
    await register(api, bus.port, 'activities');
    const run = await runJourney(emulator.url, { count: 20 });
    const messages = await receiveAll(bus.connectionString, 'activities', run.created.length);
    assert.deepEqual(
      messages.map((m) => bodyOf(m)['PrimaryEntityId']),
      run.created.map((c) => c.activityRowId),
    );
    type Stats = { posting: { backlog: number; posted: number; failedAttempts: number; lastError?: string } };
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as Stats;
    assert.equal(stats.posting.posted, 20);
    assert.equal(stats.posting.backlog, 20, 'the refused posts wait, none is lost');
    assert.ok(stats.posting.failedAttempts >= 1 && stats.posting.lastError !== undefined);
  });

  it('uses the --servicebus connection string for every endpoint when one is given (only path is read from the row)', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(5), servicebus: bus.connectionString }));
    const api = client(emulator.url, 'relay-admin');
    await register(api, 1, 'activities'); // port 1: the row's address is not used
    const run = await runJourney(emulator.url, { count: 5 });
    await emulator.postingIdle();
    const messages = await receiveAll(bus.connectionString, 'activities', run.created.length);
    assert.deepEqual(
      messages.map((m) => bodyOf(m)['PrimaryEntityId']),
      run.created.map((c) => c.activityRowId),
    );
  });

  it('partialTargets: that share of the Creates posts a Target without the given columns; the row keeps them', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const omit = ['msdyncrm_contact', 'msdyncrm_entityid', 'msdyncrm_customerjourneycustomchannelactivityid'];
    const emulator = track(
      await startEmulator({
        seed: smallSeed(8),
        servicebus: bus.connectionString,
        partialTargets: { omit, share: 0.5 },
      }),
    );
    const api = client(emulator.url, 'relay-admin');
    await register(api, 1, 'activities');
    const run = await runJourney(emulator.url, { count: 8 });
    await emulator.postingIdle();
    const messages = await receiveAll(bus.connectionString, 'activities', run.created.length);
    const keys = messages.map((m) => {
      const target = (
        bodyOf(m)['InputParameters'] as Array<{
          key: string;
          value: { Attributes: Array<{ key: string }>; Id: string };
        }>
      )[0]!.value;
      return { id: target.Id, keys: target.Attributes.map((a) => a.key) };
    });
    // Every other Create (the second, fourth …), spread evenly; never the primary key, which is the Target's Id.
    assert.deepEqual(
      keys.map((k) => omit.slice(0, 2).some((c) => k.keys.includes(c))),
      [true, false, true, false, true, false, true, false],
    );
    assert.ok(
      keys.every(
        (k) =>
          k.keys.includes('msdyncrm_customerjourneycustomchannelactivityid') && k.keys.includes('msdyncrm_activityid'),
      ),
    );
    assert.deepEqual(
      keys.map((k) => k.id),
      run.created.map((c) => c.activityRowId),
    );
    const row = await api.retrieve({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      key: run.created[1]!.activityRowId,
      select: ['_msdyncrm_contact_value', 'msdyncrm_entityid'],
    });
    assert.equal(row['_msdyncrm_contact_value'], run.created[1]!.contactId, 'the row has what its Target lacked');
    assert.equal(typeof row['msdyncrm_entityid'], 'string');
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as {
      posting: { partialTargets: number };
    };
    assert.equal(stats.posting.partialTargets, 4);
    await assert.rejects(
      startEmulator({ partialTargets: { omit: ['x'], share: 2 } }),
      /partialTargets.share must be a number 0-1, found 2/,
    );
  });

  it('posts to a topic for a Topic (5) endpoint; a subscription filtering on the EntityLogicalName claim receives it', async () => {
    const bus = track(
      await startServiceBusEmulator({
        port: 0,
        config: {
          UserConfig: {
            Namespaces: [
              {
                Name: 'sbemulatorns',
                Queues: [],
                Topics: [
                  {
                    Name: 'dataverse',
                    Properties: {},
                    Subscriptions: [
                      {
                        Name: 'activities',
                        Properties: {},
                        Rules: [
                          {
                            Name: 'activities-only',
                            Properties: {
                              FilterType: 'Correlation',
                              CorrelationFilter: { Properties: { [`${CLAIMS}/EntityLogicalName`]: ACTIVITY_TABLE } },
                            },
                          },
                        ],
                      },
                    ],
                  },
                ],
              },
            ],
            Logging: { Type: 'File' },
          },
        },
      }),
    );
    const emulator = track(await startEmulator({ seed: smallSeed(3) }));
    const api = client(emulator.url, 'relay-admin');
    await register(api, bus.port, 'dataverse');
    const endpoints = await api.retrieveMultiple({ collection: 'serviceendpoints', select: ['serviceendpointid'] });
    await api.update({
      collection: 'serviceendpoints',
      key: endpoints.value[0]!.serviceendpointid as string,
      data: { contract: 5 },
    });
    const run = await runJourney(emulator.url, { count: 3 });
    await emulator.postingIdle();
    const sb = new ServiceBusClient(bus.connectionString);
    const receiver = sb.createReceiver('dataverse', 'activities', { receiveMode: 'receiveAndDelete' });
    try {
      const received: ServiceBusReceivedMessage[] = [];
      await waitFor('3 messages on the subscription', async () => {
        received.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 200 })));
        return received.length >= 3 ? true : undefined;
      });
      assert.deepEqual(
        received.map((m) => bodyOf(m)['PrimaryEntityId']),
        run.created.map((c) => c.activityRowId),
      );
    } finally {
      await receiver.close();
      await sb.close();
    }
  });
});
