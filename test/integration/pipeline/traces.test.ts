import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { configPath } from '../../../src/paths.js';
import { closedAfterEach } from '../../helpers/fixtures.js';
import { startOtlpReceiver, type ReceivedSpan } from '../../helpers/otlp-receiver.js';
import { SEED, buildWorkers, startSystem, until } from './harness.js';

/** Every phone number, chat id and e-mail address of the seed's contacts: never in a span. */
function seedAddresses(): string[] {
  const seed = JSON.parse(readFileSync(configPath('dataverse-seed.json'), 'utf8')) as {
    rows: { contacts: Array<Record<string, unknown>> };
  };
  const out: string[] = [];
  for (const contact of seed.rows.contacts) {
    for (const key of ['mobilephone', 'sample_telegramchatid', 'emailaddress1']) {
      const value = contact[key];
      if (typeof value === 'string' && value) out.push(value);
    }
  }
  return out;
}

/** Every string an exported span holds: attribute values, link and event attributes, status message, resource. */
function strings(span: ReceivedSpan): string[] {
  return [span.name, span.statusMessage ?? '', ...span.allValues];
}

/**
 * One journey through the built workers (`node dist/workers/<stage>.js`: intake, dispatch, recorder as three
 * processes) with OTLP/HTTP export to a receiver in the test: one connected trace per activity across the three
 * services, and no address or text in any span.
 */
describe('traces across the queues (built workers, OTLP/HTTP)', function () {
  this.timeout(300_000);
  const track = closedAfterEach();
  before(async function () {
    this.timeout(120_000);
    await buildWorkers();
  });

  it('one connected trace per activity from intake through dispatch to the recorder; no phone number, chat id or text in any span', async () => {
    const receiver = track(await startOtlpReceiver());
    const s = track(await startSystem({ partialTargets: 'none' }));
    s.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = receiver.url;
    s.env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'http/json';
    // The BatchSpanProcessor's delay (OTEL_BSP_SCHEDULE_DELAY, ms): spans arrive while the journey runs.
    s.env['OTEL_BSP_SCHEDULE_DELAY'] = '200';
    const run = await s.runJourney(SEED.journey, 6);
    const rows = run.created.map((c) => c.activityRowId.toLowerCase());
    assert.ok(rows.length >= 3, `the journey created ${rows.length} activities`);
    const workers = [
      s.spawnWorker('intake', { compiled: true }),
      s.spawnWorker('dispatch', { compiled: true }),
      s.spawnWorker('recorder', { compiled: true }),
    ];
    await until(`the ${rows.length} sends recorded`, async () => {
      const recorded = (await s.interactions()).filter((i) => rows.includes((i.activityRowId ?? '').toLowerCase()));
      return recorded.length >= rows.length ? true : undefined;
    });
    // A graceful stop flushes what each worker's BatchSpanProcessor still holds.
    const codes = await Promise.all(workers.map((w) => w.stop()));
    assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.stderr().slice(-2000)).join('\n---\n'));

    const spans = receiver.spans();
    const byId = new Map(spans.map((sp) => [sp.spanId, sp]));
    for (const row of rows) {
      const mine = spans.filter((sp) => sp.attributes['channel_relay.activity.row_id'] === row);
      const traceIds = new Set(mine.map((sp) => sp.traceId));
      assert.equal(traceIds.size, 1, `activity ${row}: its spans are in ${traceIds.size} traces`);
      const [traceId] = traceIds;
      const trace = spans.filter((sp) => sp.traceId === traceId);
      // Connected: one root (intake's `process activities`: the event carried no context), every other parent known.
      const roots = trace.filter((sp) => sp.parentSpanId === undefined);
      assert.deepEqual(
        roots.map((r) => `${r.service} ${r.name}`),
        ['channel-relay-intake process activities'],
        `activity ${row}: roots`,
      );
      for (const sp of trace) {
        if (sp.parentSpanId !== undefined)
          assert.ok(byId.has(sp.parentSpanId), `activity ${row}: the parent of ${sp.service} ${sp.name} is missing`);
      }
      const names = new Set(trace.map((sp) => `${sp.service} ${sp.name}`));
      for (const expected of [
        'channel-relay-intake process activities',
        'channel-relay-intake create outbound',
        'channel-relay-dispatch process outbound',
        'channel-relay-dispatch POST',
        'channel-relay-dispatch create interactions',
        'channel-relay-recorder process interactions',
      ])
        assert.ok(names.has(expected), `activity ${row}: no ${expected} span in ${[...names].join(', ')}`);
      // The batch calls are linked to the activity's spans.
      const linked = (name: string): boolean =>
        spans.some(
          (sp) => sp.name === name && sp.links.some((l) => l.traceId === traceId && byId.get(l.spanId) !== undefined),
        );
      for (const name of ['read activities', 'send outbound', 'send interactions', 'Dataverse $batch'])
        assert.ok(linked(name), `activity ${row}: no ${name} span linked to its trace`);
    }
    // The Dataverse calls are children of the batch work they serve: intake's reads, the recorder's write.
    for (const parent of ['channel-relay-intake read activities', 'channel-relay-recorder Dataverse $batch']) {
      const call = spans.find((sp) => {
        const up = sp.parentSpanId === undefined ? undefined : byId.get(sp.parentSpanId);
        return sp.name === 'Dataverse' && up !== undefined && `${up.service} ${up.name}` === parent;
      });
      assert.ok(call, `no Dataverse call under ${parent}`);
      assert.equal(call.kind, 3, 'CLIENT');
    }

    const secrets = [...seedAddresses(), ...s.messages().map((m) => m.text), ...s.messages().map((m) => m.recipient)];
    assert.ok(secrets.length > rows.length);
    for (const sp of spans) {
      for (const value of strings(sp)) {
        for (const secret of secrets)
          assert.ok(!value.includes(secret), `${sp.service} ${sp.name} holds "${secret}" (in "${value}")`);
      }
    }
  });
});
