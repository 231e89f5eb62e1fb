/**
 * The Dataverse emulator: the Web API subset the relay uses, the custom channel actions, service protection
 * limits, and Dataverse's posting of Create events to Service Bus. See docs/emulators/dataverse.md.
 */
export { startDataverseEmulator } from './emulator.js';
export type { DataverseEmulator, DataverseEmulatorOptions } from './emulator.js';
export { LIMITS_OFF, REALISTIC_LIMITS, loadLimits } from './limits.js';
export type { LimitsConfig } from './limits.js';
export type { SeedDocument, SeedJourney } from './seed.js';
export type { PartialTargets } from './service.js';
export type { Interaction, InteractionKind } from './interactions.js';
export type { JourneyRunRequest, JourneyRunResult } from './journeys.js';
export type { RealtimeSendRequest, RealtimeSendResult } from './realtime.js';
export { readSeedTile, SeedTileError, type SeedTile, type SeedTileResponseType } from './tile.js';
