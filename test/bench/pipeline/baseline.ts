/**
 * The naive baseline of the pipeline benchmark, run as its own process (so that its CPU time and RSS are measured
 * as the relay's workers' are): what a simple plug-in or function does, one message at a time. Receive one event
 * from `activities` (the real @azure/service-bus SDK), decode it (GET the activity row when its Target lacks the contact
 * or message record), GET the contact, GET the message record, render the
 * text, POST to the provider, call `msdyncrm_CustomChannelActivityCreateInteraction` as one Web API action, complete.
 *
 * Environment: SERVICEBUS_CONNECTION_STRING, DATAVERSE_URL (the emulator; the bearer text is BASELINE_IDENTITY,
 * default `baseline`, which the emulator counts requests by), PROVIDERS_URL, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
 * SMS_FROM. Writes `ready` to stdout once receiving; stops on SIGTERM after the message in hand.
 */
import { ServiceBusClient } from '@azure/service-bus';
import { DynamicsWebApi } from 'dynamics-web-api';
import { ACTIVITY_COLUMNS, ACTIVITY_SET, activityFromRow, decodeRemoteContext } from '../../../src/dataverse/index.js';
import { renderText } from '../../../src/pipeline/index.js';
import { createProvider } from '../../../src/providers/index.js';
import { sentInteraction } from './sent-interaction.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`baseline: ${name} is not set`);
  return value;
}

const bus = new ServiceBusClient(required('SERVICEBUS_CONNECTION_STRING'));
const receiver = bus.createReceiver('activities');
const identity = process.env['BASELINE_IDENTITY'] ?? 'baseline';
const api = new DynamicsWebApi({
  serverUrl: required('DATAVERSE_URL'),
  dataApi: { version: '9.2' },
  onTokenRefresh: async () => identity,
});
const provider = createProvider({
  type: 'twilio',
  accountSid: required('TWILIO_ACCOUNT_SID'),
  authToken: required('TWILIO_AUTH_TOKEN'),
  baseUrl: required('PROVIDERS_URL'),
});
const from = required('SMS_FROM');

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
let handled = 0;
let failed = 0;

process.stdout.write('ready\n');
while (!stopping) {
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  if (message === undefined) continue;
  try {
    const decoded = decodeRemoteContext(message);
    // A Create's Target may lack the contact and message record (set later, or by a plug-in): read the row for them.
    const event =
      decoded.kind === 'activity-truncated'
        ? activityFromRow(
            await api.retrieve<Record<string, unknown>>({
              collection: ACTIVITY_SET,
              key: decoded.activityRowId,
              select: [...ACTIVITY_COLUMNS],
            }),
            decoded,
          )
        : decoded;
    if (event.kind !== 'activity') throw new Error(`not an activity event: ${event.kind}`);
    const contact = await api.retrieve<Record<string, unknown>>({
      collection: 'contacts',
      key: event.contactId,
      select: ['firstname', 'lastname', 'mobilephone', 'donotphone'],
    });
    const record = await api.retrieve<Record<string, unknown>>({
      collection: `${event.entityType}s`,
      key: event.entityId,
      select: ['sample_text'],
    });
    if (contact['donotphone'] !== true) {
      const text = renderText(String(record['sample_text'] ?? ''), contact);
      await provider.send({ idempotencyKey: event.activityRowId, from, to: String(contact['mobilephone']), text });
      const request = sentInteraction(event);
      await api.callAction({ actionName: request.actionName, action: request.action });
    }
    await receiver.completeMessage(message);
    handled++;
  } catch (err) {
    failed++;
    process.stderr.write(`baseline: ${(err as Error).message}\n`);
    await receiver.abandonMessage(message).catch(() => undefined);
  }
}
await receiver.close();
await bus.close();
process.stderr.write(`baseline: handled ${handled}, failed ${failed}\n`);
