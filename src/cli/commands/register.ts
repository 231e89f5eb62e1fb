/**
 * `channel-relay register`: creates or updates, idempotently, the service endpoint and steps that make Dataverse post
 * to the relay's activities queue (src/registration/). Service Bus and Dataverse settings come from the environment,
 * exactly as the workers read them.
 * Exit codes: 0 done (also when nothing changed), 1 a Dataverse error, 2 bad usage or configuration.
 */
import type { Command } from 'commander';
import { loadChannels, type ChannelRegistry } from '../../channels/index.js';
import { isHttpUrl, type RelayConfig } from '../../config/index.js';
import { closeDataverseClient, dataverseClientFromConfig } from '../../dataverse/index.js';
import { isConfigError } from '../../errors.js';
import { exitCodeOf } from '../../lifecycle.js';
import {
  formatRegistrationError,
  formatRegistrationReport,
  registerRelay,
  REGISTRATION_DEFAULTS,
  serviceBusFromEnv,
  type RealtimeTarget,
  type ServiceBusSas,
} from '../../registration/index.js';
import { loadCommandConfig, problemsOf, reportProblems } from '../command-config.js';
import type { CliIo } from '../io.js';

const HELP = `
Creates or updates, in the org at --dataverse-url:
  - the serviceendpoint (contract Queue, format JSON, SAS key) Dataverse posts to the activities queue with;
  - the asynchronous post-operation step on Create of msdyncrm_customerjourneycustomchannelactivity;
  - with --realtime, a step on the outbound Custom API of each real-time journeys channel of the channels file
    (channels with a channelDefinitionId; the API is the definition's msdyn_outboundendpointurltemplate).
A second run changes nothing and says so. --dry-run prints what would be done.

Service Bus (as the workers read it): SERVICEBUS_CONNECTION_STRING=Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…
or SERVICEBUS_NAMESPACE with SERVICEBUS_SAS_KEY_NAME and SERVICEBUS_SAS_KEY. Dataverse never returns the key: after
rotating it, run again with --update-key.
Dataverse: DATAVERSE_AUTH=default (DefaultAzureCredential), client-secret (DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID,
DATAVERSE_CLIENT_SECRET) or emulator. Channels: CHANNELS_FILE, else config/channels.json.

Exit codes: 0 done (also when nothing changed), 1 a Dataverse error, 2 bad usage or configuration.`;

interface RegisterCliOptions {
  dataverseUrl?: string;
  realtime?: boolean;
  dryRun?: boolean;
  endpointName: string;
  queue: string;
  stepName: string;
  updateKey?: boolean;
  config?: string;
}

export function registerRegisterCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('register')
    .description('create or update the Dataverse service endpoint and steps that post to the relay (idempotent)')
    .option('--dataverse-url <url>', 'the org URL, e.g. https://contoso.crm.dynamics.com (default: DATAVERSE_URL)')
    .option('--realtime', "also register on the real-time journeys channels' outbound Custom API messages")
    .option('--dry-run', 'read and print what would be done; write nothing')
    .option('--endpoint-name <name>', 'the serviceendpoint name (its identity)', REGISTRATION_DEFAULTS.endpointName)
    .option('--queue <name>', 'the queue Dataverse posts to', REGISTRATION_DEFAULTS.queue)
    .option('--step-name <prefix>', 'prefix of the step names', REGISTRATION_DEFAULTS.stepName)
    .option(
      '--update-key',
      'write the SAS key even if the endpoint has one (after a key rotation: Dataverse never returns the key)',
    )
    .option('--config <file>', 'a configuration file merged over the embedded defaults')
    .addHelpText('after', HELP)
    .action(async (options: RegisterCliOptions) => setExitCode(await register(io, options)));
}

function usage(io: CliIo, problems: string[]): number {
  return reportProblems(io, 'register', problems);
}

/**
 * The channels file for registering: only names, `channelDefinitionId` and tiles are read, so provider secrets and URLs
 * the file references need not be set here: an unset variable reads as a placeholder (never used).
 */
export function channelsForRegistration(config: RelayConfig, io: CliIo): ChannelRegistry {
  const env = new Proxy(io.env, {
    get: (target, name: string) =>
      target[name] === undefined || target[name] === '' ? 'http://unused-by-register.invalid' : target[name],
  });
  return loadChannels(config.channelsFile, { env, cwd: io.cwd });
}

/** The realtime channels' definition ids. */
function realtimeTargets(config: RelayConfig, io: CliIo): RealtimeTarget[] {
  return channelsForRegistration(config, io)
    .all()
    .filter((c) => c.channelDefinitionId !== undefined)
    .map((c) => ({ channelDefinitionId: c.channelDefinitionId as string, channel: c.name }));
}

async function register(io: CliIo, options: RegisterCliOptions): Promise<number> {
  const url = options.dataverseUrl ?? io.env['DATAVERSE_URL'];
  if (url === undefined || url === '')
    return usage(io, [
      '--dataverse-url: expected the org URL (https://<org>.crm.dynamics.com), found nothing (nor DATAVERSE_URL)',
    ]);
  if (options.dataverseUrl !== undefined && !isHttpUrl(options.dataverseUrl))
    return usage(io, [
      `--dataverse-url: expected an http(s) URL such as https://<org>.crm.dynamics.com, found '${options.dataverseUrl}'`,
    ]);
  const env = { ...io.env, DATAVERSE_URL: url };
  const { config, problems } = loadCommandConfig(io, { env, file: options.config });
  if (config === undefined) return usage(io, problems);
  let bus: ServiceBusSas;
  let realtime: RealtimeTarget[] = [];
  try {
    bus = serviceBusFromEnv(env);
    if (options.realtime === true) {
      realtime = realtimeTargets(config, io);
      if (realtime.length === 0)
        return usage(io, [
          `--realtime: the channels file ${config.channelsFile} has no real-time journeys channel (one with a channelDefinitionId)`,
        ]);
    }
  } catch (err) {
    return usage(io, problemsOf(err));
  }
  let api;
  try {
    api = dataverseClientFromConfig(config);
  } catch (err) {
    return usage(io, problemsOf(err));
  }
  try {
    const report = await registerRelay(
      api,
      {
        serviceBus: bus,
        endpointName: options.endpointName,
        queue: options.queue,
        stepName: options.stepName,
        realtime,
        updateKey: options.updateKey === true,
      },
      { dryRun: options.dryRun === true },
    );
    io.out(formatRegistrationReport(report));
    return 0;
  } catch (err) {
    if (isConfigError(err)) return usage(io, problemsOf(err));
    io.err(`register: ${formatRegistrationError(err)}`);
    return exitCodeOf(err);
  } finally {
    closeDataverseClient(api);
  }
}
