/** Runs intake, dispatch and recorder in one process. Configuration: see README "Configuration reference". */
import { ALL_IN_ONE_STAGES } from '../src/relay/requirements.js';
import { runWorker } from '../src/relay/main.js';

await runWorker(ALL_IN_ONE_STAGES);
