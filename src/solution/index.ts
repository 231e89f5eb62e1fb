/** Dataverse solutions of a custom channel: generated (`channel new`), packed and checked (`channel pack`, `channel check`). */
export { packSolution } from './pack.js';
export { checkSolution, type CheckSolutionOptions, type SolutionSource } from './check.js';
export {
  formatSolutionProblem,
  isSolutionPackageError,
  SolutionPackageError,
  type SolutionProblem,
} from '../errors.js';
