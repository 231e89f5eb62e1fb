/** The `Retry-After` header, as providers and Dataverse send it. */

/**
 * A `Retry-After` value in milliseconds: delta-seconds (`"2"`, also `"1.5"`) or an HTTP date; undefined when absent
 * or unreadable. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // An HTTP date names its day and month (`Sun, 22 Nov 2026 01:00:30 GMT`); Date.parse alone would read "-1" as a year.
  const at = /[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
