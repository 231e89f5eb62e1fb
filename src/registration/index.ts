/**
 * Registering the relay with a Dataverse org: the `serviceendpoint` for the activities queue and the asynchronous
 * post-operation steps on it, created or updated idempotently (`channel-relay register`, and the demo against the
 * embedded emulator). The rest of the folder is internal.
 *
 * ```ts
 * const api = dataverseClientFromConfig(config);
 * const report = await registerRelay(api, { serviceBus: serviceBusFromEnv(process.env) }, { dryRun: false });
 * console.log(formatRegistrationReport(report));
 * ```
 */
export {
  registerRelay,
  registrationHint,
  REGISTRATION_DEFAULTS,
  type RegistrationSpec,
  type RegisterOptions,
  type RegistrationReport,
  type RegistrationItem,
  type RealtimeTarget,
} from './register.js';
export { formatRegistrationReport, formatRegistrationError } from './report.js';
export { serviceBusFromConnectionString, serviceBusFromEnv, namespaceHost, type ServiceBusSas } from './servicebus.js';
export type { PlannedAction } from './plan.js';
