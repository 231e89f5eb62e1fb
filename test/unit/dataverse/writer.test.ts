/** InteractionMessage → action body (pure, table), and the writer's batching and per-item results on a stub client. */
import assert from 'node:assert/strict';
import type { DynamicsWebApi } from 'dynamics-web-api';
import {
  createGovernor,
  createInteractionWriter,
  interactionRequest,
  type InteractionRequest,
} from '../../../src/dataverse/index.js';
import type { InteractionMessage, MarketingContext, RealtimeContext } from '../../../src/pipeline/messages.js';
import { fixture, rebuildError } from './fixtures.js';

const marketing: MarketingContext = {
  kind: 'marketing',
  activityId: 'act-1',
  activityRowId: 'row-1',
  contactId: 'c-1',
  journeyId: 'j-1',
  iterationId: 'i-1',
  entityType: 'sample_specialmessage',
  entityId: 'e-1',
};
const realtime: RealtimeContext = {
  kind: 'realtime',
  channelDefinitionId: 'def-1',
  requestId: 'req-1',
  from: '+4915100000001',
  organizationId: 'org-1',
};

function message(
  context: InteractionMessage['context'],
  responseType: string,
  extra: Partial<InteractionMessage> = {},
): InteractionMessage {
  return { v: 1, context, responseType, channel: 'sms', occurredAt: 1, ...extra };
}

const createBody = {
  ActivityId: 'act-1',
  CustomerJourney: {
    '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourney',
    msdyncrm_customerjourneyid: 'j-1',
  },
  CustomerJourneyIteration: {
    '@odata.type': 'Microsoft.Dynamics.CRM.msdyncrm_customerjourneyiteration',
    msdyncrm_customerjourneyiterationid: 'i-1',
  },
  Contact: { '@odata.type': 'Microsoft.Dynamics.CRM.contact', contactid: 'c-1' },
  EntityType: 'sample_specialmessage',
  EntityId: 'e-1',
};

function notification(payload: Record<string, unknown>): InteractionRequest {
  return {
    kind: 'action',
    actionName: 'msdyn_D365ChannelsNotification',
    action: { notificationPayLoad: JSON.stringify(payload) },
  };
}

describe('interactionRequest', () => {
  const base = { ChannelDefinitionId: 'def-1', RequestId: 'req-1', From: '+4915100000001', OrganizationId: 'org-1' };
  const cases: Array<[string, InteractionMessage, InteractionRequest]> = [
    [
      'marketing sent',
      message(marketing, 'sent'),
      {
        kind: 'action',
        actionName: 'msdyncrm_CustomChannelActivityCreateInteraction',
        action: { ...createBody, ResponseType: 'sent' },
      },
    ],
    [
      'marketing keyword with TriggerKeyword',
      message(marketing, 'keyword', { triggerKeyword: 'YES' }),
      {
        kind: 'action',
        actionName: 'msdyncrm_CustomChannelActivityCreateInteraction',
        action: { ...createBody, ResponseType: 'keyword', TriggerKeyword: 'YES' },
      },
    ],
    [
      'marketing failure: detail is not sent',
      message(marketing, 'failed', { detail: { code: 21211, message: 'invalid' } }),
      {
        kind: 'action',
        actionName: 'msdyncrm_CustomChannelActivityCreateInteraction',
        action: { ...createBody, ResponseType: 'failed' },
      },
    ],
    [
      'real-time Sent: nothing to write',
      message(realtime, 'Sent'),
      { kind: 'none', reason: "real-time status 'Sent' has no notification (UNVERIFIED, see assumptions.ts)" },
    ],
    [
      'real-time Delivered with the provider id: StatusDetails is an object',
      message(realtime, 'Delivered', { providerMessageId: 'SM1' }),
      notification({
        ...base,
        MessageId: 'SM1',
        Status: 'Delivered',
        StatusDetails: { Channel: 'sms', ProviderMessageId: 'SM1' },
      }),
    ],
    [
      'real-time NotDelivered without provider id: MessageId = RequestId, StatusDetails still an object',
      message(realtime, 'NotDelivered'),
      notification({ ...base, MessageId: 'req-1', Status: 'NotDelivered', StatusDetails: { Channel: 'sms' } }),
    ],
    [
      'real-time NotSent → NotDelivered with the provider code and message in StatusDetails (never a "code: message" string)',
      message(realtime, 'NotSent', { detail: { code: 21610, message: 'unsubscribed recipient' } }),
      notification({
        ...base,
        MessageId: 'req-1',
        Status: 'NotDelivered',
        StatusDetails: { Channel: 'sms', ProviderCode: 21610, ProviderMessage: 'unsubscribed recipient' },
      }),
    ],
    [
      'real-time Inbound → msdyn_D365ChannelsInbound, Message the parts object, MessageId = the provider id',
      message({ ...realtime, requestId: 'SMin-1', from: '+4917600000001' }, 'Inbound', {
        providerMessageId: 'SMin-1',
        inbound: { to: '+4915100000001', text: 'Yes please' },
      }),
      {
        kind: 'action',
        actionName: 'msdyn_D365ChannelsInbound',
        action: {
          inboundPayLoad: {
            ChannelDefinitionId: 'def-1',
            From: '+4917600000001',
            To: '+4915100000001',
            OrganizationId: 'org-1',
            Message: { text: 'Yes please' },
            MessageId: 'SMin-1',
          },
        },
      } as never,
    ],
    [
      'real-time Inbound with parts: every part, the text part from inbound.text',
      message(realtime, 'Inbound', {
        inbound: {
          to: '+4915100000001',
          text: 'See attached',
          parts: { text: 'stale', image: 'https://example.test/i.png' },
        },
      }),
      {
        kind: 'action',
        actionName: 'msdyn_D365ChannelsInbound',
        action: {
          inboundPayLoad: {
            ChannelDefinitionId: 'def-1',
            From: '+4915100000001',
            To: '+4915100000001',
            OrganizationId: 'org-1',
            Message: { text: 'See attached', image: 'https://example.test/i.png' },
            MessageId: 'req-1',
          },
        },
      } as never,
    ],
    [
      'real-time Inbound without a provider id: MessageId = the context requestId',
      message(realtime, 'Inbound', { inbound: { to: '+4915100000001', text: '' } }),
      {
        kind: 'action',
        actionName: 'msdyn_D365ChannelsInbound',
        action: {
          inboundPayLoad: {
            ChannelDefinitionId: 'def-1',
            From: '+4915100000001',
            To: '+4915100000001',
            OrganizationId: 'org-1',
            Message: { text: '' },
            MessageId: 'req-1',
          },
        },
      } as never,
    ],
  ];
  /** The notification and inbound payloads are serialized JSON: compare them parsed. */
  const parsed = (r: InteractionRequest): unknown => {
    if (r.kind !== 'action') return r;
    const [name, value] = Object.entries(r.action)[0] ?? [];
    return (name === 'notificationPayLoad' || name === 'inboundPayLoad') && typeof value === 'string'
      ? { ...r, action: { [name]: JSON.parse(value) as unknown } }
      : r;
  };
  for (const [name, input, expected] of cases)
    it(name, () => assert.deepEqual(parsed(interactionRequest(input)), parsed(expected)));
});

/** A stub of the dynamics-web-api batch calls: records each batch and answers with `answer(batch)`. */
function stubClient(
  answer: (batch: Array<{ actionName: string; action: Record<string, unknown> }>) => Promise<unknown[]>,
) {
  const batches: Array<Array<{ actionName: string; action: Record<string, unknown> }>> = [];
  const options: unknown[] = [];
  let current: Array<{ actionName: string; action: Record<string, unknown> }> | undefined;
  const client = {
    startBatch: () => {
      current = [];
    },
    callAction: async (r: { actionName: string; action: Record<string, unknown> }) => {
      current!.push(r);
      return undefined;
    },
    executeBatch: async (o: unknown) => {
      const batch = current!;
      current = undefined;
      batches.push(batch);
      options.push(o);
      return answer(batch);
    },
  };
  return { client: client as unknown as DynamicsWebApi, batches, options };
}

describe('createInteractionWriter', () => {
  const part = rebuildError(fixture('errors/400-batch-part.json'));

  it('writes batchSize actions a $batch (continue-on-error, no change set) and answers one result per item in order', async () => {
    const stub = stubClient(async (batch) =>
      batch.map((op) => (op.action['ResponseType'] === 'bad' ? part : undefined)),
    );
    const writer = createInteractionWriter(stub.client, createGovernor(), { batchSize: 2 });
    const items = [
      message(marketing, 'sent'),
      message(realtime, 'Sent'),
      message(marketing, 'bad'),
      message(marketing, 'delivered'),
      message(realtime, 'Delivered'),
    ];
    const results = await writer.write(items);
    assert.deepEqual(
      stub.batches.map((b) => b.length),
      [2, 2],
      'Sent writes nothing',
    );
    assert.deepEqual(stub.options[0], {
      continueOnError: true,
      inChangeSet: false,
      signal: (stub.options[0] as { signal: AbortSignal }).signal,
    });
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, false, true, true],
    );
    const failed = results[2]!;
    assert.ok(!failed.ok);
    assert.equal(failed.error.code, 'DataverseBadRequest');
    assert.match(failed.error.message, /the response type 'nosuchtype' is not defined by the tile/);
    assert.equal(failed.error.upstream?.code, '0x80040203');
  });

  it('the real-time actions answer 200 with responseMessage or 204: both are written; a 400 part is not', async () => {
    const answered = {
      '@odata.context':
        'https://org/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.msdyn_D365ChannelsNotificationResponse',
      responseMessage: 'Accepted',
    };
    const stub = stubClient(async (batch) => batch.map((_, i) => [answered, undefined, part][i % 3]));
    const inbound = message(realtime, 'Inbound', { inbound: { to: '+4915100000001', text: 'hi' } });
    const results = await createInteractionWriter(stub.client, createGovernor()).write([
      message(realtime, 'Delivered'),
      inbound,
      message(realtime, 'NotDelivered'),
      inbound,
    ]);
    assert.deepEqual(
      stub.batches.map((b) => b.map((op) => op.actionName)),
      [
        [
          'msdyn_D365ChannelsNotification',
          'msdyn_D365ChannelsInbound',
          'msdyn_D365ChannelsNotification',
          'msdyn_D365ChannelsInbound',
        ],
      ],
    );
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, true, false, true],
    );
  });

  it('a 429 on the whole $batch: every item of it is DataverseThrottled with the Retry-After', async () => {
    const throttled = rebuildError(fixture('errors/429-plain.json'));
    const stub = stubClient(async () => {
      throw throttled;
    });
    const results = await createInteractionWriter(stub.client, createGovernor()).write([
      message(marketing, 'sent'),
      message(marketing, 'delivered'),
    ]);
    for (const r of results) {
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'DataverseThrottled');
      assert.equal(r.error.retryAfterMs, 60_000);
    }
  });

  it('fewer parts than operations: the missing ones fail as DataverseUnavailable', async () => {
    const stub = stubClient(async () => [undefined]);
    const results = await createInteractionWriter(stub.client, createGovernor()).write([
      message(marketing, 'sent'),
      message(marketing, 'delivered'),
    ]);
    assert.equal(results[0]!.ok, true);
    assert.ok(!results[1]!.ok && results[1]!.error.code === 'DataverseUnavailable');
  });

  it('aborted while writing: answered batches keep their results, the others are retryable failures', async () => {
    const controller = new AbortController();
    let calls = 0;
    const stub = stubClient(async (b) => {
      calls++;
      if (calls === 1) return b.map(() => undefined);
      setImmediate(() => controller.abort(new Error('stopping')));
      return new Promise<unknown[]>(() => undefined);
    });
    const writer = createInteractionWriter(stub.client, createGovernor({ initialConcurrency: 1 }), { batchSize: 1 });
    const results = await writer.write(
      [message(marketing, 'sent'), message(marketing, 'delivered')],
      controller.signal,
    );
    assert.deepEqual(results[0], { ok: true });
    assert.ok(!results[1]!.ok && results[1]!.error.code === 'DataverseUnavailable' && results[1]!.error.retryable);
    assert.match(!results[1]!.ok ? results[1]!.error.message : '', /stopped before Dataverse answered/);
  });

  it('rejects when aborted before writing, and validates batchSize', async () => {
    const stub = stubClient(async (b) => b.map(() => undefined));
    const controller = new AbortController();
    controller.abort(new Error('stopping'));
    await assert.rejects(
      createInteractionWriter(stub.client, createGovernor()).write([message(marketing, 'sent')], controller.signal),
      /stopping/,
    );
    assert.throws(
      () => createInteractionWriter(stub.client, createGovernor(), { batchSize: 1001 }),
      /batchSize must be an integer 1-1000, found 1001/,
    );
  });
});
