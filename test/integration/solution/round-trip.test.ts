/**
 * The round trip a partner makes, for both contracts, through the CLI in process (`channel new` → `channel pack` →
 * `channel import`, which registers the relay) and the relay's stages on the embedded system: a journey (outbound
 * marketing) or real-time sends on the generated channel reach the provider and come back as interactions. Nothing
 * of the generated channel is in the seed: the table, tile, channel definition and custom APIs exist only because the
 * import created them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadChannels } from '../../../src/channels/index.js';
import { runCli } from '../../../src/cli/program.js';
import {
  DataverseRecords,
  DEMO_SECRETS,
  sampleSeed,
  startEmbeddedSystem,
  type EmbeddedSystem,
} from '../../../src/demo/index.js';
import type { Interaction, SeedDocument } from '../../../src/emulators/dataverse/index.js';
import { silentLogger } from '../../../src/log.js';
import { startRelay } from '../../../src/relay/index.js';
import { recordingIo } from '../../helpers/cli.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { until } from '../pipeline/harness.js';

const JOURNEY = { journey: '0d6f6a0e-3b59-4a57-9d1e-5f0e3a4c2b11', iteration: '1e7a7b1f-4c6a-4b68-8e2f-6a1f4b5d3c22' };
/** The message row the journey sends; created in the generated table once the import has made it. */
const MESSAGE_ID = '2f8b8c20-5d7b-4c79-9f30-7b205c6e4d33';
const SENDER = '+4915100000001';

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('round trip: channel new → channel pack → channel import → journey → interactions', function () {
  this.timeout(120_000);
  const track = closedAfterEach();
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'round-trip-'));
    track({ close: async () => rmSync(dir, { recursive: true, force: true }) });
  });

  async function cli(system: EmbeddedSystem, args: string[], env: Record<string, string> = {}): Promise<Run> {
    const io = recordingIo({ ...system.env, ...env }, dir);
    const code = await runCli(args, io);
    const run = { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
    assert.equal(code, 0, `channel-relay ${args.join(' ')}:\n${run.out}\n${run.err}`);
    return run;
  }

  /** `channel new` then `channel pack`; returns the zip, the entry file and the generated entry. */
  async function newAndPack(
    system: EmbeddedSystem,
    name: string,
    options: string[],
  ): Promise<{ zip: string; entry: Record<string, unknown>; entryFile: string }> {
    const folder = path.join(dir, name);
    await cli(system, [
      'channel',
      'new',
      name,
      '--publisher-prefix',
      'trip',
      '--sender',
      SENDER,
      '--out',
      folder,
      ...options,
    ]);
    const zip = path.join(dir, `${name}.zip`);
    await cli(system, ['channel', 'pack', folder, '--out', zip]);
    const entryFile = `${folder}.channels.json`;
    const entry = (JSON.parse(readFileSync(entryFile, 'utf8')) as { channels: Array<Record<string, unknown>> })
      .channels[0]!;
    return { zip, entry, entryFile };
  }

  /** The generated entry, with what an operator sets for this system (the providers' URL, a rate). */
  function channelsFile(entryFile: string, edit: (entry: Record<string, unknown>) => void): string {
    const doc = JSON.parse(readFileSync(entryFile, 'utf8')) as { channels: Array<Record<string, unknown>> };
    const entry = doc.channels[0]!;
    edit(entry);
    entry['rateLimit'] = { messages: 50, intervalMs: 1000 };
    const file = path.join(path.dirname(entryFile), `${path.basename(entryFile, '.channels.json')}-run.channels.json`);
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
  }

  function startStages(system: EmbeddedSystem, file: string, env: Record<string, string>): void {
    const { config } = system;
    config.intake.maxWaitMs = 100;
    config.recorder.maxWaitMs = 100;
    track(
      startRelay({
        stages: ['intake', 'dispatch', 'recorder'],
        config,
        channels: loadChannels(file, { env: { ...system.env, ...env } }),
        log: silentLogger(),
        serviceBus: { retry: { retryDelayInMs: 200, maxRetryDelayInMs: 1000, timeoutInMs: 2000 } },
      }),
    );
  }

  it('outbound marketing: the journey on the generated message table is sent and recorded as sent', async () => {
    // The seed knows the journey but not its message table: only the import makes it.
    const seed: SeedDocument = sampleSeed();
    seed.rows = {
      ...seed.rows,
      msdyncrm_customerjourneys: [
        ...(seed.rows?.['msdyncrm_customerjourneys'] ?? []),
        { msdyncrm_customerjourneyid: JOURNEY.journey, msdyncrm_name: 'Round trip journey' },
      ],
      msdyncrm_customerjourneyiterations: [
        ...(seed.rows?.['msdyncrm_customerjourneyiterations'] ?? []),
        { msdyncrm_customerjourneyiterationid: JOURNEY.iteration, msdyncrm_name: 'Round trip journey - 1' },
      ],
    };
    seed.journeys = [
      {
        journeyId: JOURNEY.journey,
        iterationId: JOURNEY.iteration,
        entityType: 'trip_promomessage',
        entityId: MESSAGE_ID,
        activityName: 'Round trip',
      },
    ];
    const system = track(await startEmbeddedSystem({ seed, env: { ...DEMO_SECRETS }, log: silentLogger() }));
    const records = new DataverseRecords(system.dv.url, system.admin);
    await assert.rejects(records.runJourney(JOURNEY.journey, 1), /trip_promomessage/, 'no table before the import');

    const { zip, entry, entryFile } = await newAndPack(system, 'promo', [
      '--contract',
      'outbound-marketing',
      '--provider',
      'twilio',
    ]);
    const env = { PROMO_AUTH_TOKEN: DEMO_SECRETS.TWILIO_AUTH_TOKEN };
    const file = channelsFile(entryFile, (e) => {
      e['provider'] = {
        ...(e['provider'] as object),
        accountSid: 'AC00000000000000000000000000000001',
        baseUrl: system.sim.url,
      };
    });
    const imported = await cli(system, ['channel', 'import', zip, '--dataverse-url', system.dv.url], {
      ...env,
      CHANNELS_FILE: file,
    });
    assert.match(imported.out, /^registering for channel promo:$/m);

    // The message row in the table the import created, then the journey over 20 contacts.
    const set = loadChannels(file, { env }).byName('promo')?.tile?.entitySetName;
    assert.equal(set, 'trip_promomessages');
    await system.admin.create({
      collection: set,
      data: {
        trip_promomessageid: MESSAGE_ID,
        trip_name: 'Round trip',
        trip_text: 'Hi {firstname}, this came through a generated channel.',
        [String(entry['channelField'])]: 'promo',
      },
    });
    startStages(system, file, env);
    const run = await records.runJourney(JOURNEY.journey, 20);
    assert.ok(run.created.length > 0, 'the journey created activities');
    const sent = await until('a sent interaction per activity', async () => {
      const all = (await records.interactions(JOURNEY.journey)) as Array<{
        activityRowId: string;
        responseType: string;
      }>;
      const ids = new Set(all.filter((i) => i.responseType === 'sent').map((i) => i.activityRowId));
      return ids.size >= run.created.length ? ids : undefined;
    });
    assert.deepEqual([...sent].sort(), run.created.map((a) => a.activityRowId).sort());
    const texts = system.sim
      .messages()
      .filter((m) => m.provider === 'twilio')
      .map((m) => m.text);
    assert.equal(texts.length, run.created.length);
    assert.ok(
      texts.every((t) => t?.endsWith('this came through a generated channel.')),
      texts.join('\n'),
    );
  });

  it('real-time: sends on the generated channel definition reach the provider, a refusal is recorded NotDelivered', async () => {
    const system = track(await startEmbeddedSystem({ env: { ...DEMO_SECRETS }, log: silentLogger() }));
    const { zip, entry, entryFile } = await newAndPack(system, 'rtsms', [
      '--contract',
      'realtime',
      '--channel-type',
      'SMS',
      '--provider',
      'contract',
      '--delivery-reports',
    ]);
    const definition = String(entry['channelDefinitionId']);
    const env = {
      RTSMS_PROVIDER_URL: `${system.sim.url}/contract/rtsms/messages`,
      RTSMS_SIGNING_SECRET: DEMO_SECRETS.CONTRACT_SIGNING_SECRET,
      CALLBACKS_PUBLIC_URL: 'http://127.0.0.1:9',
    };
    const file = channelsFile(entryFile, () => undefined);
    const imported = await cli(system, ['channel', 'import', zip, '--dataverse-url', system.dv.url], {
      ...env,
      CHANNELS_FILE: file,
    });
    assert.match(imported.out, /^registering for channel rtsms:$/m);
    assert.match(
      imported.out,
      /^step 'channel-relay: trip_\w+' \(the outbound Custom API of channel rtsms\).*: created/m,
    );

    startStages(system, file, env);
    const refused = '+4915199999999';
    system.sim.block('contract', refused);
    const recipients = ['+4915112345671', '+4915112345672', refused];
    const res = await fetch(`${system.dv.url}/_emulator/realtime/${definition}/send`, {
      method: 'POST',
      body: JSON.stringify({ to: recipients, from: SENDER, message: { text: 'Your code is 1234' } }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const notifications = await until('the NotDelivered notification', async () => {
      const body = (await (await fetch(`${system.dv.url}/_emulator/interactions?kind=notification`)).json()) as {
        value: Interaction[];
      };
      return body.value.length > 0 ? body.value : undefined;
    });
    await until('both accepted sends at the provider', () =>
      system.sim.messages().filter((m) => m.provider === 'contract').length >= 2 ? true : undefined,
    );
    assert.deepEqual(
      system.sim
        .messages()
        .filter((m) => m.provider === 'contract')
        .map((m) => m.recipient)
        .sort(),
      recipients.slice(0, 2),
    );
    assert.equal(notifications.length, 1);
    assert.equal(notifications[0]!.payload!['ChannelDefinitionId'], definition);
    assert.equal(notifications[0]!.payload!['Status'], 'NotDelivered');
  });
});
