import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import {
  createCallbacksServer,
  EMPTY_TWIML,
  MAX_TWILIO_PARAMETERS,
  sealContext,
  sealLink,
} from '../../../../src/pipeline/callbacks/index.js';
import { twilioSignature } from '../../../../src/providers/index.js';
import { interactionMessageId } from '../../../../src/pipeline/index.js';
import {
  AUTH_TOKEN,
  context,
  harness,
  KEYS,
  NEVER_SHOWN,
  OLD_AUTH_TOKEN,
  OLD_KEYS,
  PHONE,
  PUBLIC_BASE,
  SHARED_KEY,
  SMS,
  type Harness,
} from './fakes.js';

/** A form POST as Twilio sends it, signed with `token` over the public URL. */
async function post(
  app: FastifyInstance,
  url: string,
  params: Record<string, string>,
  token: string | null = AUTH_TOKEN,
) {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (token !== null) headers['x-twilio-signature'] = twilioSignature(token, `${PUBLIC_BASE}${url}`, form);
  return app.inject({ method: 'POST', url, headers, payload: form.toString() });
}

const statusUrl = (token: string, channel = 'sms'): string => `/callbacks/${channel}/twilio/status?t=${token}`;
const status = (s: string, extra: Record<string, string> = {}): Record<string, string> => ({
  MessageSid: 'SM0001',
  MessageStatus: s,
  To: PHONE,
  From: SMS.sender,
  ...extra,
});

describe('callbacks: Twilio', () => {
  let h: Harness;
  let app: FastifyInstance;
  const token = sealContext(context(1), 'sms', KEYS);
  beforeEach(() => {
    h = harness();
    app = createCallbacksServer(h.deps).app;
  });
  afterEach(async () => {
    await app.close();
    const text = h.logs.text;
    for (const secret of NEVER_SHOWN)
      assert.ok(!text.includes(secret), `a log line shows a secret or a phone number: ${secret.slice(0, 4)}…`);
  });

  for (const [s, responseType] of [
    ['delivered', 'delivered'],
    ['read', 'opened'],
    ['undelivered', 'failed'],
    ['failed', 'failed'],
  ] as const) {
    it(`records ${s} as ${responseType}, keyed by activity and response type`, async () => {
      const res = await post(app, statusUrl(token), status(s, s === 'failed' ? { ErrorCode: '30006' } : {}));
      assert.equal(res.statusCode, 204);
      assert.equal(h.interactions.sent.length, 1);
      const [m] = h.interactions.sent;
      assert.equal(m!.body.responseType, responseType);
      assert.deepEqual(m!.body.context, context(1));
      assert.equal(m!.body.providerMessageId, 'SM0001');
      assert.equal(m!.messageId, interactionMessageId(m!.body));
      assert.equal(m!.messageId, `${context(1).activityRowId}:${responseType}`);
      if (s === 'failed') assert.equal(m!.body.detail?.code, '30006');
    });
  }

  for (const s of ['queued', 'sending', 'sent', 'accepted']) {
    it(`acknowledges ${s} and records nothing (dispatch recorded sent)`, async () => {
      const res = await post(app, statusUrl(token), status(s));
      assert.equal(res.statusCode, 204);
      assert.equal(h.interactions.sent.length, 0);
    });
  }

  it('a delivered status needs no Dataverse read, and teaches the tile: a click on the message then reads nothing either', async () => {
    assert.equal((await post(app, statusUrl(token), status('delivered'))).statusCode, 204);
    const click = await app.inject({ method: 'GET', url: `/l/${sealLink(context(1), 0, KEYS)}` });
    assert.equal(click.statusCode, 302);
    assert.deepEqual(h.directory.activityReads, []);
    assert.deepEqual(
      h.interactions.kept().map((m) => [m.body.responseType, m.body.context]),
      [
        ['delivered', context(1)],
        ['opened', context(1)],
      ],
    );
  });

  it('a repeated callback sends the same MessageId: the bus keeps one', async () => {
    await post(app, statusUrl(token), status('delivered'));
    await post(app, statusUrl(token), status('delivered'));
    assert.equal(h.interactions.sent.length, 2);
    assert.equal(h.interactions.kept().length, 1);
  });

  it('accepts the previous auth token while rotating, and a token sealed with the second key', async () => {
    assert.equal((await post(app, statusUrl(token), status('delivered'), OLD_AUTH_TOKEN)).statusCode, 204);
    const older = sealContext(context(1), 'sms', { sign: KEYS.verify[1]!, verify: [] });
    assert.equal((await post(app, statusUrl(older), status('read'))).statusCode, 204);
    assert.equal(h.interactions.sent.length, 2);
  });

  const refusals: Array<[string, () => Promise<{ statusCode: number; body: string }>, number]> = [
    ['no signature', () => post(app, statusUrl(token), status('delivered'), null), 403],
    ['a forged signature', () => post(app, statusUrl(token), status('delivered'), 'not-the-token'), 403],
    [
      'a rotated-out auth token',
      () => post(app, statusUrl(token), status('delivered'), 'an-old-token-no-longer-set'),
      403,
    ],
    [
      'a body changed after signing',
      async () => {
        const form = new URLSearchParams(status('delivered'));
        const signature = twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${statusUrl(token)}`, form);
        form.set('MessageStatus', 'read');
        return app.inject({
          method: 'POST',
          url: statusUrl(token),
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
          payload: form.toString(),
        });
      },
      403,
    ],
    [
      'a tampered token (re-signed by the caller)',
      () =>
        post(
          app,
          statusUrl(`${token.slice(0, 20)}${token[20] === 'A' ? 'B' : 'A'}${token.slice(21)}`),
          status('delivered'),
        ),
      403,
    ],
    ['a truncated token', () => post(app, statusUrl(token.slice(0, 30)), status('delivered')), 400],
    ['no token', () => post(app, '/callbacks/sms/twilio/status', status('delivered')), 400],
    [
      'a token of a rotated-out key',
      () => post(app, statusUrl(sealContext(context(1), 'sms', OLD_KEYS)), status('delivered')),
      403,
    ],
    [
      'a token of another channel',
      () => post(app, statusUrl(sealContext(context(1), 'tg', KEYS)), status('delivered')),
      403,
    ],
    ['an unknown channel', () => post(app, statusUrl(token, 'nope'), status('delivered')), 404],
    [
      'a channel without callbacks',
      () => post(app, statusUrl(token, 'quiet'), status('delivered'), 'quiet-token'),
      404,
    ],
    ['a channel of another provider', () => post(app, statusUrl(token, 'tg'), status('delivered')), 404],
    ['GET', () => app.inject({ method: 'GET', url: statusUrl(token) }), 405],
    ['a body above the limit', () => post(app, statusUrl(token), status('delivered', { Pad: 'x'.repeat(5000) })), 413],
  ];
  for (const [what, request, code] of refusals) {
    it(`refuses ${what} with ${code}, records nothing and shows nothing`, async () => {
      const res = await request();
      assert.equal(res.statusCode, code);
      assert.equal(h.interactions.sent.length, 0);
      assert.equal(h.outbound.sent.length, 0);
      for (const leak of [context(1).contactId, context(1).activityRowId, PHONE, AUTH_TOKEN])
        assert.ok(!res.body.includes(leak), res.body);
      assert.match(res.body, /^\{"error":"[a-z ]+"\}$/);
    });
  }

  it('logs why a signature was refused (missing or mismatch), not redacted', async () => {
    await post(app, statusUrl(token), status('delivered'), null);
    await post(app, statusUrl(token), status('delivered'), 'not-the-token');
    const reasons = h.logs
      .lines()
      .filter((l) => String(l['message']).includes('twilio callback refused'))
      .map((l) => l['reason']);
    assert.deepEqual(reasons, ['missing', 'mismatch']);
  });

  it('405 names the method that is allowed', async () => {
    const res = await app.inject({
      method: 'PUT',
      url: '/callbacks/sms/twilio/inbound',
      payload: 'a=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.statusCode, 405);
    assert.equal(res.headers['allow'], 'POST');
  });

  describe('inbound', () => {
    const reply = (body: string, sid = 'SMin001', from = PHONE) =>
      post(app, '/callbacks/sms/twilio/inbound', { MessageSid: sid, From: from, To: SMS.sender, Body: body });

    it('STOP sets the compliance field, sends one confirmation through outbound, records no interaction', async () => {
      const res = await reply('Stop please');
      assert.equal(res.statusCode, 200);
      assert.equal(res.body, EMPTY_TWIML);
      assert.match(String(res.headers['content-type']), /xml/);
      assert.deepEqual(h.directory.updates, [
        { contactId: h.directory.contacts[0]!['contactid'], values: { sample_optout: true } },
      ]);
      assert.equal(h.outbound.sent.length, 1);
      const [c] = h.outbound.sent;
      assert.equal(c!.body.purpose, 'confirmation');
      assert.equal(c!.body.to, PHONE);
      assert.equal(c!.body.text, 'You are unsubscribed.');
      assert.equal(c!.sessionId, SMS.senderKey);
      assert.equal(c!.messageId, c!.body.key);
      assert.equal(h.interactions.sent.length, 0);
    });

    it('a repeated STOP (same MessageSid) leads to one confirmation on the bus', async () => {
      await reply('STOP');
      await reply('STOP');
      assert.equal(h.outbound.kept().length, 1);
      assert.equal(h.directory.contacts[0]!['sample_optout'], true);
    });

    it('START clears the compliance field and confirms (the message fetched from Twilio matches and is recent)', async () => {
      h.directory.contacts[0]!['sample_optout'] = true;
      h.twilio.receive('SMin001', PHONE, SMS.sender, 'start');
      await reply('start');
      assert.deepEqual(h.twilio.calls, ['SMin001']);
      assert.equal(h.directory.contacts[0]!['sample_optout'], false);
      assert.equal(h.outbound.sent[0]!.body.text, 'You are subscribed.');
    });

    describe('a number two contacts share', () => {
      const SECOND = '22222222-2222-4333-8444-555555555555';
      beforeEach(() => h.directory.contacts.push({ contactid: SECOND, mobilephone: PHONE, sample_optout: false }));

      it('STOP opts out every contact holding it and sends one confirmation', async () => {
        const res = await reply('STOP');
        assert.equal(res.statusCode, 200);
        assert.deepEqual(
          h.directory.updates.map((u) => u.contactId).sort(),
          [h.directory.contacts[0]!['contactid'], SECOND].sort(),
        );
        assert.ok(h.directory.contacts.every((c) => c['sample_optout'] === true));
        assert.equal(h.outbound.sent.length, 1);
        assert.equal(h.outbound.sent[0]!.body.to, PHONE);
        assert.equal(h.interactions.sent.length, 0);
      });
      it('START opts every holder in again with one confirmation', async () => {
        for (const c of h.directory.contacts) c['sample_optout'] = true;
        h.twilio.receive('SMin001', PHONE, SMS.sender, 'START');
        await reply('START');
        assert.ok(h.directory.contacts.every((c) => c['sample_optout'] === false));
        assert.equal(h.outbound.sent.length, 1);
      });
      it('a keyword is not recorded (whose reply it is cannot be told)', async () => {
        assert.equal((await reply('YES')).statusCode, 200);
        assert.equal(h.interactions.sent.length + h.outbound.sent.length + h.directory.updates.length, 0);
      });
    });

    it('a keyword is recorded on the most recent activity as the custom response type with its TriggerKeyword', async () => {
      const res = await reply('yes!');
      assert.equal(res.statusCode, 200);
      assert.equal(h.interactions.sent.length, 1);
      const [m] = h.interactions.sent;
      assert.equal(m!.body.responseType, 'keyword');
      assert.equal(m!.body.triggerKeyword, 'YES');
      assert.deepEqual(m!.body.context, context(2));
      assert.equal(m!.messageId, `${context(2).activityRowId}:keyword:yes`);
    });

    it('a repeated STOP reads again (every holder of now) and writes nothing: the contact is opted out already', async () => {
      await reply('STOP');
      await reply('STOP', 'SMin002');
      assert.deepEqual(h.directory.calls, ['contactsByAddress', 'updateContact', 'contactsByAddress']);
      assert.equal(h.outbound.kept().length, 2, 'each STOP is confirmed');
    });

    it('free text is acknowledged and not recorded', async () => {
      assert.equal((await reply('what is this about')).statusCode, 200);
      assert.equal(h.interactions.sent.length + h.outbound.sent.length + h.directory.updates.length, 0);
    });

    it('an unknown sender is acknowledged, nothing recorded, the number masked in the log', async () => {
      const res = await reply('STOP', 'SMin002', '+15559876543');
      assert.equal(res.statusCode, 200);
      assert.equal(h.interactions.sent.length + h.outbound.sent.length + h.directory.updates.length, 0);
      assert.ok(!h.logs.text.includes('+15559876543') && !h.logs.text.includes('15559876543'));
      assert.ok(h.logs.lines().some((l) => l['sender'] === '+*******6543'));
    });

    it('a forged inbound is refused with 403 and changes nothing', async () => {
      const res = await post(
        app,
        '/callbacks/sms/twilio/inbound',
        { MessageSid: 'SMx', From: PHONE, Body: 'STOP' },
        'forged',
      );
      assert.equal(res.statusCode, 403);
      assert.equal(h.directory.updates.length + h.outbound.sent.length, 0);
    });

    it('a failing queue answers 503 and logs no number', async () => {
      h.outbound.failWith = new Error(`send to ${PHONE} failed`);
      const res = await reply('STOP');
      assert.equal(res.statusCode, 503);
      assert.equal(res.body, '{"error":"unavailable"}');
    });
  });

  it('counts requests by route and outcome', async () => {
    await post(app, statusUrl(token), status('delivered'));
    await post(app, statusUrl(token), status('delivered'), 'forged');
    const metric = await h.registry.getSingleMetric('channel_relay_callbacks_received_total')!.get();
    const value = (outcome: string): number | undefined =>
      metric.values.find((v) => v.labels['route'] === 'twilio-status' && v.labels['outcome'] === outcome)?.value;
    assert.equal(value('recorded'), 1);
    assert.equal(value('forbidden'), 1);
  });
});

describe('callbacks: keyword replies from the reply cache', () => {
  const HOUR = 3_600_000;
  let h: Harness;
  let app: FastifyInstance;
  let now: number;
  /** A status callback of message `n` sent at `sentAt` to `to`, on `channel`. */
  const report = (n: number, sentAt: number, s = 'delivered', to = PHONE, channel = 'sms') =>
    post(app, statusUrl(sealContext(context(n), channel, KEYS, sentAt), channel), status(s, { To: to }));
  const reply = (body: string, from = PHONE, sid = 'SMin001') =>
    post(app, '/callbacks/sms/twilio/inbound', { MessageSid: sid, From: from, To: SMS.sender, Body: body });
  /** The keyword interactions sent: their activity rows. */
  const keywordRows = (): string[] =>
    h.interactions.sent
      .filter((m) => m.body.responseType === 'keyword')
      .map((m) => (m.body.context.kind === 'marketing' ? m.body.context.activityRowId : m.body.context.requestId));
  beforeEach(() => {
    now = Date.UTC(2026, 11, 7, 12);
    h = harness({ now: () => now });
    app = createCallbacksServer(h.deps).app;
    // The directory's newest activity of the contact is message 2 (a read finds it); message 1 is older.
  });
  afterEach(() => app.close());

  it('a keyword reply after a status callback of the message sent to its number reads nothing', async () => {
    assert.equal((await report(2, now - 60_000)).statusCode, 204);
    const res = await reply('yes');
    assert.equal(res.statusCode, 200);
    assert.deepEqual(h.directory.calls, []);
    assert.deepEqual(keywordRows(), [context(2).activityRowId]);
    const [m] = h.interactions.sent.filter((x) => x.body.responseType === 'keyword');
    assert.deepEqual(m!.body.context, context(2));
    assert.equal(m!.body.triggerKeyword, 'YES');
    assert.equal(m!.body.providerMessageId, 'SMin001');
  });

  it('any status teaches it, a failure or a sent too: the read would find that activity all the same', async () => {
    await report(2, now - 1000, 'sent');
    await reply('YES');
    await report(1, now, 'failed');
    await reply('YES', PHONE, 'SMin002');
    assert.deepEqual(keywordRows(), [context(2).activityRowId, context(1).activityRowId]);
    assert.deepEqual(h.directory.calls, []);
  });

  it('a report of an older message after a newer one does not replace it (send times compared, not arrival)', async () => {
    await report(2, now - 1000);
    await report(1, now - 2000, 'read');
    await reply('YES');
    assert.deepEqual(keywordRows(), [context(2).activityRowId]);
    assert.deepEqual(h.directory.calls, []);
  });

  it('a miss reads as before: no report, a token without a send time, another number, another channel', async () => {
    await post(app, statusUrl(sealContext(context(1), 'sms', KEYS)), status('delivered'));
    await report(1, now - 1000, 'delivered', '+15550001111');
    await report(1, now - 1000, 'delivered', PHONE, 'ct');
    await reply('YES');
    assert.deepEqual(h.directory.calls, ['contactsByAddress', 'latestActivities']);
    assert.deepEqual(keywordRows(), [context(2).activityRowId]);
  });

  it('only a verified report teaches it: a forged signature or a token that does not open teaches nothing', async () => {
    const sealed = sealContext(context(1), 'sms', KEYS, now - 1000);
    assert.equal((await post(app, statusUrl(sealed), status('delivered'), 'not-the-auth-token')).statusCode, 403);
    const foreign = sealContext(context(1), 'sms', OLD_KEYS, now - 1000);
    assert.equal((await post(app, statusUrl(foreign), status('delivered'))).statusCode, 403);
    await reply('YES');
    assert.deepEqual(h.directory.calls, ['contactsByAddress', 'latestActivities']);
    assert.deepEqual(keywordRows(), [context(2).activityRowId]);
  });

  it('a message sent longer than 24 h ago is not used (a number may have changed hands): the reply reads', async () => {
    await report(1, now - 1000);
    now += 24 * HOUR - 1001;
    await reply('YES');
    assert.deepEqual(h.directory.calls, []);
    now += 2;
    await reply('YES', PHONE, 'SMin002');
    assert.deepEqual(h.directory.calls, ['contactsByAddress', 'latestActivities']);
    assert.deepEqual(keywordRows(), [context(1).activityRowId, context(2).activityRowId]);
  });

  it('an opt-out reads every holder of the number now, whatever the cache knows', async () => {
    const SECOND = '22222222-2222-4333-8444-555555555555';
    h.directory.contacts.push({ contactid: SECOND, mobilephone: PHONE, sample_optout: false });
    await report(2, now - 1000);
    await reply('STOP');
    assert.deepEqual(h.directory.calls, ['contactsByAddress', 'updateContact', 'updateContact']);
    assert.ok(h.directory.contacts.every((c) => c['sample_optout'] === true));
  });

  it('two replicas: each knows the messages whose callbacks reached it; one that missed the newer attributes to the older', async () => {
    // Replica B shares the directory (Dataverse) and the keys; the callbacks of message 2 (newer) all reach B.
    const b = harness({ now: () => now });
    b.deps.directory = h.directory;
    const appB = createCallbacksServer(b.deps).app;
    try {
      await report(1, now - 2000);
      await post(appB, statusUrl(sealContext(context(2), 'sms', KEYS, now - 1000)), status('delivered'));
      await reply('YES');
      await post(appB, '/callbacks/sms/twilio/inbound', {
        MessageSid: 'SMin2',
        From: PHONE,
        To: SMS.sender,
        Body: 'YES',
      });
      assert.deepEqual(keywordRows(), [context(1).activityRowId], 'replica A: the message it knows, the older');
      assert.deepEqual(
        b.interactions.sent.filter((m) => m.body.responseType === 'keyword').map((m) => m.body.context),
        [context(2)],
        'replica B: the newest, as a read would find',
      );
      assert.deepEqual(h.directory.calls, [], 'neither read');
    } finally {
      await appB.close();
    }
  });

  it('replyCache max 0: none, every keyword reply reads', async () => {
    await app.close();
    h = harness({ now: () => now, replyCache: { max: 0 } });
    app = createCallbacksServer(h.deps).app;
    await report(2, now - 1000);
    await reply('YES');
    assert.deepEqual(h.directory.calls, ['contactsByAddress', 'latestActivities']);
  });
});

describe('callbacks: Twilio routes with SharedKey signatures and parameter limits', () => {
  let h: Harness;
  let app: FastifyInstance;
  const path = `/callbacks/sms/twilio/status?t=${sealContext(context(1), 'sms', KEYS)}`;
  const form = (extra: Record<string, string> = {}): URLSearchParams =>
    new URLSearchParams({ MessageSid: 'SM0001', MessageStatus: 'delivered', To: PHONE, From: SMS.sender, ...extra });
  const post = (params: URLSearchParams, headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: params.toString(),
    });
  const settings = {
    'x-twilio-webhooks-signature-settings': 'key=KS00000000000000000000000000000001,algorithm=HMAC_SHA256',
  };

  beforeEach(() => {
    h = harness();
    app = createCallbacksServer(h.deps).app;
  });
  afterEach(() => app.close());

  it('records a status callback signed with the SharedKey and HMAC-SHA256, as the settings header says', async () => {
    const res = await post(form(), {
      ...settings,
      'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256'),
    });
    assert.equal(res.statusCode, 204);
    assert.equal(h.interactions.sent.length, 1);
  });

  it('records a status callback Twilio signed with the default port written out', async () => {
    const res = await post(form(), {
      'x-twilio-signature': twilioSignature(AUTH_TOKEN, `https://relay.example.com:443${path}`, form()),
    });
    assert.equal(res.statusCode, 204);
  });

  const refusals: Array<[string, () => Record<string, string>, string]> = [
    [
      'the settings header with an auth-token signature',
      () => ({
        ...settings,
        'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256'),
      }),
      'mismatch',
    ],
    [
      'a SharedKey signature without the settings header',
      () => ({ 'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256') }),
      'mismatch',
    ],
    [
      'an algorithm this service does not know',
      () => ({
        'x-twilio-webhooks-signature-settings': 'key=KS1,algorithm=HMAC_SHA512',
        'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256'),
      }),
      'unsupported-algorithm',
    ],
  ];
  for (const [what, headers, reason] of refusals) {
    it(`refuses ${what} (403, reason ${reason})`, async () => {
      const res = await post(form(), headers());
      assert.equal(res.statusCode, 403);
      assert.equal(h.interactions.sent.length, 0);
      const logged = h.logs
        .lines()
        .filter((l) => String(l['message']).includes('twilio callback refused'))
        .map((l) => l['reason']);
      assert.deepEqual(logged, [reason]);
    });
  }

  it('refuses the settings header on a channel without a SharedKey secret (403, reason no-shared-key)', async () => {
    const { sharedKeySecret: _, ...callbacks } = SMS.callbacks!;
    const channel = { ...SMS, callbacks };
    h = harness({ channels: { byName: (n) => (n === 'sms' ? channel : undefined), all: () => [channel] } });
    await app.close();
    app = createCallbacksServer(h.deps).app;
    const res = await post(form(), {
      ...settings,
      'x-twilio-signature': twilioSignature(SHARED_KEY, `${PUBLIC_BASE}${path}`, form(), 'HMAC_SHA256'),
    });
    assert.equal(res.statusCode, 403);
    assert.deepEqual(
      h.logs
        .lines()
        .filter((l) => String(l['message']).includes('twilio callback refused'))
        .map((l) => l['reason']),
      ['no-shared-key'],
    );
  });

  it(`refuses a body of more than ${MAX_TWILIO_PARAMETERS} parameters before its signature (400), even when signed`, async () => {
    const extra = Object.fromEntries(Array.from({ length: MAX_TWILIO_PARAMETERS - 3 }, (_, i) => [`P${i}`, '']));
    const params = form(extra);
    assert.equal([...params.keys()].length, MAX_TWILIO_PARAMETERS + 1);
    const res = await post(params, {
      'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, params),
    });
    assert.equal(res.statusCode, 400);
    assert.equal(h.interactions.sent.length, 0);
    const line = h.logs.lines().find((l) => String(l['message']).includes('more parameters than Twilio sends'));
    assert.equal(line?.['fields'], MAX_TWILIO_PARAMETERS + 1);
    params.delete('P0');
    const accepted = await post(params, {
      'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${path}`, params),
    });
    assert.equal(accepted.statusCode, 204, `${MAX_TWILIO_PARAMETERS} parameters are accepted`);
  });
});
