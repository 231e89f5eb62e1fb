/** Dataverse solutions for custom channels: generated, packed, checked, imported. The rest of the folder is internal. */
// sol-import: importing a packed solution into an org, and what it carries.
export {
  importSolution,
  type ImportSolutionOptions,
  type ImportProgress,
  type SolutionImportResult,
} from './import.js';
export { readImportLog, type ImportLogEntry } from './import-log.js';
export { solutionContents, SolutionFileError, type SolutionContents } from './import-contents.js';
