/**
 * Real-time journeys outbound: the emulator calls the channel definition's outbound Custom API once per recipient
 * and posts each call to the Service Bus step registered on that API's message (sample seed: `/sample_RealtimeSmsOutboundApi`).
 */
import assert from 'node:assert/strict';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { startServiceBusEmulator } from '../../../../src/emulators/servicebus/index.js';
import { client, rejection, SEED_FILE, startEmulator, waitFor } from './helpers.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';

const CLAIMS = 'http://schemas.microsoft.com/xrm/2011/Claims';
const SMS_DEFINITION = '877d122c-16f8-5806-b029-4a7a103cb3d6';
const JOURNEY = 'a7bf09dd-7b81-51ce-9fac-9dcbbb837cae';

async function send(
  url: string,
  definition: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/_emulator/realtime/${definition}/send`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function bodyOf(message: ServiceBusReceivedMessage): Record<string, unknown> {
  const raw: unknown = message.body;
  return (Buffer.isBuffer(raw) || typeof raw === 'string' ? JSON.parse(raw.toString()) : raw) as Record<
    string,
    unknown
  >;
}

describe('Dataverse emulator: real-time journeys outbound Custom API posted to Service Bus', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('posts one context per recipient with the payload (ChannelDefinitionId, RequestId, From, To, Message) to the step on the API message', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: SEED_FILE }));
    const api = client(emulator.url, 'relay-admin');
    const messageId = (
      await api.retrieveMultiple({
        collection: 'sdkmessages',
        select: ['sdkmessageid'],
        filter: "name eq 'sample_RealtimeSmsOutboundApi'",
      })
    ).value[0]!.sdkmessageid as string;
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: {
        name: 'outbound',
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
        name: 'outbound SMS',
        mode: 1,
        stage: 40,
        'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
        'sdkmessageid@odata.bind': `/sdkmessages(${messageId})`,
      },
    });

    const sent = await send(emulator.url, SMS_DEFINITION, {
      to: ['+4915112345678', '+4915187654321'],
      message: { text: 'Hello' },
      journeyId: JOURNEY,
    });
    assert.equal(sent.status, 200, JSON.stringify(sent.json));
    assert.equal(sent.json['customApi'], 'sample_RealtimeSmsOutboundApi');
    assert.equal(sent.json['posted'], 2);
    const requests = sent.json['requests'] as Array<{ RequestId: string; To: string }>;
    await emulator.postingIdle();

    const sb = new ServiceBusClient(bus.connectionString);
    const receiver = sb.createReceiver('activities', { receiveMode: 'receiveAndDelete' });
    const received: ServiceBusReceivedMessage[] = [];
    try {
      await waitFor('2 messages', async () => {
        received.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 200 })));
        return received.length >= 2 ? true : undefined;
      });
    } finally {
      await receiver.close();
      await sb.close();
    }
    const [first] = received;
    assert.equal(first!.applicationProperties?.[`${CLAIMS}/RequestName`], 'sample_RealtimeSmsOutboundApi');
    assert.equal(first!.applicationProperties?.[`${CLAIMS}/EntityLogicalName`], 'none');
    const context = bodyOf(first!);
    assert.deepEqual(
      [context['MessageName'], context['PrimaryEntityName'], context['Stage'], context['Mode']],
      ['sample_RealtimeSmsOutboundApi', 'none', 40, 1],
    );
    const inputs = context['InputParameters'] as Array<{ key: string; value: string }>;
    assert.equal(inputs[0]!.key, 'payload');
    const payloads = received.map(
      (m) =>
        JSON.parse((bodyOf(m)['InputParameters'] as Array<{ value: string }>)[0]!.value) as Record<string, unknown>,
    );
    assert.deepEqual(
      payloads.map((p) => [p['ChannelDefinitionId'], p['RequestId'], p['From'], p['To'], p['Message']]),
      requests.map((r) => [SMS_DEFINITION, r.RequestId, '+4915100000001', r.To, { text: 'Hello' }]),
    );
    assert.deepEqual(payloads[0]!['MarketingAppContext'], {
      CustomerJourneyId: JOURNEY,
      UserId: (payloads[0]!['MarketingAppContext'] as { UserId: string }).UserId,
      UserEntityType: 'contact',
      IsTestSend: false,
    });
  });

  it('refuses what the channel definition does not allow, and posts nothing without a registered step', async () => {
    const emulator = track(await startEmulator({ seed: SEED_FILE }));
    const cases: Array<[string, unknown, number, RegExp]> = [
      [
        SMS_DEFINITION,
        { to: ['+491'], message: { body: 'x' } },
        400,
        /part 'body' the channel definition does not declare \(parts: text\)/,
      ],
      [SMS_DEFINITION, { to: ['+491'], message: {} }, 400, /message part 'text' is required/],
      [SMS_DEFINITION, { to: ['+491'], message: { text: 'x'.repeat(1601) } }, 400, /over its msdyn_maxlength 1600/],
      [SMS_DEFINITION, { to: [], message: { text: 'x' } }, 400, /'to' must be a non-empty array/],
      [
        '00000000-0000-4000-8000-000000000999',
        { to: ['+491'], message: { text: 'x' } },
        404,
        /msdyn_channeldefinition With Id/,
      ],
    ];
    for (const [definition, body, status, message] of cases) {
      const res = await send(emulator.url, definition, body);
      assert.equal(res.status, status, JSON.stringify(res.json));
      assert.match(JSON.stringify(res.json), message);
    }
    const ok = await send(emulator.url, SMS_DEFINITION, {
      to: ['+491'],
      message: { text: 'x' },
      from: 'custom-sender',
    });
    assert.deepEqual([ok.status, ok.json['posted']], [200, 0]);
  });

  it("counts every outbound call as one without a 'response' (no plug-in sets it) and shows it under problems in /_emulator/stats", async () => {
    const emulator = track(await startEmulator({ seed: SEED_FILE }));
    const stats = async (): Promise<Record<string, unknown>> =>
      (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as Record<string, unknown>;
    const before = await stats();
    assert.deepEqual(
      [before['realtime'], before['problems']],
      [{ outboundCalls: 0, responsesMissing: 0, byCustomApi: {} }, []],
    );
    const sent = await send(emulator.url, SMS_DEFINITION, { to: ['+491', '+492', '+493'], message: { text: 'x' } });
    assert.equal(sent.json['responsesMissing'], 3);
    const after = await stats();
    assert.deepEqual(after['realtime'], {
      outboundCalls: 3,
      responsesMissing: 3,
      byCustomApi: { sample_RealtimeSmsOutboundApi: { calls: 3, responsesMissing: 3 } },
    });
    const problems = after['problems'] as string[];
    assert.equal(problems.length, 1);
    assert.match(
      problems[0]!,
      /^3 real-time outbound call\(s\) to the Custom API sample_RealtimeSmsOutboundApi returned no 'response'/,
    );
  });

  it('customapi: allowedcustomprocessingsteptype 0 takes no step, 1 only asynchronous ones, and cannot be changed; creating the API creates its sdkmessage', async () => {
    const bus = track(await startServiceBusEmulator({ port: 0 }));
    const emulator = track(await startEmulator({ seed: SEED_FILE }));
    const api = client(emulator.url, 'relay-admin');
    const endpointId = (await api.create({
      collection: 'serviceendpoints',
      data: {
        name: 'outbound',
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
    const customApi = async (uniquename: string, stepType?: number): Promise<{ id: string; messageId: string }> => {
      const id = (await api.create({
        collection: 'customapis',
        data: {
          uniquename,
          name: uniquename,
          ...(stepType === undefined ? {} : { allowedcustomprocessingsteptype: stepType }),
        },
      })) as string;
      const row = (await api.retrieve({
        collection: 'customapis',
        key: id,
        select: ['allowedcustomprocessingsteptype', '_sdkmessageid_value'],
      })) as Record<string, unknown>;
      const message = (
        await api.retrieveMultiple({
          collection: 'sdkmessages',
          select: ['sdkmessageid'],
          filter: `name eq '${uniquename}'`,
        })
      ).value;
      assert.equal(message.length, 1, `one sdkmessage named ${uniquename}`);
      assert.equal(row['_sdkmessageid_value'], message[0]!['sdkmessageid']);
      assert.equal(row['allowedcustomprocessingsteptype'], stepType ?? 0, 'None unless set');
      return { id, messageId: row['_sdkmessageid_value'] as string };
    };
    const step = (messageId: string, mode: number) =>
      api.create({
        collection: 'sdkmessageprocessingsteps',
        data: {
          name: 'relay',
          mode,
          stage: 40,
          'eventhandler_serviceendpoint@odata.bind': `/serviceendpoints(${endpointId})`,
          'sdkmessageid@odata.bind': `/sdkmessages(${messageId})`,
        },
      });

    const none = await customApi('test_NoStepsApi');
    const refused = await rejection(step(none.messageId, 1));
    assert.equal(refused.status, 400);
    assert.match(
      String(refused.message),
      /Custom processing steps are not allowed for the custom API 'test_NoStepsApi': its allowedcustomprocessingsteptype is 0 \(None\), which cannot be changed/,
    );
    const changed = await rejection(
      api.update({ collection: 'customapis', key: none.id, data: { allowedcustomprocessingsteptype: 1 } }),
    );
    assert.match(
      String(changed.message),
      /'allowedcustomprocessingsteptype' cannot be changed after the custom API is created/,
    );

    const asyncOnly = await customApi('test_AsyncOnlyApi', 1);
    assert.match(
      String((await rejection(step(asyncOnly.messageId, 0))).message),
      /Only asynchronous steps \(mode 1\) are allowed for the custom API 'test_AsyncOnlyApi'/,
    );
    assert.equal(typeof (await step(asyncOnly.messageId, 1)), 'string');
    assert.equal(typeof (await step((await customApi('test_AnyStepApi', 2)).messageId, 1)), 'string');
  });
});
