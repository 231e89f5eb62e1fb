/**
 * The Functions-style peer of the pipeline benchmarks, run as its own process (so that its CPU time and RSS are
 * measured as the relay's workers' are): what a Dynamics 365 developer builds as an Azure Function with a Service
 * Bus trigger, written carefully. `receiver.subscribe` on `activities` with `maxConcurrentCalls: 16` (the Functions
 * host's Service Bus default per instance is 16 × the cores; one instance here) and the SDK's automatic lock renewal;
 * per message: decode the event (GET the activity row when its Target lacks the contact or message record, as half
 * the emulator's Creates post it), GET the contact, GET the message record, render, POST to the provider,
 * `msdyncrm_CustomChannelActivityCreateInteraction`, complete. Careful means: a Dataverse 429 waits its
 * `Retry-After` and retries (the documented way to handle service protection limits), the sender's rate limit is kept
 * by a token bucket at the channel's rate (one token, no burst, so that no 1 s window holds more than the rate), and
 * an unexpected error abandons the message (Service Bus redelivers it).
 *
 * Environment: as baseline.ts, plus PEER_IDENTITY (default `peer`, the bearer text the emulator counts requests by)
 * and PEER_RATE (the sender's messages per second). Writes `ready` to stdout once subscribed; on SIGTERM closes the
 * receiver after the messages in hand.
 */
import { ServiceBusClient, type ServiceBusReceivedMessage } from '@azure/service-bus';
import { ACTIVITY_COLUMNS, ACTIVITY_SET, activityFromRow, decodeRemoteContext } from '../../../src/dataverse/index.js';
import { renderText } from '../../../src/pipeline/index.js';
import { createProvider } from '../../../src/providers/index.js';
import { sentInteraction } from './sent-interaction.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`peer: ${name} is not set`);
  return value;
}

const CONCURRENCY = 16;
/** Dataverse attempts per request before the message is abandoned (each 429 waits its Retry-After first). */
const DATAVERSE_ATTEMPTS = 20;

const api = `${required('DATAVERSE_URL')}/api/data/v9.2`;
const identity = process.env['PEER_IDENTITY'] ?? 'peer';
const rate = Number(required('PEER_RATE'));
if (!(rate > 0)) throw new Error(`peer: PEER_RATE must be a number > 0, found ${process.env['PEER_RATE']}`);
const provider = createProvider({
  type: 'twilio',
  accountSid: required('TWILIO_ACCOUNT_SID'),
  authToken: required('TWILIO_AUTH_TOKEN'),
  baseUrl: required('PROVIDERS_URL'),
});
const from = required('SMS_FROM');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let throttled = 0;

/** One Dataverse Web API request; a 429 waits `Retry-After` seconds and tries again. */
async function dataverse(path: string, init: { method: 'GET' } | { method: 'POST'; body: unknown }): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${api}/${path}`, {
      method: init.method,
      headers: {
        Authorization: `Bearer ${identity}`,
        Accept: 'application/json',
        'OData-Version': '4.0',
        'OData-MaxVersion': '4.0',
        ...(init.method === 'POST' ? { 'Content-Type': 'application/json' } : {}),
      },
      ...(init.method === 'POST' ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    if (res.status === 429 && attempt < DATAVERSE_ATTEMPTS) {
      throttled++;
      const seconds = Number(res.headers.get('retry-after'));
      await sleep((Number.isFinite(seconds) && seconds > 0 ? seconds : 1) * 1000);
      continue;
    }
    if (!res.ok) throw new Error(`${init.method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text === '' ? undefined : JSON.parse(text);
  }
}

/** A token bucket of one token at `rate` per second: the next send may start at `next`. */
let next = 0;
async function sendSlot(): Promise<void> {
  const now = Date.now();
  const at = Math.max(now, next);
  next = at + 1000 / rate;
  if (at > now) await sleep(at - now);
}

async function handle(message: ServiceBusReceivedMessage): Promise<void> {
  const decoded = decodeRemoteContext(message);
  // A Create's Target may lack the contact and message record (set later, or by a plug-in): read the row for them.
  const event =
    decoded.kind === 'activity-truncated'
      ? activityFromRow(
          (await dataverse(`${ACTIVITY_SET}(${decoded.activityRowId})?$select=${ACTIVITY_COLUMNS.join(',')}`, {
            method: 'GET',
          })) as Record<string, unknown>,
          decoded,
        )
      : decoded;
  if (event.kind !== 'activity') throw new Error(`not an activity event: ${event.kind}`);
  const contact = (await dataverse(`contacts(${event.contactId})?$select=firstname,lastname,mobilephone,donotphone`, {
    method: 'GET',
  })) as Record<string, unknown>;
  const record = (await dataverse(`${event.entityType}s(${event.entityId})?$select=sample_text`, {
    method: 'GET',
  })) as Record<string, unknown>;
  if (contact['donotphone'] === true) return;
  const text = renderText(String(record['sample_text'] ?? ''), contact);
  await sendSlot();
  await provider.send({ idempotencyKey: event.activityRowId, from, to: String(contact['mobilephone']), text });
  const request = sentInteraction(event);
  await dataverse(request.actionName, { method: 'POST', body: request.action });
}

const bus = new ServiceBusClient(required('SERVICEBUS_CONNECTION_STRING'));
const receiver = bus.createReceiver('activities');
let handled = 0;
let failed = 0;
let inFlight = 0;
const subscription = receiver.subscribe(
  {
    processMessage: async (message) => {
      inFlight++;
      try {
        await handle(message);
        await receiver.completeMessage(message);
        handled++;
      } catch (err) {
        failed++;
        process.stderr.write(`peer: ${(err as Error).message}\n`);
        await receiver.abandonMessage(message).catch(() => undefined);
      } finally {
        inFlight--;
      }
    },
    processError: async ({ error }) => {
      process.stderr.write(`peer: receiving: ${error.message}\n`);
    },
  },
  { maxConcurrentCalls: CONCURRENCY, autoCompleteMessages: false },
);
process.stdout.write('ready\n');

await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
await subscription.close();
// The messages in hand are finished and settled before the receiver closes (as the Functions host drains).
while (inFlight > 0) await sleep(50);
await receiver.close();
await bus.close();
process.stderr.write(`peer: handled ${handled}, failed ${failed}, ${throttled} Dataverse 429s waited out\n`);
