/**
 * Real-time journeys end to end on the embedded system: `registerRelay` with the channel definition of
 * config/channels.json's `realtime-sms`, the Dataverse emulator calling the outbound Custom API, intake → dispatch
 * (the contract simulator) → recorder → `msdyn_D365ChannelsNotification` checked field by field by the emulator.
 */
import assert from 'node:assert/strict';
import { DEMO_SECRETS, startEmbeddedSystem, type EmbeddedSystem } from '../../../src/demo/index.js';
import type { Interaction } from '../../../src/emulators/dataverse/index.js';
import { registerRelay, serviceBusFromConnectionString } from '../../../src/registration/index.js';
import { startRelay } from '../../../src/relay/index.js';
import { silentLogger } from '../../../src/log.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { until } from './harness.js';

const DEFINITION = '877d122c-16f8-5806-b029-4a7a103cb3d6';
const ORGANIZATION = '9c90332f-e8bd-5328-8419-a75c7c850bd7';

describe('real-time journeys end to end: outbound Custom API → contract provider → msdyn_D365ChannelsNotification', function () {
  this.timeout(60_000);
  const track = closedAfterEach();

  it('a refused send is NotDelivered with StatusDetails an object; accepted sends write nothing; every call is a missing response in the stats', async () => {
    const system: EmbeddedSystem = track(await startEmbeddedSystem({ env: { ...DEMO_SECRETS }, log: silentLogger() }));
    const { dv, sim, sb, admin, config, channels } = system;
    const registration = await registerRelay(admin, {
      serviceBus: serviceBusFromConnectionString(sb.connectionString),
      realtime: [{ channelDefinitionId: DEFINITION, channel: 'realtime-sms' }],
    });
    assert.equal(registration.items.at(-1)?.action, 'create');
    config.intake.maxWaitMs = 100;
    config.recorder.maxWaitMs = 100;
    track(
      startRelay({
        stages: ['intake', 'dispatch', 'recorder'],
        config,
        channels,
        log: silentLogger(),
        serviceBus: { retry: { retryDelayInMs: 200, maxRetryDelayInMs: 1000, timeoutInMs: 2000 } },
      }),
    );

    const refused = '+4915199999999';
    sim.block('contract', refused);
    const recipients = ['+4915112345671', '+4915112345672', refused];
    const res = await fetch(`${dv.url}/_emulator/realtime/${DEFINITION}/send`, {
      method: 'POST',
      body: JSON.stringify({ to: recipients, message: { text: 'Your code is 1234' } }),
    });
    assert.equal(res.status, 200);
    const sent = (await res.json()) as { requests: Array<{ RequestId: string; To: string }>; posted: number };
    assert.equal(sent.posted, 3);
    const refusedRequest = sent.requests.find((r) => r.To === refused)!.RequestId;

    const notifications = await until('the NotDelivered notification', async () => {
      const body = (await (await fetch(`${dv.url}/_emulator/interactions?kind=notification`)).json()) as {
        value: Interaction[];
      };
      return body.value.length > 0 ? body.value : undefined;
    });
    await until('both accepted sends at the provider', () =>
      sim.messages().filter((m) => m.provider === 'contract').length >= 2 ? true : undefined,
    );
    assert.deepEqual(
      sim
        .messages()
        .filter((m) => m.provider === 'contract')
        .map((m) => m.recipient)
        .sort(),
      recipients.slice(0, 2),
    );
    assert.equal(notifications.length, 1, 'Sent writes nothing');
    const payload = notifications[0]!.payload!;
    assert.deepEqual(
      { ...payload, StatusDetails: undefined },
      {
        ChannelDefinitionId: DEFINITION,
        RequestId: refusedRequest,
        MessageId: refusedRequest,
        From: '+4915100000001',
        OrganizationId: ORGANIZATION,
        Status: 'NotDelivered',
        StatusDetails: undefined,
      },
    );
    const details = payload['StatusDetails'] as Record<string, unknown>;
    assert.equal(details['Channel'], 'realtime-sms');
    assert.equal(typeof details['ProviderMessage'], 'string');

    const stats = (await (await fetch(`${dv.url}/_emulator/stats`)).json()) as {
      realtime: { responsesMissing: number };
      problems: string[];
    };
    assert.equal(stats.realtime.responsesMissing, 3);
    assert.match(
      stats.problems[0] ?? '',
      /^3 real-time outbound call\(s\) to the Custom API sample_RealtimeSmsOutboundApi returned no 'response'/,
    );
  });
});
