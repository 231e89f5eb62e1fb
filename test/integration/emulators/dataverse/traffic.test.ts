/**
 * `/_emulator/stats` `traffic.identities`: requests per caller identity as the service protection limits count them
 * (a `$batch` once), split into reads (a GET, or a `$batch` of GETs only) and writes, and by kind (method and entity
 * set, `$batch`), through the real dynamics-web-api.
 */
import assert from 'node:assert/strict';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import { client, contactId, IDS, smallSeed, startEmulator } from './helpers.js';

interface IdentityTraffic {
  requests: number;
  reads: number;
  writes: number;
  kinds: Record<string, number>;
}

async function identities(url: string): Promise<Record<string, IdentityTraffic>> {
  const body = (await (await fetch(`${url}/_emulator/stats`)).json()) as {
    traffic: { identities: Record<string, IdentityTraffic> };
  };
  return body.traffic.identities;
}

describe('Dataverse emulator traffic per identity', function () {
  this.timeout(20_000);
  const track = closedAfterEach();

  it("counts each identity's requests once per $batch, a GET or a $batch of GETs as a read, anything else as a write", async () => {
    const dv = track(await startEmulator({ seed: smallSeed(3) }));
    const reader = client(dv.url, 'reader');
    const writer = client(dv.url, 'writer');

    await reader.retrieve({ collection: 'contacts', key: contactId(0), select: ['firstname'] });
    reader.startBatch();
    void reader.retrieve({ collection: 'contacts', key: contactId(1), select: ['firstname'] });
    void reader.retrieve({ collection: 'contacts', key: contactId(2), select: ['firstname'] });
    await reader.executeBatch({ inChangeSet: false });

    await writer.update({ collection: 'contacts', key: contactId(0), data: { firstname: 'Changed' } });
    writer.startBatch();
    void writer.retrieve({ collection: 'contacts', key: contactId(1), select: ['firstname'] });
    void writer.update({ collection: 'sample_specialmessages', key: IDS.message, data: { sample_name: 'Changed' } });
    await writer.executeBatch({ inChangeSet: false });

    const counts = await identities(dv.url);
    assert.deepEqual(
      counts['reader'],
      { requests: 2, reads: 2, writes: 0, kinds: { 'GET contacts': 1, $batch: 1 } },
      'a GET and a $batch of two GETs',
    );
    assert.deepEqual(
      counts['writer'],
      { requests: 2, reads: 0, writes: 2, kinds: { 'PATCH contacts': 1, $batch: 1 } },
      'a PATCH and a $batch mixing a GET with a PATCH',
    );
  });
});
