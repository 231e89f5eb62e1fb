import assert from 'node:assert/strict';
import type { DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { client, contactId, rejection, smallSeed, startEmulator, waitFor } from './helpers.js';

interface Stats {
  identities: Record<
    string,
    {
      served: number;
      throttled: { requests: number; executionTime: number; concurrency: number };
      executionMsTotal: number;
    }
  >;
}

async function stats(url: string): Promise<Stats> {
  return (await (await fetch(`${url}/_emulator/stats`)).json()) as Stats;
}

const base = {
  enabled: true,
  windowMs: 1500,
  maxRequests: 1000,
  maxExecutionMs: 1_000_000,
  maxConcurrent: 50,
  operationCostMs: 0,
};

describe('Dataverse emulator: service protection limits (scaled)', () => {
  let emulator: DataverseEmulator;
  afterEach(async () => emulator?.close());

  it('refuses the request over the number-of-requests limit with 429, Retry-After and -2147015902, per identity, then lets it in again', async () => {
    emulator = await startEmulator({ limits: { ...base, maxRequests: 5 } });
    const api = client(emulator.url, 'caller-a');
    for (let i = 0; i < 5; i += 1) await api.retrieveMultiple({ collection: 'contacts', top: 1 });
    const err = await rejection(api.retrieveMultiple({ collection: 'contacts', top: 1 }));
    assert.equal(err.status, 429);
    assert.equal(err.code, '0x80072322');
    assert.equal(parseInt(String(err.code), 16) | 0, -2147015902);
    assert.match(String(err.message), /Number of requests exceeded the limit of 5 over time window of 1.5 seconds/);
    const headers = err.headers as Record<string, string>;
    assert.ok(
      Number(headers['retry-after']) >= 1 && Number(headers['retry-after']) <= 2,
      `Retry-After ${headers['retry-after']}`,
    );
    assert.equal(headers['x-ms-ratelimit-burst-remaining-xrm-requests'], '0');

    // Another identity has its own budget.
    await client(emulator.url, 'caller-b').retrieveMultiple({ collection: 'contacts', top: 1 });
    // The window slides: the first caller gets in again once its oldest requests leave it.
    await waitFor(
      'the window to slide',
      async () => {
        try {
          await api.retrieveMultiple({ collection: 'contacts', top: 1 });
          return true;
        } catch {
          return undefined;
        }
      },
      5000,
    );
    const s = await stats(emulator.url);
    assert.ok(s.identities['caller-a']!.throttled.requests >= 1);
    assert.equal(s.identities['caller-b']!.throttled.requests, 0);
  });

  it('counts a $batch once toward requests but adds each operation to the execution time (-2147015903)', async () => {
    emulator = await startEmulator({ limits: { ...base, maxRequests: 3, maxExecutionMs: 500, operationCostMs: 100 } });
    const api = client(emulator.url, 'batcher');
    api.startBatch();
    for (let i = 0; i < 8; i += 1) api.create({ collection: 'contacts', data: { firstname: `b${i}` } });
    const ok = await api.executeBatch();
    assert.equal(ok.length, 8);
    const err = await rejection(api.retrieveMultiple({ collection: 'contacts', top: 1 }));
    assert.equal(err.status, 429);
    assert.equal(err.code, '0x80072321');
    assert.equal(parseInt(String(err.code), 16) | 0, -2147015903);
    assert.match(
      String(err.message),
      /Combined execution time of incoming requests exceeded limit of 500 milliseconds/,
    );
    assert.ok(Number((err.headers as Record<string, string>)['retry-after']) >= 1);
    const s = await stats(emulator.url);
    assert.equal(s.identities['batcher']!.executionMsTotal, 800);
    assert.equal(s.identities['batcher']!.served, 1);
  });

  it('refuses requests over the concurrency limit at once (-2147015898)', async () => {
    emulator = await startEmulator({ limits: { ...base, maxConcurrent: 2 }, responseDelayMs: 300 });
    const api = client(emulator.url, 'parallel');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () => api.retrieveMultiple({ collection: 'contacts', top: 1 })),
    );
    const refused = outcomes
      .filter((o) => o.status === 'rejected')
      .map((o) => (o as PromiseRejectedResult).reason as Record<string, unknown>);
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 2);
    assert.equal(refused.length, 3);
    for (const r of refused) {
      assert.equal(r.status, 429);
      assert.equal(r.code, '0x80072326');
      assert.equal(parseInt(String(r.code), 16) | 0, -2147015898);
      assert.match(String(r.message), /Number of concurrent requests exceeded the limit of 2/);
    }
    assert.equal((await stats(emulator.url)).identities['parallel']!.throttled.concurrency, 3);
  });

  it('sends the x-ms-ratelimit headers on admitted requests, and none of it when limits are off', async () => {
    emulator = await startEmulator({
      limits: { ...base, maxRequests: 10, maxExecutionMs: 2000, operationCostMs: 100 },
    });
    const first = await fetch(`${emulator.url}/api/data/v9.2/contacts?$top=1`, {
      headers: { Authorization: 'Bearer h' },
    });
    assert.equal(first.headers.get('x-ms-ratelimit-burst-remaining-xrm-requests'), '9');
    assert.equal(first.headers.get('x-ms-ratelimit-time-remaining-xrm-requests'), '2.00');
    const second = await fetch(`${emulator.url}/api/data/v9.2/contacts?$top=1`, {
      headers: { Authorization: 'Bearer h' },
    });
    assert.equal(second.headers.get('x-ms-ratelimit-time-remaining-xrm-requests'), '1.90');
    await emulator.close();

    emulator = await startEmulator({ limits: 'off' });
    const free = await fetch(`${emulator.url}/api/data/v9.2/contacts?$top=1`, {
      headers: { Authorization: 'Bearer h' },
    });
    assert.equal(free.status, 200);
    assert.equal(free.headers.get('x-ms-ratelimit-burst-remaining-xrm-requests'), null);
  });

  it('gives dynamics-web-api a 429 error it can act on for a $batch and for a long GET the client sent as one: status, code, retry-after for the window', async () => {
    emulator = await startEmulator({ seed: smallSeed(60), limits: { ...base, windowMs: 4000, maxRequests: 2 } });
    const api = client(emulator.url, 'worker');
    const ids = Array.from({ length: 60 }, (_, i) => `'${contactId(i)}'`).join(',');
    const longGet = (): Promise<unknown> =>
      api.retrieveMultiple({
        collection: 'contacts',
        select: ['fullname'],
        filter: `Microsoft.Dynamics.CRM.In(PropertyName='contactid',PropertyValues=[${ids}])`,
      });
    assert.equal(((await longGet()) as { value: unknown[] }).value.length, 60);
    api.startBatch();
    api.retrieveMultiple({ collection: 'contacts', top: 1 });
    await api.executeBatch();

    const batchErr = await (async () => {
      api.startBatch();
      api.retrieveMultiple({ collection: 'contacts', top: 1 });
      return rejection(api.executeBatch());
    })();
    const getErr = await rejection(longGet());
    for (const err of [batchErr, getErr]) {
      assert.ok(!Array.isArray(err), 'a single error, not the array of batch parts');
      assert.equal(err.status, 429);
      assert.equal(err.code, '0x80072322');
      const headers = err.headers as Record<string, string>;
      const retryAfter = Number(headers['retry-after']);
      // The oldest request leaves the 4 s window in a little under 4 s: whole seconds, rounded up.
      assert.ok(retryAfter >= 3 && retryAfter <= 4, `Retry-After ${headers['retry-after']}`);
      assert.equal(headers['x-ms-ratelimit-burst-remaining-xrm-requests'], '0');
    }
  });

  it('headers omitted or scrambled by configuration, switched while running through PATCH /_emulator/limits; x-ms-dop-hint when set', async () => {
    emulator = await startEmulator({ limits: { ...base, headers: 'omit', dopHint: 6 } });
    const get = (): Promise<Response> =>
      fetch(`${emulator.url}/api/data/v9.2/contacts?$top=1`, { headers: { Authorization: 'Bearer knob' } });
    const quiet = await get();
    assert.equal(quiet.status, 200);
    assert.equal(quiet.headers.get('x-ms-ratelimit-burst-remaining-xrm-requests'), null);
    assert.equal(quiet.headers.get('x-ms-ratelimit-time-remaining-xrm-requests'), null);
    assert.equal(quiet.headers.get('x-ms-dop-hint'), '6');

    const patch = (body: unknown): Promise<Response> =>
      fetch(`${emulator.url}/_emulator/limits`, { method: 'PATCH', body: JSON.stringify(body) });
    const changed = await patch({ headers: 'scramble', maxRequests: 40 });
    assert.equal(changed.status, 200);
    assert.deepEqual(await changed.json(), {
      ...base,
      headers: 'scramble',
      maxRequests: 40,
      dopHint: 6,
      writeCostMs: 0,
      holdResponses: true,
    });
    const seen: number[] = [];
    for (let i = 0; i < 20; i++)
      seen.push(Number((await get()).headers.get('x-ms-ratelimit-burst-remaining-xrm-requests')));
    // The truth after request k (2 before these): 40 − (2 + k) left. A scrambled answer never says less, and they disagree.
    seen.forEach((left, k) => assert.ok(left >= 40 - (2 + k + 1) && left <= 40, `answer ${k}: ${left} left`));
    assert.ok(
      seen.some((left, k) => k > 0 && left > seen[k - 1]!),
      `some answer says more is left than the one before: ${seen.join(', ')}`,
    );

    const refused = await patch({ headers: 'sometimes' });
    assert.equal(refused.status, 400);
    assert.match(
      ((await refused.json()) as { error: { message: string } }).error.message,
      /'headers' must be all, omit, scramble, found "sometimes"/,
    );
  });

  it('charges reads and writes their own execution time, and holds a response for what it was charged', async () => {
    emulator = await startEmulator({ limits: { ...base, operationCostMs: 2, writeCostMs: 40 } });
    const api = client(emulator.url, 'timed');
    const t0 = performance.now();
    await api.retrieveMultiple({ collection: 'contacts', top: 1 });
    const readMs = performance.now() - t0;
    const t1 = performance.now();
    api.startBatch();
    for (let i = 0; i < 10; i += 1) api.create({ collection: 'contacts', data: { firstname: `t${i}` } });
    await api.executeBatch();
    const batchMs = performance.now() - t1;
    const s = await stats(emulator.url);
    assert.equal(s.identities['timed']!.executionMsTotal, 2 + 10 * 40);
    // 400 ms charged against 2: the batch is held far longer than the read (a ratio, not a clock).
    assert.ok(
      batchMs > 5 * readMs,
      `a $batch of 10 writes took ${batchMs.toFixed(0)} ms, a read ${readMs.toFixed(0)} ms`,
    );
  });

  it('writes the time budget as Dataverse does: seconds with en-US grouping and two decimals', async () => {
    emulator = await startEmulator({ limits: 'realistic' });
    const res = await fetch(`${emulator.url}/api/data/v9.2/WhoAmI`, { headers: { Authorization: 'Bearer h' } });
    assert.equal(res.headers.get('x-ms-ratelimit-time-remaining-xrm-requests'), '1,200.00');
    assert.equal(res.headers.get('x-ms-ratelimit-burst-remaining-xrm-requests'), '5999');
    const next = await fetch(`${emulator.url}/api/data/v9.2/WhoAmI`, { headers: { Authorization: 'Bearer h' } });
    assert.equal(next.headers.get('x-ms-ratelimit-time-remaining-xrm-requests'), '1,199.99');
  });
});
