import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { DataverseError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { InteractionMessage } from '../../../src/pipeline/messages.js';
import type { InteractionWriter, WriteResult } from '../../../src/pipeline/ports.js';
import { RecorderStage } from '../../../src/pipeline/recorder.js';
import { fakeDelivery, settledAs, type FakeDelivery } from '../../helpers/fake-delivery.js';

function interaction(activityId: string, responseType = 'sent'): InteractionMessage {
  return {
    v: 1,
    context: { kind: 'marketing', activityId, activityRowId: activityId, contactId: 'c-1', journeyId: 'j-1', iterationId: 'i-1', entityType: 'sample_specialmessage', entityId: 'e-1' },
    responseType,
    channel: 'sms',
    occurredAt: 1,
  };
}

/** A writer that answers each call from a script and records what it was asked. */
function scriptedWriter(script: Array<(items: readonly InteractionMessage[]) => WriteResult[]>): InteractionWriter & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    write: async (items) => {
      calls.push(items.map((i) => (i.context.kind === 'marketing' ? i.context.activityId : i.context.requestId)));
      const next = script.shift();
      if (!next) throw new Error('writer called more often than scripted');
      return next(items);
    },
  };
}

const ok = (items: readonly unknown[]): WriteResult[] => items.map(() => ({ ok: true }));
const throttled = (ms: number): DataverseError => new DataverseError('DataverseThrottled', 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.', { retryAfterMs: ms, upstream: { status: 429, code: '0x80072322' } });

describe('pipeline: RecorderStage', () => {
  const sleeps: number[] = [];
  const sleep = async (ms: number): Promise<void> => void sleeps.push(ms);
  beforeEach(() => (sleeps.length = 0));
  const run = async (stage: RecorderStage, deliveries: FakeDelivery[], signal = new AbortController().signal): Promise<void> => stage.handle(deliveries, signal);

  it('writes a batch in one call and completes each delivery', async () => {
    const writer = scriptedWriter([ok]);
    const registry = new Registry();
    const stage = new RecorderStage({ writer, log: silentLogger(), registry, sleep });
    const deliveries = ['a', 'b', 'c'].map((id) => fakeDelivery(interaction(id)));
    await run(stage, deliveries);
    assert.deepEqual(writer.calls, [['a', 'b', 'c']]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete']);
    assert.deepEqual(stage.stats(), { written: 3, deadLettered: 0, abandoned: 0, retries: 0 });
    assert.match(await registry.metrics(), /channel_relay_recorder_interactions_total\{outcome="written"\} 3/);
  });

  it('two stages on one registry share its counter', async () => {
    const registry = new Registry();
    const first = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), registry, sleep });
    const second = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), registry, sleep });
    await run(first, [fakeDelivery(interaction('a'))]);
    await run(second, [fakeDelivery(interaction('b')), fakeDelivery(interaction('c'))]);
    assert.match(await registry.metrics(), /channel_relay_recorder_interactions_total\{outcome="written"\} 3/);
  });

  it('dead-letters an unreadable body with the field that is wrong, and writes the rest', async () => {
    const writer = scriptedWriter([ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    const bad = fakeDelivery({ v: 1, context: { kind: 'marketing' }, responseType: 'sent', channel: 'sms', occurredAt: 1 });
    const broken = fakeDelivery(Buffer.from('{not json'));
    const good = fakeDelivery(interaction('a'));
    await run(stage, [bad, broken, good]);
    assert.deepEqual(settledAs([bad, broken, good]), ['deadLetter', 'deadLetter', 'complete']);
    assert.deepEqual(bad.settlements[0], { how: 'deadLetter', reason: 'EventMissingAttribute', description: "interaction message: 'context.activityId' must be a non-empty string, found nothing" });
    assert.equal(broken.settlements[0]?.how === 'deadLetter' && broken.settlements[0].reason, 'EventUndecodable');
    assert.deepEqual(writer.calls, [['a']]);
  });

  it("dead-letters one permanent refusal with Dataverse's message and code", async () => {
    const refusal = new DataverseError('DataverseBadRequest', "'ResponseType' must be one of sent, delivered, failed, opened, keyword.", { upstream: { status: 400, code: '0x80040203' } });
    const writer = scriptedWriter([(items) => items.map((_, i) => (i === 1 ? { ok: false, error: refusal } : { ok: true }))]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep });
    const deliveries = [fakeDelivery(interaction('a')), fakeDelivery(interaction('b', 'bogus')), fakeDelivery(interaction('c'))];
    await run(stage, deliveries);
    assert.deepEqual(settledAs(deliveries), ['complete', 'deadLetter', 'complete']);
    const dl = deliveries[1]?.settlements[0];
    assert.ok(dl?.how === 'deadLetter');
    assert.equal(dl.reason, 'DataverseBadRequest');
    assert.equal(dl.description, "interaction 'bogus' of activity b (contact c-1, journey j-1): 'ResponseType' must be one of sent, delivered, failed, opened, keyword. (Dataverse code 0x80040203)");
  });

  it('retries throttled items after Retry-After without abandoning them', async () => {
    const writer = scriptedWriter([(items) => items.map((_, i) => (i === 0 ? { ok: true } : { ok: false, error: throttled(2000) })), ok]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, backoffMs: 100 });
    const deliveries = ['a', 'b', 'c'].map((id) => fakeDelivery(interaction(id)));
    await run(stage, deliveries);
    assert.deepEqual(writer.calls, [['a', 'b', 'c'], ['b', 'c']]);
    assert.deepEqual(sleeps, [2000]);
    assert.deepEqual(settledAs(deliveries), ['complete', 'complete', 'complete']);
    assert.equal(stage.stats().retries, 2);
  });

  it('backs off exponentially and abandons after maxAttempts', async () => {
    const unavailable = (items: readonly unknown[]): WriteResult[] => items.map(() => ({ ok: false, error: new DataverseError('DataverseUnavailable', 'socket hang up') }));
    const writer = scriptedWriter([unavailable, unavailable, unavailable]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, maxAttempts: 3, backoffMs: 100 });
    const deliveries = [fakeDelivery(interaction('a'))];
    await run(stage, deliveries);
    assert.deepEqual(sleeps, [100, 200]);
    assert.deepEqual(settledAs(deliveries), ['abandon']);
  });

  it('abandons (does not dead-letter) when the relay identity is refused', async () => {
    const writer = scriptedWriter([(items) => items.map(() => ({ ok: false, error: new DataverseError('DataverseUnauthorized', 'Principal user is missing prvCreate privilege') }))]);
    const stage = new RecorderStage({ writer, log: silentLogger(), sleep, maxBackoffMs: 5000 });
    const deliveries = [fakeDelivery(interaction('a')), fakeDelivery(interaction('b'))];
    await run(stage, deliveries);
    assert.deepEqual(settledAs(deliveries), ['abandon', 'abandon']);
    assert.deepEqual(sleeps, [5000]);
  });

  it('abandons everything when stopped, and when the writer fails as a whole', async () => {
    const aborted = new AbortController();
    aborted.abort();
    const stage = new RecorderStage({ writer: scriptedWriter([]), log: silentLogger(), sleep });
    const first = [fakeDelivery(interaction('a'))];
    await run(stage, first, aborted.signal);
    assert.deepEqual(settledAs(first), ['abandon']);

    const failing = new RecorderStage({ writer: { write: async () => Promise.reject(new Error('aborted')) }, log: silentLogger(), sleep });
    const second = [fakeDelivery(interaction('b')), fakeDelivery(interaction('c'))];
    await run(failing, second);
    assert.deepEqual(settledAs(second), ['abandon', 'abandon']);
  });

  it('counts a failed settlement as not settled (the bus redelivers it)', async () => {
    const stage = new RecorderStage({ writer: scriptedWriter([ok]), log: silentLogger(), sleep });
    const d = fakeDelivery(interaction('a'));
    d.complete = async () => Promise.reject(new Error('MessageLockLost'));
    await run(stage, [d]);
    assert.deepEqual(stage.stats(), { written: 0, deadLettered: 0, abandoned: 0, retries: 0 });
  });

  it('refuses a bad maxAttempts at construction', () => {
    assert.throws(() => new RecorderStage({ writer: scriptedWriter([]), log: silentLogger(), maxAttempts: 0 }), /maxAttempts must be an integer >= 1, found 0/);
  });
});
