import assert from 'node:assert/strict';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { createDataverseClient, closeDataverseClient } from '../../../src/dataverse/index.js';
import type { DataverseEmulator } from '../../../src/emulators/dataverse/index.js';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../../src/emulators/servicebus/index.js';
import {
  formatRegistrationReport,
  registerRelay,
  serviceBusFromConnectionString,
  type RegistrationSpec,
} from '../../../src/registration/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { emulatorConfig } from '../emulators/servicebus/helpers.js';
import { receiveAll, SEED_FILE, startEmulator } from '../emulators/dataverse/helpers.js';

/** The sample seed's ids (config/dataverse-seed.json and the generated solutions it imports). */
export const SAMPLE = {
  journey: 'a7bf09dd-7b81-51ce-9fac-9dcbbb837cae',
  createMessage: '29cba0be-d3f2-59df-afc0-48f8293ebd20',
  activityFilter: 'c25496db-5571-5067-91ea-23c2ab733cb6',
  channelDefinition: '877d122c-16f8-5806-b029-4a7a103cb3d6',
  /** Its sdkmessage is created with the API when the solution is imported: look it up by this name. */
  outboundApi: 'sample_RealtimeSmsOutboundApi',
};

type Row = Record<string, unknown>;

describe('registerRelay (against the Dataverse and Service Bus emulators)', function () {
  this.timeout(20_000);
  const track = closedAfterEach();
  let sb: ServiceBusEmulator;
  let dv: DataverseEmulator;
  let api: DynamicsWebApi;
  let spec: RegistrationSpec;

  beforeEach(async () => {
    sb = track(
      await startServiceBusEmulator({
        port: 0,
        config: emulatorConfig({ queues: { activities: {}, 'other-queue': {} } }),
      }),
    );
    // No `servicebus` override: the emulator posts with the connection the registered endpoint describes.
    dv = track(await startEmulator({ seed: SEED_FILE }));
    api = createDataverseClient({ url: dv.url, auth: 'emulator', tokenIdentity: 'registration-test' });
    track({ close: async () => closeDataverseClient(api) });
    spec = { serviceBus: serviceBusFromConnectionString(sb.connectionString) };
  });

  const rows = async (collection: string): Promise<Row[]> =>
    ((await api.retrieveMultiple({ collection })) as { value: Row[] }).value;
  const stats = async (): Promise<{ rows: Record<string, number> }> =>
    (await fetch(`${dv.url}/_emulator/stats`)).json() as Promise<{ rows: Record<string, number> }>;

  it('creates the endpoint and the Create step the first time; a second run reports unchanged and writes nothing', async () => {
    const first = await registerRelay(api, spec);
    assert.deepEqual(
      first.items.map((i) => [i.kind, i.action]),
      [
        ['serviceendpoint', 'create'],
        ['step', 'create'],
      ],
    );
    assert.equal(first.changed, true);
    assert.equal(first.requests.writes, 2);
    assert.ok(first.items[0]?.changed.includes('saskey'));
    assert.doesNotMatch(formatRegistrationReport(first), /SAS_KEY_VALUE/);

    const [endpoint] = await rows('serviceendpoints');
    assert.ok(endpoint);
    assert.equal(endpoint['serviceendpointid'], first.items[0]?.id);
    assert.equal(endpoint['name'], 'channel-relay activities');
    assert.equal(endpoint['contract'], 2);
    assert.equal(endpoint['messageformat'], 2);
    assert.equal(endpoint['authtype'], 2);
    assert.equal(endpoint['path'], 'activities');
    assert.equal(endpoint['namespaceaddress'], `sb://127.0.0.1:${sb.port}/`);
    assert.equal(endpoint['saskeyname'], 'RootManageSharedAccessKey');
    assert.equal(endpoint['issaskeyset'], true);
    const [step] = await rows('sdkmessageprocessingsteps');
    assert.ok(step);
    assert.equal(step['sdkmessageprocessingstepid'], first.items[1]?.id);
    assert.equal(step['_eventhandler_value'], endpoint['serviceendpointid']);
    assert.equal(step['_sdkmessageid_value'], SAMPLE.createMessage);
    assert.equal(step['_sdkmessagefilterid_value'], SAMPLE.activityFilter);
    assert.deepEqual([step['mode'], step['stage'], step['rank']], [1, 40, 1]);

    const before = await stats();
    const second = await registerRelay(api, spec);
    assert.deepEqual(
      second.items.map((i) => i.action),
      ['unchanged', 'unchanged'],
    );
    assert.equal(second.changed, false);
    assert.equal(second.requests.writes, 0);
    assert.match(
      formatRegistrationReport(second),
      /nothing to change: the org already has this registration \(\d+ reads, 0 writes\)/,
    );
    assert.deepEqual((await stats()).rows, before.rows);
    const [endpointAfter] = await rows('serviceendpoints');
    const [stepAfter] = await rows('sdkmessageprocessingsteps');
    assert.equal(endpointAfter?.['versionnumber'], endpoint['versionnumber']);
    assert.equal(stepAfter?.['versionnumber'], step['versionnumber']);
  });

  it('updates only the columns that differ, enables a disabled step, and renames a renamed step back instead of adding one', async () => {
    const first = await registerRelay(api, spec);
    const endpointId = first.items[0]?.id as string;
    const stepId = first.items[1]?.id as string;
    await api.update({ collection: 'serviceendpoints', key: endpointId, data: { path: 'other-queue' } });
    await api.update({
      collection: 'sdkmessageprocessingsteps',
      key: stepId,
      data: { rank: 7, name: 'renamed by hand', statecode: 1, statuscode: 2 },
    });

    const report = await registerRelay(api, spec);
    assert.deepEqual(report.items[0]?.action, 'update');
    assert.deepEqual(report.items[0]?.changed, ['path']);
    assert.equal(report.items[1]?.action, 'update');
    assert.deepEqual([...(report.items[1]?.changed ?? [])].sort(), ['name', 'rank', 'statecode']);
    assert.equal(report.requests.writes, 2);
    const text = formatRegistrationReport(report);
    assert.match(text, /serviceendpoint 'channel-relay activities' .*: updated: path/);
    assert.match(text, /created 0, updated 2, unchanged 0/);

    const endpoints = await rows('serviceendpoints');
    const steps = await rows('sdkmessageprocessingsteps');
    assert.equal(endpoints.length, 1);
    assert.equal(endpoints[0]?.['path'], 'activities');
    assert.equal(steps.length, 1);
    assert.deepEqual(
      [steps[0]?.['rank'], steps[0]?.['statecode'], steps[0]?.['name']],
      [1, 0, 'channel-relay: Create of msdyncrm_customerjourneycustomchannelactivity'],
    );
  });

  it('an endpoint without messageformat (it posts .NET Binary XML, the default): --dry-run says so, a run sets Json', async () => {
    const first = await registerRelay(api, spec);
    const endpointId = first.items[0]?.id as string;
    await api.update({ collection: 'serviceendpoints', key: endpointId, data: { messageformat: null } });

    const dry = await registerRelay(api, spec, { dryRun: true });
    assert.deepEqual(dry.items[0]?.changed, ['messageformat']);
    const dryText = formatRegistrationReport(dry);
    assert.match(
      dryText,
      /warning: the endpoint posts \.NET Binary XML \(no messageformat: the default\), which intake dead-letters \(EventUnsupportedFormat\); a run without --dry-run sets messageformat 2 \(Json\)/,
    );
    assert.match(dryText, /would update: messageformat/);

    const report = await registerRelay(api, spec);
    assert.match(formatRegistrationReport(report), /warning: .*now set to messageformat 2 \(Json\)/);
    assert.equal((await rows('serviceendpoints'))[0]?.['messageformat'], 2);
    assert.deepEqual((await registerRelay(api, spec)).warnings, []);
  });

  it('writes the key again only when asked (--update-key: a rotation), naming saskey and never its value', async () => {
    await registerRelay(api, spec);
    const rotated = await registerRelay(api, { ...spec, updateKey: true });
    assert.equal(rotated.items[0]?.action, 'update');
    assert.deepEqual(rotated.items[0]?.changed, ['saskey']);
    assert.equal(rotated.items[1]?.action, 'unchanged');
    assert.doesNotMatch(formatRegistrationReport(rotated), /SAS_KEY_VALUE/);
  });

  it('dry run: reads, says what it would do, writes nothing', async () => {
    const before = await stats();
    const report = await registerRelay(api, spec, { dryRun: true });
    assert.equal(report.dryRun, true);
    assert.deepEqual(
      report.items.map((i) => [i.action, i.id]),
      [
        ['create', undefined],
        ['create', undefined],
      ],
    );
    assert.equal(report.requests.writes, 0);
    assert.deepEqual((await stats()).rows, before.rows);
    const text = formatRegistrationReport(report);
    assert.match(text, /^dry run: reading only, nothing is written/);
    assert.match(text, /would create 2, update 0, leave 0 unchanged; nothing was changed/);

    await registerRelay(api, spec);
    const changedStep = (await rows('sdkmessageprocessingsteps'))[0]?.['sdkmessageprocessingstepid'] as string;
    await api.update({ collection: 'sdkmessageprocessingsteps', key: changedStep, data: { rank: 3 } });
    const dry = await registerRelay(api, spec, { dryRun: true });
    assert.deepEqual(
      dry.items.map((i) => i.action),
      ['unchanged', 'update'],
    );
    assert.match(formatRegistrationReport(dry), /would update: rank/);
    assert.equal((await rows('sdkmessageprocessingsteps'))[0]?.['rank'], 3);
  });

  it('after registering, a journey run posts its activities to the queue (what Dataverse needs, from the endpoint alone)', async () => {
    await registerRelay(api, spec);
    const res = await fetch(`${dv.url}/_emulator/journeys/${SAMPLE.journey}/run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ count: 3 }),
    });
    assert.equal(res.status, 200);
    const run = (await res.json()) as { created: Array<{ activityRowId: string }> };
    assert.ok(run.created.length >= 1);
    const received = await receiveAll(sb.connectionString, 'activities', run.created.length);
    assert.equal(received.length, run.created.length);
    for (const m of received) {
      assert.equal(m.contentType, 'application/json');
      assert.equal(
        m.applicationProperties?.['http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName'],
        'msdyncrm_customerjourneycustomchannelactivity',
      );
      assert.equal(m.applicationProperties?.['http://schemas.microsoft.com/xrm/2011/Claims/RequestName'], 'Create');
    }
    assert.deepEqual(
      new Set(received.map((m) => (m.body as { PrimaryEntityId: string }).PrimaryEntityId)),
      new Set(run.created.map((c) => c.activityRowId)),
    );
  });

  it("realtime: a step on the channel definition's outbound Custom API message; a real-time send then reaches the queue", async () => {
    const report = await registerRelay(api, {
      ...spec,
      realtime: [{ channelDefinitionId: SAMPLE.channelDefinition, channel: 'realtime-sms' }],
    });
    assert.deepEqual(
      report.items.map((i) => [i.kind, i.action, i.target]),
      [
        ['serviceendpoint', 'create', `queue activities at sb://127.0.0.1:${sb.port}/`],
        ['step', 'create', 'Create of msdyncrm_customerjourneycustomchannelactivity'],
        ['step', 'create', 'the outbound Custom API of channel realtime-sms'],
      ],
    );
    assert.deepEqual(
      report.warnings.filter((w) => /sample_RealtimeSmsOutboundApi/.test(w)),
      [
        "the Custom API 'sample_RealtimeSmsOutboundApi' has no plug-in: its 'response' output is null for every call (the relay's step is asynchronous and cannot set it), so the journey gets no Sent/NotSent status; the relay reports outcomes through msdyn_D365ChannelsNotification only (see README, Real-time journeys)",
      ],
    );
    const outboundApiMessage = (await rows('sdkmessages')).find((m) => m['name'] === SAMPLE.outboundApi)?.[
      'sdkmessageid'
    ];
    assert.ok(outboundApiMessage, `the imported solution's ${SAMPLE.outboundApi} has its sdkmessage`);
    const realtimeStep = (await rows('sdkmessageprocessingsteps')).find(
      (s) => s['_sdkmessageid_value'] === outboundApiMessage,
    );
    assert.ok(realtimeStep);
    assert.equal(realtimeStep['name'], 'channel-relay: sample_RealtimeSmsOutboundApi');
    assert.equal(realtimeStep['_sdkmessagefilterid_value'] ?? null, null);

    const again = await registerRelay(api, { ...spec, realtime: [{ channelDefinitionId: SAMPLE.channelDefinition }] });
    assert.deepEqual(
      again.items.map((i) => i.action),
      ['unchanged', 'unchanged', 'unchanged'],
    );

    const send = await fetch(`${dv.url}/_emulator/realtime/${SAMPLE.channelDefinition}/send`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ to: ['+4915112345678'], message: { text: 'Hello' } }),
    });
    assert.equal(send.status, 200);
    const [message] = await receiveAll(sb.connectionString, 'activities', 1);
    assert.equal(
      message?.applicationProperties?.['http://schemas.microsoft.com/xrm/2011/Claims/RequestName'],
      'sample_RealtimeSmsOutboundApi',
    );
  });

  it('names the missing Custom API message and what to do when the channel definition points at none', async () => {
    await api.update({
      collection: 'msdyn_channeldefinitions',
      key: SAMPLE.channelDefinition,
      data: { msdyn_outboundendpointurltemplate: '/sample_NotCreatedApi' },
    });
    await assert.rejects(
      registerRelay(api, { ...spec, realtime: [{ channelDefinitionId: SAMPLE.channelDefinition }] }),
      (err: Error & { code?: string; context?: { hint?: string } }) => {
        assert.equal(err.code, 'DataverseNotFound');
        assert.match(err.message, /sample_NotCreatedApi/);
        assert.match(err.context?.hint ?? '', /create the outbound Custom API/);
        return true;
      },
    );
    assert.equal((await stats()).rows['serviceendpoints'], 0);
  });

  it('reads the Custom API first: allowedcustomprocessingsteptype 0 stops with what to do, before writing anything; a plug-in on the API silences the warning', async () => {
    const created = async (uniquename: string, data: Row): Promise<void> => {
      await api.create({ collection: 'customapis', data: { uniquename, name: uniquename, ...data } });
    };
    await created('test_NoStepsApi', { allowedcustomprocessingsteptype: 0 });
    await assert.rejects(
      registerRelay(api, { ...spec, realtime: [{ message: 'test_NoStepsApi' }] }),
      (err: Error & { code?: string; context?: { hint?: string } }) => {
        assert.equal(err.code, 'DataverseBadRequest');
        assert.match(
          err.message,
          /the Custom API 'test_NoStepsApi' has allowedcustomprocessingsteptype 0 \(None\).*the API must allow asynchronous steps \(1 Async Only or 2 Sync and Async\), and the setting cannot be changed after the API is created/,
        );
        assert.match(
          err.context?.hint ?? '',
          /create a new Custom API with allowedcustomprocessingsteptype 1 \(Async Only\) or 2 \(Sync and Async\)/,
        );
        return true;
      },
    );
    assert.equal((await stats()).rows['serviceendpoints'], 0, 'nothing written');

    const pluginType = (await api.create({
      collection: 'plugintypes',
      data: { name: 'Sample.OutboundPlugin', typename: 'Sample.OutboundPlugin' },
    })) as string;
    await created('test_AnswersApi', {
      allowedcustomprocessingsteptype: 2,
      'PluginTypeId@odata.bind': `/plugintypes(${pluginType})`,
    });
    const report = await registerRelay(api, { ...spec, realtime: [{ message: 'test_AnswersApi' }] });
    assert.deepEqual(report.items.map((i) => [i.kind, i.action]).at(-1), ['step', 'create']);
    assert.deepEqual(
      report.warnings.filter((w) => /test_AnswersApi/.test(w)),
      [],
    );

    // An sdkmessage without a customapi row (a custom process action, say) is not a Custom API.
    await api.create({ collection: 'sdkmessages', data: { name: 'test_ProcessAction' } });
    await assert.rejects(
      registerRelay(api, { ...spec, realtime: [{ message: 'test_ProcessAction' }] }),
      /no Custom API \(customapi\) with the unique name 'test_ProcessAction'/,
    );
  });
});
