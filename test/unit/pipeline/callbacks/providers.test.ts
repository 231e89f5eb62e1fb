import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { createCallbacksServer, sealContext, sealLink } from '../../../../src/pipeline/callbacks/index.js';
import { webhookHeaders } from '../../../../src/providers/index.js';
import type { Channel } from '../../../../src/channels/index.js';
import {
  activityRecord,
  CHANNELS,
  CHAT_ID,
  context,
  harness,
  KEYS,
  legacyLinkCode,
  NEVER_SHOWN,
  OLD_KEYS,
  PHONE,
  RT,
  SMS,
  CT,
  TG,
  TG_OLD_SECRET,
  TG_SECRET,
  TILE_ACTIVITY_ID,
  WHSEC_NEW,
  WHSEC_OLD,
  type Harness,
} from './fakes.js';

describe('callbacks: Telegram, contract, tracked links, health', () => {
  let h: Harness;
  let app: FastifyInstance;
  beforeEach(() => {
    h = harness();
    app = createCallbacksServer(h.deps).app;
  });
  afterEach(async () => {
    await app.close();
    for (const secret of [...NEVER_SHOWN, CHAT_ID])
      assert.ok(!h.logs.text.includes(secret), `a log line shows ${secret.slice(0, 4)}…`);
  });
  const nothingRecorded = (): void =>
    assert.equal(h.interactions.sent.length + h.outbound.sent.length + h.directory.updates.length, 0);

  describe('Telegram', () => {
    const update = (text: string, secret: string | null = TG_SECRET, id = 1001) =>
      app.inject({
        method: 'POST',
        url: '/callbacks/tg/telegram',
        headers: {
          'content-type': 'application/json',
          ...(secret === null ? {} : { 'x-telegram-bot-api-secret-token': secret }),
        },
        payload: JSON.stringify({
          update_id: id,
          message: { message_id: 5, date: 1, chat: { id: Number(CHAT_ID), type: 'private' }, text },
        }),
      });

    it('a keyword from a chat is recorded on the contact behind the chat id', async () => {
      const res = await update('INFO');
      assert.equal(res.statusCode, 200);
      assert.equal(h.interactions.sent[0]?.body.triggerKeyword, 'INFO');
      assert.equal(h.interactions.sent[0]?.body.channel, 'tg');
    });
    it('STOP opts out and confirms to the chat', async () => {
      await update('STOP');
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(h.outbound.sent[0]?.body.to, CHAT_ID);
      assert.equal(h.outbound.sent[0]?.sessionId, 'telegram:relaybot');
    });
    it('/start (sent when a chat with the bot is opened) is a bot command: acknowledged, no opt-in, no confirmation', async () => {
      h.directory.contacts[0]!['sample_optout'] = true;
      for (const [i, text] of ['/start', '/start@relaybot', '/stop'].entries())
        assert.equal((await update(text, TG_SECRET, 2000 + i)).statusCode, 200);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      nothingRecorded();
    });
    it('a bot command the channel lists with its slash counts', async () => {
      const tg = { ...TG, callbacks: { ...TG.callbacks!, optOutWords: [...TG.callbacks!.optOutWords, '/STOP'] } };
      const server = createCallbacksServer({
        ...h.deps,
        channels: { byName: (n) => (n === 'tg' ? tg : undefined), all: () => [tg] },
      });
      const res = await server.app.inject({
        method: 'POST',
        url: '/callbacks/tg/telegram',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
        payload: JSON.stringify({
          update_id: 3001,
          message: { message_id: 6, date: 1, chat: { id: Number(CHAT_ID), type: 'private' }, text: '/stop' },
        }),
      });
      await server.app.close();
      assert.equal(res.statusCode, 200);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(h.outbound.sent.length, 1);
    });
    it('a Dataverse failure quoting the chat id answers 503 and logs the id masked', async () => {
      h.directory.contactsByAddress = async () =>
        Promise.reject(new Error(`query failed: sample_chatid eq '${CHAT_ID}'`));
      assert.equal((await update('INFO')).statusCode, 503);
      assert.match(h.logs.text, /\*{5}4321/);
    });
    it('accepts the previous secret token while rotating', async () => {
      assert.equal((await update('INFO', TG_OLD_SECRET)).statusCode, 200);
      assert.equal(h.interactions.sent.length, 1);
    });
    it('no secret token → 401, a wrong one → 403, nothing recorded', async () => {
      assert.equal((await update('STOP', null)).statusCode, 401);
      assert.equal((await update('STOP', 'wrong-secret')).statusCode, 403);
      nothingRecorded();
    });
    it('an update that is not a text message is acknowledged and ignored', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/callbacks/tg/telegram',
        headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG_SECRET },
        payload: '{"update_id":7,"edited_message":{}}',
      });
      assert.equal(res.statusCode, 200);
      nothingRecorded();
    });
  });

  describe('contract', () => {
    const signed = (
      url: string,
      body: unknown,
      secret: string | string[] = WHSEC_NEW,
      id = 'msg_1',
      nowMs = Date.now(),
    ) => {
      const payload = JSON.stringify(body);
      return app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json', ...webhookHeaders(secret, id, payload, nowMs) },
        payload,
      });
    };
    const token = sealContext(context(1), 'ct', KEYS);

    it('a delivery report with a context token records delivered (204)', async () => {
      const res = await signed('/callbacks/ct/contract/reports', {
        RequestId: token,
        MessageId: 'p-1',
        Status: 'Delivered',
      });
      assert.equal(res.statusCode, 204);
      assert.equal(h.interactions.sent[0]?.body.responseType, 'delivered');
      assert.deepEqual(h.interactions.sent[0]?.body.context, context(1));
    });
    it('a report whose RequestId is the activity row id is correlated through the activity row', async () => {
      await signed('/callbacks/ct/contract/reports', {
        RequestId: context(2).activityRowId,
        Status: 'NotDelivered',
        StatusDetails: { reason: 'handset off' },
      });
      assert.equal(h.interactions.sent[0]?.body.responseType, 'failed');
      assert.deepEqual(h.interactions.sent[0]?.body.context, context(2));
    });
    it('a real-time report goes to msdyn_D365ChannelsNotification as Delivered with the RequestId', async () => {
      await signed('/callbacks/rt/contract/reports', { RequestId: 'req-42', Status: 'Delivered' });
      assert.deepEqual(h.interactions.sent[0]?.body.context, {
        kind: 'realtime',
        channelDefinitionId: RT.channelDefinitionId,
        requestId: 'req-42',
        from: RT.sender,
        organizationId: RT.callbacks?.organizationId,
      });
      assert.equal(h.interactions.sent[0]?.body.responseType, 'Delivered');
      assert.equal(h.interactions.sent[0]?.messageId, 'req-42:Delivered');
    });
    it('accepts a report signed with the old secret only (rotation: two accepted at once)', async () => {
      assert.equal(
        (await signed('/callbacks/ct/contract/reports', { RequestId: token, Status: 'Delivered' }, WHSEC_OLD))
          .statusCode,
        204,
      );
      assert.deepEqual(
        h.interactions.sent.map((m) => m.body.responseType),
        ['delivered'],
        'recorded, not only acknowledged',
      );
    });
    it('a replayed webhook-id gets the same answer and the same MessageId: recorded once by the bus', async () => {
      const a = await signed('/callbacks/ct/contract/reports', { RequestId: token, Status: 'Delivered' });
      const b = await signed('/callbacks/ct/contract/reports', { RequestId: token, Status: 'Delivered' });
      assert.equal(a.statusCode, b.statusCode);
      assert.equal(h.interactions.kept().length, 1);
    });
    it('a stale timestamp (> 5 min) → 401; a forged or missing signature → 403; nothing recorded', async () => {
      assert.equal(
        (
          await signed(
            '/callbacks/ct/contract/reports',
            { RequestId: token, Status: 'Delivered' },
            WHSEC_NEW,
            'm',
            Date.now() - 301_000,
          )
        ).statusCode,
        401,
      );
      assert.equal(
        (
          await signed(
            '/callbacks/ct/contract/reports',
            { RequestId: token, Status: 'Delivered' },
            `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
          )
        ).statusCode,
        403,
      );
      assert.equal(
        (
          await app.inject({
            method: 'POST',
            url: '/callbacks/ct/contract/reports',
            headers: { 'content-type': 'application/json' },
            payload: '{}',
          })
        ).statusCode,
        403,
      );
      nothingRecorded();
    });
    it('an inbound STOP opts the contact out', async () => {
      const res = await signed(
        '/callbacks/ct/contract/inbound',
        { From: PHONE, Message: { text: 'unsubscribe' } },
        WHSEC_NEW,
        'in_1',
      );
      assert.equal(res.statusCode, 204);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
      assert.equal(h.outbound.sent[0]?.messageId, 'ct:opt-out:in_1');
    });
    it('a real-time inbound message goes to msdyn_D365ChannelsInbound (opt-out words too), keyed by the provider id', async () => {
      const res = await signed(
        '/callbacks/rt/contract/inbound',
        { From: PHONE, To: 'rt-sender', Message: { text: 'STOP' }, MessageId: 'in-77' },
        WHSEC_NEW,
        'wh_9',
      );
      assert.equal(res.statusCode, 204);
      const [m] = h.interactions.sent;
      assert.equal(m?.body.responseType, 'Inbound');
      assert.deepEqual(m?.body.context, {
        kind: 'realtime',
        channelDefinitionId: RT.channelDefinitionId,
        requestId: 'in-77',
        from: PHONE,
        organizationId: RT.callbacks?.organizationId,
      });
      assert.deepEqual(m?.body.inbound, { to: 'rt-sender', text: 'STOP', parts: { text: 'STOP' } });
      assert.equal(m?.messageId, 'in-77:Inbound');
      assert.equal(h.directory.updates.length + h.outbound.sent.length, 0);
    });
    it('a real-time inbound message keeps every message part (Dictionary<string, string>); a part that is not a string is refused', async () => {
      const parts = { text: 'See the photo', image: 'https://cdn.example.test/p/1.jpg' };
      const res = await signed(
        '/callbacks/rt/contract/inbound',
        { From: PHONE, To: 'rt-sender', Message: parts, MessageId: 'in-78' },
        WHSEC_NEW,
        'wh_10',
      );
      assert.equal(res.statusCode, 204);
      assert.deepEqual(h.interactions.sent[0]?.body.inbound, { to: 'rt-sender', text: 'See the photo', parts });
      const bad = await signed(
        '/callbacks/rt/contract/inbound',
        { From: PHONE, Message: { text: 'x', size: 3 }, MessageId: 'in-79' },
        WHSEC_NEW,
        'wh_11',
      );
      assert.equal(bad.statusCode, 400);
      assert.equal(h.interactions.sent.length, 1);
    });
    it("a report whose RequestId is an activity of another channel's message table is ignored", async () => {
      const other = { ...context(7), entityType: 'sample_wa', entityId: 'e7000007-0000-4000-8000-000000000000' };
      h.directory.activities.push(activityRecord(other));
      const wa: Channel = {
        ...SMS,
        name: 'wa',
        tile: { ...SMS.tile!, entityType: 'sample_wa', entitySetName: 'sample_waes' },
      };
      h.directory.records.set(other.entityId, { sample_text: 'hello' });
      const all = [...CHANNELS, wa];
      const server = createCallbacksServer({
        ...h.deps,
        channels: { byName: (n) => all.find((c) => c.name === n), all: () => all },
      });
      const payload = JSON.stringify({ RequestId: other.activityRowId, Status: 'Delivered' });
      const res = await server.app.inject({
        method: 'POST',
        url: '/callbacks/ct/contract/reports',
        headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, 'msg_x', payload, Date.now()) },
        payload,
      });
      await server.app.close();
      assert.equal(res.statusCode, 204);
      nothingRecorded();
    });
    it('on a tile shared with channelField, a report on the activity of the other channel is ignored, its own recorded', async () => {
      const shared = (c: Channel): Channel => ({ ...c, channelField: 'sample_channel' });
      const all = [shared(SMS), shared(CT)];
      h.directory.records.set(context(1).entityId, { sample_text: 'x', sample_channel: 'sms' });
      h.directory.records.set(context(2).entityId, { sample_text: 'y', sample_channel: 'ct' });
      const server = createCallbacksServer({
        ...h.deps,
        channels: { byName: (n) => all.find((c) => c.name === n), all: () => all },
      });
      const post = (requestId: string, id: string) => {
        const payload = JSON.stringify({ RequestId: requestId, Status: 'Delivered' });
        return server.app.inject({
          method: 'POST',
          url: '/callbacks/ct/contract/reports',
          headers: { 'content-type': 'application/json', ...webhookHeaders(WHSEC_NEW, id, payload, Date.now()) },
          payload,
        });
      };
      await post(context(1).activityRowId, 'm1');
      await post(context(2).activityRowId, 'm2');
      await server.app.close();
      assert.deepEqual(
        h.interactions.sent.map((m) => m.body.context),
        [context(2)],
      );
    });
    it('a RequestId that is the msdyncrm_activityid of a message sent before the row key: recorded when one row has it, ignored when rows share it', async () => {
      const own = { ...context(5), activityId: 'a5000000-0000-4000-8000-000000000000', entityId: context(2).entityId };
      h.directory.activities.push(activityRecord(own));
      await signed('/callbacks/ct/contract/reports', { RequestId: own.activityId, Status: 'Delivered' });
      assert.deepEqual(
        h.interactions.sent.map((m) => [m.messageId, m.body.context]),
        [[`${own.activityRowId}:delivered`, own]],
      );
      // context(1) and context(2) share the tile's id: no row stands for it.
      await signed('/callbacks/ct/contract/reports', { RequestId: TILE_ACTIVITY_ID, Status: 'Delivered' });
      assert.equal(h.interactions.sent.length, 1);
    });
    it('logs the activity and a digest of the RequestId, never the token', async () => {
      await signed('/callbacks/ct/contract/reports', { RequestId: token, Status: 'Delivered' });
      assert.ok(!h.logs.text.includes(token), 'the token is not logged');
      const line = h.logs.lines().find((l) => l['message'] === 'contract report recorded');
      assert.equal(line?.['activityRowId'], context(1).activityRowId);
      assert.match(String(line?.['requestRef']), /^[A-Za-z0-9_-]{12}$/);
    });
    it('a report for a token of another channel records nothing', async () => {
      await signed('/callbacks/ct/contract/reports', {
        RequestId: sealContext(context(1), 'sms', KEYS),
        Status: 'Delivered',
      });
      nothingRecorded();
    });
  });

  describe('tracked links', () => {
    it('a click redirects to the original link and records opened once per activity', async () => {
      const code = sealLink(context(1), 1, KEYS);
      const a = await app.inject({ method: 'GET', url: `/l/${code}` });
      const b = await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 0, KEYS)}` });
      assert.equal(a.statusCode, 302);
      assert.equal(a.headers['location'], 'http://example.org/b');
      assert.equal(b.headers['location'], 'https://example.com/offer?x=1');
      assert.equal(h.interactions.sent[0]?.body.responseType, 'opened');
      assert.deepEqual(h.interactions.sent[0]?.body.context, context(1));
      assert.equal(h.interactions.kept().length, 1);
    });
    it('a click on a tile already met reads no activity: the row and contact come from the code, the tile from the first row read', async () => {
      assert.equal((await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 0, KEYS)}` })).statusCode, 302);
      assert.deepEqual(h.directory.activityReads, [`row ${context(1).activityRowId}`]);
      // Another row and contact of the same tile (context(3) is not even in the directory): no read, recorded as coded.
      const other = {
        ...context(3),
        contactId: 'f1000003-0000-4000-8000-000000000000',
        journeyId: context(1).journeyId,
        iterationId: context(1).iterationId,
        entityId: context(1).entityId,
      };
      assert.equal((await app.inject({ method: 'GET', url: `/l/${sealLink(other, 1, KEYS)}` })).statusCode, 302);
      assert.deepEqual(h.directory.activityReads, [`row ${context(1).activityRowId}`]);
      assert.deepEqual(
        h.interactions.kept().map((m) => m.body.context),
        [context(1), other],
      );
    });
    it('a code of version 2 (row id alone) still reads its row and records opened', async () => {
      const res = await app.inject({
        method: 'GET',
        url: `/l/${legacyLinkCode(context(1).activityRowId, 1, KEYS.sign, 2)}`,
      });
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers['location'], 'http://example.org/b');
      assert.deepEqual(h.directory.activityReads, [`row ${context(1).activityRowId}`]);
      assert.deepEqual(
        h.interactions.kept().map((m) => m.body.context),
        [context(1)],
      );
    });
    it('two rows of one tile (one msdyncrm_activityid): each link records opened on its own row', async () => {
      assert.equal(context(1).activityId, context(2).activityId);
      for (const n of [1, 2])
        assert.equal((await app.inject({ method: 'GET', url: `/l/${sealLink(context(n), 0, KEYS)}` })).statusCode, 302);
      assert.deepEqual(
        h.interactions.kept().map((m) => [m.messageId, m.body.context]),
        [1, 2].map((n) => [`${context(n).activityRowId}:opened`, context(n)]),
      );
    });
    it('a link written before the relay keyed on the row (msdyncrm_activityid) records opened when one row has that id', async () => {
      const own = { ...context(5), activityId: 'a5000000-0000-4000-8000-000000000000', entityId: context(1).entityId };
      h.directory.activities.push(activityRecord(own));
      const res = await app.inject({ method: 'GET', url: `/l/${legacyLinkCode(own.activityId, 1, KEYS.sign)}` });
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers['location'], 'http://example.org/b');
      assert.deepEqual(
        h.interactions.sent.map((m) => [m.messageId, m.body.context]),
        [[`${own.activityRowId}:opened`, own]],
      );
    });
    it('a link written before the row key, whose msdyncrm_activityid several rows share, still redirects and records nothing (logged)', async () => {
      const tile = 'a6000000-0000-4000-8000-000000000000';
      for (const n of [6, 7])
        h.directory.activities.push(activityRecord({ ...context(n), activityId: tile, entityId: context(1).entityId }));
      const res = await app.inject({ method: 'GET', url: `/l/${legacyLinkCode(tile, 0, KEYS.sign)}` });
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers['location'], 'https://example.com/offer?x=1');
      nothingRecorded();
      const line = h.logs
        .lines()
        .find((l) => /written before the relay keyed on the activity row/.test(String(l['message'])));
      assert.equal(line?.['activityId'], tile);
    });
    it('a forged or rotated-out code → 403, a truncated one → 400, an unknown activity or link → 404, nothing recorded', async () => {
      const code = sealLink(context(1), 0, KEYS);
      const flipped = `${code.slice(0, -2)}${code.at(-2) === 'A' ? 'B' : 'A'}${code.at(-1)}`;
      assert.equal((await app.inject({ method: 'GET', url: `/l/${flipped}` })).statusCode, 403);
      assert.equal(
        (await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 0, OLD_KEYS)}` })).statusCode,
        403,
      );
      assert.equal((await app.inject({ method: 'GET', url: `/l/${code.slice(0, 12)}` })).statusCode, 400);
      assert.equal(
        (
          await app.inject({
            method: 'GET',
            url: `/l/${sealLink({ ...context(1), activityRowId: 'a9999999-0000-4000-8000-000000000000' }, 0, KEYS)}`,
          })
        ).statusCode,
        404,
      );
      assert.equal((await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 9, KEYS)}` })).statusCode, 404);
      assert.equal((await app.inject({ method: 'POST', url: `/l/${code}` })).statusCode, 405);
      nothingRecorded();
    });
    it('a link with non-ASCII characters redirects to its ASCII form (percent-encoded, punycode host) and records opened', async () => {
      h.directory.records.set(context(1).entityId, {
        sample_text: 'Seht https://example.com/日本?q=ü und https://bücher.example/ä',
      });
      const a = await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 0, KEYS)}` });
      assert.equal(a.statusCode, 302);
      assert.equal(a.headers['location'], 'https://example.com/%E6%97%A5%E6%9C%AC?q=%C3%BC');
      const b = await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 1, KEYS)}` });
      assert.equal(b.statusCode, 302);
      assert.equal(b.headers['location'], 'https://xn--bcher-kva.example/%C3%A4');
      assert.equal(h.interactions.kept().length, 1);
    });
    it('a target that is not an http(s) URL is not redirected to and records nothing', async () => {
      for (const target of ['javascript:alert(1)', 'https://exa mple.com/', 'ftp://example.com/f']) {
        const server = createCallbacksServer({ ...h.deps, linkAt: () => target });
        const res = await server.app.inject({
          method: 'GET',
          url: `/l/${sealLink(context(1), 0, KEYS)}`,
        });
        await server.app.close();
        assert.equal(res.statusCode, 404, target);
      }
      nothingRecorded();
    });
    it('a link code of a text activity id (above 100 characters) is routed', async () => {
      const code = sealLink({ ...context(1), activityRowId: `text-activity-${'x'.repeat(90)}` }, 0, KEYS);
      assert.ok(code.length > 100);
      const res = await app.inject({ method: 'GET', url: `/l/${code}` });
      assert.equal(res.statusCode, 404, 'routed and opened: no activity has that id');
    });
    it('a click still redirects when the open cannot be recorded', async () => {
      h.interactions.failWith = new Error('bus down');
      const res = await app.inject({ method: 'GET', url: `/l/${sealLink(context(2), 0, KEYS)}` });
      assert.equal(res.statusCode, 302);
      assert.equal(res.headers['location'], 'https://example.com/two');
    });
  });

  describe('health and unknown paths', () => {
    it('/healthz is 200; /readyz follows readiness', async () => {
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
      const server = createCallbacksServer({
        ...h.deps,
        readiness: () => [{ name: 'bus', ok: false, detail: 'down' }],
      });
      assert.equal((await server.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
      await server.app.close();
    });
    const hostile: Array<[string, string, string, number]> = [
      ['a 120-character link code', 'GET', `/l/${'A'.repeat(120)}`, 400],
      ['a 600-character link code', 'GET', `/l/${'A'.repeat(600)}`, 400],
      ['an invalid percent-escape', 'GET', '/l/%ZZ', 400],
      ['an invalid percent-escape in a channel name', 'POST', '/callbacks/%ZZsms/twilio/inbound', 400],
      ['a 120-character channel name', 'POST', `/callbacks/${'c'.repeat(120)}/twilio/inbound`, 404],
      ['a 600-character channel name', 'POST', `/callbacks/${'c'.repeat(600)}/twilio/inbound`, 400],
    ];
    for (const [what, method, url, code] of hostile) {
      it(`${what} → ${code} with the fixed body, no-store, counted, the path not echoed`, async () => {
        const res = await app.inject({
          method: method as 'GET' | 'POST',
          url,
          ...(method === 'POST'
            ? { payload: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } }
            : {}),
        });
        assert.equal(res.statusCode, code);
        assert.equal(res.body, code === 400 ? '{"error":"bad request"}' : '{"error":"not found"}');
        assert.equal(res.headers['cache-control'], 'no-store');
        const metric = await h.registry.getSingleMetric('channel_relay_callbacks_received_total')!.get();
        assert.equal(
          metric.values.reduce((n, v) => n + v.value, 0),
          1,
          'counted once',
        );
        assert.ok(
          !h.logs.text.includes('AAAAAAAAAA') && !h.logs.text.includes('%ZZ') && !h.logs.text.includes('cccccccccc'),
          'the path is not logged',
        );
        nothingRecorded();
      });
    }
    it('an unknown path is 404 with a fixed body', async () => {
      const res = await app.inject({ method: 'POST', url: '/callbacks/sms/other', payload: 'x' });
      assert.equal(res.statusCode, 404);
      assert.equal(res.body, '{"error":"not found"}');
    });
  });
});
