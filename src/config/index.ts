export {
  loadConfig,
  secretPaths,
  renderFound,
  describeAjvError,
  compiledSchema,
  isHttpUrl,
  ENV_REF,
  type Schema,
  type CompiledSchema,
  ENV_OVERRIDES,
  CONFIG_FILE_ENV,
  type LoadConfigOptions,
} from './load.js';
export { describeConfig, maskConnectionString } from './describe.js';
export type { RelayConfig, LoadedConfig, DataverseAuth } from './types.js';
