/** Runs the intake stage alone (scale it with replicas). Configuration: see README "Configuration reference". */
import { runWorker } from '../src/relay/main.js';

await runWorker(['intake']);
