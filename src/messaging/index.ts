/** Messaging accounts: validating an account's app ID and client secret, once or periodically (metrics, readiness). */
export { BOT_FRAMEWORK_SCOPE, BOT_FRAMEWORK_TENANT } from './assumptions.js';
export {
  tokenTenant,
  validateAccount,
  type AccountValidation,
  type ValidateAccountOptions,
  type ValidationReason,
} from './validate.js';
export { AccountValidator, type AccountValidatorOptions } from './validator.js';
