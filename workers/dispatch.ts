/** Runs the dispatch stage alone (scale it with replicas). Configuration: see README "Configuration reference". */
import { runWorker } from '../src/relay/index.js';

await runWorker(['dispatch']);
