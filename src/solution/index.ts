/** Dataverse solutions of custom channels: `channel new` (generate), `channel pack` and `channel check`. */
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
