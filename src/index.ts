/**
 * channel-relay's public surface as a library: configuration, channels, errors, logging, life cycle, the relay
 * (stages wired on the real clients), the provider adapters and Standard Webhooks signing, and the emulators (for
 * other projects' tests). Everything else is internal to its folder.
 */
export {
  loadConfig,
  describeConfig,
  ENV_OVERRIDES,
  CONFIG_FILE_ENV,
  type LoadConfigOptions,
  type RelayConfig,
  type LoadedConfig,
  type DataverseAuth,
} from './config/index.js';
export {
  ConfigError,
  DataverseError,
  ProviderError,
  EventError,
  LifecycleError,
  isRelayError,
  isConfigError,
  isDataverseError,
  isProviderError,
  isEventError,
  isLifecycleError,
  isRetryable,
  isRetryableCode,
  type RelayError,
  type RelayErrorCode,
  type ErrorKind,
  type Upstream,
  type ConfigProblem,
} from './errors.js';
export {
  createLogger,
  areaLogger,
  silentLogger,
  redact,
  type Logger,
  type LogLevel,
  type LoggerOptions,
} from './log.js';
export {
  Closer,
  closeAll,
  createShutdown,
  onShutdownSignals,
  type Closeable,
  type ShutdownPlan,
  type ShutdownOutcome,
} from './lifecycle.js';
export {
  createMetricsRegistry,
  startHealthServer,
  type HealthServer,
  type HealthServerOptions,
  type ReadinessCheck,
} from './health/index.js';
export { EmulatorError, isEmulatorError, type EmulatorErrorCode } from './emulators/errors.js';
export {
  startServiceBusEmulator,
  type ServiceBusEmulator,
  type ServiceBusEmulatorOptions,
} from './emulators/servicebus/index.js';
export {
  startDataverseEmulator,
  type DataverseEmulator,
  type DataverseEmulatorOptions,
} from './emulators/dataverse/index.js';
export {
  startProviderSimulators,
  type ProviderSimulators,
  type ProviderSimulatorsOptions,
} from './emulators/providers/index.js';
export {
  loadChannels,
  providerSettings,
  readTile,
  type Channel,
  type ChannelRegistry,
  type ChannelTile,
} from './channels/index.js';
export {
  startRelay,
  runWorker,
  loadStageConfig,
  STAGE_NEEDS,
  STAGES,
  type StageName,
  type StageNeeds,
  type RelayOptions,
  type RunningRelay,
} from './relay/index.js';
export {
  createProvider,
  signWebhook,
  verifyWebhook,
  webhookHeaders,
  type Provider,
  type SendRequest,
  type SendResult,
} from './providers/index.js';
export type { OutboundMessage, InteractionMessage } from './pipeline/index.js';
