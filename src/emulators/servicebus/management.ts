/**
 * The `$management` operations of an entity, as the SDK calls them: request-response messages with `operation` in
 * the application properties and a map body; the answer carries `status-code` and the request's message id as
 * `correlation_id`.
 */
import type { MessageStore, Settlement } from './message-store.js';
import { lockKey } from './lock-token.js';
import { encodeForDelivery, parseMessage } from './message.js';
import type { Namespace, SendTarget } from './namespace.js';
import { amqpTypes } from './rhea-internals.js';

export interface ManagementReply {
  status: number;
  description: string;
  condition?: string;
  body?: unknown;
}

const OP = 'com.microsoft:';
const ok = (body: unknown = {}): ManagementReply => ({ status: 200, description: 'OK', body });
const fail = (status: number, condition: string, description: string): ManagementReply => ({
  status,
  condition,
  description,
});
const lockLost = (): ManagementReply =>
  fail(
    410,
    'com.microsoft:message-lock-lost',
    'The lock supplied is invalid: it expired, or the message was already settled.',
  );
const sessionLockLost = (): ManagementReply =>
  fail(410, 'com.microsoft:session-lock-lost', 'The session lock has expired or the session is not locked.');

/** A long as rhea decodes it: a number when small, 8 big-endian bytes otherwise. */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE(0));
  if (typeof value === 'bigint') return Number(value);
  throw new TypeError(`expected a number, found ${typeof value}`);
}

function longs(value: unknown): number[] {
  return Array.isArray(value) ? value.map(toNumber) : [];
}

function buffers(value: unknown): Buffer[] {
  return Array.isArray(value) ? value.filter((v): v is Buffer => Buffer.isBuffer(v)) : [];
}

function optString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function propertiesToModify(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && Object.keys(value).length > 0
    ? (value as Record<string, unknown>)
    : undefined;
}

export interface ManagementContext {
  namespace: Namespace;
  /** The entity path the management link is attached to (without `/$management`). */
  entity: string;
  now: number;
}

/** Runs one management request. */
export function handleManagement(
  operation: string,
  body: Record<string, unknown>,
  ctx: ManagementContext,
): ManagementReply {
  const op = operation.startsWith(OP) ? operation.slice(OP.length) : operation;
  const store = ctx.namespace.store(ctx.entity);
  const target = ctx.namespace.sendTarget(ctx.entity);
  if (op === 'schedule-message' || op === 'cancel-scheduled-message') {
    if (!target) return fail(404, 'amqp:not-found', `The messaging entity '${ctx.entity}' could not be found.`);
    return op === 'schedule-message' ? schedule(ctx, target, body) : cancel(ctx, target, body);
  }
  if (!store) return fail(404, 'amqp:not-found', `The messaging entity '${ctx.entity}' could not be found.`);
  switch (op) {
    case 'peek-message':
      return peek(store, body, ctx.now);
    case 'renew-lock':
      return renewLock(store, body, ctx.now);
    case 'receive-by-sequence-number':
      return receiveBySequence(store, body, ctx.now);
    case 'update-disposition':
      return updateDisposition(store, body, ctx.now);
    case 'renew-session-lock': {
      const until = store.renewSessionLock(String(body['session-id']), ctx.now);
      return until === undefined ? sessionLockLost() : ok({ expiration: new Date(until) });
    }
    case 'get-session-state': {
      const state = store.getSessionState(String(body['session-id']), ctx.now);
      return state === 'session-lock-lost' ? sessionLockLost() : ok({ 'session-state': state ?? null });
    }
    case 'set-session-state': {
      const raw = body['session-state'];
      const state = Buffer.isBuffer(raw) ? raw : undefined;
      return store.setSessionState(String(body['session-id']), state, ctx.now) === 'ok' ? ok() : sessionLockLost();
    }
    default:
      return fail(501, 'amqp:not-implemented', `The operation '${operation}' is not supported by this emulator.`);
  }
}

function peek(store: MessageStore, body: Record<string, unknown>, now: number): ManagementReply {
  const from = toNumber(body['from-sequence-number'] ?? 0);
  const count = typeof body['message-count'] === 'number' ? body['message-count'] : 1;
  const messages = store
    .peek(from, count, optString(body['session-id']), now)
    .map((msg) => ({ message: encodeForDelivery(msg) }));
  if (messages.length === 0) return { status: 204, description: 'No Content', body: { messages: [] } };
  return ok({ messages });
}

function renewLock(store: MessageStore, body: Record<string, unknown>, now: number): ManagementReply {
  const expirations: Date[] = [];
  for (const token of buffers(body['lock-tokens'])) {
    const until = store.renewLock(lockKey(token), now);
    if (typeof until !== 'number') return until === 'session-lock-lost' ? sessionLockLost() : lockLost();
    expirations.push(new Date(until));
  }
  return ok({
    expirations: amqpTypes.wrap_array(
      expirations.map((d) => d.getTime()),
      0x83,
      undefined,
    ),
  });
}

function receiveBySequence(store: MessageStore, body: Record<string, unknown>, now: number): ManagementReply {
  const seqs = longs(body['sequence-numbers']);
  const receiveAndDelete = body['receiver-settle-mode'] === 0;
  const found = store.receiveDeferred(seqs, receiveAndDelete, optString(body['session-id']), now);
  if (!found)
    return fail(
      404,
      'com.microsoft:message-not-found',
      `Failed to lock one or more specified messages: not deferred messages of '${store.name}'.`,
    );
  return ok({
    messages: found.map(({ msg, lock }) => {
      const entry: Record<string, unknown> = {
        message: encodeForDelivery(msg, lock ? { lockedUntil: lock.until } : {}),
      };
      if (lock) entry['lock-token'] = amqpTypes.wrap_uuid(lock.token);
      return entry;
    }),
  });
}

function updateDisposition(store: MessageStore, body: Record<string, unknown>, now: number): ManagementReply {
  const status = body['disposition-status'];
  const properties = propertiesToModify(body['properties-to-modify']);
  let settlement: Settlement;
  if (status === 'completed') settlement = { kind: 'complete' };
  else if (status === 'abandoned') settlement = { kind: 'abandon', properties };
  else if (status === 'defered' || status === 'deferred') settlement = { kind: 'defer', properties };
  else if (status === 'suspended') {
    settlement = {
      kind: 'dead-letter',
      reason: optString(body['deadletter-reason']),
      description: optString(body['deadletter-description']),
      properties,
    };
  } else return fail(400, 'amqp:invalid-field', `Unknown disposition-status '${String(status)}'.`);
  for (const token of buffers(body['lock-tokens'])) {
    const result = store.settle(lockKey(token), settlement, now);
    if (result === 'lock-lost') return lockLost();
    if (result === 'session-lock-lost') return sessionLockLost();
  }
  return ok();
}

function schedule(ctx: ManagementContext, target: SendTarget, body: Record<string, unknown>): ManagementReply {
  const entries = Array.isArray(body['messages']) ? (body['messages'] as Array<Record<string, unknown>>) : [];
  const parsed = entries.map((e) => {
    const bytes = e['message'];
    if (!Buffer.isBuffer(bytes)) throw new TypeError('schedule-message: an entry has no message bytes');
    return parseMessage(bytes);
  });
  const seqs = ctx.namespace.schedule(target, parsed, ctx.now);
  return ok({ 'sequence-numbers': amqpTypes.wrap_array(seqs, 0x81, undefined) });
}

function cancel(ctx: ManagementContext, target: SendTarget, body: Record<string, unknown>): ManagementReply {
  ctx.namespace.cancelScheduled(target, longs(body['sequence-numbers']));
  return ok();
}
