/**
 * What a stage's span says about the message it handles: the activity row (or the real-time request), the channel and
 * the journey; ids and names only, never the recipient, the text or anything the provider answered
 * (docs/operations.md, "Traces").
 */
import type { Attributes } from '@opentelemetry/api';
import { ATTR } from '../telemetry/index.js';
import type { SendContext } from './messages.js';

/** The span attributes of a message of `channel` in `context` (an outbound or interaction message). */
export function traceAttributes(channel: string, context: SendContext | undefined): Attributes {
  if (context === undefined) return { [ATTR.channel]: channel };
  const journey = context.journeyId === undefined ? {} : { [ATTR.journeyId]: context.journeyId };
  return context.kind === 'realtime'
    ? { [ATTR.channel]: channel, [ATTR.requestId]: context.requestId, ...journey }
    : { [ATTR.channel]: channel, [ATTR.activityRowId]: context.activityRowId, ...journey };
}
