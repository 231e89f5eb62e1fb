import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { packageRoot } from '../../../src/paths.js';
import type { RunningRelay } from '../../../src/relay/index.js';
import { asyncPostOperationStep, client, queueEndpoint } from '../emulators/dataverse/helpers.js';
import { SEED, startSystem, until, type System } from './harness.js';

/**
 * Bad events on `activities`, each produced the way it would really arrive (posted by the Dataverse emulator for a
 * registered step, or sent with @azure/service-bus as Dataverse posts), are dead-lettered by intake with a reason (the
 * code) and a description that says what exactly was wrong; then a journey still goes through: the worker went on.
 */

/** Seed rows the table uses (config/dataverse-seed.json). */
const SEED_ROWS = {
  iteration: 'fb645154-87c0-5217-b496-6167df692641',
  smsMessage: '098645d5-dc8c-5eb5-9937-963919a00a41',
  /** Anna Meyer: a mobile number, donotphone false. */
  contact: '5ff9166a-f31e-5b06-b12f-54a42fca78af',
  /** Create of contact (a filter the seed declares). */
  contactFilter: '2d4a81b0-7b92-5f0f-89db-12fc413951b5',
};
const ACTIVITY_SET = 'msdyncrm_customerjourneycustomchannelactivities';

/** A Create event captured from the emulator (messageformat 2): claims and the RemoteExecutionContext text. */
interface CapturedEvent {
  contentType: string;
  applicationProperties: Record<string, string>;
  bodyText: string;
}
type Json = Record<string, unknown>;
type KeyValue = { key: string; value: unknown };

const captured = JSON.parse(
  readFileSync(path.join(packageRoot(), 'test/unit/dataverse/fixtures/events/activity-create.json'), 'utf8'),
) as CapturedEvent;
const CLAIMS = 'http://schemas.microsoft.com/xrm/2011/Claims/';

/** The captured context, changed by `edit` (a fresh copy each time). */
function capturedContext(edit: (context: Json, target: Json, attributes: KeyValue[]) => void): Json {
  const context = JSON.parse(captured.bodyText) as Json;
  const target = (context['InputParameters'] as KeyValue[]).find((p) => p.key === 'Target')!.value as Json;
  edit(context, target, target['Attributes'] as KeyValue[]);
  return context;
}

function withoutAttribute(name: string): Json {
  return capturedContext((_c, target) => {
    target['Attributes'] = (target['Attributes'] as KeyValue[]).filter((a) => a.key !== name);
  });
}

/** What one row of the table must leave in the dead-letter queue. */
interface Expected {
  /** Fragments the dead-letter description must contain. */
  says: readonly string[];
}

interface BadEvent {
  name: string;
  reason: string;
  /** Produces the event; answers the fragments that depend on ids made on the way. */
  produce(): Promise<Expected>;
}

describe('bad events are dead-lettered with their reasons, and the worker goes on', function () {
  this.timeout(60_000);
  let system: System;
  let relay: RunningRelay;
  let api: DynamicsWebApi;
  let bus: ServiceBusClient;
  let activities: ServiceBusSender;
  let jsonStepId: string;

  before(async () => {
    system = await startSystem();
    relay = system.relay(['intake', 'dispatch', 'recorder']);
    api = client(system.dv.url, 'e2e-admin');
    bus = new ServiceBusClient(system.sb.connectionString);
    activities = bus.createSender('activities');
    // The JSON step the embedded system registered (registerRelay) on Create of the activity table.
    const jsonStep = system.registration.items.find((i) => i.kind === 'step' && i.id !== undefined);
    if (jsonStep?.id === undefined)
      throw new Error(`the harness registered no step (registration: ${JSON.stringify(system.registration.items)})`);
    jsonStepId = jsonStep.id;
  });

  after(async () => {
    await activities?.close();
    await bus?.close();
    await system?.close();
  });

  // ── producing events ──────────────────────────────────────────────────────────────────────────────────────────

  /** Sends a body to `activities` as Dataverse posts one: bytes, a content type, the claims. */
  async function post(
    body: Buffer,
    claims: Record<string, string> = captured.applicationProperties,
    contentType = 'application/json',
  ): Promise<void> {
    await activities.sendMessages({ body, contentType, messageId: randomUUID(), applicationProperties: claims });
  }

  /** Creates a Custom Channel Activity row through the Web API, as the journey engine would; the registered steps post it. */
  async function createActivity(fields: { entityId?: string; contactId?: string | null } = {}): Promise<string> {
    const id = randomUUID();
    await api.create({
      collection: ACTIVITY_SET,
      data: {
        msdyncrm_customerjourneycustomchannelactivityid: id,
        msdyncrm_activityid: id,
        msdyncrm_name: 'Bad events test',
        msdyncrm_entitytype: 'sample_specialmessage',
        msdyncrm_entityid: fields.entityId ?? SEED_ROWS.smsMessage,
        ...(fields.contactId === null
          ? {}
          : { 'msdyncrm_Contact@odata.bind': `/contacts(${fields.contactId ?? SEED_ROWS.contact})` }),
        'msdyncrm_CustomerJourney@odata.bind': `/msdyncrm_customerjourneys(${SEED.journey})`,
        'msdyncrm_CustomerJourneyIteration@odata.bind': `/msdyncrm_customerjourneyiterations(${SEED_ROWS.iteration})`,
      },
    });
    return id;
  }

  async function setStep(stepId: string, enabled: boolean): Promise<void> {
    await api.update({ collection: 'sdkmessageprocessingsteps', key: stepId, data: { statecode: enabled ? 0 : 1 } });
  }

  /**
   * An operator's mistake: a second service endpoint on `activities` with `messageformat` and a step on Create of
   * `filterId`. While only that step is enabled, `create` runs (so the event arrives in that format only); then the
   * step is disabled and the JSON step enabled again (a step change applies to rows created afterwards).
   */
  async function throughEndpoint<T>(
    messageformat: number | null,
    filterId: string,
    create: () => Promise<T>,
  ): Promise<T> {
    const format = messageformat === null ? 'no messageformat' : `messageformat ${messageformat}`;
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: {
        name: `activities, ${format}`,
        ...queueEndpoint(system.sb.port, 'activities', messageformat),
        saskey: 'SAS_KEY_VALUE',
      },
    })) as string;
    const stepId = (await api.create({
      collection: 'sdkmessageprocessingsteps',
      data: { name: `${format} step`, ...asyncPostOperationStep(endpointId, SEED.createMessage, filterId) },
    })) as string;
    const jsonStepOnThisTable = filterId === SEED.activityFilter;
    if (jsonStepOnThisTable) await setStep(jsonStepId, false);
    try {
      return await create();
    } finally {
      await setStep(stepId, false);
      if (jsonStepOnThisTable) await setStep(jsonStepId, true);
    }
  }

  // ── the table ─────────────────────────────────────────────────────────────────────────────────────────────────

  const table: BadEvent[] = [
    {
      name: 'wrong format: Text XML, posted by an endpoint with messageformat 3',
      reason: 'EventUnsupportedFormat',
      produce: async () => {
        await throughEndpoint(3, SEED.activityFilter, () => createActivity());
        return { says: ['Text XML', 'application/xml', 'messageformat 3', 'messageformat 2 (Json)'] };
      },
    },
    {
      name: 'wrong format: .NET Binary XML, posted by an endpoint with messageformat 1',
      reason: 'EventUnsupportedFormat',
      produce: async () => {
        await throughEndpoint(1, SEED.activityFilter, () => createActivity());
        return { says: ['.NET Binary XML', 'application/msbin1', 'messageformat 1', 'messageformat 2 (Json)'] };
      },
    },
    {
      name: "wrong format: .NET Binary XML, Dataverse's default, posted by an endpoint created without messageformat",
      reason: 'EventUnsupportedFormat',
      produce: async () => {
        await throughEndpoint(null, SEED.activityFilter, () => createActivity());
        return {
          says: [
            '.NET Binary XML',
            'application/msbin1',
            'messageformat 2 (Json)',
            '`channel-relay register` does',
            'made without messageformat',
          ],
        };
      },
    },
    {
      name: 'broken JSON (cut off)',
      reason: 'EventUndecodable',
      produce: async () => {
        await post(Buffer.from(captured.bodyText.slice(0, 120), 'utf8'));
        return { says: ['not valid JSON', 'it starts with "{\\"BusinessUnitId\\"'] };
      },
    },
    {
      name: 'an empty body',
      reason: 'EventUndecodable',
      produce: async () => {
        await post(Buffer.alloc(0));
        return { says: ['the body is empty'] };
      },
    },
    {
      name: 'unknown table: a Create of contact (the captured context, table changed)',
      reason: 'EventUnknownTable',
      produce: async () => {
        const context = capturedContext((c, target) => {
          c['PrimaryEntityName'] = 'contact';
          target['LogicalName'] = 'contact';
        });
        await post(Buffer.from(JSON.stringify(context)), {
          ...captured.applicationProperties,
          [`${CLAIMS}EntityLogicalName`]: 'contact',
        });
        return {
          says: [
            "a Create of 'contact'",
            'msdyncrm_customerjourneycustomchannelactivity',
            'registered on the wrong table',
          ],
        };
      },
    },
    {
      name: 'unknown table: a step registered on Create of contact, posted by the emulator',
      reason: 'EventUnknownTable',
      produce: async () => {
        await throughEndpoint(2, SEED_ROWS.contactFilter, () =>
          api.create({
            collection: 'contacts',
            data: { firstname: 'Wrong', lastname: 'Table', mobilephone: '+4915199999999' },
          }),
        );
        return { says: ["a Create of 'contact'", 'registered on the wrong table'] };
      },
    },
    {
      name: 'a Target without msdyncrm_entitytype whose activity row does not exist (read instead)',
      reason: 'ActivityNotFound',
      produce: async () => {
        await post(Buffer.from(JSON.stringify(withoutAttribute('msdyncrm_entitytype'))));
        return {
          says: [
            "the event's Target lacked msdyncrm_entitytype",
            `activity row ${String(capturedContext(() => undefined)['PrimaryEntityId'])}`,
            'does not exist',
          ],
        };
      },
    },
    {
      name: 'an activity created without a contact: the Target lacks it, and so does the row read instead',
      reason: 'EventMissingAttribute',
      produce: async () => {
        const activityId = await createActivity({ contactId: null });
        return {
          says: [
            `activity row ${activityId}`,
            "read because the event's Target lacked msdyncrm_contact",
            "column '_msdyncrm_contact_value' must be a non-empty string",
          ],
        };
      },
    },
    {
      name: 'a Target whose msdyncrm_entitytype is not a string (wrong, not missing: no read)',
      reason: 'EventMissingAttribute',
      produce: async () => {
        const context = capturedContext((_c, _t, attributes) => {
          attributes.find((a) => a.key === 'msdyncrm_entitytype')!.value = {
            __type: 'OptionSetValue:http://schemas.microsoft.com/xrm/2011/Contracts',
            Value: 3,
          };
        });
        await post(Buffer.from(JSON.stringify(context)));
        return { says: ["Target attribute 'msdyncrm_entitytype' must be a non-empty string, found 3"] };
      },
    },
    {
      name: "unknown channel: the message record's sample_channel is 'fax'",
      reason: 'EventUnknownChannel',
      produce: async () => {
        const messageId = (await api.create({
          collection: 'sample_specialmessages',
          data: { sample_name: 'Fax offer', sample_channel: 'fax', sample_text: 'Hi {firstname}' },
        })) as string;
        const activityId = await createActivity({ entityId: messageId });
        return {
          says: [
            `sample_specialmessages(${messageId})`,
            activityId,
            'sample_channel = "fax"',
            'sms, sms2, telegram, contract',
          ],
        };
      },
    },
    {
      name: 'a message record that does not exist',
      reason: 'MessageRecordNotFound',
      produce: async () => {
        const messageId = randomUUID();
        const activityId = await createActivity({ entityId: messageId });
        return { says: [`sample_specialmessages(${messageId}) does not exist`, activityId] };
      },
    },
    {
      name: 'a contact whose address column is empty',
      reason: 'RecipientAddressMissing',
      produce: async () => {
        const contactId = (await api.create({
          collection: 'contacts',
          data: { firstname: 'No', lastname: 'Phone' },
        })) as string;
        const activityId = await createActivity({ contactId });
        return { says: [`contact ${contactId}`, activityId, 'has no mobilephone', 'channel sms'] };
      },
    },
  ];

  /** Dead letters seen so far (in the order they were dead-lettered). */
  let seen = 0;

  for (const row of table) {
    it(`${row.name} → ${row.reason}`, async () => {
      const { says } = await row.produce();
      const all = await until(
        `a dead letter for: ${row.name}`,
        async () => {
          const dead = await system.deadLetters('activities');
          return dead.length > seen ? dead : undefined;
        },
        15_000,
      );
      const fresh = all.slice(seen);
      seen = all.length;
      assert.equal(
        fresh.length,
        1,
        `one dead letter, found: ${JSON.stringify(fresh.map((d) => [d.reason, d.description]))}`,
      );
      const [dead] = fresh;
      assert.equal(dead?.reason, row.reason, `reason (description: ${dead?.description})`);
      for (const fragment of says)
        assert.ok(
          dead?.description?.includes(fragment),
          `the description says ${JSON.stringify(fragment)}: ${dead?.description}`,
        );
    });
  }

  it('the worker goes on: a journey after the bad events, with more of them mixed in, is sent in full; only the bad events are dead letters', async () => {
    // Bad events posted around the journey's activities, so that they share intake's batches with good ones.
    const mixed = [
      { reason: 'EventUndecodable', says: 'not valid JSON' },
      { reason: 'ActivityNotFound', says: "the event's Target lacked msdyncrm_activityid and activity row" },
      {
        reason: 'EventUnknownTable',
        says: "the message 'Update' on 'msdyncrm_customerjourneycustomchannelactivity' is not one the relay handles",
      },
    ];
    await post(Buffer.from('{"MessageName":', 'utf8'));
    await post(Buffer.from(JSON.stringify(withoutAttribute('msdyncrm_activityid'))));
    const [run] = await Promise.all([
      system.runJourney(SEED.journey, 20),
      post(Buffer.from(JSON.stringify(capturedContext((c) => (c['MessageName'] = 'Update'))))),
    ]);
    const expected = new Set(run.created.map((c) => c.activityRowId));
    assert.ok(expected.size > 10, `the journey created activities (${expected.size})`);
    const interactions = await until(
      `${expected.size} sent interactions`,
      async () => {
        const all = await system.interactions();
        return all.filter((i) => i.responseType === 'sent').length >= expected.size ? all : undefined;
      },
      30_000,
    );
    const keys = system.messages().map((m) => m.idempotencyKey);
    assert.equal(new Set(keys).size, keys.length, 'no activity was sent twice');
    assert.deepEqual(new Set(keys), expected, 'one simulator message per journey activity, none for a bad event');
    assert.deepEqual(
      new Set(interactions.filter((i) => i.responseType === 'sent').map((i) => i.activityRowId)),
      expected,
      'one sent interaction per message',
    );
    assert.equal(interactions.length, expected.size, 'no other interaction');

    const all = [...table.map((r) => r.reason), ...mixed.map((m) => m.reason)];
    const dead = await until(
      `${all.length} dead letters on activities`,
      async () => {
        const peeked = await system.deadLetters('activities');
        return peeked.length >= all.length ? peeked : undefined;
      },
      15_000,
    );
    assert.deepEqual(
      dead.slice(0, table.length).map((d) => d.reason),
      table.map((r) => r.reason),
      "the table's bad events, in order",
    );
    const tail = dead.slice(table.length);
    assert.equal(
      tail.length,
      mixed.length,
      `the mixed-in bad events and nothing else: ${JSON.stringify(tail.map((d) => [d.reason, d.description]))}`,
    );
    assert.deepEqual(
      tail.map((d) => d.reason).sort(),
      mixed.map((m) => m.reason).sort(),
      'each mixed-in bad event once',
    );
    for (const m of mixed) {
      assert.ok(
        tail.some((d) => d.reason === m.reason && d.description?.includes(m.says)),
        `a ${m.reason} dead letter saying ${JSON.stringify(m.says)}: ${JSON.stringify(tail.map((d) => [d.reason, d.description]))}`,
      );
    }
    assert.deepEqual(await system.deadLetters('outbound'), [], 'nothing dead-lettered on outbound');
    assert.deepEqual(await system.deadLetters('interactions'), [], 'nothing dead-lettered on interactions');

    const intake = relay.stats().intake;
    const reasons: Record<string, number> = {};
    for (const r of all) reasons[r] = (reasons[r] ?? 0) + 1;
    assert.deepEqual(intake?.deadLetterReasons, reasons, "intake's dead-letter counts match the bad events");
    assert.equal(intake?.deadLettered, all.length);
    assert.equal(intake?.sent, expected.size, 'intake sent every journey activity');
    assert.equal(intake?.abandoned, 0, 'intake abandoned nothing');
  });
});
