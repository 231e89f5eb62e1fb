/** One HTTP call as the simulators see it, and the shared flow of a provider call (limits, latency, faults). */
import { delayUnlessAborted } from '../../abort.js';
import { readBody as readLimited } from '../../http/index.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultAction, FaultPlan, SimulatedProvider } from './faults.js';
import type { Records, SimulatedMessage } from './records.js';

const MAX_BODY_BYTES = 1024 * 1024;

/** An answer: a status, a JSON body, extra headers. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Exchange {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Lower-case header names; repeated headers joined by `, `. */
  headers: Record<string, string | undefined>;
  /** The raw body, UTF-8. */
  body: string;
}

export class BodyTooLarge extends Error {}

export function readBody(req: IncomingMessage): Promise<string> {
  return readLimited(req, MAX_BODY_BYTES, () => new BodyTooLarge(`the request body exceeds ${MAX_BODY_BYTES} bytes`));
}

export function writeReply(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(text)),
    ...reply.headers,
  });
  res.end(text);
}

/** What a provider's handler decided for one call, before the faults and limits run. */
export interface Prepared {
  /** The sender, when the request names one (stats per sender). */
  sender?: string;
  /** An immediate refusal (authentication, routing, Twilio's concurrency limit), counted under `code`. */
  refuse?: { reply: Reply; code: string | number; rateLimited?: boolean };
  /** Runs once the call is past latency and faults: validation, limits, idempotency, acceptance. */
  execute?: (now: number) => Outcome;
  /** Called when the call ends, however it ends (releases per-account concurrency). */
  onEnd?: () => void;
}

export interface Outcome {
  reply: Reply;
  accepted?: SimulatedMessage;
  /** A refusal, counted under this code. */
  rejected?: string | number;
  /** A 429 from the provider's own limits. */
  rateLimited?: boolean;
  /** Answered from the idempotency record. */
  duplicate?: boolean;
  /** Twilio: a message accepted over the sender's limit (Twilio queues it): its segments. */
  rateViolation?: number;
  /** Twilio: the auth token the send authenticated with (its status callbacks are signed with it); never logged. */
  authToken?: string;
}

export interface CallDeps {
  provider: SimulatedProvider;
  records: Records;
  faults: FaultPlan;
  /** Latency added to every call of every provider, ms. */
  baseLatencyMs: number;
  now: () => number;
  /** The provider's error body for an injected fault. */
  renderFault: (action: Exclude<FaultAction, { kind: 'none' | 'timeout' }>) => Reply;
  /** Calls held open (timeouts), so that `close()` can end them. */
  held: Set<ServerResponse>;
  /** Told each accepted message (callbacks start from here). */
  onAccepted?: (message: SimulatedMessage, outcome: Outcome) => void;
}

/**
 * The life of one provider call: counted in flight until its response closes, refused at once if the handler
 * says so, then latency, then the injected fault (held, 429, 5xx) or the handler's own outcome.
 */
export async function runCall(deps: CallDeps, res: ServerResponse, prepared: Prepared): Promise<void> {
  const { provider, records } = deps;
  const counters = records.both(provider, prepared.sender);
  for (const c of counters) c.requests += 1;
  const exit = records.enter(provider, prepared.sender);
  const end = (): void => {
    exit();
    prepared.onEnd?.();
    deps.held.delete(res);
  };
  if (res.writableFinished || res.destroyed) end();
  else res.once('close', end);

  const hold = (): void => {
    for (const c of [records.provider(provider)]) c.faults.timeouts += 1;
    deps.held.add(res);
  };

  if (prepared.refuse) {
    records.reject(provider, prepared.sender, prepared.refuse.code);
    if (prepared.refuse.rateLimited) for (const c of records.both(provider, prepared.sender)) c.rateLimited += 1;
    writeReply(res, prepared.refuse.reply);
    return;
  }
  const decision = deps.faults.decide(provider);
  await delayUnlessAborted(deps.baseLatencyMs + decision.delayMs);
  const action = decision.action;
  if (action.kind === 'timeout' && !action.afterAccept) {
    hold();
    return;
  }
  if (action.kind === 'rateLimit') {
    records.provider(provider).faults.rateLimitBursts += 1;
    for (const c of records.both(provider, prepared.sender)) c.rateLimited += 1;
    writeReply(res, deps.renderFault(action));
    return;
  }
  if (action.kind === 'error' && !action.afterAccept) {
    records.provider(provider).faults.errors += 1;
    writeReply(res, deps.renderFault(action));
    return;
  }
  const outcome = prepared.execute!(deps.now());
  const both = records.both(provider, prepared.sender);
  if (outcome.accepted) {
    records.accept(outcome.accepted);
    deps.onAccepted?.(outcome.accepted, outcome);
  }
  if (outcome.rejected !== undefined) records.reject(provider, prepared.sender, outcome.rejected);
  for (const c of both) {
    if (outcome.rateLimited) c.rateLimited += 1;
    if (outcome.duplicate) c.duplicates += 1;
    c.rateViolations += outcome.rateViolation ?? 0;
  }
  if (action.kind === 'timeout') {
    hold();
    return;
  }
  if (action.kind === 'error') {
    // Processed (and maybe accepted), answered with the 5xx all the same.
    records.provider(provider).faults.errors += 1;
    writeReply(res, deps.renderFault(action));
    return;
  }
  writeReply(res, outcome.reply);
}
