/**
 * Wiring of the recorder on the real clients: the interaction writer (Dataverse `$batch` through the identity's
 * governor, `recorder.batchSize` per request) and its batch loop on `interactions`. It uses no channel.
 */
import type { DynamicsWebApi } from 'dynamics-web-api';
import { createInteractionWriter, type Governor } from '../dataverse/index.js';
import { RecorderStage, type RecorderStats } from '../pipeline/index.js';
import { startStageBatchLoop, type RelayParts, type WiredStage } from './wiring.js';

export interface RecorderWiring extends RelayParts {
  dataverse: DynamicsWebApi;
  governor: Governor;
}

export function wireRecorder(w: RecorderWiring): WiredStage<RecorderStats> {
  const { config, registry } = w;
  const stage = new RecorderStage({
    writer: createInteractionWriter(w.dataverse, w.governor, { batchSize: config.recorder.batchSize }),
    log: w.log,
    callTimeoutMs: config.dataverse.timeoutMs,
    ...(registry ? { registry } : {}),
  });
  return {
    stats: () => stage.stats(),
    stop: () => stage.stop(),
    loop: () =>
      startStageBatchLoop(w, config.serviceBus.queues.interactions, config.recorder, stage, { governor: w.governor }),
  };
}
