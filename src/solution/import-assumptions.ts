/**
 * How `importSolution` reads an asynchronous solution import, where Microsoft's pages leave it open. Each reading is
 * the one that would hurt the relay most; what would change if it were wrong is said on each.
 *
 * Documented (and not assumed): `ImportSolutionAsync` takes `CustomizationFile` (Edm.Binary, base64 in JSON),
 * `OverwriteUnmanagedCustomizations`, `PublishWorkflows` and the optional `ImportJobId`, and answers `ImportJobKey`
 * and `AsyncOperationId` (PA-docs webapi/reference/importsolutionasync; power-platform alm/solution-async.md: "The
 * ImportJobKey value can be used to obtain the import result and the AsyncOperationId value can be used to track the
 * import job status"); the `asyncoperation` is done at statecode 3 with statuscode 30 Succeeded, 31 Failed, 32
 * Canceled (same page's sample); `importjob` has `progress` (Double 0–100), `data` (the job's XML log), `solutionname`,
 * `startedon`, `completedon` (PA-docs reference/entities/importjob.md).
 */

/**
 * The `importjobs` row to read: the relay passes its own `ImportJobId` and reads that row; only if that row is not
 * found does it try the answer's `ImportJobKey` (when it holds a GUID). UNVERIFIED: what the key is (the docs type it
 * Edm.String and say it "can be used to obtain the import result"; it may well be the job's id, or an opaque key), and
 * when the row is created: a 404 on both while the asyncoperation still runs reads as 0 % and polling goes on. If
 * Dataverse ignored the id passed and the key were opaque, progress would read 0 until the end and the job's log
 * would be missing: the outcome still comes from the asyncoperation, whose id is documented.
 */
export function importJobRowIds(answer: Record<string, unknown> | undefined, requested: string): string[] {
  const key = answer?.['ImportJobKey'];
  const id = typeof key === 'string' ? key.replace(/^\{|\}$/g, '').toLowerCase() : '';
  const isGuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id);
  return isGuid && id !== requested ? [requested, id] : [requested];
}

/*
 * The job's `data` is Dataverse's import log: an `<importexportxml>` root, a group element per component kind
 * (`solutionManifests`, `entities`, `webResources`, `nodes`, `optionSets` …) holding one element per component with
 * its name in attributes (`LocalizedName`, `OriginalName`, `name`, `id`) or a `UniqueName` child, and a
 * `<result result="success|failure|warning" errorcode="0x…" errortext="…">` child. Not documented by Microsoft (the
 * table says "Unstructured data associated with the import job"); read from public tools that parse it (e.g.
 * Microsoft.PowerPlatform.Dataverse.Client's DeploymentExtensions reads
 * `/importexportxml/solutionManifests/solutionManifest/result`). So the reader walks the whole tree and takes every
 * `result` it finds, as a child element or as attributes on a component, and never fails on a shape it does not
 * know: what it cannot read, it shows as the raw text's first line. If the log had another shape, the operator would
 * see the asyncoperation's message only. (Read by `import-log.ts`.)
 */

/**
 * A job whose asyncoperation says Succeeded (30) while its log holds a component `failure` is reported as failed:
 * public tools found that the status masks partial failures. UNVERIFIED that Dataverse ever does this; if it never
 * does, this changes nothing.
 */
export const FAILURE_IN_LOG_FAILS_IMPORT = true;

/** asyncoperation.statecode 3 Completed; statuscode 30 Succeeded, 31 Failed, 32 Canceled (documented). */
export const ASYNC_OPERATION = {
  completed: 3,
  succeeded: 30,
  failed: 31,
  canceled: 32,
} as const;
