/**
 * The intake stage with the real RemoteExecutionContext decoder (src/dataverse/remote-context.ts) as its ports, over
 * the Dataverse emulator's posts (test/unit/dataverse/fixtures): the decoder's functions fit the stage's options as
 * they are, and a real Create, a truncated Create, a real-time call and the XML formats end where they should.
 */
import assert from 'node:assert/strict';
import type { Channel } from '../../../../src/channels/types.js';
import { activityFromRow, decodeRemoteContext } from '../../../../src/dataverse/remote-context.js';
import type { IntakeOptions } from '../../../../src/pipeline/intake/stage.js';
import type { Row } from '../../../../src/pipeline/ports.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../../helpers/fake-delivery.js';
import { bodyBytes, eventFixture, fixture } from '../../dataverse/fixtures.js';
import { contact, harness, REALTIME, SMS } from './fakes.js';
import { channelLookup } from '../../../helpers/channels.js';

// Compile-time: the decoder module's functions are the stage's ports, unchanged.
const ports: Pick<IntakeOptions, 'decode' | 'activityFromRow'> = { decode: decodeRemoteContext, activityFromRow };

function posted(name: string): FakeDelivery {
  const f = eventFixture(name);
  return fakeDelivery(bodyBytes(f), {
    messageId: f.messageId,
    contentType: f.contentType,
    applicationProperties: f.applicationProperties,
  });
}

describe('pipeline: IntakeStage with the real decoder', () => {
  // The Create in events/activity-create.json is the row in rows/activity.json (one emulator run).
  const row = fixture<Row>('rows/activity.json');
  const activityId = String(row['msdyncrm_activityid']);
  const contactId = String(row['_msdyncrm_contact_value']);
  const entityId = String(row['msdyncrm_entityid']);

  function setup(channels: Channel[] = [SMS]): ReturnType<typeof harness> {
    const h = harness({ ...ports, channels: channelLookup(channels) });
    h.reads
      .addRecord('sample_specialmessages', entityId, { sample_text: 'Hello {firstname}' })
      .addContacts(contact('x', { contactid: contactId, firstname: 'Jo' }));
    h.reads.activityRows.set(String(row['msdyncrm_customerjourneycustomchannelactivityid']), row);
    return h;
  }

  const expectedContext = {
    kind: 'marketing',
    activityId,
    activityRowId: String(row['msdyncrm_customerjourneycustomchannelactivityid']),
    contactId,
    journeyId: String(row['_msdyncrm_customerjourney_value']),
    iterationId: String(row['_msdyncrm_customerjourneyiteration_value']),
    entityType: 'sample_specialmessage',
    entityId,
  };

  it('sends the Create posted as JSON', async () => {
    const h = setup();
    const deliveries = [posted('activity-create')];
    await h.stage.handle(deliveries, new AbortController().signal);
    assert.deepEqual(settledAs(deliveries), ['complete']);
    assert.deepEqual(
      h.outbound.messages.map((m) => [m.messageId, m.sessionId, m.body.text, m.body.context]),
      [[expectedContext.activityRowId, SMS.senderKey, 'Hello Jo', expectedContext]],
    );
    assert.equal(h.reads.calls.activity.length, 0);
  });

  it('completes the truncated Create by reading its row, into the same message', async () => {
    const h = setup();
    const deliveries = [posted('activity-truncated')];
    await h.stage.handle(deliveries, new AbortController().signal);
    assert.deepEqual(settledAs(deliveries), ['complete']);
    assert.deepEqual(h.reads.calls.activity, [[expectedContext.activityRowId]]);
    assert.deepEqual(
      h.outbound.messages.map((m) => [m.messageId, m.body.context]),
      [[expectedContext.activityRowId, expectedContext]],
    );
  });

  it('sends the real-time outbound call to the channel of its channel definition', async () => {
    const decoded = decodeRemoteContext(posted('realtime-outbound'));
    assert.ok(decoded.kind === 'realtime');
    const h = setup([
      SMS,
      { ...REALTIME, channelDefinitionId: decoded.channelDefinitionId.toUpperCase(), sender: decoded.from },
    ]);
    const deliveries = [posted('realtime-outbound')];
    await h.stage.handle(deliveries, new AbortController().signal);
    assert.deepEqual(settledAs(deliveries), ['complete']);
    const [m] = h.outbound.messages;
    assert.equal(m?.messageId, decoded.requestId);
    assert.equal(m?.body.channel, REALTIME.name);
    assert.equal(m?.body.to, decoded.to);
    assert.equal(m?.body.text, 'Hello from a real-time journey');
    assert.deepEqual(m?.body.context, {
      kind: 'realtime',
      channelDefinitionId: decoded.channelDefinitionId,
      requestId: decoded.requestId,
      from: decoded.from,
      organizationId: decoded.organizationId,
      ...(decoded.journeyId === undefined ? {} : { journeyId: decoded.journeyId }),
    });
    assert.deepEqual(h.reads.calls, { contacts: [], messageRecord: [], activity: [] });
  });

  it('dead-letters the Text XML and .NET Binary XML posts as another format and sends the JSON one', async () => {
    const h = setup();
    const deliveries = [posted('activity-create-xml'), posted('activity-create-nbfx'), posted('activity-create')];
    await h.stage.handle(deliveries, new AbortController().signal);
    assert.deepEqual(settledAs(deliveries), ['deadLetter', 'deadLetter', 'complete']);
    for (const d of deliveries.slice(0, 2)) {
      const s = d.settlements[0];
      assert.ok(s?.how === 'deadLetter');
      assert.equal(s.reason, 'EventUnsupportedFormat');
      assert.match(s.description, /messageformat 2/);
    }
  });
});
