/**
 * The conversations stage: customers of channels bridged to Omnichannel, each in a session of `conversations`,
 * talking to the agents through Direct Line.
 */
export { ConversationsStage, type AccountHealth } from './stage.js';
export type { ConversationsOptions, ConversationsStats } from './context.js';
export { CONVERSATIONS_DEAD_LETTER_REASONS, customerContext } from './session.js';
