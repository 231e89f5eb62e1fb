/**
 * `QueueSender` (`src/pipeline/ports.ts`) on `@azure/service-bus`: JSON bodies (`contentType: application/json`),
 * `messageId` (duplicate detection), `sessionId`, `subject` and `scheduledAt` (`scheduledEnqueueTimeUtc`), sent in as few `ServiceBusMessageBatch`es as the
 * queue's size limit allows.
 *
 * All batches are built before the first is sent, so a message that cannot fit even an empty batch fails the call
 * with a `MessageTooLargeError` (naming its `messageId` and size) before anything is sent. Batches are then sent in
 * order; when one fails the call rejects and the earlier batches stay sent: a retry of the whole call is safe on
 * queues with duplicate detection (same `messageId`s). The signal is passed to every SDK call.
 */
import type { ServiceBusClient, ServiceBusMessage, ServiceBusMessageBatch, ServiceBusSender } from '@azure/service-bus';
import type { Registry } from 'prom-client';
import type { QueueSender } from '../pipeline/index.js';
import type { Closeable } from '../lifecycle.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import { serviceBusMetrics } from './metrics.js';
import { stringOption } from '../options.js';
import { MessageTooLargeError } from '../errors.js';
import { createMessageSpan, inSendSpan, tracingOn, type TraceCarrier } from '../telemetry/index.js';

export interface QueueSenderOptions {
  /** @defaultValue silentLogger() */
  log?: Logger;
  /** Counts `channel_relay_messages_sent_total{queue}`. @defaultValue none */
  metrics?: Registry;
}

/** A `QueueSender` that also closes its SDK sender (the client stays open: it belongs to the caller). */
export type ClosableQueueSender<T> = QueueSender<T> & Closeable;

/** One message as `QueueSender.send` takes it (the port declares its shape). */
export type OutgoingMessage<T> = Parameters<QueueSender<T>['send']>[0][number];

/** The SDK message for one outgoing message, with the trace context of its `create` span when tracing is on. */
function toServiceBusMessage<T>(
  message: OutgoingMessage<T>,
  traceContext: TraceCarrier | undefined,
): ServiceBusMessage {
  return {
    body: message.body,
    contentType: 'application/json',
    messageId: message.messageId,
    ...(message.sessionId === undefined ? {} : { sessionId: message.sessionId }),
    ...(message.subject === undefined ? {} : { subject: message.subject }),
    // A plain send with `x-opt-scheduled-enqueue-time` is a scheduled message ("set ScheduledEnqueueTimeUtc when
    // sending through the regular send path": learn.microsoft.com/azure/service-bus-messaging/message-sequencing).
    ...(message.scheduledAt === undefined ? {} : { scheduledEnqueueTimeUtc: new Date(message.scheduledAt) }),
    // The trace context: with `Diagnostic-Id` already set, the Azure SDK's tracing leaves the message as it is.
    ...(traceContext === undefined ? {} : { applicationProperties: { ...traceContext } }),
  };
}

export function createQueueSender<T>(
  client: ServiceBusClient,
  queue: string,
  options: QueueSenderOptions = {},
): ClosableQueueSender<T> {
  stringOption('createQueueSender', 'queue', queue);
  if (typeof client?.createSender !== 'function')
    throw new TypeError('createQueueSender: client must be a ServiceBusClient');
  const log = areaLogger(options.log ?? silentLogger(), 'servicebus', { queue });
  const metrics = serviceBusMetrics(options.metrics);
  let sender: ServiceBusSender | undefined;
  let closed = false;

  const current = (): ServiceBusSender => {
    if (closed) throw new Error(`the sender for ${queue} is closed`);
    if (!sender || sender.isClosed) sender = client.createSender(queue);
    return sender;
  };

  return {
    send(messages, signal) {
      if (messages.length === 0) return Promise.resolve();
      if (!tracingOn()) return sendAll(messages, undefined, signal);
      const contexts = messages.map((m) => createMessageSpan(queue, m.messageId, m.parentSpan));
      return inSendSpan(queue, contexts, () => sendAll(messages, contexts, signal));
    },
    async close() {
      if (closed) return;
      closed = true;
      await sender?.close();
    },
  };

  async function sendAll(
    messages: ReadonlyArray<OutgoingMessage<T>>,
    contexts: ReadonlyArray<TraceCarrier | undefined> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    signal?.throwIfAborted();
    const s = current();
    const abort = signal ? { abortSignal: signal } : {};
    const batches: ServiceBusMessageBatch[] = [];
    let batch = await s.createMessageBatch(abort);
    for (const [i, m] of messages.entries()) {
      const message = toServiceBusMessage(m, contexts?.[i]);
      if (batch.tryAddMessage(message)) continue;
      const tooLarge = (): MessageTooLargeError =>
        new MessageTooLargeError(
          queue,
          m.messageId,
          Buffer.byteLength(JSON.stringify(m.body) ?? ''),
          batch.maxSizeInBytes,
        );
      if (batch.count === 0) throw tooLarge();
      batches.push(batch);
      batch = await s.createMessageBatch(abort);
      if (!batch.tryAddMessage(message)) throw tooLarge();
    }
    batches.push(batch);
    let sent = 0;
    for (const b of batches) {
      await s.sendMessages(b, abort);
      sent += b.count;
      metrics.sent(queue, b.count);
    }
    log.debug('sent', { count: sent, batches: batches.length });
  }
}
