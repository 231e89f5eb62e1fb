/**
 * Validation of the Service Bus layer's options: each component validates its options once, at construction, and a
 * bad value throws a `TypeError` that names the option, what was expected and what was found.
 */

/** An integer >= `min`, or the default when undefined. */
export function intOption(component: string, name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new TypeError(`${component}: ${name} must be an integer >= ${min}, found ${describe(value)}`);
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
  if (typeof value !== 'function') throw new TypeError(`${component}: ${name} must be a function, found ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}
