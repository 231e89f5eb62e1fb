/** Runs the conversations stage alone (Omnichannel conversations through Direct Line; scale it with replicas). Configuration: see README "Configuration reference". */
import { runWorker } from '../src/relay/index.js';

await runWorker(['conversations']);
