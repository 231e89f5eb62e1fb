/**
 * `importSolution`: a solution zip into an org through the Web API's `ImportSolutionAsync`, then the job followed to
 * its end: the `asyncoperation` says when and how it ended, the `importjobs` row how far it got (`progress`) and, in its
 * log (`data`), which components failed and why. The readings where Microsoft's pages are silent are in
 * `import-assumptions.ts`.
 */
import { randomUUID } from 'node:crypto';
import type { DynamicsWebApi } from 'dynamics-web-api';
import { delayUnlessAborted, linkedController } from '../abort.js';
import { clientTimeoutMs, DEFAULT_TIMEOUT_MS, toDataverseError } from '../dataverse/index.js';
import { DataverseError, isDataverseError } from '../errors.js';
import { intOption } from '../options.js';
import { ASYNC_OPERATION, FAILURE_IN_LOG_FAILS_IMPORT, importJobRowIds } from './import-assumptions.js';
import { readImportLog, type ImportLogEntry } from './import-log.js';

export interface ImportSolutionOptions {
  /** `OverwriteUnmanagedCustomizations`: replace unmanaged changes made in the org to the same components. @defaultValue true */
  overwriteUnmanagedCustomizations?: boolean;
  /** `PublishWorkflows`: activate the processes the solution carries. @defaultValue true */
  publishWorkflows?: boolean;
  /** How often the job is read while it runs, ms. @defaultValue 1000 */
  pollMs?: number;
  /** How long to follow the job before giving up (the import goes on in the org), ms. @defaultValue 900000 (15 min) */
  maxWaitMs?: number;
  /** Per Web API call. @defaultValue the client's `timeoutMs`, else 30000 */
  timeoutMs?: number;
  /** Called after each read of the job. */
  onProgress?: (progress: ImportProgress) => void;
  signal?: AbortSignal;
}

export interface ImportProgress {
  /** The job's `progress`, 0–100 (0 while the job has not started). */
  percent: number;
  /** The asyncoperation's statuscode: 0/10 waiting, 20 in progress, 30/31/32 ended. */
  status: number | undefined;
  elapsedMs: number;
}

export interface SolutionImportResult {
  outcome: 'succeeded' | 'failed' | 'canceled';
  asyncOperationId: string;
  importJobId: string;
  /** The job's `solutionname`, when the org gave it. */
  solutionName?: string;
  durationMs: number;
  /** The failures and warnings of the job's log. */
  log: ImportLogEntry[];
  /** The asyncoperation's `message` or `friendlymessage`, when the job failed or was canceled. */
  message?: string;
}

type Row = Record<string, unknown>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function guidOf(value: unknown, what: string): string {
  if (typeof value === 'string' && GUID.test(value.replace(/^\{|\}$/g, '')))
    return value.replace(/^\{|\}$/g, '').toLowerCase();
  throw new DataverseError(
    'DataverseBadRequest',
    `Dataverse (ImportSolutionAsync) answered without a usable ${what}: found ${JSON.stringify(value) ?? 'nothing'}`,
  );
}

/**
 * Imports `zip` and follows the job to its end. Returns the outcome with the job's log; throws a `DataverseError` when
 * a call fails (the import refused outright, the org not reached) and a `DataverseTimeout` when the job has not ended
 * after `maxWaitMs` (its ids are in the message: the import goes on in the org).
 */
export async function importSolution(
  api: DynamicsWebApi,
  zip: Uint8Array,
  options: ImportSolutionOptions = {},
): Promise<SolutionImportResult> {
  const pollMs = intOption('importSolution', 'pollMs', options.pollMs, 1000, 1);
  const maxWaitMs = intOption('importSolution', 'maxWaitMs', options.maxWaitMs, 900_000, 1);
  const timeoutMs = options.timeoutMs ?? clientTimeoutMs(api) ?? DEFAULT_TIMEOUT_MS;
  const { signal } = options;

  /** One call with its timeout, under `signal` (a linked controller: one per poll, never kept by the parent). */
  async function call<T>(operation: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const linked = linkedController(signal, timeout);
    try {
      return await run(linked.signal);
    } catch (err) {
      throw toDataverseError(err, { operation, timedOut: timeout.aborted, timeoutMs });
    } finally {
      linked.dispose();
    }
  }

  const started = Date.now();
  const requestedJobId: string = randomUUID();
  const answer = (await call('ImportSolutionAsync', (s) =>
    api.callAction({
      actionName: 'ImportSolutionAsync',
      action: {
        CustomizationFile: Buffer.from(zip).toString('base64'),
        OverwriteUnmanagedCustomizations: options.overwriteUnmanagedCustomizations ?? true,
        PublishWorkflows: options.publishWorkflows ?? true,
        ImportJobId: requestedJobId,
      },
      signal: s,
    }),
  )) as Row | undefined;
  const asyncOperationId = guidOf(answer?.['AsyncOperationId'], 'AsyncOperationId');
  let jobIds = importJobRowIds(answer, requestedJobId);
  let importJobId = requestedJobId;

  /** The import job's row: the first of the candidate ids found is kept; undefined while none exists. */
  const readJob = async (): Promise<Row | undefined> => {
    for (const id of jobIds) {
      try {
        const row = (await call(`reading the importjob ${id}`, (s) =>
          api.retrieve({
            collection: 'importjobs',
            key: id,
            select: ['progress', 'data', 'solutionname', 'completedon'],
            signal: s,
          }),
        )) as Row;
        importJobId = id;
        jobIds = [id];
        return row;
      } catch (err) {
        if (!(isDataverseError(err) && err.code === 'DataverseNotFound')) throw err;
      }
    }
    return undefined;
  };

  for (;;) {
    const operation = (await call(`reading the asyncoperation ${asyncOperationId}`, (s) =>
      api.retrieve({
        collection: 'asyncoperations',
        key: asyncOperationId,
        select: ['statecode', 'statuscode', 'message', 'friendlymessage'],
        signal: s,
      }),
    )) as Row;
    const job = await readJob();
    const status = typeof operation['statuscode'] === 'number' ? operation['statuscode'] : undefined;
    const percent = typeof job?.['progress'] === 'number' ? Math.max(0, Math.min(100, job['progress'])) : 0;
    options.onProgress?.({ percent, status, elapsedMs: Date.now() - started });
    if (operation['statecode'] === ASYNC_OPERATION.completed) {
      const log = readImportLog(typeof job?.['data'] === 'string' ? job['data'] : undefined);
      const failedInLog = FAILURE_IN_LOG_FAILS_IMPORT && log.some((e) => e.level === 'failure');
      const outcome =
        status === ASYNC_OPERATION.succeeded && !failedInLog
          ? 'succeeded'
          : status === ASYNC_OPERATION.canceled
            ? 'canceled'
            : 'failed';
      const message = [operation['friendlymessage'], operation['message']].find(
        (m): m is string => typeof m === 'string' && m.trim() !== '',
      );
      const solutionName = job?.['solutionname'];
      return {
        outcome,
        asyncOperationId,
        importJobId,
        durationMs: Date.now() - started,
        log,
        ...(typeof solutionName === 'string' && solutionName !== '' ? { solutionName } : {}),
        ...(outcome !== 'succeeded' && message !== undefined ? { message } : {}),
      };
    }
    if (Date.now() - started >= maxWaitMs) {
      throw new DataverseError(
        'DataverseTimeout',
        `the solution import had not ended after ${Math.round(maxWaitMs / 1000)} s (asyncoperation ${asyncOperationId} statuscode ${status ?? 'unknown'}, importjob ${importJobId} at ${percent} %): it goes on in the org; follow it in Power Apps > Solutions > See history`,
      );
    }
    await delayUnlessAborted(pollMs, signal);
    if (signal?.aborted) throw toDataverseError(signal.reason, { operation: 'following the solution import' });
  }
}
