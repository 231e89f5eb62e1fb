/** Shared set-up for the Dataverse emulator integration tests: an emulator on port 0 and a real client. */
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { DynamicsWebApi } from 'dynamics-web-api';
import {
  startDataverseEmulator,
  type DataverseEmulator,
  type DataverseEmulatorOptions,
} from '../../../../src/emulators/dataverse/index.js';
import type { SeedDocument } from '../../../../src/emulators/dataverse/index.js';
import { configPath } from '../../../../src/paths.js';
import { waitFor as waitUntil } from '../../../helpers/wait.js';

export const SEED_FILE = configPath('dataverse-seed.json');

export const TILE_XML = `<?xml version="1.0" encoding="utf-8"?>
<LibraryTile>
  <ChannelProperties>
    <EntityType>sample_specialmessage</EntityType>
    <EntitySetName>sample_specialmessages</EntitySetName>
    <ComplianceField>donotphone</ComplianceField>
    <LookupViewId>5f0c2a1e-9b7d-4c3e-8a21-6e4f3d2c1b0a</LookupViewId>
  </ChannelProperties>
  <ResponseTypes>
    <ResponseType id="sent"><Labels><Label locId="1033">Sent</Label></Labels></ResponseType>
    <ResponseType id="delivered"><Labels><Label locId="1033">Delivered</Label></Labels></ResponseType>
    <ResponseType id="keyword" custom="True"><Labels><Label locId="1033">Keyword</Label></Labels></ResponseType>
  </ResponseTypes>
</LibraryTile>`;

export const IDS = {
  journey: '11111111-1111-4111-8111-111111111111',
  iteration: '22222222-2222-4222-8222-222222222222',
  message: '33333333-3333-4333-8333-333333333333',
  channelDefinition: '44444444-4444-4444-8444-444444444444',
  createMessage: '55555555-5555-4555-8555-555555555555',
  activityFilter: '66666666-6666-4666-8666-666666666666',
  organization: '77777777-7777-4777-8777-777777777777',
};

/** A small seed: `contacts` contacts (every `optOutEvery`-th with donotphone), one journey, the tile inline. */
export function smallSeed(contacts: number, optOutEvery = 0): SeedDocument {
  const rows = Array.from({ length: contacts }, (_, i) => ({
    contactid: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
    firstname: `First${i}`,
    lastname: `Last${String(i).padStart(4, '0')}`,
    mobilephone: `+49151${String(1000000 + i)}`,
    donotphone: optOutEvery > 0 && i % optOutEvery === optOutEvery - 1,
  }));
  return {
    organization: { id: IDS.organization },
    tables: [
      {
        logicalName: 'sample_specialmessage',
        entitySetName: 'sample_specialmessages',
        primaryName: 'sample_name',
        columns: { sample_name: 'string:100', sample_text: 'memo' },
      },
    ],
    tiles: [{ xml: TILE_XML }],
    rows: {
      contacts: rows,
      sample_specialmessages: [
        { sample_specialmessageid: IDS.message, sample_name: 'Offer', sample_text: 'Hi {firstname}' },
      ],
      msdyncrm_customerjourneys: [{ msdyncrm_customerjourneyid: IDS.journey, msdyncrm_name: 'Journey' }],
      msdyncrm_customerjourneyiterations: [
        { msdyncrm_customerjourneyiterationid: IDS.iteration, msdyncrm_name: 'Journey - 1' },
      ],
      msdyn_channeldefinitions: [
        { msdyn_channeldefinitionid: IDS.channelDefinition, msdyn_displayname: 'SMS', msdyn_channeltype: 'SMS' },
      ],
      sdkmessages: [{ sdkmessageid: IDS.createMessage, name: 'Create' }],
      sdkmessagefilters: [
        {
          sdkmessagefilterid: IDS.activityFilter,
          primaryobjecttypecode: 'msdyncrm_customerjourneycustomchannelactivity',
          'sdkmessageid@odata.bind': `/sdkmessages(${IDS.createMessage})`,
        },
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

export function contactId(i: number): string {
  return `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;
}

export async function startEmulator(options: DataverseEmulatorOptions = {}): Promise<DataverseEmulator> {
  return startDataverseEmulator({ port: 0, limits: 'off', ...options });
}

export function client(url: string, token: string | null = 'test-user'): DynamicsWebApi {
  return new DynamicsWebApi({ serverUrl: url, dataApi: { version: '9.2' }, onTokenRefresh: async () => token });
}

/** Runs the journey through the emulator-only endpoint. */
export async function runJourney(
  url: string,
  body: unknown,
): Promise<{
  createdAtMs: number;
  created: Array<{ contactId: string; activityId: string; activityRowId: string }>;
  skipped: Array<{ contactId: string; reason: string }>;
}> {
  const res = await fetch(`${url}/_emulator/journeys/${IDS.journey}/run`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`journey run answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as never;
}

/** {@link waitUntil} with a 10 s default: Dataverse posting tests wait on a bus that may be down on purpose. */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  return waitUntil(what, probe, timeoutMs);
}

/** The error a promise rejects with (fails when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return err as Record<string, unknown>;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/**
 * Receives (and deletes) `expected` messages from a queue of a Service Bus emulator, then waits briefly to collect
 * any extra one, so that a test can assert that nothing more than expected arrived. `raw` keeps bodies as bytes.
 */
export async function receiveAll(
  connectionString: string,
  queue: string,
  expected: number,
  options: { raw?: boolean } = {},
): Promise<ServiceBusReceivedMessage[]> {
  const sb = new ServiceBusClient(connectionString);
  const receiver = sb.createReceiver(queue, {
    receiveMode: 'receiveAndDelete',
    skipParsingBodyAsJson: options.raw ?? false,
  });
  const received: ServiceBusReceivedMessage[] = [];
  try {
    await waitFor(
      `${expected} messages on '${queue}'`,
      async () => {
        received.push(...(await receiver.receiveMessages(100, { maxWaitTimeInMs: 200 })));
        return received.length >= expected ? true : undefined;
      },
      20_000,
    );
    received.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })));
  } finally {
    await receiver.close();
    await sb.close();
  }
  return received;
}

/**
 * The readable fields of a Queue (2) service endpoint with SAS authentication on a Service Bus emulator;
 * `messageformat` null leaves the column out (the endpoint then posts .NET Binary XML, Dataverse's default).
 */
export function queueEndpoint(
  busPort: number,
  queue: string,
  messageformat: number | null = 2,
): Record<string, unknown> {
  return {
    contract: 2,
    authtype: 2,
    ...(messageformat === null ? {} : { messageformat }),
    userclaim: 1,
    connectionmode: 1,
    namespaceformat: 2,
    namespaceaddress: `sb://127.0.0.1:${busPort}/`,
    solutionnamespace: 'sbemulatorns',
    path: queue,
    saskeyname: 'RootManageSharedAccessKey',
  };
}

/** The fields of an asynchronous post-operation step bound to a service endpoint, a message and a filter. */
export function asyncPostOperationStep(
  endpointId: string,
  messageId: string,
  filterId: string,
): Record<string, unknown> {
  return {
    mode: 1,
    stage: 40,
    rank: 1,
    supporteddeployment: 0,
    asyncautodelete: true,
    'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
    'sdkmessageid@odata.bind': `/sdkmessages(${messageId})`,
    'sdkmessagefilterid@odata.bind': `/sdkmessagefilters(${filterId})`,
  };
}
