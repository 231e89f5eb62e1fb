/** Runs the callbacks service alone (behind the channels' public base URL; scale it with replicas). Configuration: see README "Configuration reference". */
import { runWorker } from '../src/relay/index.js';

await runWorker(['callbacks']);
