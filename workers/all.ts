/** Runs intake, dispatch and recorder in one process. Configuration: see README "Configuration reference". */
import { ALL_IN_ONE_STAGES } from '../src/relay/index.js';
import { runWorker } from '../src/relay/index.js';

await runWorker(ALL_IN_ONE_STAGES);
