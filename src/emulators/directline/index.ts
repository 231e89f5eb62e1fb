/**
 * The Direct Line emulator: Bot Framework Direct Line 3.0 (conversations, activities with watermarks, upload,
 * tokens, the WebSocket stream, its error answers and expiry), simulated Omnichannel agents behind it, and the
 * identity platform's token endpoint for the bot's app. See docs/emulators/directline.md.
 */
export { startDirectLineEmulator } from './emulator.js';
export type { DirectLineEmulator, DirectLineEmulatorOptions } from './emulator.js';
export { AGENT_DEFAULTS } from './agents.js';
export type { AgentOptions, ConversationRecord, RecordedActivity, SimulatedChannel } from './agents.js';
export { BOT_FRAMEWORK_TENANT, IDENTITY_DEFAULTS } from './identity.js';
export type { IdentityApp, IdentityOptions, TokenRequestRecord } from './identity.js';
export { FAULT_SCOPES } from './faults.js';
export type { FaultScope, FaultSettings, FaultsSpec } from './faults.js';
export type { Activity, ActivitySet } from './conversations.js';
export { selfSignedCertificate } from './tls.js';
