import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { startDirectLineEmulator, type DirectLineEmulatorOptions } from '../../emulators/directline/index.js';
import type { CliIo } from '../io.js';
import { parsePort, readOptionsFile, serveEmulator } from './serve-emulator.js';

const CONFIG_KEYS = [
  'secrets',
  'tokenLifetimeSeconds',
  'conversationIdleSeconds',
  'streamConnectWindowSeconds',
  'pageSize',
  'keepAliveMs',
  'maxUploadBytes',
  'agents',
  'identity',
  'faults',
  'seed',
  'identityHostNames',
];

function readConfig(file: string): DirectLineEmulatorOptions {
  return readOptionsFile<DirectLineEmulatorOptions>(file, CONFIG_KEYS, 'emulator options');
}

/**
 * `channel-relay emulate directline`: runs the Direct Line 3.0 emulator with its simulated Omnichannel agents and the
 * identity platform's token endpoint until SIGTERM/SIGINT. Prints `DIRECTLINE_URL=http://<host>:<port>`,
 * `IDENTITY_URL=https://<host>:<port>` and `IDENTITY_CA_FILE=<pem>` (the identity listener's certificate, removed on
 * stop) on stdout when ready; logs go to stderr.
 */
export function registerEmulateDirectLine(emulate: Command, io: CliIo, setExitCode: (code: number) => void): void {
  emulate
    .command('directline')
    .description('run the Direct Line 3.0 emulator with simulated Omnichannel agents and the identity token endpoint')
    .option('--port <port>', 'Direct Line port (0 picks a free one)', parsePort, 0)
    .option('--identity-port <port>', 'identity platform (HTTPS) port (0 picks a free one)', parsePort, 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--config <file>', `JSON file of emulator options (${CONFIG_KEYS.join(', ')})`)
    .option('--log-level <level>', 'error, warn, info or debug', 'info')
    .action((opts: { port: number; identityPort: number; host: string; config?: string; logLevel: string }) =>
      serveEmulator(io, setExitCode, {
        command: 'emulate directline',
        service: 'directline-emulator',
        logLevel: opts.logLevel,
        start: async (log) => {
          const fromFile = opts.config === undefined ? {} : readConfig(opts.config);
          const emulator = await startDirectLineEmulator({
            ...fromFile,
            port: opts.port,
            identityPort: opts.identityPort,
            host: opts.host,
            log,
          });
          const dir = mkdtempSync(path.join(tmpdir(), 'channel-relay-directline-'));
          const caFile = path.join(dir, 'identity-ca.pem');
          writeFileSync(caFile, emulator.identityCa);
          return {
            readyLine: `DIRECTLINE_URL=${emulator.url}\nIDENTITY_URL=${emulator.identityUrl}\nIDENTITY_CA_FILE=${caFile}`,
            close: async () => {
              await emulator.close();
              rmSync(dir, { recursive: true, force: true });
            },
          };
        },
      }),
    );
}
