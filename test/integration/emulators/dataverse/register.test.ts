/**
 * The `register` command's idempotent set-up through dynamics-web-api: resolve the Create message and the activity
 * filter, create or update the service endpoint and the step, detect "no change" by reading the rows back, and see
 * that an update changes what gets posted.
 */
import assert from 'node:assert/strict';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import {
  asyncPostOperationStep,
  client,
  queueEndpoint,
  rejection,
  runJourney,
  smallSeed,
  startEmulator,
  waitFor,
} from './helpers.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

const ACTIVITY_TABLE = 'msdyncrm_customerjourneycustomchannelactivity';
const ENDPOINT_NAME = 'channel-relay activities';
const STEP_NAME = 'channel-relay: Custom Channel Activity Create';

interface Registration {
  endpoint: Record<string, unknown>;
  /** What the endpoint must read back as (secrets are write-only: only their is…set flags are readable). */
  endpointReadBack: Record<string, unknown>;
}

function sasRegistration(busPort: number, queue: string): Registration {
  const readable = queueEndpoint(busPort, queue);
  return { endpoint: { ...readable, saskey: 'SAS_KEY_VALUE' }, endpointReadBack: { ...readable, issaskeyset: true } };
}

function differs(row: Record<string, unknown>, wanted: Record<string, unknown>): string[] {
  return Object.entries(wanted).flatMap(([k, v]) => (row[k] === v ? [] : [k]));
}

/** What `register` would do: look the rows up by name, create what is missing, update what differs, else nothing. */
async function register(api: DynamicsWebApi, reg: Registration): Promise<{ endpoint: string; step: string }> {
  const outcome = { endpoint: 'unchanged', step: 'unchanged' };
  const createId = (
    await api.retrieveMultiple({ collection: 'sdkmessages', select: ['sdkmessageid'], filter: "name eq 'Create'" })
  ).value[0]!.sdkmessageid as string;
  const filterId = (
    await api.retrieveMultiple({
      collection: 'sdkmessagefilters',
      select: ['sdkmessagefilterid'],
      filter: `primaryobjecttypecode eq '${ACTIVITY_TABLE}' and _sdkmessageid_value eq ${createId}`,
    })
  ).value[0]!.sdkmessagefilterid as string;

  const endpoints = await api.retrieveMultiple({
    collection: 'serviceendpoints',
    select: ['serviceendpointid', ...Object.keys(reg.endpointReadBack)],
    filter: `name eq '${ENDPOINT_NAME}'`,
  });
  let endpointId = endpoints.value[0]?.serviceendpointid as string | undefined;
  if (!endpointId) {
    endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: { name: ENDPOINT_NAME, ...reg.endpoint },
    })) as string;
    outcome.endpoint = 'created';
  } else if (differs(endpoints.value[0]!, reg.endpointReadBack).length > 0) {
    await api.update({ collection: 'serviceendpoints', key: endpointId, data: reg.endpoint });
    outcome.endpoint = 'updated';
  }

  const step = asyncPostOperationStep(endpointId, createId, filterId);
  const stepReadBack = {
    mode: 1,
    stage: 40,
    rank: 1,
    statecode: 0,
    _eventhandler_value: endpointId,
    _sdkmessageid_value: createId,
    _sdkmessagefilterid_value: filterId,
  };
  const steps = await api.retrieveMultiple({
    collection: 'sdkmessageprocessingsteps',
    select: ['sdkmessageprocessingstepid', ...Object.keys(stepReadBack)],
    filter: `name eq '${STEP_NAME}'`,
  });
  const stepId = steps.value[0]?.sdkmessageprocessingstepid as string | undefined;
  if (!stepId) {
    await api.create({ collection: 'sdkmessageprocessingsteps', data: { name: STEP_NAME, ...step } });
    outcome.step = 'created';
  } else if (differs(steps.value[0]!, stepReadBack).length > 0) {
    await api.update({
      collection: 'sdkmessageprocessingsteps',
      key: stepId,
      data: { ...step, statecode: 0, statuscode: 1 },
    });
    outcome.step = 'updated';
  }
  return outcome;
}

async function drain(connectionString: string, queue: string, expected: number): Promise<ServiceBusReceivedMessage[]> {
  const sb = new ServiceBusClient(connectionString);
  const receiver = sb.createReceiver(queue, { receiveMode: 'receiveAndDelete' });
  const received: ServiceBusReceivedMessage[] = [];
  try {
    if (expected > 0) {
      await waitFor(`${expected} messages on '${queue}'`, async () => {
        received.push(...(await receiver.receiveMessages(50, { maxWaitTimeInMs: 200 })));
        return received.length >= expected ? true : undefined;
      });
    }
    received.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 200 })));
  } finally {
    await receiver.close();
    await sb.close();
  }
  return received;
}

function primaryIds(messages: ServiceBusReceivedMessage[]): unknown[] {
  return messages.map((m) => {
    const raw: unknown = m.body;
    const body =
      Buffer.isBuffer(raw) || typeof raw === 'string'
        ? (JSON.parse(raw.toString()) as Record<string, unknown>)
        : (raw as Record<string, unknown>);
    return body['PrimaryEntityId'];
  });
}

describe('Dataverse emulator: idempotent registration of the Service Bus step', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('creates once, then reads back "no change"; secrets are write-only; an update of the path or the state changes what is posted', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(6) }));
    const api = client(emulator.url, 'relay-admin');

    assert.deepEqual(await register(api, sasRegistration(bus.port, 'activities')), {
      endpoint: 'created',
      step: 'created',
    });
    const [endpoint] = (await api.retrieveMultiple({ collection: 'serviceendpoints' })).value;
    assert.equal(endpoint!.issaskeyset, true);
    assert.ok(!('saskey' in endpoint!), 'saskey is never returned (IsValidForRead false)');
    const secret = await rejection(api.retrieveMultiple({ collection: 'serviceendpoints', select: ['saskey'] }));
    assert.equal(secret.status, 400);
    assert.match(String(secret.message), /cannot be read.*'issaskeyset'/);
    const etag = endpoint!['@odata.etag'];

    assert.deepEqual(await register(api, sasRegistration(bus.port, 'activities')), {
      endpoint: 'unchanged',
      step: 'unchanged',
    });
    assert.equal(
      (
        await api.retrieve({
          collection: 'serviceendpoints',
          key: endpoint!.serviceendpointid as string,
          select: ['name'],
        })
      )['@odata.etag'],
      etag,
      'nothing was written',
    );

    const first = await runJourney(emulator.url, {
      contactIds: ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'],
    });
    await emulator.postingIdle();
    assert.deepEqual(
      primaryIds(await drain(bus.connectionString, 'activities', 2)),
      first.created.map((c) => c.activityRowId),
    );

    // A changed queue is an update, and the next events go there.
    assert.deepEqual(await register(api, sasRegistration(bus.port, 'interactions')), {
      endpoint: 'updated',
      step: 'unchanged',
    });
    const second = await runJourney(emulator.url, { contactIds: ['00000000-0000-4000-8000-000000000003'] });
    await emulator.postingIdle();
    assert.deepEqual(
      primaryIds(await drain(bus.connectionString, 'interactions', 1)),
      second.created.map((c) => c.activityRowId),
    );
    assert.equal((await drain(bus.connectionString, 'activities', 0)).length, 0);

    // A disabled step posts nothing; registering again re-enables it.
    const [step] = (
      await api.retrieveMultiple({ collection: 'sdkmessageprocessingsteps', select: ['sdkmessageprocessingstepid'] })
    ).value;
    await api.update({
      collection: 'sdkmessageprocessingsteps',
      key: step!.sdkmessageprocessingstepid as string,
      data: { statecode: 1, statuscode: 2 },
    });
    await runJourney(emulator.url, { contactIds: ['00000000-0000-4000-8000-000000000004'] });
    await emulator.postingIdle();
    assert.equal((await drain(bus.connectionString, 'interactions', 0)).length, 0);
    assert.deepEqual(await register(api, sasRegistration(bus.port, 'interactions')), {
      endpoint: 'unchanged',
      step: 'updated',
    });
    const third = await runJourney(emulator.url, { contactIds: ['00000000-0000-4000-8000-000000000005'] });
    await emulator.postingIdle();
    assert.deepEqual(
      primaryIds(await drain(bus.connectionString, 'interactions', 1)),
      third.created.map((c) => c.activityRowId),
    );
  });

  it('posts through an authtype 7 (Connection String) endpoint whose connection string is in authvalue', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: smallSeed(2) }));
    const api = client(emulator.url, 'relay-admin');
    const readable = {
      contract: 2,
      authtype: 7,
      messageformat: 2,
      userclaim: 1,
      connectionmode: 1,
      solutionnamespace: 'sbemulatorns',
      path: 'activities',
    };
    const outcome = await register(api, {
      endpoint: { ...readable, authvalue: `${bus.connectionString};EntityPath=ignored` },
      endpointReadBack: { ...readable, isauthvalueset: true },
    });
    assert.deepEqual(outcome, { endpoint: 'created', step: 'created' });
    const run = await runJourney(emulator.url, { count: 2 });
    await emulator.postingIdle();
    assert.deepEqual(
      primaryIds(await drain(bus.connectionString, 'activities', 2)),
      run.created.map((c) => c.activityRowId),
    );
  });

  it('refuses a step whose filter belongs to another message (a filter resolved without _sdkmessageid_value)', async () => {
    const emulator = track(await startEmulator({ seed: smallSeed(1) }));
    const api = client(emulator.url, 'relay-admin');
    const updateId = (await api.create({ collection: 'sdkmessages', data: { name: 'Update' } })) as string;
    const updateFilter = (await api.create({
      collection: 'sdkmessagefilters',
      data: { primaryobjecttypecode: ACTIVITY_TABLE, 'sdkmessageid@odata.bind': `/sdkmessages(${updateId})` },
    })) as string;
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: { name: ENDPOINT_NAME, ...sasRegistration(1, 'activities').endpoint },
    })) as string;
    const createId = (
      await api.retrieveMultiple({ collection: 'sdkmessages', select: ['sdkmessageid'], filter: "name eq 'Create'" })
    ).value[0]!.sdkmessageid as string;
    const err = await rejection(
      api.create({
        collection: 'sdkmessageprocessingsteps',
        data: {
          name: STEP_NAME,
          mode: 1,
          stage: 40,
          'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
          'sdkmessageid@odata.bind': `/sdkmessages(${createId})`,
          'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${updateFilter})`,
        },
      }),
    );
    assert.equal(err.status, 400);
    assert.match(
      String(err.message),
      new RegExp(`belongs to the sdkmessage ${updateId}, not to the step's sdkmessage ${createId}`),
    );
  });
});
