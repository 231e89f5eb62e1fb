/**
 * Solution import in the Dataverse emulator: the packed zip read on the emulator's own terms (read.ts), checked and
 * turned into tables, rows and tiles (apply.ts, with custom-apis.ts, channels.ts, values.ts), and the ImportSolution / ImportSolutionAsync actions with their
 * import jobs and async operations (jobs.ts).
 */
export { SolutionImporter, type SolutionImporterOptions } from './jobs.js';
export { readSolution, SolutionImportError, type SolutionContent } from './read.js';
export { applyImport, planImport, type ImportedComponent, type ImportPlan } from './apply.js';
