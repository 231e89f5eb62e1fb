import assert from 'node:assert/strict';
import { ServiceBusClient, type ServiceBusMessage, type ServiceBusReceivedMessage } from '@azure/service-bus';
import Long from 'long';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/program.js';
import { startServiceBusEmulator, type ServiceBusEmulator } from '../../src/emulators/servicebus/index.js';
import { peekDeadLetters, replayDeadLetters } from '../../src/servicebus/index.js';
import { recordingIo } from '../helpers/cli.js';
import { closedAfterEach } from '../helpers/fixtures.js';
import { bodyBytes, eventFixture } from '../unit/dataverse/fixtures.js';
import { emulatorConfig } from './emulators/servicebus/helpers.js';

const PHONE = '+4915112345678';
const DUPLICATE_NOTE =
  /outbound and interactions require duplicate detection .* drops, without an error, a replayed message whose id the queue saw within its window, and its dead letter would then be completed and lost\. So replay leaves in the dead-letter queue every dead letter enqueued less than --duplicate-window ago .*the SDK cannot read a queue's window.* --force replays them anyway/;
const SKIPPED = /skipped \d+ dead letters? enqueued less than/;

interface Dead {
  message: ServiceBusMessage;
  reason: string;
  description: string;
}

describe('channel-relay dead-letters (against the Service Bus emulator)', function () {
  this.timeout(20_000);
  const track = closedAfterEach();
  let emulator: ServiceBusEmulator;
  let client: ServiceBusClient;

  beforeEach(async () => {
    emulator = track(
      await startServiceBusEmulator({
        port: 0,
        tickMs: 20,
        config: emulatorConfig({
          queues: {
            activities: {},
            // Sessions as in production; without duplicate detection, so that a replay with --duplicate-window 0 is not dropped.
            outbound: { RequiresSession: true },
            interactions: { RequiresDuplicateDetection: true, DuplicateDetectionHistoryTimeWindow: 'PT10M' },
            'relay-activities': {},
          },
        }),
      }),
    );
    client = track(
      new ServiceBusClient(emulator.connectionString, { retryOptions: { maxRetries: 0, timeoutInMs: 5000 } }),
    );
  });

  const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string; lines: string[] }> => {
    const io = recordingIo({ SERVICEBUS_CONNECTION_STRING: emulator.connectionString });
    const code = await runCli(['dead-letters', ...args], io);
    return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n'), lines: io.stdout };
  };

  /** Sends the messages, then dead-letters each with its reason and description, one at a time. */
  async function deadLetter(queue: string, dead: Dead[], sessionId?: string): Promise<void> {
    await client.createSender(queue).sendMessages(dead.map((d) => d.message));
    const receiver =
      sessionId === undefined ? client.createReceiver(queue) : await client.acceptSession(queue, sessionId);
    let left = dead.length;
    while (left > 0) {
      for (const m of await receiver.receiveMessages(left, { maxWaitTimeInMs: 2000 })) {
        const d = dead.find((x) => x.message.messageId === m.messageId);
        assert.ok(d, `sent ${String(m.messageId)}`);
        await receiver.deadLetterMessage(m, { deadLetterReason: d.reason, deadLetterErrorDescription: d.description });
        left -= 1;
      }
    }
    await receiver.close();
  }

  async function peekDlq(queue: string): Promise<ServiceBusReceivedMessage[]> {
    const receiver = client.createReceiver(queue, { subQueueType: 'deadLetter' });
    const all = await receiver.peekMessages(100, { fromSequenceNumber: Long.ZERO });
    await receiver.close();
    return all;
  }

  async function peekQueue(queue: string): Promise<ServiceBusReceivedMessage[]> {
    const receiver = client.createReceiver(queue, { skipParsingBodyAsJson: true });
    const all = await receiver.peekMessages(100, { fromSequenceNumber: Long.ZERO });
    await receiver.close();
    return all;
  }

  const activity = eventFixture('activity-create');
  /** The fixture's activity row and the journey tile's id (its msdyncrm_activityid, shared by the tile's rows). */
  const ROW = '568479a8-9e30-4f29-8aa5-28eba296aae2';
  const TILE = 'c77b106f-2d04-4d9d-b106-bf8ec6245a10';
  /** The `RequestId` of the fixture's real-time outbound payload. */
  const REQUEST = 'e1cd8894-47a9-421a-95da-dc197893f203';
  const realtime = eventFixture('realtime-outbound');
  const sentAt = new Date('2026-11-22T01:00:00.000Z');
  const activityDeads = (): Dead[] => [
    {
      message: {
        messageId: activity.messageId,
        body: bodyBytes(activity),
        contentType: activity.contentType,
        subject: 'Create',
        correlationId: 'corr-1',
        applicationProperties: { ...(activity.applicationProperties as Record<string, string>), sentAt },
      },
      reason: 'ContactNotFound',
      description: `contact 11111111-2222-3333-4444-555555555555 (msdyncrm_contact of activity row ${ROW}) does not exist`,
    },
    {
      message: { messageId: realtime.messageId, body: bodyBytes(realtime), contentType: realtime.contentType },
      reason: 'EventUnknownChannel',
      description: `request ${REQUEST.slice(0, 8)} names no configured channel for ${PHONE}; the channels are: sms, telegram`,
    },
    {
      message: {
        messageId: 'broken-1',
        body: Buffer.from('{"MessageName": "Create", oops'),
        contentType: 'application/json',
      },
      reason: 'EventUndecodable',
      description: 'the body is not JSON (Expected double-quoted property name in JSON at position 27)',
    },
  ];

  const outbound = (key: string, to = PHONE): Record<string, unknown> => ({
    v: 1,
    key,
    channel: 'sms',
    to,
    text: 'Hello Ada, your code is 123456',
    purpose: 'journey',
    context: {
      kind: 'marketing',
      activityId: 'tile',
      activityRowId: key,
      contactId: 'c',
      journeyId: 'j',
      iterationId: 'i',
      entityType: 'cr_sms',
      entityId: 'e',
    },
    acceptedAt: 1,
  });

  it('list prints one block per dead letter (full reason and description, body summary, phone masked) and a count per reason; nothing is removed', async () => {
    await deadLetter('activities', activityDeads());
    const { code, out, err } = await cli('list', 'activities');
    assert.equal(code, 0, err);
    assert.equal(err, '');
    assert.doesNotMatch(out, /4915112345678/, 'no full phone number');
    const blocks = out.split(/\n(?=#\d+ )/);
    const block = (id: string): string =>
      blocks.find((b) => b.includes(`message id ${id}`)) ?? assert.fail(`no block for ${id} in\n${out}`);
    const a = block(activity.messageId);
    assert.match(a, /^#\d+ {2}enqueued \d{4}-\d\d-\d\dT[\d:.]+Z {2}message id \S+ {2}delivery count \d+/);
    assert.match(a, /reason: ContactNotFound/);
    assert.ok(
      a.includes(
        `description: contact 11111111-2222-3333-4444-555555555555 (msdyncrm_contact of activity row ${ROW}) does not exist`,
      ),
      a,
    );
    assert.ok(
      a.includes(`body: activity (activityRowId ${ROW}, activityId ${TILE}, entityType sample_specialmessage`),
      a,
    );
    const r = block(realtime.messageId);
    assert.ok(
      r.includes(
        `description: request ${REQUEST.slice(0, 8)} names no configured channel for +*********5678; the channels are: sms, telegram`,
      ),
      r,
    );
    assert.match(r, new RegExp(`body: realtime \\(requestId ${REQUEST}, channelDefinitionId`));
    assert.match(r, /body: realtime \(requestId \S+, channelDefinitionId \S+, from \+\*+0001, to \+\*{9}5678\)/);
    assert.match(
      block('broken-1'),
      /body: unreadable \(bytes 30, contentType application\/json, error the body is not valid JSON/,
    );
    assert.match(
      out,
      /activities: 3 dead letters; 3 matched, 3 shown\n {2}ContactNotFound: 1\n {2}EventUndecodable: 1\n {2}EventUnknownChannel: 1$/,
    );
    assert.equal((await peekDlq('activities')).length, 3, 'list only peeks');
    const again = await cli('list', 'activities');
    assert.match(again.out, /3 dead letters/);
  });

  it('list --reason and --limit filter what is shown, --json prints JSON lines with the counts over the whole queue', async () => {
    await deadLetter('activities', activityDeads());
    const byReason = await cli('list', 'activities', '--reason', 'EventUndecodable');
    assert.equal(byReason.code, 0);
    assert.equal((byReason.out.match(/^#\d+ /gm) ?? []).length, 1);
    assert.match(byReason.out, /message id broken-1/);
    assert.match(byReason.out, /3 dead letters; 1 with reason EventUndecodable matched, 1 shown/);

    const json = await cli('list', 'activities', '--json', '--limit', '2');
    assert.equal(json.code, 0);
    const lines = json.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => l['type']),
      ['deadLetter', 'deadLetter', 'summary'],
    );
    assert.deepEqual(lines[2], {
      type: 'summary',
      queue: 'activities',
      scanned: 3,
      matched: 3,
      shown: 2,
      byReason: { ContactNotFound: 1, EventUnknownChannel: 1, EventUndecodable: 1 },
    });
    const first = lines[0] as Record<string, unknown>;
    assert.equal(first['messageId'], activity.messageId);
    assert.equal(first['reason'], 'ContactNotFound');
    assert.equal(first['deliveryCount'], 0);
    assert.equal((first['body'] as Record<string, unknown>)['activityRowId'], ROW);
    assert.equal((first['body'] as Record<string, unknown>)['activityId'], TILE);
    assert.equal((lines[1]?.['body'] as Record<string, unknown>)['to'], '+*********5678');
    assert.doesNotMatch(json.out, /4915112345678/);
  });

  it("list outbound summarizes the relay's message: key, channel, masked recipient; never the text", async () => {
    await deadLetter(
      'outbound',
      [
        {
          message: { messageId: 'act-1', sessionId: 'sms:+4915100000001', body: outbound('act-1') },
          reason: 'ProviderRetriesExhausted',
          description: 'twilio: 503 after 5 calls',
        },
      ],
      'sms:+4915100000001',
    );
    const { code, out } = await cli('list', 'outbound');
    assert.equal(code, 0);
    assert.match(out, /session: sms:\+\*{9}0001/);
    assert.match(
      out,
      /body: outbound \(key act-1, channel sms, to \+\*{9}5678, purpose journey, activityRowId act-1, activityId tile\)/,
    );
    assert.doesNotMatch(out, /4915112345678|your code/);
  });

  it('replay --reason sends exactly those back with body, content type, properties, ids and subject; the rest stay dead letters', async () => {
    await deadLetter('activities', activityDeads());
    const { code, out, err } = await cli('replay', 'activities', '--reason', 'ContactNotFound');
    assert.equal(code, 0, err);
    assert.match(
      out,
      new RegExp(
        `^replayed 1 of 1: #\\d+ message id ${activity.messageId}, reason ContactNotFound: activity \\(activityRowId ${ROW}, activityId ${TILE}`,
        'm',
      ),
    );
    assert.match(out, /replayed 1 of 1 planned to activities; 2 dead letters left in the dead-letter queue/);
    assert.doesNotMatch(out, DUPLICATE_NOTE, 'activities does not detect duplicates');

    const [back, ...more] = await peekQueue('activities');
    assert.equal(more.length, 0);
    assert.ok(back);
    assert.equal(back.messageId, activity.messageId);
    assert.deepEqual(back.body, bodyBytes(activity), 'the same bytes');
    assert.equal(back.contentType, 'application/json');
    assert.equal(back.subject, 'Create');
    assert.equal(back.correlationId, 'corr-1');
    const props = back.applicationProperties ?? {};
    assert.equal(
      props['http://schemas.microsoft.com/xrm/2011/Claims/EntityLogicalName'],
      'msdyncrm_customerjourneycustomchannelactivity',
    );
    assert.equal(props['sentAt'], sentAt.getTime());
    assert.equal(props['DeadLetterReason'], undefined);
    assert.equal(props['DeadLetterErrorDescription'], undefined);

    const rest = await peekDlq('activities');
    assert.deepEqual(rest.map((m) => m.messageId).sort(), ['broken-1', realtime.messageId].sort());
    assert.deepEqual(
      rest.map((m) => m.deadLetterReason).sort(),
      ['EventUndecodable', 'EventUnknownChannel'],
      'left with their reasons',
    );
  });

  it('replay --message-id keeps the session; InteractionNotSent dead letters of outbound are never replayed', async () => {
    const session = 'sms:+4915100000001';
    await deadLetter(
      'outbound',
      [
        {
          message: { messageId: 'act-1', sessionId: session, body: outbound('act-1') },
          reason: 'ProviderRetriesExhausted',
          description: 'twilio: 503',
        },
        {
          message: { messageId: 'act-2', sessionId: session, body: outbound('act-2') },
          reason: 'ProviderRetriesExhausted',
          description: 'twilio: 503',
        },
        {
          message: { messageId: 'act-3', sessionId: session, body: outbound('act-3') },
          reason: 'ProviderRetriesExhausted',
          description: 'twilio: 503',
        },
        {
          message: { messageId: 'act-4', sessionId: session, body: outbound('act-4') },
          reason: 'InteractionNotSent',
          description: 'send this interaction to interactions: {}',
        },
      ],
      session,
    );
    const refused = await cli('replay', 'outbound', '--reason', 'InteractionNotSent');
    assert.equal(refused.code, 2);
    assert.match(refused.err, /InteractionNotSent dead letters of outbound are never replayed to outbound/);

    const { code, out, err } = await cli(
      'replay',
      'outbound',
      '--message-id',
      'act-1',
      'act-3',
      'act-4',
      '--duplicate-window',
      '0',
    );
    assert.equal(code, 0, err);
    assert.match(out, /replayed 1 of 2: #\d+ message id act-1/);
    assert.match(out, /replayed 2 of 2: #\d+ message id act-3/);
    assert.match(out, /replayed 2 of 2 planned to outbound; 2 dead letters left/);
    assert.match(out, /note: 1 InteractionNotSent dead letters of outbound are never replayed/);
    assert.doesNotMatch(out, SKIPPED);

    const receiver = await client.acceptSession('outbound', session, { skipParsingBodyAsJson: true });
    const got = await receiver.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    assert.deepEqual(
      got.map((m) => [m.messageId, m.sessionId]),
      [
        ['act-1', session],
        ['act-3', session],
      ],
    );
    assert.deepEqual(JSON.parse((got[0]?.body as Buffer).toString('utf8')), outbound('act-1'));
    for (const m of got) await receiver.completeMessage(m);
    await receiver.close();
    assert.deepEqual((await peekDlq('outbound')).map((m) => m.messageId).sort(), ['act-2', 'act-4']);
  });

  it('replay leaves ProviderAnswerUnreadable dead letters of outbound (maybe sent) unless asked for by name', async () => {
    const session = 'sms:+4915100000001';
    await deadLetter(
      'outbound',
      [
        {
          message: { messageId: 'act-5', sessionId: session, body: outbound('act-5') },
          reason: 'ProviderRetriesExhausted',
          description: 'twilio: 503',
        },
        {
          message: { messageId: 'act-6', sessionId: session, body: outbound('act-6') },
          reason: 'ProviderAnswerUnreadable',
          description: 'twilio answered 201 without a message sid',
        },
      ],
      session,
    );
    const broad = await cli('replay', 'outbound', '--duplicate-window', '0');
    assert.equal(broad.code, 0, broad.err);
    assert.match(broad.out, /replayed 1 of 1 planned to outbound/);
    assert.match(
      broad.out,
      /note: 1 ProviderAnswerUnreadable dead letters of outbound may have been sent .*\(--reason ProviderAnswerUnreadable\)/,
    );
    assert.deepEqual(
      (await peekDlq('outbound')).map((m) => m.messageId),
      ['act-6'],
    );

    const named = await cli('replay', 'outbound', '--reason', 'ProviderAnswerUnreadable', '--duplicate-window', 'PT0S');
    assert.equal(named.code, 0, named.err);
    assert.match(named.out, /replayed 1 of 1 planned to outbound/);
    assert.deepEqual(await peekDlq('outbound'), []);
    const receiver = await client.acceptSession('outbound', session, { skipParsingBodyAsJson: true });
    const got = await receiver.receiveMessages(2, { maxWaitTimeInMs: 2000 });
    assert.deepEqual(got.map((m) => m.messageId).sort(), ['act-5', 'act-6']);
    for (const m of got) await receiver.completeMessage(m);
    await receiver.close();
  });

  it('replay to a queue with duplicate detection skips dead letters within the window (and says when they become replayable); --force replays them, and the broker drops the repeat', async () => {
    const body = {
      v: 1,
      context: { kind: 'realtime', channelDefinitionId: 'cd', requestId: 'req-1', from: 'x', organizationId: 'o' },
      responseType: 'Sent',
      channel: 'sms',
      occurredAt: 1,
    };
    await deadLetter('interactions', [
      {
        message: { messageId: 'req-1:Sent', body },
        reason: 'DataverseBadRequest',
        description: 'msdyn_D365ChannelsNotification: bad request',
      },
    ]);
    const [dead] = await peekDlq('interactions');
    assert.ok(dead?.enqueuedTimeUtc);
    const replayableFrom = new Date(dead.enqueuedTimeUtc.getTime() + 10 * 60_000).toISOString();
    const line = `#\\d+ message id req-1:Sent, reason DataverseBadRequest: interaction \\(requestId req-1, channel sms, responseType Sent\\); replayable from ${replayableFrom.replace(/\./g, '\\.')} \\(in \\d+ min \\d+ s\\)`;

    const dry = await cli('replay', 'interactions', '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /^dry run: would replay 0 of 1 dead letter to interactions; nothing was changed$/m);
    assert.match(
      dry.out,
      new RegExp(
        `^would skip 1 dead letter enqueued less than PT10M \\(--duplicate-window\\) ago, left in the dead-letter queue: interactions may still remember its message id and would drop the replay without an error\n {2}${line}$`,
        'm',
      ),
    );

    const skipped = await cli('replay', 'interactions');
    assert.equal(skipped.code, 0, skipped.err);
    assert.match(
      skipped.out,
      /^replayed 0 of 0 planned to interactions; 1 dead letter left in the dead-letter queue$/m,
    );
    assert.match(
      skipped.out,
      new RegExp(
        `^skipped 1 dead letter enqueued less than PT10M \\(--duplicate-window\\) ago, left in the dead-letter queue: .*\n {2}${line}$`,
        'm',
      ),
    );
    assert.match(
      skipped.out.replace(/\s+/g, ' '),
      /note: replay it from then on \(run replay again\), or now with --force, .* give it with --duplicate-window \(the SDK cannot read it\)/,
    );
    assert.deepEqual(
      (await peekDlq('interactions')).map((m) => [m.messageId, m.deliveryCount]),
      [['req-1:Sent', dead.deliveryCount]],
      'left untouched',
    );
    assert.equal((await peekQueue('interactions')).length, 0);

    const forced = await cli('replay', 'interactions', '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.match(
      forced.out,
      /replayed 1 of 1: #\d+ message id req-1:Sent, reason DataverseBadRequest: interaction \(requestId req-1, channel sms, responseType Sent\)/,
    );
    assert.doesNotMatch(forced.out, SKIPPED);
    assert.match(
      forced.err.replace(/\s+/g, ' '),
      /^warning: --force: replayed 1 dead letter enqueued less than PT10M \(--duplicate-window\) ago: interactions dropped, without an error, any whose message id it still remembered, .* check that they arrived: #\d+ \(message id req-1:Sent\)$/,
    );
    assert.equal((await peekQueue('interactions')).length, 0, 'the broker dropped the repeat: what the skip prevents');
    assert.equal((await peekDlq('interactions')).length, 0);
  });

  it('replay --dry-run lists what it would replay and changes nothing', async () => {
    await deadLetter('activities', activityDeads());
    const before = (await peekDlq('activities')).map((m) => [m.sequenceNumber?.toString(), m.deliveryCount]);
    const { code, out } = await cli('replay', 'activities', '--dry-run', '--limit', '2');
    assert.equal(code, 0);
    assert.match(out, /^dry run: would replay 2 of 3 dead letters to activities; nothing was changed$/m);
    assert.equal((out.match(/^ {2}#\d+ message id /gm) ?? []).length, 2);
    assert.deepEqual(
      (await peekDlq('activities')).map((m) => [m.sequenceNumber?.toString(), m.deliveryCount]),
      before,
    );
    assert.equal((await peekQueue('activities')).length, 0);

    // activities has no duplicate detection: a window applies only when given (an operator whose queue has one).
    assert.doesNotMatch(out, /would skip/);
    const windowed = await cli('replay', 'activities', '--dry-run', '--duplicate-window', '3600000');
    assert.equal(windowed.code, 0, windowed.err);
    assert.match(windowed.out, /^dry run: would replay 0 of 3 dead letters to activities; nothing was changed$/m);
    assert.match(
      windowed.out,
      /^would skip 3 dead letters enqueued less than PT1H \(--duplicate-window\) ago, left in the dead-letter queue: activities may still remember their message ids/m,
    );
    assert.equal(
      (windowed.out.match(/^ {2}#\d+ message id .*; replayable from \S+ \(in (?:1 h 0 min|59 min) \d+ s\)$/gm) ?? [])
        .length,
      3,
    );
    const forced = await cli('replay', 'activities', '--dry-run', '--duplicate-window', 'pt1h', '--force');
    assert.match(forced.out, /^dry run: would replay 3 of 3 dead letters to activities; nothing was changed$/m);
    assert.match(
      forced.err.replace(/\s+/g, ' '),
      /^warning: --force: would replay 3 dead letters enqueued less than PT1H \(--duplicate-window\) ago: activities drops, without an error, those whose message id it still remembers/,
    );
    assert.deepEqual(
      (await peekDlq('activities')).map((m) => [m.sequenceNumber?.toString(), m.deliveryCount]),
      before,
    );
  });

  it('replayDeadLetters with duplicateWindowMs leaves the dead letters enqueued within the window of now, with the time each becomes replayable', async () => {
    await deadLetter(
      'activities',
      [0, 1, 2].map((i) => ({
        message: { messageId: `w${i}`, body: { i } },
        reason: 'Replay',
        description: `number ${i}`,
      })),
    );
    const peeked = (await peekDeadLetters(client, 'activities')).matching;
    const enqueued = new Map(
      peeked.map((d) => [d.messageId, d.enqueuedTimeUtc?.getTime() ?? assert.fail('an enqueued time')]),
    );
    const windowMs = 10 * 60_000;
    const latest = Math.max(...enqueued.values());
    const earliest = Math.min(...enqueued.values());

    const early = await replayDeadLetters(client, 'activities', {
      duplicateWindowMs: windowMs,
      now: new Date(latest + 1000),
    });
    assert.deepEqual(early.planned, []);
    assert.deepEqual(early.replayed, []);
    assert.deepEqual(
      early.skipped.map((s) => [s.deadLetter.messageId, s.replayableAt?.getTime()]),
      ['w0', 'w1', 'w2'].map((id) => [id, (enqueued.get(id) ?? 0) + windowMs]),
    );
    assert.equal(early.failure, undefined);
    assert.deepEqual(await peekQueue('activities'), []);
    assert.deepEqual(
      (await peekDlq('activities')).map((m) => [m.messageId, m.deliveryCount]),
      peeked.map((d) => [d.messageId, d.deliveryCount]),
      'untouched',
    );

    // At the end of the earliest one's window: those enqueued then are replayable, the rest not yet.
    const now = earliest + windowMs;
    const due = peeked.filter((d) => (enqueued.get(d.messageId) ?? 0) + windowMs <= now).map((d) => d.messageId);
    const partial = await replayDeadLetters(client, 'activities', { duplicateWindowMs: windowMs, now: new Date(now) });
    assert.deepEqual(
      partial.replayed.map((d) => d.messageId),
      due,
    );
    assert.deepEqual(
      partial.skipped.map((s) => s.deadLetter.messageId),
      ['w0', 'w1', 'w2'].filter((id) => !due.includes(id)),
    );
    assert.deepEqual(
      (await peekQueue('activities')).map((m) => m.messageId),
      due,
    );

    const late = await replayDeadLetters(client, 'activities', {
      duplicateWindowMs: windowMs,
      now: new Date(latest + windowMs),
    });
    assert.deepEqual(late.skipped, []);
    assert.deepEqual(
      (await peekQueue('activities')).map((m) => m.messageId),
      ['w0', 'w1', 'w2'],
    );
    assert.deepEqual(await peekDlq('activities'), []);
  });

  it('replayDeadLetters goes past the dead letters it leaves, across receivers, and replays the oldest first up to limit', async () => {
    const reasons = ['Keep', 'Replay', 'Keep', 'Keep', 'Replay', 'Keep', 'Replay'];
    await deadLetter(
      'activities',
      reasons.map((reason, i) => ({
        message: { messageId: `m${i}`, body: { i } },
        reason,
        description: `number ${i}`,
      })),
    );
    const progress: string[] = [];
    const result = await replayDeadLetters(client, 'activities', {
      filter: { reason: 'Replay' },
      limit: 2,
      holdPerReceiver: 1,
      onReplayed: (p) => progress.push(`${p.done}/${p.total} ${String(p.deadLetter.messageId)}`),
    });
    assert.deepEqual(progress, ['1/2 m1', '2/2 m4']);
    assert.deepEqual(
      result.replayed.map((d) => d.messageId),
      ['m1', 'm4'],
    );
    assert.equal(result.failure, undefined);
    assert.equal(result.leftInPlace, 3, 'm0, m2 and m3 were received on the way and abandoned');
    assert.deepEqual(
      (await peekQueue('activities')).map((m) => m.messageId),
      ['m1', 'm4'],
    );
    const left = await peekDeadLetters(client, 'activities');
    assert.deepEqual(
      left.matching.map((d) => d.messageId),
      ['m0', 'm2', 'm3', 'm5', 'm6'],
    );
    assert.deepEqual(left.byReason, { Keep: 4, Replay: 1 });
    assert.deepEqual(
      left.matching.map((d) => d.description),
      ['number 0', 'number 2', 'number 3', 'number 5', 'number 6'],
    );
  });

  it('a configured queue name or its key names the queue; an unknown one lists the configured names', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-dl-'));
    try {
      writeFileSync(
        path.join(dir, 'relay.json'),
        JSON.stringify({
          serviceBus: {
            queues: { activities: 'relay-activities', outbound: 'outbound', interactions: 'interactions' },
          },
        }),
      );
      await deadLetter('relay-activities', [
        { message: { messageId: 'x1', body: 'x' }, reason: 'EventUndecodable', description: 'not an object' },
      ]);
      for (const name of ['relay-activities', 'activities']) {
        const io = recordingIo({ SERVICEBUS_CONNECTION_STRING: emulator.connectionString }, dir);
        assert.equal(
          await runCli(['dead-letters', 'list', name, '--config', 'relay.json'], io),
          0,
          io.stderr.join('\n'),
        );
        assert.match(io.stdout.join('\n'), /^relay-activities: 1 dead letter; 1 matched, 1 shown$/m);
      }
      const io = recordingIo(
        { SERVICEBUS_CONNECTION_STRING: emulator.connectionString, CHANNEL_RELAY_CONFIG: 'relay.json' },
        dir,
      );
      assert.equal(await runCli(['dead-letters', 'replay', 'intake'], io), 2);
      assert.match(
        io.stderr.join('\n'),
        /expected one of the configured queues relay-activities \(activities\), outbound, interactions, found 'intake'/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a bad queue name, bad options and no connection: exit 2 with every problem named and the known queues listed', async () => {
    const io = recordingIo({});
    assert.equal(
      await runCli(
        ['dead-letters', 'replay', 'outbox', '--limit', 'ten', '--reason', '', '--duplicate-window', '10m'],
        io,
      ),
      2,
    );
    const err = io.stderr.join('\n');
    assert.match(err, /dead-letters replay: 5 problems:/);
    assert.match(err, /--duplicate-window: expected milliseconds or an ISO 8601 duration such as PT10M, found '10m'/);
    assert.match(err, /no Service Bus connection: set SERVICEBUS_CONNECTION_STRING, or SERVICEBUS_NAMESPACE/);
    assert.match(err, /--limit: expected an integer of at least 1, found 'ten'/);
    assert.match(err, /--reason: expected a reason code/);
    assert.match(
      err,
      /<queue>: expected one of the configured queues activities, outbound, interactions, found 'outbox'/,
    );
    assert.deepEqual(io.stdout, []);

    const unknownOption = recordingIo({ SERVICEBUS_CONNECTION_STRING: emulator.connectionString });
    assert.equal(await runCli(['dead-letters', 'list', 'activities', '--frobnicate'], unknownOption), 2);
    assert.match(unknownOption.stderr.join(''), /unknown option '--frobnicate'/);
    assert.equal(await runCli(['dead-letters', 'list'], recordingIo()), 2, 'missing <queue>');
  });

  it('--help shows the usage lines and the duplicate-detection note', async () => {
    const io = recordingIo();
    assert.equal(await runCli(['dead-letters', 'replay', '--help'], io), 0);
    const help = io.stdout.join('');
    assert.match(help, /channel-relay dead-letters list <queue> \[--limit 50\] \[--reason CODE\] \[--json\]/);
    assert.match(
      help.replace(/\s+/g, ' '),
      /channel-relay dead-letters replay <queue> \[--reason CODE\] \[--message-id ID\.\.\.\] \[--limit N\] \[--duplicate-window PT10M\] \[--force\] \[--dry-run\]/,
    );
    assert.match(help, /--duplicate-window <duration>/);
    assert.match(help.replace(/\s+/g, ' '), DUPLICATE_NOTE);
  });

  it('a Service Bus that cannot be reached: exit 1 saying what failed', async () => {
    const port = emulator.port;
    await emulator.close();
    const io = recordingIo({
      SERVICEBUS_CONNECTION_STRING: `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=k;SharedAccessKey=TopSecret1=;UseDevelopmentEmulator=true;`,
    });
    assert.equal(await runCli(['dead-letters', 'list', 'activities'], io), 1);
    const err = io.stderr.join('\n');
    assert.match(err, /dead-letters list: Service Bus failed: /);
    assert.doesNotMatch(err, /TopSecret1/);
  });
});
