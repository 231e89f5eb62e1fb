/** Dataverse solutions of a custom channel: generated (`channel new`), packed and checked (`channel pack`, `channel check`), imported (`channel import`). */
export { defaultEntryFile, newChannelSolution, type NewChannelResult } from './generate.js';
export {
  MESSAGE_PART_TYPES,
  type ChannelContract,
  type MessagePartType,
  type NewChannelOptions,
  type ProviderType,
  type RealtimeChannelType,
} from './options.js';
export { DEFAULT_PUBLISHER_PREFIX } from './assumptions.js';
export { packSolution } from './pack.js';
export { checkSolution, type CheckSolutionOptions, type SolutionSource } from './check.js';
export {
  formatSolutionProblem,
  isSolutionPackageError,
  SolutionPackageError,
  type SolutionProblem,
} from '../errors.js';
export {
  importSolution,
  type ImportSolutionOptions,
  type ImportProgress,
  type SolutionImportResult,
} from './import.js';
export { readImportLog, type ImportLogEntry } from './import-log.js';
export { solutionContents, SolutionFileError, type SolutionContents } from './import-contents.js';
