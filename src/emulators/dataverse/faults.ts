/**
 * The errors the emulated Web API answers with, in Dataverse's JSON shape `{"error":{"code":"0x…","message":"…"}}`.
 * One table of codes: the HTTP status and the hexadecimal code Dataverse uses for each kind of refusal.
 */

/** Dataverse error codes by kind, with the HTTP status each is returned with. */
export const FAULTS = {
  /** Unknown property in $select/$filter/$orderby, unknown segment, bad query syntax. */
  QuerySyntax: { status: 400, code: '0x80060888' },
  /** Unknown entity set, action or function: "Resource not found for the segment …". */
  ResourceNotFound: { status: 404, code: '0x80060888' },
  /** A row that does not exist: "<table> With Id = <id> Does Not Exist". */
  RowNotFound: { status: 404, code: '0x80040217' },
  /** Payload errors: unknown property in a body, bad @odata.bind, wrong value type. */
  Payload: { status: 400, code: '0x80048d19' },
  /** Invalid or missing action parameter, bad argument. */
  InvalidArgument: { status: 400, code: '0x80040203' },
  /** A required attribute is missing on create. */
  RequiredMissing: { status: 400, code: '0x80044331' },
  /** `If-Match` did not match the row's version. */
  PreconditionFailed: { status: 412, code: '0x80060882' },
  /** A create with a primary key that is already used. */
  DuplicateKey: { status: 412, code: '0x80040237' },
  /** Method not allowed on this resource. */
  MethodNotAllowed: { status: 405, code: '0x80060888' },
  /** A $batch that is malformed or holds more than 1,000 operations. */
  BatchInvalid: { status: 400, code: '0x8006088a' },
  /** A request body larger than the emulator accepts. */
  PayloadTooLarge: { status: 413, code: '0x80060888' },
  /** Service protection: number of requests (-2147015902). */
  ThrottledRequests: { status: 429, code: '0x80072322' },
  /** Service protection: execution time (-2147015903). */
  ThrottledTime: { status: 429, code: '0x80072321' },
  /** Service protection: concurrent requests (-2147015898). */
  ThrottledConcurrency: { status: 429, code: '0x80072326' },
  /** A solution import that failed (ImportSolution; the code is UNVERIFIED, see assumptions.ts SOLUTION_IMPORT). */
  ImportFailed: { status: 400, code: '0x80048060' },
  /** Anything unexpected inside the emulator. */
  Internal: { status: 500, code: '0x80040216' },
} as const;

export type FaultKind = keyof typeof FAULTS;

/** A refusal of a request, rendered as Dataverse's error body. */
export class DataverseFault extends Error {
  override readonly name = 'DataverseFault';
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(kind: FaultKind, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = FAULTS[kind].status;
    this.code = FAULTS[kind].code;
    this.headers = headers;
  }

  /** The JSON body Dataverse returns. */
  body(): string {
    return JSON.stringify({ error: { code: this.code, message: this.message } });
  }
}

export function isFault(value: unknown): value is DataverseFault {
  return value instanceof DataverseFault;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a GUID in the 8-4-4-4-12 form (braces not allowed). */
export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && value.length === 36 && GUID.test(value);
}
