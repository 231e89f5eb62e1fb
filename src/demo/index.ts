/** The embedded run: the whole system on loopback (`startEmbeddedSystem`) and `channel-relay demo` (`runDemo`). */
export {
  startEmbeddedSystem,
  sampleSeed,
  DEMO_SECRETS,
  ADMIN_TOKEN,
  FEEDBACK_RATES,
  type EmbeddedSystem,
  type EmbeddedSystemOptions,
  type FeedbackRates,
} from './system.js';
export { runDemo, type DemoOptions, type DemoResult } from './run.js';
export { DEMO_SOLUTIONS, channelNewCommand, provisionDemoChannels, type ProvisionOptions } from './channels.js';
export { formatFunnel } from './format.js';
export { DataverseRecords } from './records.js';
export type { DemoSummary, JourneyFunnel } from './records.js';
