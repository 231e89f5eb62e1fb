/**
 * Subscription rules: correlation filters (every field set must equal the message's; user properties compared by
 * value) and the true filter.
 */
import type { CorrelationFilter, RuleDefinition } from './config.js';
import { applicationPropertiesOf, type IncomingMessage } from './message.js';

const SYSTEM_FIELDS = [
  'contentType',
  'correlationId',
  'subject',
  'messageId',
  'replyTo',
  'replyToSessionId',
  'sessionId',
  'to',
] as const;

function sameValue(actual: unknown, expected: string | number | boolean): boolean {
  if (actual === expected) return true;
  if (actual instanceof Date) return typeof expected === 'number' && actual.getTime() === expected;
  return actual !== undefined && actual !== null && String(actual) === String(expected);
}

export function matchesCorrelation(filter: CorrelationFilter, msg: IncomingMessage): boolean {
  for (const field of SYSTEM_FIELDS) {
    const expected = filter[field];
    if (expected !== undefined && msg.props[field] !== expected) return false;
  }
  if (filter.properties) {
    const actual = applicationPropertiesOf(msg.wire);
    for (const [name, expected] of Object.entries(filter.properties)) {
      if (!sameValue(actual[name], expected)) return false;
    }
  }
  return true;
}

/** Whether any rule of a subscription takes the message; a subscription without rules takes every message. */
export function subscriptionAccepts(rules: readonly RuleDefinition[], msg: IncomingMessage): boolean {
  if (rules.length === 0) return true;
  return rules.some((r) => r.filter === undefined || matchesCorrelation(r.filter, msg));
}
