/** The channels file's references to the environment: `env:NAME` secrets and `${NAME}` in URLs. */
import { ENV_REF, isHttpUrl, renderFound } from '../config/index.js';
import type { ConfigProblem } from '../errors.js';

/** Makes a problem of the file being loaded: the key path, what was expected, what was found. */
export type ProblemOf = (path: string, expected: string, found: string) => ConfigProblem;

const INTERPOLATION = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** An `env:NAME` secret's value; a problem (and undefined) when the value is no reference or the variable is unset. */
export function secretFromEnv(
  value: string,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
): string | undefined {
  const m = ENV_REF.exec(value);
  if (!m) {
    problems.push(
      problem(at, 'an env:NAME reference (secrets are read only from the environment)', renderFound(value, true)),
    );
    return undefined;
  }
  const resolved = env[m[1] as string];
  if (resolved === undefined || resolved === '') {
    problems.push(problem(at, `environment variable ${m[1]} to be set (the value is "${value}")`, 'it unset'));
    return undefined;
  }
  return resolved;
}

/** Replaces `${NAME}` with the environment's value; a URL must come out as http(s). */
export function interpolate(
  value: string,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
  isUrl: boolean,
): string | undefined {
  const missing = [...value.matchAll(INTERPOLATION)].map((m) => m[1] as string).filter((name) => !env[name]);
  if (missing.length > 0) {
    problems.push(
      problem(
        at,
        `environment variable${missing.length > 1 ? 's' : ''} ${missing.join(', ')} to be set (the value is "${value}")`,
        'unset',
      ),
    );
    return undefined;
  }
  // A base URL with a trailing slash followed by a path must not give `//` in the middle.
  const replaced = value.replace(INTERPOLATION, (_, name: string) => env[name] as string);
  const out = isUrl ? replaced.replace(/([^:/])\/{2,}/g, '$1/') : replaced;
  if (isUrl && !isHttpUrl(out)) {
    problems.push(problem(at, 'an http(s) URL', renderFound(out)));
    return undefined;
  }
  return out;
}
