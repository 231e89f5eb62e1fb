/**
 * `$batch`: runs the parts in order; change sets atomically (one transaction, `Content-ID` references), stopping
 * at the first failure unless `Prefer: odata.continue-on-error`. At most 1,000 operations.
 */
import { DataverseFault, isFault } from './faults.js';
import {
  boundaryOf,
  MultipartError,
  parseBatch,
  writeBatch,
  type BatchRequestPart,
  type BatchResponseItem,
  type BatchResponsePart,
} from './multipart.js';
import { parsePrefer, type OperationRequest, type OperationResponse, type OrganizationService } from './service.js';
import { Tx } from './store.js';

export const MAX_BATCH_OPERATIONS = 1000;
const API_MARKER = '/api/data/v9.2/';

export interface BatchOutcome {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Operations executed (for the execution-time limit). */
  operations: number;
  /** Of those, GETs (reads). */
  reads: number;
}

/** The path below the API root of a part's request line. */
export function relativePath(url: string): string {
  const at = url.indexOf(API_MARKER);
  if (at >= 0) return url.slice(at + API_MARKER.length);
  return url.startsWith('/') ? url.slice(1) : url;
}

function faultPart(fault: DataverseFault, requestId: string, contentId?: string): BatchResponsePart {
  const part: BatchResponsePart = {
    status: fault.status,
    headers: {
      REQ_ID: requestId,
      'Content-Type': 'application/json; odata.metadata=minimal',
      'OData-Version': '4.0',
      ...fault.headers,
    },
    body: fault.body(),
  };
  if (contentId !== undefined) part.contentId = contentId;
  return part;
}

function okPart(res: OperationResponse, contentId?: string): BatchResponsePart {
  const part: BatchResponsePart = { status: res.status, headers: res.headers };
  if (res.body !== undefined) part.body = res.body;
  if (contentId !== undefined) part.contentId = contentId;
  return part;
}

function asFault(err: unknown): DataverseFault {
  return isFault(err)
    ? err
    : new DataverseFault('Internal', `Unexpected error in the emulator: ${(err as Error).message}`);
}

export function executeBatch(
  service: OrganizationService,
  contentType: string | undefined,
  body: string,
  headers: Record<string, string | undefined>,
  userId: string,
  requestId: string,
): BatchOutcome {
  const boundary = boundaryOf(contentType);
  if (!boundary)
    throw new DataverseFault(
      'BatchInvalid',
      `A $batch request needs Content-Type: multipart/mixed; boundary=…, found '${contentType ?? ''}'.`,
    );
  let items;
  try {
    items = parseBatch(body, boundary);
  } catch (err) {
    if (err instanceof MultipartError)
      throw new DataverseFault('BatchInvalid', `The batch body is malformed: ${err.message}.`);
    throw err;
  }
  const total = items.reduce((n, item) => n + (item.kind === 'request' ? 1 : item.requests.length), 0);
  if (total > MAX_BATCH_OPERATIONS) {
    throw new DataverseFault(
      'BatchInvalid',
      `The batch holds ${total} operations: the maximum number of operations in a batch is ${MAX_BATCH_OPERATIONS}.`,
    );
  }
  const continueOnError = parsePrefer(headers['prefer']).continueOnError;
  const out: BatchResponseItem[] = [];
  let operations = 0;
  let reads = 0;
  let status = 200;
  const run = (
    part: BatchRequestPart,
    tx?: Tx,
    resolveReference?: (ref: string) => string | undefined,
  ): OperationResponse => {
    operations += 1;
    if (part.method === 'GET') reads += 1;
    const request: OperationRequest = {
      method: part.method,
      path: relativePath(part.url),
      headers: part.headers,
      body: part.body,
      userId,
    };
    if (tx) request.tx = tx;
    if (resolveReference) request.resolveReference = resolveReference;
    return service.execute(request);
  };
  for (const item of items) {
    if (item.kind === 'request') {
      try {
        out.push({ kind: 'response', response: okPart(run(item.request)) });
      } catch (err) {
        const fault = asFault(err);
        out.push({ kind: 'response', response: faultPart(fault, requestId) });
        if (!continueOnError) {
          status = fault.status;
          break;
        }
      }
      continue;
    }
    const tx = new Tx();
    const refs = new Map<string, string>();
    const resolveReference = (ref: string): string | undefined => refs.get(ref.slice(1));
    const responses: BatchResponsePart[] = [];
    let failed: BatchResponsePart | undefined;
    for (const part of item.requests) {
      try {
        const res = run(part, tx, resolveReference);
        if (part.contentId !== undefined && res.entityPath !== undefined)
          refs.set(part.contentId, `/${res.entityPath}`);
        responses.push(okPart(res, part.contentId));
      } catch (err) {
        failed = faultPart(asFault(err), requestId, part.contentId);
        break;
      }
    }
    if (failed) {
      tx.rollback();
      out.push({ kind: 'response', response: failed });
      if (!continueOnError) {
        status = failed.status;
        break;
      }
      continue;
    }
    tx.commit();
    out.push({ kind: 'changeset', responses });
  }
  const written = writeBatch(out);
  return {
    status,
    headers: { 'Content-Type': written.contentType, 'OData-Version': '4.0' },
    body: written.body,
    operations,
    reads,
  };
}
