/**
 * The `ImportSolution` and `ImportSolutionAsync` actions: the parameters checked by their documented names and
 * types, an `importjob` row per import (`progress`, `solutionname`, `startedon`, `completedon`, the log in `data`)
 * and for the async action an `asyncoperation` row a client polls (Ready/Waiting For Resources → Locked/In Progress →
 * Completed/Succeeded or Failed with `message`). The async import takes simulated time in progress steps; one import
 * runs at a time. See assumptions.ts `SOLUTION_IMPORT`.
 */
import { randomUUID } from 'node:crypto';
import { DataverseFault, isFault, isGuid } from '../faults.js';
import { nowIsoSeconds } from '../payload.js';
import { JSON_HEADERS, type OperationRequest, type OperationResponse, type OrganizationService } from '../service.js';
import type { Row } from '../store.js';
import { SOLUTION_IMPORT } from '../assumptions.js';
import { applyImport, planImport, type ImportedComponent } from './apply.js';
import { readSolution, SolutionImportError, type SolutionContent } from './read.js';

const PARAMETERS = {
  OverwriteUnmanagedCustomizations: 'bool',
  PublishWorkflows: 'bool',
  CustomizationFile: 'binary',
  ImportJobId: 'guid',
  ConvertToManaged: 'bool',
  SkipProductUpdateDependencies: 'bool',
  HoldingSolution: 'bool',
  SkipQueueRibbonJob: 'bool',
  LayerDesiredOrder: 'object',
  AsyncRibbonProcessing: 'bool',
  ComponentParameters: 'array',
  SolutionParameters: 'object',
  IsTemplateMode: 'bool',
  TemplateSuffix: 'string',
  TemplateDisplayNamePrefix: 'string',
} as const;
const EDM: Record<string, string> = {
  bool: 'Edm.Boolean',
  binary: 'Edm.Binary',
  guid: 'Edm.Guid',
  string: 'Edm.String',
};
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

interface ImportRequest {
  file: Uint8Array;
  importJobId: string | undefined;
}

function readParameters(action: string, params: Record<string, unknown>, importJobRequired: boolean): ImportRequest {
  const invalid = (message: string): DataverseFault => new DataverseFault('InvalidArgument', `${action}: ${message}`);
  for (const key of Object.keys(params)) {
    if (!(key in PARAMETERS) && !key.startsWith('@'))
      throw invalid(`the action has no parameter '${key}' (parameters: ${Object.keys(PARAMETERS).join(', ')}).`);
  }
  for (const [name, kind] of Object.entries(PARAMETERS)) {
    const value = params[name];
    if (value === undefined || value === null) continue;
    const ok =
      kind === 'bool'
        ? typeof value === 'boolean'
        : kind === 'binary'
          ? typeof value === 'string' && BASE64.test(value)
          : kind === 'guid'
            ? isGuid(value)
            : kind === 'string'
              ? typeof value === 'string'
              : kind === 'array'
                ? Array.isArray(value)
                : typeof value === 'object';
    if (!ok)
      throw new DataverseFault(
        'Payload',
        `${action}: Cannot convert the literal '${String(value).slice(0, 40)}' to the expected type '${EDM[kind] ?? kind}' of the parameter '${name}'.`,
      );
  }
  const required = ['OverwriteUnmanagedCustomizations', 'PublishWorkflows', 'CustomizationFile'];
  if (importJobRequired) required.push('ImportJobId');
  for (const name of required) {
    if (params[name] === undefined || params[name] === null)
      throw invalid(`the required parameter '${name}' is missing.`);
  }
  if (params['HoldingSolution'] === true)
    throw invalid('HoldingSolution (staging an upgrade) is not supported by the emulator.');
  const file = Buffer.from(params['CustomizationFile'] as string, 'base64');
  if (file.length === 0) throw invalid("the parameter 'CustomizationFile' is empty.");
  return { file: new Uint8Array(file), importJobId: (params['ImportJobId'] as string | undefined)?.toLowerCase() };
}

const xmlAttr = (v: string): string =>
  v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/>/g, '&gt;');

/** The import log (`importjob.data`). */
function importLog(
  start: string,
  content: SolutionContent | undefined,
  components: ImportedComponent[],
  error: SolutionImportError | undefined,
): string {
  const now = nowIsoSeconds();
  const result = (failed: boolean): string =>
    failed
      ? `<result result="failure" errorcode="${SOLUTION_IMPORT_ERROR_CODE}" errortext="${xmlAttr(error!.message)}" datetime="${now}"/>`
      : `<result result="success" errorcode="0" errortext="" datetime="${now}"/>`;
  const name = content?.uniqueName ?? '';
  const groups: Record<ImportedComponent['kind'], string> = {
    entity: 'entities',
    webResource: 'webResources',
    customApi: 'customApis',
    channelDefinition: 'msdyn_channeldefinitions',
    messagePart: 'msdyn_channelmessageparts',
  };
  const sections = Object.entries(groups)
    .map(([kind, tag]) => {
      const items = components
        .filter((c) => c.kind === kind)
        .map(
          (c) =>
            `<${kind} id="${xmlAttr(c.name)}" processed="true" action="${c.created ? 'create' : 'update'}">${result(false)}</${kind}>`,
        );
      return `<${tag}>${items.join('')}</${tag}>`;
    })
    .join('');
  return (
    `<importexportxml start="${start}" stop="${now}" progress="100" processed="true">` +
    `<solutionManifests><solutionManifest languagecode="1033" id="${xmlAttr(name)}" LocalizedName="${xmlAttr(content?.friendlyName ?? name)}" processed="true">` +
    `<UniqueName>${xmlAttr(name)}</UniqueName><Version>${xmlAttr(content?.version ?? '')}</Version>` +
    `${result(error !== undefined)}</solutionManifest></solutionManifests>${sections}</importexportxml>`
  );
}

/** `errorcode` of a failed import in the log and the fault's code. UNVERIFIED (assumptions.ts SOLUTION_IMPORT). */
const SOLUTION_IMPORT_ERROR_CODE = '0x80048060';

type Outcome =
  | { content: SolutionContent; components: ImportedComponent[] }
  | { error: SolutionImportError; content?: SolutionContent };

export interface SolutionImporterOptions {
  /** How long an async import takes, ms. */
  durationMs: number;
  /** Progress updates on the way. */
  steps: number;
}

/** Registers the two actions on the service and runs the async imports' timelines. */
export class SolutionImporter {
  readonly #timers = new Set<NodeJS.Timeout>();
  /** The import job running now, if any (one at a time). */
  #running: string | undefined;

  constructor(
    readonly service: OrganizationService,
    readonly options: SolutionImporterOptions,
  ) {
    service.actions.set('ImportSolution', (params, req) => this.#importNow(params, req));
    service.actions.set('ImportSolutionAsync', (params, req) => this.#importAsync(params, req));
  }

  /** Stops the timelines of imports still running (their jobs stay as they are). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #update(table: string, id: string, values: Row): void {
    const def = this.service.table(table);
    const existing = this.service.store.get(def, id);
    if (!existing) return;
    this.service.store.replace(def, {
      ...existing,
      ...values,
      modifiedon: nowIsoSeconds(),
      versionnumber: this.service.store.nextVersion(),
    });
  }

  #createJob(id: string | undefined, userId: string): string {
    const def = this.service.table('importjob');
    const jobId = id ?? randomUUID();
    if (this.service.store.get(def, jobId))
      throw new DataverseFault(
        'DuplicateKey',
        `An import job with the id ${jobId} already exists: pass a new ImportJobId.`,
      );
    this.service.insertRow(def, { importjobid: jobId, name: 'Solution import', progress: 0, data: '' }, userId);
    return jobId;
  }

  #run(file: Uint8Array, userId: string, content?: SolutionContent): Outcome {
    let read = content;
    try {
      read ??= readSolution(file);
      const plan = planImport(this.service, read);
      applyImport(this.service, plan, userId);
      this.service.log.info('solution imported', {
        solution: read.uniqueName,
        version: read.version,
        components: plan.components.length,
      });
      return { content: read, components: plan.components };
    } catch (err) {
      const error =
        err instanceof SolutionImportError
          ? err
          : new SolutionImportError('(import)', '(organization)', isFault(err) ? err.message : (err as Error).message);
      this.service.log.info('solution import failed', { solution: read?.uniqueName, error: error.message });
      return read ? { error, content: read } : { error };
    }
  }

  #finishJob(jobId: string, start: string, outcome: Outcome): void {
    const error = 'error' in outcome ? outcome.error : undefined;
    this.#update('importjob', jobId, {
      progress: 100,
      completedon: nowIsoSeconds(),
      solutionname: outcome.content?.uniqueName ?? null,
      data: importLog(start, outcome.content, 'components' in outcome ? outcome.components : [], error),
    });
  }

  #importNow(params: Record<string, unknown>, req: OperationRequest): OperationResponse {
    const request = readParameters('ImportSolution', params, true);
    if (this.#running !== undefined) throw new DataverseFault('ImportFailed', SOLUTION_IMPORT.concurrentImportMessage);
    const jobId = this.#createJob(request.importJobId, req.userId);
    const start = nowIsoSeconds();
    this.#update('importjob', jobId, { startedon: start });
    const outcome = this.#run(request.file, req.userId);
    this.#finishJob(jobId, start, outcome);
    if ('error' in outcome)
      throw new DataverseFault('ImportFailed', `Solution import failed: ${outcome.error.message}`);
    return { status: 204, headers: { 'OData-Version': '4.0' } };
  }

  #importAsync(params: Record<string, unknown>, req: OperationRequest): OperationResponse {
    const request = readParameters('ImportSolutionAsync', params, false);
    const jobId = this.#createJob(request.importJobId, req.userId);
    const operationId = randomUUID();
    const { asyncState: state, asyncStatus: status } = SOLUTION_IMPORT;
    this.service.insertRow(
      this.service.table('asyncoperation'),
      {
        asyncoperationid: operationId,
        name: 'ImportSolutionAsync',
        statecode: state.ready,
        statuscode: status.waitingForResources,
        correlationid: randomUUID(),
      },
      req.userId,
    );
    const { durationMs, steps } = this.options;
    const tick = durationMs / (steps + 2);
    const later = (step: number, fn: () => void): void => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        fn();
      }, tick * step);
      timer.unref();
      this.#timers.add(timer);
    };
    const fail = (message: string, friendly: string): void =>
      this.#update('asyncoperation', operationId, {
        statecode: state.completed,
        statuscode: status.failed,
        message,
        friendlymessage: friendly,
        completedon: nowIsoSeconds(),
      });
    later(1, () => {
      if (this.#running !== undefined) {
        fail(SOLUTION_IMPORT.concurrentImportMessage, SOLUTION_IMPORT.concurrentImportMessage);
        this.#finishJob(jobId, nowIsoSeconds(), {
          error: new SolutionImportError('(import)', '(organization)', SOLUTION_IMPORT.concurrentImportMessage),
        });
        return;
      }
      this.#running = jobId;
      const start = nowIsoSeconds();
      this.#update('asyncoperation', operationId, {
        statecode: state.locked,
        statuscode: status.inProgress,
        startedon: start,
      });
      let content: SolutionContent | undefined;
      let early: SolutionImportError | undefined;
      try {
        content = readSolution(request.file);
      } catch (err) {
        // In a timer: nothing may escape (an unexpected error fails the job like a refusal).
        early =
          err instanceof SolutionImportError
            ? err
            : new SolutionImportError('(import)', '(solution)', (err as Error).message);
      }
      this.#update('importjob', jobId, { startedon: start, solutionname: content?.uniqueName ?? null });
      for (let i = 1; i <= steps; i += 1) {
        later(i, () => this.#update('importjob', jobId, { progress: Math.round((i * 100) / (steps + 1)) }));
      }
      later(steps + 1, () => {
        const outcome: Outcome = early ? { error: early } : this.#run(request.file, req.userId, content);
        this.#running = undefined;
        this.#finishJob(jobId, start, outcome);
        if ('error' in outcome) fail(`Solution import failed: ${outcome.error.message}`, outcome.error.message);
        else
          this.#update('asyncoperation', operationId, {
            statecode: state.completed,
            statuscode: status.succeeded,
            completedon: nowIsoSeconds(),
          });
      });
    });
    const body = {
      '@odata.context': `${this.service.apiRoot}$metadata#Microsoft.Dynamics.CRM.ImportSolutionAsyncResponse`,
      AsyncOperationId: operationId,
      // Opaque: not the import job's id (assumptions.ts SOLUTION_IMPORT).
      ImportJobKey: randomUUID().replace(/-/g, ''),
    };
    return { status: 200, headers: { ...JSON_HEADERS }, body: JSON.stringify(body) };
  }
}
