import assert from 'node:assert/strict';
import { ACCOUNT, LONG_CODE, ManualClock, simulators, sms, TOKEN, twilioSend, type Answer } from './helpers.js';

const TO = '+4915112345678';
const OTHER = '+4915187654321';
const SERVICE = 'MG0123456789abcdef0123456789abcdef';

type Page = {
  messages: Array<Record<string, unknown>>;
  next_page_uri: string | null;
  page: number;
  page_size: number;
  start: number;
};

/** `GET /2010-04-01/Accounts/{ACCOUNT}/Messages.json?{query}` (or a `next_page_uri`) with basic auth (`token: null`: none). */
async function twilioList(url: string, query: string, token: string | null = TOKEN): Promise<Answer<Page>> {
  const headers: Record<string, string> = {};
  if (token !== null) headers['Authorization'] = `Basic ${Buffer.from(`${ACCOUNT}:${token}`).toString('base64')}`;
  const path = query.startsWith('/') ? query : `/2010-04-01/Accounts/${ACCOUNT}/Messages.json?${query}`;
  const res = await fetch(`${url}${path}`, { headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Page };
}

describe('provider simulators: Twilio Messages list', () => {
  const start = simulators();

  it('filters by To and From, most recent date_sent first, the messages not sent yet after them', async () => {
    const clock = new ManualClock();
    const sim = await start({ clock: clock.read, twilio: { statusCallbacks: false } });
    const a = await twilioSend(sim.url, sms(TO, 'first'));
    clock.advance(1000);
    const b = await twilioSend(sim.url, sms(TO, 'second'));
    await twilioSend(sim.url, sms(OTHER, 'to someone else'));
    await twilioSend(sim.url, { To: TO, MessagingServiceSid: SERVICE, Body: 'through a service' });
    const list = await twilioList(sim.url, new URLSearchParams({ To: TO, From: LONG_CODE }).toString());
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.messages.map((m) => m['body']),
      ['second', 'first'],
      'no date_sent yet: newest created first',
    );
    assert.deepEqual(
      list.body.messages.map((m) => m['sid']),
      [b.body['sid'], a.body['sid']],
    );
    assert.equal(list.body.next_page_uri, null);
    const toOnly = await twilioList(sim.url, `To=${encodeURIComponent(TO)}`);
    assert.deepEqual(toOnly.body.messages.map((m) => m['body']).sort(), ['first', 'second', 'through a service']);
    assert.equal(
      toOnly.body.messages.find((m) => m['body'] === 'through a service')?.['messaging_service_sid'],
      SERVICE,
    );
  });

  it('DateSent filters leave out the messages not sent yet (date_sent null), and compare UTC days', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 23, 59, 0));
    // Without a StatusCallback a message reaches its final status at once; with one, it stays queued until its
    // callbacks run (a minute away here).
    const sim = await start({ clock: clock.read, callbacks: { delayMs: 60_000 } });
    await twilioSend(sim.url, sms(TO, 'sent on the 1st'));
    clock.advance(120_000);
    await twilioSend(sim.url, sms(TO, 'sent on the 2nd'));
    const queued = await twilioSend(sim.url, {
      ...sms(TO, 'still queued'),
      StatusCallback: 'http://127.0.0.1:9/status',
    });
    const bodies = async (query: string): Promise<unknown[]> =>
      (await twilioList(sim.url, query)).body.messages.map((m) => m['body']);
    assert.deepEqual(await bodies('DateSent=2026-01-01'), ['sent on the 1st']);
    assert.deepEqual(
      await bodies('DateSent>=2026-01-02'),
      ['sent on the 2nd'],
      'DateSent>=: on or after the day; the queued one left out',
    );
    assert.deepEqual(await bodies('DateSent<=2026-01-01'), ['sent on the 1st']);
    assert.deepEqual(
      await bodies(`DateSent>=${encodeURIComponent('2026-01-01T23:59:30Z')}`),
      ['sent on the 2nd'],
      'a date-time compares the instant',
    );
    assert.deepEqual(
      await bodies(''),
      ['sent on the 2nd', 'sent on the 1st', 'still queued'],
      'without a filter: unsent after the sent ones',
    );
    assert.equal((await twilioList(sim.url, '')).body.messages[2]?.['sid'], queued.body['sid']);
  });

  it('pages: PageSize, next_page_uri with PageToken (a page after the last one read, even when messages came in between)', async () => {
    const sim = await start({ twilio: { statusCallbacks: false } });
    for (let i = 1; i <= 5; i++) await twilioSend(sim.url, sms(TO, `m${i}`));
    const first = await twilioList(sim.url, `To=${encodeURIComponent(TO)}&PageSize=2`);
    assert.deepEqual(
      first.body.messages.map((m) => m['body']),
      ['m5', 'm4'],
    );
    assert.equal(first.body.page_size, 2);
    assert.ok(
      first.body.next_page_uri?.startsWith(`/2010-04-01/Accounts/${ACCOUNT}/Messages.json?`),
      String(first.body.next_page_uri),
    );
    await twilioSend(sim.url, sms(TO, 'm6'));
    const second = await twilioList(sim.url, first.body.next_page_uri ?? '');
    assert.deepEqual(
      second.body.messages.map((m) => m['body']),
      ['m3', 'm2'],
      'after m4, although m6 came in',
    );
    const third = await twilioList(sim.url, second.body.next_page_uri ?? '');
    assert.deepEqual(
      third.body.messages.map((m) => m['body']),
      ['m1'],
    );
    assert.equal(third.body.next_page_uri, null);
  });

  it('refuses a bad page size or date (400, 20001) and missing credentials (401, 20003)', async () => {
    const sim = await start();
    for (const query of ['PageSize=0', 'PageSize=1001', 'PageSize=x', 'DateSent=yesterday', 'DateSent>=2026-13']) {
      const bad = await twilioList(sim.url, query);
      assert.equal(bad.status, 400, query);
      assert.equal((bad.body as unknown as { code: number }).code, 20001, query);
    }
    const anonymous = await twilioList(sim.url, '', null);
    assert.equal(anonymous.status, 401);
    assert.equal((anonymous.body as unknown as { code: number }).code, 20003);
  });

  it('sends a repeated I-Twilio-Idempotency-Token again unless honourIdempotencyToken is on', async () => {
    const plain = await start();
    await twilioSend(plain.url, sms(TO, 'once'), { idempotencyToken: 'key-1' });
    await twilioSend(plain.url, sms(TO, 'once'), { idempotencyToken: 'key-1' });
    assert.equal(plain.messages({ provider: 'twilio' }).length, 2, 'real Twilio ignores the header: sent twice');
    const honouring = await start({ twilio: { honourIdempotencyToken: true } });
    const first = await twilioSend(honouring.url, sms(TO, 'once'), { idempotencyToken: 'key-1' });
    const again = await twilioSend(honouring.url, sms(TO, 'once'), { idempotencyToken: 'key-1' });
    assert.equal(again.body['sid'], first.body['sid']);
    assert.equal(honouring.messages({ provider: 'twilio' }).length, 1);
  });
});
