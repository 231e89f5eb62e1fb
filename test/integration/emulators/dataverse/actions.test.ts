import assert from 'node:assert/strict';
import type { DataverseEmulator, Interaction } from '../../../../src/emulators/dataverse/index.js';
import { client, contactId, IDS, rejection, runJourney, smallSeed, startEmulator } from './helpers.js';

const ACTION = 'msdyncrm_CustomChannelActivityCreateInteraction';

function interactionParams(
  activityId: string,
  contact: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    ActivityId: activityId,
    CustomerJourney: {
      '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourney',
      msdyncrm_customerjourneyid: IDS.journey,
    },
    CustomerJourneyIteration: {
      '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourneyiteration',
      msdyncrm_customerjourneyiterationid: IDS.iteration,
    },
    Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: contact },
    EntityType: 'sample_specialmessage',
    EntityId: IDS.message,
    ResponseType: 'sent',
    ...extra,
  };
}

async function interactions(url: string, query: string): Promise<Interaction[]> {
  return ((await (await fetch(`${url}/_emulator/interactions?${query}`)).json()) as { value: Interaction[] }).value;
}

describe('Dataverse emulator: custom channel actions', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('runs a journey: one activity per contact the compliance field allows, the others skipped', async () => {
    emulator = await startEmulator({ seed: smallSeed(10, 4) });
    const before = Date.now();
    const run = await runJourney(emulator.url, { count: 10 });
    // When the run created its rows, in ms (the benchmark's latencies start there).
    assert.ok(run.createdAtMs >= before && run.createdAtMs <= Date.now(), String(run.createdAtMs));
    assert.equal(run.created.length, 8);
    assert.deepEqual(
      run.skipped.map((s) => s.contactId),
      [contactId(3), contactId(7)],
    );
    assert.match(run.skipped[0]!.reason, /donotphone/);
    const rows = await client(emulator.url).retrieveAll({
      collection: 'msdyncrm_customerjourneycustomchannelactivities',
      select: [
        'msdyncrm_activityid',
        '_msdyncrm_contact_value',
        '_msdyncrm_customerjourney_value',
        'msdyncrm_entitytype',
        'msdyncrm_entityid',
      ],
    });
    assert.equal(rows.value.length, 8);
    assert.deepEqual(
      new Set(rows.value.map((r) => r._msdyncrm_contact_value)),
      new Set(run.created.map((c) => c.contactId)),
    );
    assert.ok(
      rows.value.every(
        (r) => r._msdyncrm_customerjourney_value === IDS.journey && r.msdyncrm_entitytype === 'sample_specialmessage',
      ),
    );
  });

  it('stores valid interactions with their time, and refuses each kind of bad parameter with a message that says what was wrong', async () => {
    emulator = await startEmulator({ seed: smallSeed(3) });
    const api = client(emulator.url);
    const run = await runJourney(emulator.url, { count: 2 });
    const [first] = run.created;
    await api.callAction({ actionName: ACTION, action: interactionParams(first!.activityId, first!.contactId) });
    await api.callAction({
      actionName: ACTION,
      action: interactionParams(first!.activityId, first!.contactId, {
        ResponseType: 'keyword',
        TriggerKeyword: 'YES',
      }),
    });

    const cases: Array<{ name: string; params: Record<string, unknown>; status: number; message: RegExp }> = [
      {
        name: 'missing parameter',
        params: { ...interactionParams(first!.activityId, first!.contactId), ActivityId: undefined },
        status: 400,
        message: /required parameter 'ActivityId' is missing/,
      },
      {
        name: 'bad GUID',
        params: interactionParams(first!.activityId, 'not-a-guid'),
        status: 400,
        message: /'Contact.contactid' is not a valid GUID/,
      },
      {
        name: 'reference without key',
        params: {
          ...interactionParams(first!.activityId, first!.contactId),
          Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact' },
        },
        status: 400,
        message: /EdmEntityObject passed should have the key property value set/,
      },
      {
        name: 'unknown response type',
        params: interactionParams(first!.activityId, first!.contactId, { ResponseType: 'clicked' }),
        status: 400,
        message: /'clicked' is not defined by the tile.*sent, delivered, keyword/,
      },
      {
        name: 'keyword required',
        params: interactionParams(first!.activityId, first!.contactId, { ResponseType: 'keyword' }),
        status: 400,
        message: /'TriggerKeyword' is required for the response type 'keyword'/,
      },
      {
        name: 'keyword not allowed',
        params: interactionParams(first!.activityId, first!.contactId, { TriggerKeyword: 'YES' }),
        status: 400,
        message: /only allowed for the custom response type 'keyword'/,
      },
      // The third contact got no row in this run: no row of the tile is theirs.
      {
        name: 'contact without a row of the tile',
        params: interactionParams(first!.activityId, contactId(2)),
        status: 400,
        message:
          /none of the 2 Custom Channel Activities with msdyncrm_activityid .* has msdyncrm_contact 00000000-0000-4000-8000-000000000003/,
      },
      {
        name: 'wrong entity type',
        params: interactionParams(first!.activityId, first!.contactId, { EntityType: 'other_table' }),
        status: 400,
        message: /'EntityType' is 'other_table'/,
      },
      {
        name: 'unknown activity',
        params: interactionParams('no-such-activity', first!.contactId),
        status: 404,
        message: /no Custom Channel Activity has msdyncrm_activityid 'no-such-activity'/,
      },
      {
        name: 'unknown parameter',
        params: interactionParams(first!.activityId, first!.contactId, { Extra: 1 }),
        status: 400,
        message: /no parameter 'Extra'/,
      },
    ];
    for (const c of cases) {
      const err = await rejection(api.callAction({ actionName: ACTION, action: c.params }));
      assert.equal(err.status, c.status, `${c.name}: ${String(err.message)}`);
      assert.match(String(err.message), c.message, c.name);
      assert.match(String(err.code), /^0x8/, c.name);
    }

    const stored = await interactions(emulator.url, `activityId=${first!.activityId}`);
    assert.deepEqual(
      stored.map((i) => [i.responseType, i.triggerKeyword]),
      [
        ['sent', undefined],
        ['keyword', 'YES'],
      ],
    );
    assert.ok(
      stored.every(
        (i) =>
          i.contactId === first!.contactId && i.journeyId === IDS.journey && !Number.isNaN(Date.parse(i.createdOn)),
      ),
    );
    assert.equal((await interactions(emulator.url, `journeyId=${IDS.journey}&responseType=keyword`)).length, 1);
  });

  it("gives every row of a run the tile's activity id, and resolves each interaction to the row of its contact", async () => {
    emulator = await startEmulator({ seed: smallSeed(4) });
    const api = client(emulator.url);
    const [one, two] = await Promise.all([
      runJourney(emulator.url, { contactIds: [contactId(0), contactId(1)] }),
      runJourney(emulator.url, { contactIds: [contactId(2)] }),
    ]);
    assert.equal(
      new Set(one.created.map((c) => c.activityId)).size,
      1,
      'one msdyncrm_activityid for the rows of a run',
    );
    assert.notEqual(one.created[0]!.activityId, two.created[0]!.activityId, 'another run, another id');
    assert.equal(new Set(one.created.map((c) => c.activityRowId)).size, 2);
    for (const c of one.created)
      await api.callAction({ actionName: ACTION, action: interactionParams(c.activityId, c.contactId) });
    const stored = await interactions(emulator.url, `activityId=${one.created[0]!.activityId}`);
    assert.deepEqual(
      stored.map((i) => [i.activityRowId, i.contactId]),
      one.created.map((c) => [c.activityRowId, c.contactId]),
    );
    assert.ok(
      stored.every((i) => i.duplicateOf === undefined),
      'two rows of one tile are two interactions, not a repeat',
    );
    assert.deepEqual(
      (await interactions(emulator.url, `activityRowId=${one.created[1]!.activityRowId}`)).map((i) => i.contactId),
      [contactId(1)],
    );
    const twice = await fetch(`${emulator.url}/_emulator/journeys/${IDS.journey}/run`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ contactIds: [contactId(3), contactId(3).toUpperCase()] }),
    });
    assert.equal(twice.status, 400);
    assert.match(await twice.text(), /given twice/);
  });

  it('writes interactions through $batch change sets, all or nothing', async () => {
    emulator = await startEmulator({ seed: smallSeed(5) });
    const api = client(emulator.url);
    const run = await runJourney(emulator.url, { count: 5 });
    api.startBatch();
    for (const c of run.created)
      api.callAction({
        actionName: ACTION,
        action: interactionParams(c.activityId, c.contactId, { ResponseType: 'delivered' }),
      });
    await api.executeBatch();
    assert.equal((await interactions(emulator.url, 'responseType=delivered')).length, 5);

    api.startBatch();
    api.callAction({
      actionName: ACTION,
      action: interactionParams(run.created[0]!.activityId, run.created[0]!.contactId),
    });
    api.callAction({
      actionName: ACTION,
      action: interactionParams(run.created[1]!.activityId, run.created[1]!.contactId, { ResponseType: 'bogus' }),
    });
    await rejection(api.executeBatch());
    assert.equal(
      (await interactions(emulator.url, 'responseType=sent')).length,
      0,
      'the failed change set left nothing',
    );
  });

  it('validates and stores the real-time journeys notification and inbound payloads; both answer 200 with responseMessage', async () => {
    emulator = await startEmulator({ seed: smallSeed(1) });
    const api = client(emulator.url);
    const notification = {
      ChannelDefinitionId: IDS.channelDefinition,
      RequestId: 'r1',
      MessageId: 'm1',
      From: '+4915100000001',
      OrganizationId: IDS.organization,
      Status: 'Delivered',
    };
    const notified = await api.callAction({
      actionName: 'msdyn_D365ChannelsNotification',
      action: { notificationPayLoad: JSON.stringify({ ...notification, StatusDetails: {} }) },
    });
    assert.equal((notified as Record<string, unknown>)['responseMessage'], 'Accepted');
    const received = await api.callAction({
      actionName: 'msdyn_D365ChannelsInbound',
      action: {
        inboundPayLoad: JSON.stringify({
          ChannelDefinitionId: IDS.channelDefinition,
          To: '+4915100000001',
          From: '+49151999',
          OrganizationId: IDS.organization,
          Message: { text: 'STOP' },
        }),
      },
    });
    assert.equal((received as Record<string, unknown>)['responseMessage'], 'Accepted');
    const bad = await rejection(
      api.callAction({
        actionName: 'msdyn_D365ChannelsNotification',
        action: { notificationPayLoad: JSON.stringify({ ...notification, Status: 'Read' }) },
      }),
    );
    assert.match(String(bad.message), /'Status' must be one of Delivered, NotDelivered/);
    const missing = await rejection(api.callAction({ actionName: 'msdyn_D365ChannelsInbound', action: {} }));
    assert.match(String(missing.message), /required parameter 'inboundPayLoad' is missing/);
    const unknownChannel = await rejection(
      api.callAction({
        actionName: 'msdyn_D365ChannelsNotification',
        action: { notificationPayLoad: JSON.stringify({ ...notification, ChannelDefinitionId: IDS.journey }) },
      }),
    );
    assert.equal(unknownChannel.status, 404);
    const otherOrg = await rejection(
      api.callAction({
        actionName: 'msdyn_D365ChannelsNotification',
        action: { notificationPayLoad: JSON.stringify({ ...notification, OrganizationId: IDS.journey }) },
      }),
    );
    assert.equal(otherOrg.status, 400);
    assert.match(
      String(otherOrg.message),
      /'OrganizationId' 11111111-1111-4111-8111-111111111111 is not this organization \(77777777-7777-4777-8777-777777777777\)/,
    );
    assert.equal((await interactions(emulator.url, 'kind=notification'))[0]!.payload!['MessageId'], 'm1');
    assert.deepEqual((await interactions(emulator.url, 'kind=inbound'))[0]!.payload!['Message'], { text: 'STOP' });
  });

  it('refuses every payload field of the wrong type with Dataverse\'s type mismatch, the relay\'s old bodies (a string Message, a "code: message" StatusDetails) included', async () => {
    emulator = await startEmulator({ seed: smallSeed(1) });
    const api = client(emulator.url);
    const notification = {
      ChannelDefinitionId: IDS.channelDefinition,
      RequestId: 'r1',
      MessageId: 'm1',
      From: '+4915100000001',
      OrganizationId: IDS.organization,
      Status: 'NotDelivered',
    };
    const inbound = {
      ChannelDefinitionId: IDS.channelDefinition,
      To: '+4915100000001',
      From: '+49151999',
      OrganizationId: IDS.organization,
      Message: { text: 'hi' },
    };
    const GUID = 'System.Guid';
    const STRING = 'System.String';
    const PARTS = 'System.Collections.Generic.Dictionary`2[System.String,System.String]';
    const DETAILS = 'System.Collections.Generic.Dictionary`2[System.String,System.Object]';
    const cases: Array<[string, 'notification' | 'inbound', Record<string, unknown>, string, string]> = [
      [
        'old writer: StatusDetails "code: message"',
        'notification',
        { StatusDetails: '21610: unsubscribed recipient' },
        'StatusDetails',
        DETAILS,
      ],
      ['StatusDetails null', 'notification', { StatusDetails: null }, 'StatusDetails', DETAILS],
      ['StatusDetails an array', 'notification', { StatusDetails: ['21610'] }, 'StatusDetails', DETAILS],
      ['ChannelDefinitionId not a GUID', 'notification', { ChannelDefinitionId: 'sms' }, 'ChannelDefinitionId', GUID],
      ['RequestId a number', 'notification', { RequestId: 7 }, 'RequestId', STRING],
      ['MessageId an object', 'notification', { MessageId: { sid: 'SM1' } }, 'MessageId', STRING],
      ['From a boolean', 'notification', { From: true }, 'From', STRING],
      ['OrganizationId not a GUID', 'notification', { OrganizationId: 'org-1' }, 'OrganizationId', GUID],
      ['Status a number', 'notification', { Status: 2 }, 'Status', STRING],
      ['old writer: Message a string', 'inbound', { Message: 'STOP' }, 'Message', PARTS],
      ['Message with a non-string part', 'inbound', { Message: { text: 'hi', count: 2 } }, 'Message', PARTS],
      ['Message an array', 'inbound', { Message: ['hi'] }, 'Message', PARTS],
      ['To a number', 'inbound', { To: 4915100000001 }, 'To', STRING],
      ['OrganizationId a number', 'inbound', { OrganizationId: 1 }, 'OrganizationId', GUID],
    ];
    for (const [title, kind, change, field, type] of cases) {
      const [actionName, parameter, base] =
        kind === 'notification'
          ? ['msdyn_D365ChannelsNotification', 'notificationPayLoad', notification]
          : ['msdyn_D365ChannelsInbound', 'inboundPayLoad', inbound];
      const err = await rejection(
        api.callAction({ actionName, action: { [parameter]: JSON.stringify({ ...base, ...change }) } }),
      );
      assert.equal(err.status, 400, title);
      assert.equal(err.code, '0x80048d19', title);
      assert.ok(
        String(err.message).includes(`to the expected type '${type}' for property '${parameter}.${field}'`),
        `${title}: ${String(err.message)}`,
      );
    }
    for (const field of Object.keys(notification)) {
      const err = await rejection(
        api.callAction({
          actionName: 'msdyn_D365ChannelsNotification',
          action: { notificationPayLoad: JSON.stringify({ ...notification, [field]: undefined }) },
        }),
      );
      assert.equal(err.code, '0x80040203', field);
      assert.match(String(err.message), new RegExp(`the payload field '${field}' is required`), field);
    }
    assert.equal(
      (await interactions(emulator.url, 'kind=notification')).length +
        (await interactions(emulator.url, 'kind=inbound')).length,
      0,
      'nothing stored',
    );
  });
});
