/** Intake with a channel that tracks links: the journey message's links become tracked links on the public base URL. */
import assert from 'node:assert/strict';
import type { Channel } from '../../../../src/channels/types.js';
import type { ChannelLookup } from '../../../../src/pipeline/index.js';
import { IntakeStage } from '../../../../src/pipeline/intake/stage.js';
import { linkAt } from '../../../../src/correlation/links.js';
import { openLink, parseCallbackKeys, tileDigest } from '../../../../src/correlation/token.js';
import { channelCallbacks } from '../dispatch/fakes.js';
import {
  activity,
  activityFromRow,
  ALL_CHANNELS,
  contact,
  decode,
  FakeOutbound,
  FakeReads,
  harness,
  realtime,
  REALTIME,
  SMS,
} from './fakes.js';
import { channelLookup } from '../../../helpers/channels.js';

const keys = parseCallbackKeys(`k1:${Buffer.alloc(32, 5).toString('base64')}`, 'test');
const withCallbacks = (c: Channel, trackLinks: boolean): Channel => ({
  ...c,
  callbacks: channelCallbacks({ trackLinks }),
  publicBaseUrl: 'https://relay.example/cb',
});
const TEMPLATE = 'Hi {firstname}, sale: https://shop.example/sale. Your page: https://shop.example/u/{contactid}';

describe('pipeline: IntakeStage tracked links', () => {
  const channels = (trackLinks: boolean): ChannelLookup =>
    channelLookup(ALL_CHANNELS.map((c) => (c === SMS || c === REALTIME ? withCallbacks(c, trackLinks) : c)));

  it('rewrites the links without placeholders of the template to tracked links of the activity, then renders', async () => {
    const h = harness({ channels: channels(true), callbackKeys: keys });
    h.reads.addRecord('sample_specialmessages', 'msg-1', { sample_text: TEMPLATE });
    h.reads.addContacts(contact(1), contact(2));
    await h.run([activity(1), activity(2)]);
    const texts = h.outbound.messages.map((m) => m.body.text);
    assert.equal(texts.length, 2);
    texts.forEach((text, i) => {
      const m =
        /^Hi Ann(\d), sale: https:\/\/relay\.example\/cb\/l\/([A-Za-z0-9_-]+)\. Your page: https:\/\/shop\.example\/u\/c-(\d)$/.exec(
          text,
        );
      assert.ok(m, text);
      assert.equal(m[1], String(i + 1));
      assert.equal(m[3], String(i + 1));
      const opened = openLink(m[2] as string, keys);
      // The code carries the row, its contact and the tile of the message's context (a click needs no read).
      const context = h.outbound.messages[i]!.body.context;
      assert.ok(context?.kind === 'marketing');
      assert.equal(context.activityRowId, `row-${i + 1}`);
      assert.deepEqual(opened, {
        ok: true,
        activityRowId: `row-${i + 1}`,
        contactId: context.contactId,
        tile: tileDigest(context),
        linkIndex: 0,
        keyId: 'k1',
      });
      assert.equal(linkAt(TEMPLATE, opened.ok ? opened.linkIndex : -1), 'https://shop.example/sale');
    });
  });

  it('leaves the text as rendered when the channel does not track links, and real-time messages always', async () => {
    const h = harness({ channels: channels(false), callbackKeys: keys });
    h.reads.addRecord('sample_specialmessages', 'msg-1', { sample_text: TEMPLATE });
    h.reads.addContacts(contact(1));
    await h.run([activity(1)]);
    assert.equal(
      h.outbound.messages[0]?.body.text,
      'Hi Ann1, sale: https://shop.example/sale. Your page: https://shop.example/u/c-1',
    );

    const rt = harness({ channels: channels(true), callbackKeys: keys });
    await rt.run([realtime('req-1', { message: { text: 'see https://shop.example/x' } })]);
    assert.equal(rt.outbound.messages[0]?.body.text, 'see https://shop.example/x');
  });

  it('refuses to start without keys when a channel tracks links', () => {
    assert.throws(
      () =>
        new IntakeStage({
          decode,
          activityFromRow,
          reads: new FakeReads(),
          outbound: new FakeOutbound(),
          channels: channels(true),
        }),
      /callbackKeys is required: channels sms, rt track links/,
    );
  });
});
