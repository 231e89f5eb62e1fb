/**
 * The intake stage: Dataverse's events on `activities`, read in batches, checked, rendered and routed to `outbound`.
 */
export {
  IntakeStage,
  type IntakeOptions,
  type IntakeEvent,
  type IntakeEventOrigin,
  type IntakeDeadLetterReason,
} from './stage.js';
export type { IntakeStats } from './metrics.js';
export { renderText, placeholders } from './render.js';
