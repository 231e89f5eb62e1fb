/**
 * Wiring of the intake stage on the real clients: its `outbound` sender, the Dataverse reads through the identity's
 * governor, the channels (routing and rendering, no secrets) and the callback keys when a channel tracks links; its
 * batch loop on `activities` takes raw bodies, so that the decoder sees what Dataverse sent.
 */
import type { DynamicsWebApi } from 'dynamics-web-api';
import type { ChannelRegistry } from '../channels/index.js';
import type { CallbackKeys } from '../correlation/index.js';
import { activityFromRow, createDataverseReads, decodeRemoteContext, type Governor } from '../dataverse/index.js';
import { IntakeStage, type IntakeStats, type OutboundMessage } from '../pipeline/index.js';
import { createQueueSender } from '../servicebus/index.js';
import { counting, startStageBatchLoop, type RelayParts, type WiredStage } from './wiring.js';

export interface IntakeWiring extends RelayParts {
  dataverse: DynamicsWebApi;
  governor: Governor;
  channels: ChannelRegistry;
  /** The keys of tracked-link codes, as loaded (`callbackKeysFor`). */
  callbackKeys: CallbackKeys | undefined;
}

export function wireIntake(w: IntakeWiring): WiredStage<IntakeStats> {
  const { config, channels, callbackKeys, registry } = w;
  const queues = config.serviceBus.queues;
  const outbound = createQueueSender<OutboundMessage>(w.bus, queues.outbound, { log: w.log, ...counting(w) });
  w.closer.add('outbound sender', outbound);
  const stage = new IntakeStage({
    decode: decodeRemoteContext,
    activityFromRow,
    reads: createDataverseReads(w.dataverse, { governor: w.governor }),
    outbound,
    channels,
    log: w.log,
    callTimeoutMs: config.dataverse.timeoutMs,
    ...(callbackKeys ? { callbackKeys } : {}),
    ...(registry ? { registry } : {}),
  });
  return {
    stats: () => stage.stats(),
    stop: () => stage.stop(),
    // Raw bodies: the decoder sees what Dataverse sent.
    loop: () =>
      startStageBatchLoop(w, queues.activities, config.intake, stage, {
        rawBody: true,
        maxBytesInFlight: config.intake.maxBytesInFlight,
        governor: w.governor,
      }),
  };
}
