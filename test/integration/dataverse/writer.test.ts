/**
 * The interaction writer against the Dataverse emulator through the real dynamics-web-api: $batch requests of
 * CreateInteraction with per-item results, real-time notifications, and the client-secret auth path.
 */
import assert from 'node:assert/strict';
import type { AccessToken, TokenCredential } from '@azure/identity';
import {
  closeDataverseClient,
  createDataverseReads,
  createGovernor,
  createInteractionWriter,
  dataverseClientFromConfig,
} from '../../../src/dataverse/index.js';
import type { InteractionMessage } from '../../../src/pipeline/messages.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { IDS, runJourney, smallSeed, startEmulator } from '../emulators/dataverse/helpers.js';
import { interactions, marketingInteraction, stack, stats } from './helpers.js';

describe('InteractionWriter against the Dataverse emulator', function () {
  this.timeout(30_000);
  const track = closedAfterEach();

  it('writes 250 interactions in three $batch requests; an invalid one fails alone with Dataverse’s message', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(250) }));
    const run = await runJourney(dv.url, { count: 250 });
    assert.equal(run.created.length, 250);
    const s = track(stack(dv.url, 'recorder'));
    const writer = createInteractionWriter(s.client, s.governor);
    const items: InteractionMessage[] = run.created.map((created, i) =>
      i % 25 === 7
        ? marketingInteraction(created, 'opened')
        : i % 50 === 3
          ? marketingInteraction(created, 'keyword', { triggerKeyword: 'YES' })
          : marketingInteraction(created, i % 2 === 0 ? 'sent' : 'delivered'),
    );
    const before = await stats(dv.url);
    const results = await writer.write(items);
    const after = await stats(dv.url);
    assert.equal(after.traffic.requests - before.traffic.requests, 3, 'three $batch requests of at most 100');
    assert.equal(after.traffic.batchOperations - before.traffic.batchOperations, 250);
    assert.equal(results.length, 250);
    results.forEach((r, i) => {
      if (i % 25 === 7) {
        assert.ok(!r.ok, `item ${i} fails`);
        assert.equal(r.error.code, 'DataverseBadRequest');
        assert.equal(r.error.retryable, false);
        assert.match(
          r.error.message,
          /the response type 'opened' is not defined by the tile for 'sample_specialmessage' \(defined: sent, delivered, keyword\)/,
        );
        assert.equal(r.error.upstream?.code, '0x80040203');
      } else {
        assert.deepEqual(r, { ok: true }, `item ${i}`);
      }
    });
    const stored = await interactions(dv.url, '?kind=interaction');
    assert.equal(stored.count, 240);
    assert.equal(stored.duplicates, 0);
    // By row: the rows of the run share msdyncrm_activityid (the tile's id).
    const byRow = new Map(stored.value.map((v) => [v.activityRowId, v]));
    assert.equal(byRow.get(run.created[3]!.activityRowId)?.triggerKeyword, 'YES');
    assert.equal(byRow.get(run.created[4]!.activityRowId)?.responseType, 'sent');
    assert.equal(byRow.get(run.created[7]!.activityRowId), undefined);
  });

  it('real-time: Delivered and NotSent (as NotDelivered with StatusDetails) are notifications; Sent writes nothing', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(1) }));
    const s = track(stack(dv.url, 'recorder'));
    const context = {
      kind: 'realtime' as const,
      channelDefinitionId: IDS.channelDefinition,
      requestId: 'req-1',
      from: '+4915100000001',
      organizationId: IDS.organization,
    };
    const base = { v: 1 as const, context, channel: 'sms', occurredAt: 1 };
    const before = await stats(dv.url);
    const results = await createInteractionWriter(s.client, s.governor).write([
      { ...base, responseType: 'Sent' },
      { ...base, responseType: 'Delivered', providerMessageId: 'SM1' },
      { ...base, responseType: 'NotSent', detail: { code: 21610, message: 'unsubscribed recipient' } },
      {
        ...base,
        context: { ...context, channelDefinitionId: '00000000-0000-4000-8000-00000000dead' },
        responseType: 'Delivered',
      },
    ]);
    assert.deepEqual(results.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
    assert.ok(
      !results[3]!.ok &&
        results[3]!.error.code === 'DataverseNotFound' &&
        /msdyn_channeldefinition With Id = 00000000-0000-4000-8000-00000000dead Does Not Exist/.test(
          results[3]!.error.message,
        ),
    );
    assert.equal(
      (await stats(dv.url)).traffic.batchOperations - before.traffic.batchOperations,
      3,
      'Sent made no operation',
    );
    const stored = await interactions(dv.url, '?kind=notification');
    assert.deepEqual(
      stored.value.map((v) => [v.responseType, v.payload?.['MessageId'], v.payload?.['StatusDetails']]),
      [
        ['Delivered', 'SM1', { Channel: 'sms', ProviderMessageId: 'SM1' }],
        ['NotDelivered', 'req-1', { Channel: 'sms', ProviderCode: 21610, ProviderMessage: 'unsubscribed recipient' }],
      ],
    );
  });

  it('client-secret auth with an injected TokenCredential: scope `${url}/.default`, one token for many calls, the token is the identity', async () => {
    const dv = track(await startEmulator({ seed: smallSeed(3), limits: 'realistic' }));
    const scopes: string[] = [];
    const credential: TokenCredential = {
      getToken: async (scope) => {
        scopes.push(String(scope));
        return { token: 'fake-aad-token', expiresOnTimestamp: Date.now() + 3_600_000 } satisfies AccessToken;
      },
    };
    const governor = createGovernor();
    const client = dataverseClientFromConfig(
      {
        dataverse: {
          url: dv.url,
          auth: 'client-secret',
          tenantId: 'tenant',
          clientId: 'app',
          clientSecret: 'never-used',
          timeoutMs: 5000,
          limitsWindowMs: 300_000,
          requestBudget: 6000,
          executionBudgetMs: 1_200_000,
          maxConcurrency: 16,
        },
      },
      { credential, onResponse: governor.observe },
    );
    track({ close: async () => closeDataverseClient(client) });
    const reads = createDataverseReads(client, { governor });
    await reads.contacts(['00000000-0000-4000-8000-000000000001'], ['firstname']);
    await reads.messageRecord('sample_specialmessages', IDS.message, ['sample_text']);
    await reads.activities(['00000000-0000-4000-8000-00000000dead']);
    assert.deepEqual(scopes, [`${dv.url}/.default`]);
    const identities = (await stats(dv.url)).identities;
    assert.equal(identities['fake-aad-token']?.served, 3);
    assert.equal(governor.state().requestsRemaining, 5997, 'the governor saw the rate-limit headers of the responses');
  });
});
