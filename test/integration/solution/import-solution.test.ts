/**
 * `importSolution` against the Dataverse emulator through the real client: the asynchronous job followed to its end,
 * its progress, its log's failed components, the timeout, and what the solution carries (the emulator's own fixture
 * zips, written from the documented shapes, independent of the relay's generator and packer).
 */
import assert from 'node:assert/strict';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { closeDataverseClient, createDataverseClient } from '../../../src/dataverse/index.js';
import type { DataverseEmulator } from '../../../src/emulators/dataverse/index.js';
import { isDataverseError } from '../../../src/errors.js';
import { importSolution, solutionContents, type ImportProgress } from '../../../src/solution/index.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { SEED_FILE, startEmulator } from '../emulators/dataverse/helpers.js';
import {
  outboundMarketingZip,
  REALTIME,
  realtimeZip,
  TILE_NAME,
} from '../../unit/emulators/dataverse/solution-fixtures.js';

describe('importSolution (ImportSolutionAsync, asyncoperation, importjob)', function () {
  this.timeout(30_000);
  const track = closedAfterEach();
  let dv: DataverseEmulator;
  let api: DynamicsWebApi;

  async function start(importDurationMs: number): Promise<void> {
    dv = track(await startEmulator({ seed: SEED_FILE, importDurationMs }));
    api = createDataverseClient({ url: dv.url, auth: 'emulator', tokenIdentity: 'importer' });
    track({ close: async () => closeDataverseClient(api) });
  }

  it('follows the job to its end with its progress, and the solution is then in the org', async () => {
    await start(800);
    const progress: ImportProgress[] = [];
    const result = await importSolution(api, realtimeZip(), { pollMs: 50, onProgress: (p) => progress.push(p) });
    assert.equal(result.outcome, 'succeeded', JSON.stringify(result));
    assert.deepEqual(result.log, []);
    assert.equal(result.message, undefined);
    const percents = progress.map((p) => p.percent);
    assert.ok(new Set(percents).size >= 3, `several readings while it ran: ${percents.join(', ')}`);
    assert.deepEqual(
      percents,
      [...percents].sort((a, b) => a - b),
      'never going back',
    );
    assert.equal(percents.at(-1), 100);
    assert.ok(
      progress.some((p) => p.status === 20),
      'seen in progress',
    );
    // The channel definition and its outbound Custom API now exist: what `register --realtime` reads.
    const definition = (await api.retrieve({
      collection: 'msdyn_channeldefinitions',
      key: REALTIME.definition,
      select: ['msdyn_outboundendpointurltemplate'],
    })) as Record<string, unknown>;
    assert.equal(definition['msdyn_outboundendpointurltemplate'], `/${REALTIME.outboundApi}`);
    const job = (await api.retrieve({ collection: 'importjobs', key: result.importJobId })) as Record<string, unknown>;
    assert.equal(job['progress'], 100);
    assert.deepEqual(solutionContents(realtimeZip()).channelDefinitions, [
      { id: REALTIME.definition, outboundApi: REALTIME.outboundApi },
    ]);
  });

  it("a broken solution fails with the component and Dataverse's message from the job's log", async () => {
    await start(200);
    const broken = outboundMarketingZip({
      files: (f) => {
        const key = `WebResources/${TILE_NAME}`;
        f[key] = (f[key] as string).replace(
          '</ResponseTypes>',
          '<ResponseType id="reply" custom="True"><Labels><Label locId="1033">Reply</Label></Labels></ResponseType></ResponseTypes>',
        );
      },
    });
    const result = await importSolution(api, broken, { pollMs: 50 });
    assert.equal(result.outcome, 'failed');
    assert.ok(result.message !== undefined && result.message !== '', 'the asyncoperation says why');
    // The failure names the component (here the solution, whose log entry names the tile file) and the rule.
    const failure = result.log.find((e) => e.level === 'failure' && `${e.component} ${e.message}`.includes(TILE_NAME));
    assert.ok(failure, `the tile named among the failures: ${JSON.stringify(result.log)}`);
    assert.match(failure.message, /custom/i);
    assert.match(failure.code ?? '', /^0x[0-9a-f]{8}$/i);
    // Nothing of the solution was created.
    await assert.rejects(
      api.retrieveMultiple({ collection: 'sample_specialmessages' }).then(() => {
        throw new Error('no such table expected');
      }),
    );
  });

  it('gives up after maxWaitMs with the ids of the job, which goes on in the org', async () => {
    await start(5000);
    await assert.rejects(
      importSolution(api, outboundMarketingZip(), { pollMs: 50, maxWaitMs: 300 }),
      (err: unknown) => {
        assert.ok(isDataverseError(err) && err.code === 'DataverseTimeout', String(err));
        assert.match(err.message, /had not ended after 0 s \(asyncoperation [0-9a-f-]{36} .*importjob [0-9a-f-]{36}/);
        return true;
      },
    );
  });
});
