/**
 * Validation of components' options, one way for the whole code base: each component validates its options once, at
 * construction, and a bad value throws a `TypeError` that names the component, the option, what was expected and
 * what was found (`DispatchStage: guardMs must be an integer >= 0, found -1`).
 *
 * An option left undefined (or null) takes its default; without a default (`fallback` undefined) it is required.
 */

/** An integer >= `min`, or `fallback` when undefined. */
export function intOption(
  component: string,
  name: string,
  value: number | undefined,
  fallback: number | undefined,
  min: number,
): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new TypeError(`${component}: ${name} must be an integer >= ${min}, found ${describe(value)}`);
  }
  return v;
}

/** A finite number above `bound.above` or at least `bound.atLeast`, or `fallback` when undefined. */
export function numberOption(
  component: string,
  name: string,
  value: number | undefined,
  fallback: number | undefined,
  bound: { above: number } | { atLeast: number },
): number {
  const v = value ?? fallback;
  const inRange = 'above' in bound ? (n: number) => n > bound.above : (n: number) => n >= bound.atLeast;
  if (typeof v !== 'number' || !Number.isFinite(v) || !inRange(v)) {
    const expected = 'above' in bound ? `above ${bound.above}` : `of at least ${bound.atLeast}`;
    throw new TypeError(`${component}: ${name} must be a finite number ${expected}, found ${describe(value)}`);
  }
  return v;
}

/** A non-empty string. */
export function stringOption(component: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TypeError(`${component}: ${name} must be a non-empty string, found ${describe(value)}`);
  }
  return value;
}

/** A function. */
export function functionOption<T>(component: string, name: string, value: T): T {
  if (typeof value !== 'function')
    throw new TypeError(`${component}: ${name} must be a function, found ${describe(value)}`);
  return value;
}

/** A found value for a message: numbers and booleans as they are, strings quoted, `nothing` for undefined, else the type. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}
