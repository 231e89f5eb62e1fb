/**
 * The three `serviceendpoint.messageformat`s end to end: one Create step per format on the same table, each to its
 * own queue of the project's Service Bus emulator, received with the real @azure/service-bus SDK. JSON (2) as
 * `application/json`, Text XML (3) as `application/xml`, .NET Binary XML (1) as `application/msbin1`; the binary
 * body decodes (test decoder) to the same infoset as the XML one.
 */
import assert from 'node:assert/strict';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { XMLParser } from 'fast-xml-parser';
import { writeXml } from '../../../../src/emulators/dataverse/xml-infoset.js';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import { decodeNbfx } from '../../../unit/emulators/dataverse/nbfx-decoder.js';
import {
  asyncPostOperationStep,
  client,
  IDS,
  queueEndpoint,
  receiveAll,
  rejection,
  runJourney,
  smallSeed,
  startEmulator,
} from './helpers.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

const CLAIMS = 'http://schemas.microsoft.com/xrm/2011/Claims';
const ACTIVITY_TABLE = 'msdyncrm_customerjourneycustomchannelactivity';
const QUEUES = { 1: 'dv-binary', 2: 'dv-json', 3: 'dv-xml' } as const;

async function createEndpoint(
  api: DynamicsWebApi,
  busPort: number,
  queue: string,
  messageformat: number,
): Promise<string> {
  return (await api.create({
    collection: 'serviceendpoints',
    data: {
      name: `activities (${messageformat})`,
      ...queueEndpoint(busPort, queue, messageformat),
      saskey: 'SAS_KEY_VALUE',
    },
  })) as string;
}

/** An async post-operation Create step on the activity table for `endpointId`. */
async function createStep(api: DynamicsWebApi, endpointId: string, name: string): Promise<void> {
  await api.create({
    collection: 'sdkmessageprocessingsteps',
    data: { name, ...asyncPostOperationStep(endpointId, IDS.createMessage, IDS.activityFilter) },
  });
}

/** Receives `expected` messages with the body as the raw bytes of the AMQP data section (no JSON parsing). */

type Node = Record<string, unknown>;
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) => name === 'KeyValuePairOfstringanyType',
});

function parseContext(xml: string): Node {
  return (parser.parse(xml) as Node)['RemoteExecutionContext'] as Node;
}

function pairsOf(collection: unknown): Record<string, Node | string> {
  return Object.fromEntries(
    ((collection as Node)['KeyValuePairOfstringanyType'] as Node[]).map((p) => [
      String(p['a:key']),
      p['a:value'] as Node | string,
    ]),
  );
}

/** What differs between two posts of the same Create to two steps: the async operation's ids and the step. */
function withoutPostIds(context: Node): Node {
  const out: Node = { ...context, CorrelationId: '-', OperationId: '-', RequestId: '-', OwningExtension: '-' };
  if (typeof context['ParentContext'] === 'object' && context['ParentContext'] !== null)
    out['ParentContext'] = withoutPostIds(context['ParentContext'] as Node);
  return out;
}

function bytesOf(message: ServiceBusReceivedMessage): Buffer {
  assert.ok(Buffer.isBuffer(message.body), `the body is a Buffer (got ${typeof message.body})`);
  return message.body as Buffer;
}

describe('Dataverse emulator: posting in each serviceendpoint messageformat (1 .NET Binary XML, 2 Json, 3 Text XML)', function () {
  this.timeout(40_000);
  const track = closedAfterEach();

  it('posts every Create once per format, each with its content type, the same claims and the same data', async () => {
    const bus = track(
      await startServiceBusEmulator({
        port: 0,
        config: {
          UserConfig: {
            Namespaces: [
              {
                Name: 'sbemulatorns',
                Queues: Object.values(QUEUES).map((Name) => ({ Name, Properties: {} })),
                Topics: [],
              },
            ],
            Logging: { Type: 'File' },
          },
        },
      }),
    );
    const emulator = track(await startEmulator({ seed: smallSeed(6, 3) }));
    const api = client(emulator.url, 'relay-admin');
    for (const format of [2, 3, 1] as const)
      await createStep(api, await createEndpoint(api, bus.port, QUEUES[format], format), `CCA Create → SB (${format})`);
    const run = await runJourney(emulator.url, { count: 6 });
    assert.equal(run.created.length, 4);
    await emulator.postingIdle();
    const [binary, json, xml] = await Promise.all(
      [1, 2, 3].map((f) => receiveAll(bus.connectionString, QUEUES[f as 1 | 2 | 3], run.created.length, { raw: true })),
    );
    for (const list of [binary!, json!, xml!]) assert.equal(list.length, run.created.length);

    for (const [i, created] of run.created.entries()) {
      const [b, j, x] = [binary![i]!, json![i]!, xml![i]!];
      assert.equal(j.contentType, 'application/json');
      assert.equal(x.contentType, 'application/xml');
      assert.equal(b.contentType, 'application/msbin1');
      // The claims do not depend on the format.
      assert.deepEqual(x.applicationProperties, j.applicationProperties);
      assert.deepEqual(b.applicationProperties, j.applicationProperties);
      assert.equal(j.applicationProperties?.[`${CLAIMS}/EntityLogicalName`], ACTIVITY_TABLE);
      assert.equal(j.applicationProperties?.[`${CLAIMS}/RequestName`], 'Create');

      const fromJson = JSON.parse(bytesOf(j).toString('utf8')) as Node;
      assert.equal(fromJson['PrimaryEntityId'], created.activityRowId);

      // Text XML: UTF-8 without BOM, no declaration, parses, carries the activity and Target's attributes.
      const xmlText = bytesOf(x).toString('utf8');
      assert.ok(
        xmlText.startsWith('<RemoteExecutionContext xmlns="http://schemas.microsoft.com/xrm/2011/Contracts"'),
        xmlText.slice(0, 80),
      );
      const context = parseContext(xmlText);
      assert.equal(context['PrimaryEntityId'], created.activityRowId, 'in creation order');
      assert.equal(context['MessageName'], 'Create');
      assert.equal(context['PrimaryEntityName'], ACTIVITY_TABLE);
      assert.equal(
        context['OperationCreatedOn'],
        new Date(Number(/\d+/.exec(String(fromJson['OperationCreatedOn']))![0])).toISOString().replace(/\.?0+Z$/, 'Z'),
      );
      const target = pairsOf(context['InputParameters'])['Target'] as Node;
      assert.equal(target['@i:type'], 'Entity');
      const attrs = pairsOf(target['Attributes']);
      assert.deepEqual(
        [(attrs['msdyncrm_activityid'] as Node)['@i:type'], (attrs['msdyncrm_activityid'] as Node)['#text']],
        ['c:string', created.activityId],
      );
      assert.equal((attrs['msdyncrm_entitytype'] as Node)['#text'], 'sample_specialmessage');
      assert.equal((attrs['msdyncrm_entityid'] as Node)['#text'], IDS.message);
      const contact = attrs['msdyncrm_contact'] as Node;
      assert.deepEqual(
        [contact['@i:type'], contact['LogicalName'], contact['Id']],
        ['EntityReference', 'contact', created.contactId],
      );
      assert.equal((attrs['msdyncrm_customerjourney'] as Node)['Id'], IDS.journey);
      assert.equal((attrs['msdyncrm_customerjourneyiteration'] as Node)['Id'], IDS.iteration);
      assert.equal(context['OperationId'], x.messageId);

      // .NET Binary XML: decodes to the same infoset as the XML post of the same Create (but for the post's ids).
      const decoded = writeXml(decodeNbfx(bytesOf(b)));
      const fromBinary = parseContext(decoded);
      assert.equal(fromBinary['OperationId'], b.messageId);
      assert.deepEqual(withoutPostIds(fromBinary), withoutPostIds(context));
      assert.notEqual(decoded, xmlText, 'each post has its own operation');
    }
  });

  it("an endpoint created without messageformat posts .NET Binary XML, Dataverse's default", async () => {
    const bus = track(
      await startServiceBusEmulator({
        port: 0,
        config: {
          UserConfig: {
            Namespaces: [{ Name: 'sbemulatorns', Queues: [{ Name: 'dv-default', Properties: {} }], Topics: [] }],
            Logging: { Type: 'File' },
          },
        },
      }),
    );
    const emulator = track(await startEmulator({ seed: smallSeed(2) }));
    const api = client(emulator.url, 'relay-admin');
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: { name: 'no format', ...queueEndpoint(bus.port, 'dv-default', null), saskey: 'SAS_KEY_VALUE' },
    })) as string;
    const row = await api.retrieve({ collection: 'serviceendpoints', key: endpointId, select: ['messageformat'] });
    assert.equal(row['messageformat'], null);
    await createStep(api, endpointId, 'CCA Create → SB (no format)');
    const run = await runJourney(emulator.url, { count: 2 });
    await emulator.postingIdle();
    const [message] = await receiveAll(bus.connectionString, 'dv-default', run.created.length, { raw: true });
    assert.equal(message?.contentType, 'application/msbin1');
    const fromBinary = parseContext(writeXml(decodeNbfx(bytesOf(message!))));
    assert.equal(fromBinary['PrimaryEntityId'], run.created[0]?.activityRowId);
  });

  it('refuses a messageformat that is not 1, 2 or 3, and accepts a change of format on an endpoint', async () => {
    const emulator = track(await startEmulator({ seed: smallSeed(1) }));
    const api = client(emulator.url, 'relay-admin');
    const err = await rejection(createEndpoint(api, 1, 'q', 4));
    assert.equal(err['status'], 400);
    assert.match(
      String(err['message']),
      /messageformat 4 is not a valid value: use 1 \(\.NET Binary XML\), 2 \(Json\) or 3 \(Text XML\)/,
    );
    const id = await createEndpoint(api, 1, 'q', 3);
    await api.update({ collection: 'serviceendpoints', key: id, data: { messageformat: 1 } });
    const row = await api.retrieve({ collection: 'serviceendpoints', key: id, select: ['messageformat'] });
    assert.equal(row['messageformat'], 1);
  });
});
