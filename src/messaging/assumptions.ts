/**
 * What the relay takes as given about the Microsoft identity platform when it validates a messaging account, with the
 * source of each and what would change if it were wrong.
 */

/**
 * The tenant a multi-tenant bot's token comes from: the Bot Framework SDK's own credentials default to
 * `botframework.com` for a multi-tenant app and require the app's tenant for a single-tenant one (botframework-connector
 * `MicrosoftAppCredentials`, `channelAuthTenant`: "Required for SingleTenant app types … '_botframework.com_' is the
 * default tenant when no value is provided"). If Omnichannel's "Validate app ID + secret" asked another tenant, an app
 * that validates here could still be refused there: the admin centre stays the final word.
 */
export const BOT_FRAMEWORK_TENANT = 'botframework.com';

/** The scope of the client-credentials request: the Bot Framework's API (botframework-connector `ToChannelFromBotOAuthScope`). */
export const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com/.default';

/**
 * The AADSTS codes read as a named reason (Microsoft Entra "authentication and authorization error codes",
 * learn.microsoft.com/entra/identity-platform/reference-error-codes). That page warns that codes may change; any code
 * not listed is reported as `refused` with the platform's own description, so a new code is still a refusal with its
 * words, never a wrong reason. An unknown tenant fails OpenID discovery before any token request: @azure/identity then
 * says only "Endpoints cannot be resolved" (msal-common `endpoints_resolution_error`, the same error as an unreachable
 * host), so the relay reads the tenant's discovery document itself to tell the two apart.
 */
export const AADSTS_REASONS: Readonly<
  Record<number, 'unknown-app' | 'wrong-secret' | 'expired-secret' | 'wrong-tenant'>
> = {
  /** UnauthorizedClient_DoesNotMatchRequest: the application was not found in the directory (tenant). */
  700016: 'unknown-app',
  /** InvalidClientSecretProvided: the secret is not one of the app's (or is the secret's ID, not its value). */
  7000215: 'wrong-secret',
  /** InvalidClientSecretExpiredKeysProvided: the secret has expired. */
  7000222: 'expired-secret',
  /** InvalidTenantName: the tenant does not exist. */
  90002: 'wrong-tenant',
};
