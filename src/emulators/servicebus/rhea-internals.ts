/**
 * Typed access to the parts of rhea (pinned 3.0.5) that its typings leave out: the type reader and writer, the
 * delivery outcomes, and the message codec. Everything that leans on rhea beyond its typings goes through here.
 */
import { createRequire } from 'node:module';
import rhea, { type Delivery } from 'rhea';

interface Described {
  described(): unknown;
}

interface TypeCodec {
  Reader: new (buffer: Buffer) => { read(): unknown };
  Writer: new () => { write(value: unknown): void; toBuffer(): Buffer };
  unwrap(value: unknown): unknown;
  wrap(value: unknown): unknown;
  wrap_array(values: unknown[], code: number, descriptors: undefined): unknown;
  wrap_long(value: Buffer | number): unknown;
  wrap_uuid(value: Buffer): unknown;
}

interface MessageCodec {
  encode(message: object): Buffer;
  decode(buffer: Buffer): AmqpMessage;
  accepted(): Described;
  modified(fields: object): Described;
  rejected(fields: object): Described;
}

/** A decoded message (request-response traffic only; entity messages stay as bytes). */
export interface AmqpMessage {
  message_id?: unknown;
  reply_to?: string;
  correlation_id?: unknown;
  application_properties?: Record<string, unknown>;
  body?: unknown;
  [key: string]: unknown;
}

export const amqpTypes = rhea.types as unknown as TypeCodec;
export const amqpMessage = rhea.message as unknown as MessageCodec;

interface FrameCodec {
  disposition(fields: { role: boolean; first: number; last: number; state: unknown; settled: boolean }): unknown;
}

interface OutgoingDelivery {
  id: number;
  settled: boolean;
  state: unknown;
  remote_settled: boolean;
  link: { is_closed(): boolean; session: { output(frame: unknown): void }; connection: { _register(): void } };
}

const frames = createRequire(import.meta.url)('rhea/lib/frames.js') as FrameCodec;

/**
 * Settles one delivery the broker sent, with its own disposition frame, and marks it settled on both sides (with
 * receiver-settle-mode "second" the client settles silently: pitfall 3).
 *
 * rhea 3.0.5's `write_dispositions` merges consecutive pending dispositions into one range without comparing the
 * second one's outcome with the first (`first !== last && …`), so settling deliveries N (lock lost) and N+1 (ok) in
 * one tick would tell the client both were lost, or both ok. Writing each disposition alone avoids that.
 */
export function settleDelivery(delivery: Delivery, state: unknown): void {
  const d = delivery as unknown as OutgoingDelivery;
  if (d.settled) return;
  d.settled = true;
  d.state = state;
  d.remote_settled = true;
  if (!d.link.is_closed())
    d.link.session.output(frames.disposition({ role: false, first: d.id, last: d.id, state, settled: true }));
  d.link.connection._register();
}
