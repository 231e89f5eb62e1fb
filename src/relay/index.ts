/** Running the relay: the stages wired on the real clients (`startRelay`), and a worker process's life (`runWorker`). */
export { startRelay, callbackKeysFor, STAGES, type StageName, type RelayOptions, type RelayStats, type RunningRelay } from './relay.js';
export { runWorker, type WorkerMainOptions } from './main.js';
