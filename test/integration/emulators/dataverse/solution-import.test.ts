/**
 * A solution imported into the Dataverse emulator is usable: the outbound-marketing one's table and tile take a
 * journey run's activities and CreateInteraction with the tile's response types; the real-time one's outbound
 * Custom API takes a Service Bus step and serves a real-time send.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import type { DataverseEmulator, SeedDocument } from '../../../../src/emulators/dataverse/index.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import { IDS, queueEndpoint, startEmulator, waitFor } from './helpers.js';
import {
  importBody,
  outboundMarketingZip,
  REALTIME,
  realtimeZip,
  TILE_NAME,
  webApiCaller,
} from '../../../unit/emulators/dataverse/solution-fixtures.js';

const call = webApiCaller('journey-admin');

/** Imports through ImportSolutionAsync and waits for its async operation to succeed. */
async function importAsync(emulator: DataverseEmulator, zip: Uint8Array): Promise<void> {
  const answer = await call(emulator, 'POST', 'ImportSolutionAsync', importBody(zip));
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  const op = await waitFor('the import to complete', async () => {
    const r = await call(emulator, 'GET', `asyncoperations(${String(answer.json['AsyncOperationId'])})`);
    return r.json['statecode'] === 3 ? r.json : undefined;
  });
  assert.equal(op['statuscode'], 30, String(op['message']));
}

/** Contacts, a journey and its iteration, and a journey declared on the table the solution brings. */
function seed(): SeedDocument {
  return {
    organization: { id: IDS.organization },
    rows: {
      contacts: [0, 1, 2].map((i) => ({
        contactid: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
        firstname: `First${i}`,
        mobilephone: `+4915100000${i}`,
        donotphone: i === 2,
      })),
      msdyncrm_customerjourneys: [{ msdyncrm_customerjourneyid: IDS.journey, msdyncrm_name: 'Journey' }],
      msdyncrm_customerjourneyiterations: [
        { msdyncrm_customerjourneyiterationid: IDS.iteration, msdyncrm_name: 'Journey - 1' },
      ],
    },
    journeys: [
      {
        journeyId: IDS.journey,
        iterationId: IDS.iteration,
        entityType: 'sample_specialmessage',
        entityId: IDS.message,
      },
    ],
  };
}

describe('Dataverse emulator: an imported solution is usable by a journey', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('outbound marketing: the imported table and tile take a journey run and CreateInteraction with the tile response types', async () => {
    const emulator = track(await startEmulator({ seed: seed(), importDurationMs: 100 }));
    const run = (): Promise<{ status: number; json: Record<string, unknown> }> =>
      call(emulator, 'POST', `/_emulator/journeys/${IDS.journey}/run`, { count: 3 });
    const before = await run();
    assert.equal(before.status, 400);
    assert.match(
      JSON.stringify(before.json),
      /has no tile in the organization \(import the channel's solution first\)/,
    );

    await importAsync(emulator, outboundMarketingZip());
    const message = await call(emulator, 'POST', 'sample_specialmessages', {
      sample_specialmessageid: IDS.message,
      sample_name: 'Offer',
      sample_text: 'Hello {firstname}',
    });
    assert.equal(message.status, 204, JSON.stringify(message.json));
    const ran = await run();
    assert.equal(ran.status, 200, JSON.stringify(ran.json));
    const created = ran.json['created'] as Array<{ contactId: string; activityId: string }>;
    assert.equal(created.length, 2, 'the third contact has donotphone (the tile ComplianceField)');
    assert.deepEqual(
      (ran.json['skipped'] as Array<{ reason: string }>).map((s) => s.reason),
      ['donotphone is true'],
    );

    const interact = (
      i: number,
      responseType: string,
      keyword?: string,
    ): Promise<{ status: number; json: Record<string, unknown> }> =>
      call(emulator, 'POST', 'msdyncrm_CustomChannelActivityCreateInteraction', {
        ActivityId: created[i]!.activityId,
        EntityType: 'sample_specialmessage',
        EntityId: IDS.message,
        ResponseType: responseType,
        Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: created[i]!.contactId },
        CustomerJourney: { msdyncrm_customerjourneyid: IDS.journey },
        CustomerJourneyIteration: { msdyncrm_customerjourneyiterationid: IDS.iteration },
        ...(keyword === undefined ? {} : { TriggerKeyword: keyword }),
      });
    assert.equal((await interact(0, 'sent')).status, 204);
    assert.equal((await interact(0, 'opened')).status, 204);
    assert.equal((await interact(1, 'keyword', 'STOP')).status, 204);
    const unknown = await interact(1, 'clicked');
    assert.equal(unknown.status, 400);
    assert.match(
      JSON.stringify(unknown.json),
      /response type 'clicked' is not defined by the tile .*sent, delivered, failed, opened, keyword/,
    );
    const noKeyword = await interact(1, 'keyword');
    assert.match(JSON.stringify(noKeyword.json), /'TriggerKeyword' is required for the response type 'keyword'/);
    const stored = (await (await fetch(`${emulator.url}/_emulator/interactions?kind=interaction`)).json()) as {
      value: Array<{ responseType: string; contactId: string }>;
    };
    assert.deepEqual(
      stored.value.map((i) => [i.responseType, i.contactId]),
      [
        ['sent', created[0]!.contactId],
        ['opened', created[0]!.contactId],
        ['keyword', created[1]!.contactId],
      ],
    );
  });

  it('real time: the imported outbound Custom API takes an async Service Bus step and serves a real-time send', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: seed(), importDurationMs: 100 }));
    await importAsync(emulator, realtimeZip());

    const message = await call(
      emulator,
      'GET',
      `sdkmessages?$select=sdkmessageid&$filter=name eq '${REALTIME.outboundApi}'`,
    );
    const messageId = (message.json['value'] as Array<{ sdkmessageid: string }>)[0]!.sdkmessageid;
    const endpointId = randomUUID();
    const endpoint = await call(emulator, 'POST', 'serviceendpoints', {
      serviceendpointid: endpointId,
      name: 'outbound',
      ...queueEndpoint(bus.port, 'activities'),
      saskey: 'key',
    });
    assert.equal(endpoint.status, 204, JSON.stringify(endpoint.json));
    const step = (mode: number): Promise<{ status: number; json: Record<string, unknown> }> =>
      call(emulator, 'POST', 'sdkmessageprocessingsteps', {
        name: `outbound ${mode}`,
        mode,
        stage: 40,
        'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
        'sdkmessageid@odata.bind': `/sdkmessages(${messageId})`,
      });
    const sync = await step(0);
    assert.equal(
      sync.status,
      400,
      'the imported API allows asynchronous steps only (allowedcustomprocessingsteptype 1)',
    );
    assert.equal((await step(1)).status, 204);

    const sent = await call(emulator, 'POST', `/_emulator/realtime/${REALTIME.definition}/send`, {
      to: ['+4915112345678'],
      from: '+4915100000009',
      message: { text: 'Hello' },
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.json));
    assert.equal(sent.json['customApi'], REALTIME.outboundApi);
    assert.equal(sent.json['posted'], 1);
    const refused = await call(emulator, 'POST', `/_emulator/realtime/${REALTIME.definition}/send`, {
      to: ['+491'],
      from: '+4915100000009',
      message: { title: 'x' },
    });
    assert.match(JSON.stringify(refused.json), /part 'title' the channel definition does not declare \(parts: text\)/);

    await emulator.postingIdle();
    const sb = new ServiceBusClient(bus.connectionString);
    const receiver = sb.createReceiver('activities', { receiveMode: 'receiveAndDelete' });
    const received: ServiceBusReceivedMessage[] = [];
    try {
      await waitFor('the outbound call on Service Bus', async () => {
        received.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 200 })));
        return received.length >= 1 ? true : undefined;
      });
    } finally {
      await receiver.close();
      await sb.close();
    }
    const raw: unknown = received[0]!.body;
    const context = (Buffer.isBuffer(raw) || typeof raw === 'string' ? JSON.parse(raw.toString()) : raw) as {
      MessageName: string;
      InputParameters: Array<{ key: string; value: string }>;
    };
    assert.equal(context.MessageName, REALTIME.outboundApi);
    const payload = JSON.parse(context.InputParameters[0]!.value) as Record<string, unknown>;
    assert.deepEqual(
      [payload['ChannelDefinitionId'], payload['To'], payload['Message']],
      [REALTIME.definition, '+4915112345678', { text: 'Hello' }],
    );
  });

  it('a seed imports its solutions at start: its rows and journeys use the tables and tiles they bring', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'seed-solutions-'));
    writeFileSync(path.join(dir, 'special.zip'), outboundMarketingZip());
    const document = seed();
    const file = path.join(dir, 'seed.json');
    writeFileSync(
      file,
      JSON.stringify({
        ...document,
        solutions: ['special.zip'],
        rows: {
          ...document.rows,
          sample_specialmessages: [{ sample_specialmessageid: IDS.message, sample_name: 'Offer', sample_text: 'Hi' }],
        },
      }),
    );
    const emulator = track(await startEmulator({ seed: file }));
    const ran = await call(emulator, 'POST', `/_emulator/journeys/${IDS.journey}/run`, { count: 3 });
    assert.equal(ran.status, 200, JSON.stringify(ran.json));
    assert.equal((ran.json['created'] as unknown[]).length, 2);

    writeFileSync(
      path.join(dir, 'broken.zip'),
      outboundMarketingZip({
        files: (f) => {
          f[`WebResources/${TILE_NAME}`] = f[`WebResources/${TILE_NAME}`]!.replace(
            '<EntitySetName>sample_specialmessages<',
            '<EntitySetName>sample_other<',
          );
        },
      }),
    );
    writeFileSync(file, JSON.stringify({ ...document, solutions: ['broken.zip'] }));
    await assert.rejects(
      startEmulator({ seed: file }),
      /seed\.json: solutions\[0\]: broken\.zip: WebResources\/sample_SpecialTileCustomerJourneyDesignerTileConfig\.xml: <ChannelProperties>\/<EntitySetName>: 'sample_other' is not the entity set of 'sample_specialmessage'/,
    );
  });
});
