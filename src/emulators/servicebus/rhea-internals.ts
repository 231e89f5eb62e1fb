/**
 * Typed access to the parts of rhea (pinned 3.0.5) that its typings leave out: the type reader and writer, the
 * delivery outcomes, and the message codec. Everything that leans on rhea beyond its typings goes through here.
 */
import rhea from 'rhea';

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
