/**
 * Running the relay: the stages wired on the real clients (`startRelay`, one wiring file per stage), what each stage
 * needs from the configuration (`loadStageConfig`), and a worker process's life (`runWorker`).
 */
export { startRelay, type RelayOptions, type RelayStats, type RunningRelay } from './relay.js';
export {
  ALL_IN_ONE_STAGES,
  callbackKeysFor,
  loadStageConfig,
  needsOf,
  STAGE_NEEDS,
  STAGES,
  type LoadStageConfigOptions,
  type StageConfig,
  type StageName,
  type StageNeeds,
} from './requirements.js';
export { runWorker, type WorkerMainOptions } from './main.js';
