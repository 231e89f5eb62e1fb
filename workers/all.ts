/** Runs intake, dispatch and recorder in one process. Configuration: see README "Configuration reference". */
import { runWorker } from '../src/relay/main.js';

await runWorker(['intake', 'dispatch', 'recorder']);
