import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { loadChannels } from '../../../../src/channels/index.js';
import { createLogger, silentLogger } from '../../../../src/log.js';
import { configPath } from '../../../../src/paths.js';
import { activityRecord } from '../../../../src/dataverse/callback-directory.js';
import { activityContext } from '../../../../src/pipeline/callbacks/activity.js';
import { parseCallbackKeys, sealContext, sealLink } from '../../../../src/pipeline/callbacks/index.js';
import { twilioSignature } from '../../../../src/providers/index.js';
import type { InteractionMessage, OutboundMessage } from '../../../../src/pipeline/index.js';
import { startRelay, type RunningRelay } from '../../../../src/relay/index.js';
import { CaptureStream } from '../../../helpers/capture.js';
import { freePort } from '../../../../src/http/index.js';
import { waitFor } from '../../../helpers/wait.js';
import { client, receiveAll } from '../../emulators/dataverse/helpers.js';
import { SECRETS, SEED, startSystem, type System } from '../harness.js';

const PUBLIC = 'https://relay.example.test';

/** Receives (and deletes) `count` messages of one session of a session-enabled queue (`receiveAll` for the others). */
async function receiveSession(
  connectionString: string,
  queue: string,
  sessionId: string,
  count: number,
): Promise<ServiceBusReceivedMessage[]> {
  const bus = new ServiceBusClient(connectionString);
  const receiver = await bus.acceptSession(queue, sessionId, { receiveMode: 'receiveAndDelete' });
  const got: ServiceBusReceivedMessage[] = [];
  try {
    await waitFor(
      `${count} messages on ${queue}`,
      async () => {
        got.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 200 })));
        return got.length >= count ? true : undefined;
      },
      20_000,
    );
    got.push(...(await receiver.receiveMessages(10, { maxWaitTimeInMs: 300 })));
  } finally {
    await receiver.close();
    await bus.close();
  }
  return got;
}

/** A channels file with one Twilio channel `sms` with callbacks (keyword INFO), in the temporary folder. */
function writeSmsChannels(): string {
  const file = path.join(os.tmpdir(), `callbacks-channels-${process.pid}-${Date.now()}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      channels: [
        {
          name: 'sms',
          tile: configPath('tiles', 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml'),
          provider: {
            type: 'twilio',
            accountSid: 'AC00000000000000000000000000000001',
            authToken: 'env:TWILIO_AUTH_TOKEN',
          },
          sender: '+4915100000001',
          addressField: 'mobilephone',
          textField: 'sample_text',
          rateLimit: { messages: 10 },
          failureResponseType: 'failed',
          callbacks: { publicBaseUrl: PUBLIC, keywords: ['INFO'] },
        },
      ],
    }),
  );
  return file;
}

/**
 * The callbacks stage on the real clients: the Service Bus emulator receives the interactions and the confirmation,
 * the Dataverse emulator answers the attribution reads and keeps the compliance field set by an opt-out.
 */
describe('callbacks service with the emulators', function () {
  this.timeout(60_000);
  let system: System | undefined;
  let relay: RunningRelay | undefined;
  let channelsFile: string | undefined;
  afterEach(async () => {
    await relay?.close();
    await system?.close();
    if (channelsFile !== undefined) rmSync(channelsFile, { force: true });
    relay = system = channelsFile = undefined;
  });

  it('records a delivery report, a keyword reply and a click (each once), and opts a contact out with one confirmation', async () => {
    const s = (system = await startSystem());
    const keySecret = randomBytes(32).toString('base64');
    const keys = parseCallbackKeys(`k1:${keySecret}`, 'test');
    channelsFile = writeSmsChannels();
    const channels = loadChannels(channelsFile, { env: { ...SECRETS } });
    const port = await freePort();
    const config = structuredClone(s.config);
    config.callbacks = { ...config.callbacks, host: '127.0.0.1', port };
    const logs = new CaptureStream();
    relay = startRelay({
      stages: ['callbacks'],
      config,
      callbackKeys: keys,
      channels,
      log: createLogger({ level: 'debug', stream: logs, pretty: false }),
    });
    await waitFor(
      'the callbacks server listening',
      async () => (relay?.readiness().every((c) => c.ok) ? true : undefined),
      10_000,
    );
    const base = `http://127.0.0.1:${port}`;

    // Two contacts with one activity each (the journey of the seed, whose message has a link).
    const run = await s.runJourney(SEED.journey, 2);
    assert.equal(run.created.length, 2);
    const api = client(s.dv.url, 'e2e-admin');
    const rows = (
      await api.retrieveMultiple({
        collection: 'msdyncrm_customerjourneycustomchannelactivities',
        filter: `_msdyncrm_contact_value eq ${run.created[0]!.contactId}`,
      })
    ).value as Array<Record<string, unknown>>;
    const context = activityContext(activityRecord(rows[0]!));
    assert.ok(context, 'the activity row gives a context');
    const phone = (id: string): Promise<string> =>
      api
        .retrieve({ collection: 'contacts', key: id, select: ['mobilephone'] })
        .then((r) => (r as { mobilephone: string }).mobilephone);
    const [phone1, phone2] = [await phone(run.created[0]!.contactId), await phone(run.created[1]!.contactId)];
    // A third contact shares the second one's number: a STOP from it opts both out (one confirmation).
    const sharing = (await api.create({
      collection: 'contacts',
      data: { firstname: 'Sharing', lastname: 'Number', mobilephone: phone2, donotphone: false },
      returnRepresentation: true,
    })) as { contactid: string };

    const twilio = async (url: string, params: Record<string, string>): Promise<Response> => {
      const form = new URLSearchParams(params);
      return fetch(`${base}${url}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `${PUBLIC}${url}`, form),
        },
        body: form.toString(),
      });
    };
    const token = sealContext(context, 'sms', keys);
    assert.equal(
      (await twilio(`/callbacks/sms/twilio/status?t=${token}`, { MessageSid: 'SM1', MessageStatus: 'delivered' }))
        .status,
      204,
    );
    assert.equal(
      (await twilio(`/callbacks/sms/twilio/status?t=${token}`, { MessageSid: 'SM1', MessageStatus: 'delivered' }))
        .status,
      204,
      'a repeat',
    );
    assert.equal(
      (await twilio('/callbacks/sms/twilio/inbound', { MessageSid: 'SMin1', From: phone1, Body: 'info' })).status,
      200,
    );
    assert.equal(
      (await twilio('/callbacks/sms/twilio/inbound', { MessageSid: 'SMin2', From: phone2, Body: 'STOP' })).status,
      200,
    );
    assert.equal(
      (await twilio('/callbacks/sms/twilio/inbound', { MessageSid: 'SMin2', From: phone2, Body: 'STOP' })).status,
      200,
      'a repeat',
    );
    assert.equal(
      await twilio('/callbacks/sms/twilio/inbound', { MessageSid: 'SMin3', From: phone1, Body: 'STOP' }).then(
        (r) => r.status,
      ),
      200,
    );
    // A forged one changes nothing.
    assert.equal(
      (
        await fetch(`${base}/callbacks/sms/twilio/inbound`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'forged' },
          body: `MessageSid=SMx&From=${encodeURIComponent(phone1)}&Body=START`,
        })
      ).status,
      403,
    );
    // The journey's message gets a link (the seed's has none), as a tracked message would.
    await api.update({
      collection: 'sample_specialmessages',
      key: context.entityId,
      data: { sample_text: 'Spring offer: https://example.com/spring?c=1 reply INFO' },
    });
    const click = await fetch(`${base}/l/${sealLink(context, 0, keys)}`, { redirect: 'manual' });

    const interactions = (await receiveAll(s.sb.connectionString, config.serviceBus.queues.interactions, 3)).map(
      (m) => ({ id: m.messageId, body: m.body as InteractionMessage }),
    );
    const byType = new Map(interactions.map((i) => [i.body.responseType, i]));
    assert.equal(
      interactions.length,
      byType.size,
      `one message per response type, repeats dropped by the bus: ${interactions.map((i) => i.id).join(', ')}`,
    );
    assert.deepEqual(
      [...byType.keys()].sort(),
      ['delivered', 'keyword', 'opened'],
      'nothing recorded for the opt-outs or the forged request',
    );
    assert.equal(byType.get('delivered')?.id, `${context.activityRowId}:delivered`);
    assert.equal(byType.get('keyword')?.body.triggerKeyword, 'INFO');
    const keywordContext = byType.get('keyword')?.body.context;
    assert.equal(
      keywordContext?.kind === 'marketing' ? keywordContext.contactId : undefined,
      run.created[0]!.contactId,
    );
    assert.equal(click.status, 302);
    assert.equal(click.headers.get('location'), 'https://example.com/spring?c=1');
    assert.equal(byType.get('opened')?.id, `${context.activityRowId}:opened`);

    const confirmations = (
      await receiveSession(s.sb.connectionString, config.serviceBus.queues.outbound, 'twilio:+4915100000001', 2)
    ).map((m) => m.body as OutboundMessage);
    assert.deepEqual(
      confirmations.map((c) => [c.to, c.purpose]).sort(),
      [
        [phone1, 'confirmation'],
        [phone2, 'confirmation'],
      ].sort(),
      'one confirmation per opt-out, the repeat dropped',
    );
    for (const id of [run.created[0]!.contactId, run.created[1]!.contactId, sharing.contactid]) {
      const row = (await api.retrieve({ collection: 'contacts', key: id, select: ['donotphone'] })) as {
        donotphone: boolean;
      };
      assert.equal(row.donotphone, true, 'the compliance field is set in Dataverse');
    }
    for (const secret of [SECRETS.TWILIO_AUTH_TOKEN, keySecret, phone1, phone2])
      assert.ok(!logs.text.includes(secret), 'no secret or phone number in the logs');
  });

  for (const maxAgeMs of [undefined, 0]) {
    it(`a keyword reply after a status callback of its message: ${maxAgeMs === undefined ? 'no Dataverse request (the reply cache)' : 'callbacks.replyCacheMaxAgeMs 0: read'}`, async () => {
      const s = (system = await startSystem());
      const keys = parseCallbackKeys(`k1:${randomBytes(32).toString('base64')}`, 'test');
      channelsFile = writeSmsChannels();
      const port = await freePort();
      const config = structuredClone(s.config);
      config.callbacks = {
        ...config.callbacks,
        host: '127.0.0.1',
        port,
        ...(maxAgeMs === undefined ? {} : { replyCacheMaxAgeMs: maxAgeMs }),
      };
      // Its own identity, so that the emulator counts the callbacks service's requests apart.
      config.dataverse = { ...config.dataverse, auth: 'emulator', clientId: 'callbacks-reply-cache' };
      relay = startRelay({
        stages: ['callbacks'],
        config,
        callbackKeys: keys,
        channels: loadChannels(channelsFile, { env: { ...SECRETS } }),
        log: silentLogger(),
      });
      await waitFor('listening', async () => (relay?.readiness().every((c) => c.ok) ? true : undefined), 10_000);
      const run = await s.runJourney(SEED.journey, 1);
      const api = client(s.dv.url, 'e2e-admin');
      const contactId = run.created[0]!.contactId;
      const [row] = (
        await api.retrieveMultiple({
          collection: 'msdyncrm_customerjourneycustomchannelactivities',
          filter: `_msdyncrm_contact_value eq ${contactId}`,
        })
      ).value as Array<Record<string, unknown>>;
      const context = activityContext(activityRecord(row!));
      assert.ok(context);
      const { mobilephone } = (await api.retrieve({
        collection: 'contacts',
        key: contactId,
        select: ['mobilephone'],
      })) as {
        mobilephone: string;
      };
      const twilio = async (url: string, params: Record<string, string>): Promise<number> => {
        const form = new URLSearchParams(params);
        const signature = twilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `${PUBLIC}${url}`, form);
        const res = await fetch(`http://127.0.0.1:${port}${url}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature },
          body: form.toString(),
        });
        return res.status;
      };
      const token = sealContext(context, 'sms', keys, Date.now());
      const report = { MessageSid: 'SM1', MessageStatus: 'delivered', To: mobilephone };
      assert.equal(await twilio(`/callbacks/sms/twilio/status?t=${token}`, report), 204);
      assert.equal(
        await twilio('/callbacks/sms/twilio/inbound', { MessageSid: 'SMin1', From: mobilephone, Body: 'info' }),
        200,
      );

      const interactions = (await receiveAll(s.sb.connectionString, config.serviceBus.queues.interactions, 2)).map(
        (m) => m.body as InteractionMessage,
      );
      const keyword = interactions.find((i) => i.responseType === 'keyword');
      assert.equal(
        keyword?.context.kind === 'marketing' ? keyword.context.activityRowId : undefined,
        context.activityRowId,
      );
      const stats = (await (await fetch(`${s.dv.url}/_emulator/stats`)).json()) as {
        traffic: { identities: Record<string, { kinds: Record<string, number> }> };
      };
      const kinds = stats.traffic.identities['callbacks-reply-cache']?.kinds ?? {};
      if (maxAgeMs === undefined) assert.deepEqual(kinds, {});
      else assert.deepEqual(kinds, { 'GET contacts': 1, 'GET msdyncrm_customerjourneycustomchannelactivities': 1 });
    });
  }
});
