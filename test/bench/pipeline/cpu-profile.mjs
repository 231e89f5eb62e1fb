/**
 * Preloaded with `NODE_OPTIONS=--import <this file>` (Node 20 refuses `--cpu-prof` there): profiles the whole
 * process with the inspector and writes `<pid>.cpuprofile` into CPU_PROFILE_DIR when it exits.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';
import process from 'node:process';

const dir = process.env['CPU_PROFILE_DIR'];
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // The in-process session answers synchronously, so this completes inside the 'exit' handler.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err)
        writeFileSync(
          path.join(
            dir,
            `${process.argv[1] ? path.basename(process.argv[1], path.extname(process.argv[1])) : 'node'}-${process.pid}.cpuprofile`,
          ),
          JSON.stringify(result.profile),
        );
    });
  });
}
