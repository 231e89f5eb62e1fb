/** The embedded run: the whole system on loopback (`startEmbeddedSystem`) and `channel-relay demo` (`runDemo`). */
export { startEmbeddedSystem, sampleSeed, DEMO_SECRETS, ADMIN_TOKEN, type EmbeddedSystem, type EmbeddedSystemOptions } from './system.js';
export { runDemo, type DemoOptions, type DemoResult } from './run.js';
export { formatFunnel } from './format.js';
export type { DemoSummary, JourneyFunnel } from './records.js';
