/** Real-time journeys inbound messages through the interaction writer: msdyn_D365ChannelsInbound on the Dataverse emulator. */
import assert from 'node:assert/strict';
import { createInteractionWriter } from '../../../src/dataverse/index.js';
import {
  INBOUND_RESPONSE_TYPE,
  parseInteractionMessage,
  type InteractionMessage,
} from '../../../src/pipeline/messages.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { IDS, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';
import { interactions, stack, stats } from './helpers.js';

describe('InteractionWriter: real-time inbound messages against the Dataverse emulator', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('writes each Inbound interaction as msdyn_D365ChannelsInbound in the same $batch as the notifications; an unknown channel definition fails alone', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1) }));
    const s = track(stack(dv.url, 'recorder'));
    const context = {
      kind: 'realtime' as const,
      channelDefinitionId: IDS.channelDefinition,
      requestId: 'SMin-1',
      from: '+4917600000001',
      organizationId: IDS.organization,
    };
    const inbound = (over: Partial<InteractionMessage> = {}): InteractionMessage =>
      // What the recorder writes is what it read from the queue.
      parseInteractionMessage(
        JSON.stringify({
          v: 1,
          context,
          responseType: INBOUND_RESPONSE_TYPE,
          channel: 'realtime-sms',
          occurredAt: 1,
          inbound: { to: '+4915100000001', text: 'Hello, is this still on?' },
          ...over,
        }),
      );
    const before = await stats(dv.url);
    const results = await createInteractionWriter(s.client, s.governor).write([
      inbound({ providerMessageId: 'SMin-1' }),
      inbound({ context: { ...context, requestId: 'SMin-2' }, inbound: { to: '+4915100000001', text: 'STOP' } }),
      {
        v: 1,
        context: { ...context, requestId: 'req-9' },
        responseType: 'Delivered',
        channel: 'realtime-sms',
        occurredAt: 1,
        providerMessageId: 'SM9',
      },
      inbound({ context: { ...context, channelDefinitionId: '00000000-0000-4000-8000-00000000dead' } }),
    ]);
    assert.deepEqual(results.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
    assert.ok(!results[3]!.ok && results[3]!.error.code === 'DataverseNotFound', JSON.stringify(results[3]));
    const after = await stats(dv.url);
    assert.equal(after.traffic.batches - before.traffic.batches, 1, 'one $batch');
    assert.equal(after.traffic.batchOperations - before.traffic.batchOperations, 4);

    const stored = await interactions(dv.url, '?kind=inbound');
    assert.deepEqual(
      stored.value.map((v) => v.payload),
      [
        {
          ChannelDefinitionId: IDS.channelDefinition,
          From: '+4917600000001',
          To: '+4915100000001',
          OrganizationId: IDS.organization,
          Message: { text: 'Hello, is this still on?' },
          MessageId: 'SMin-1',
        },
        {
          ChannelDefinitionId: IDS.channelDefinition,
          From: '+4917600000001',
          To: '+4915100000001',
          OrganizationId: IDS.organization,
          Message: { text: 'STOP' },
          MessageId: 'SMin-2',
        },
      ],
    );
    assert.equal((await interactions(dv.url, '?kind=notification')).count, 1);
  });
});
