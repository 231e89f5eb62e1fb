/**
 * The dispatch stage: `outbound` through sessions (one sender each), each message sent through its channel's provider
 * within the sender's rate limit, the outcome put on `interactions`.
 */
export { DispatchStage } from './stage.js';
export type { DispatchOptions } from './context.js';
export type { DispatchStats } from './metrics.js';
export { DISPATCH_DEAD_LETTER_REASONS } from './outcome.js';
export type { DispatchSessionHandler } from './session.js';
