/**
 * Rendering a message text with the contact's columns: a pure function and its placeholder scanner.
 *
 * Template syntax:
 * - `{column}` is replaced with the contact's value of that column. A column is a Dataverse logical name: a letter or
 *   `_`, then letters, digits or `_` (`{firstname}`, `{sample_nickname}`). Logical names are lower case, so the name is
 *   matched in lower case (`{FirstName}` reads `firstname`).
 * - A column that is absent, `null` or not a string, number or boolean renders as the empty string; numbers and
 *   booleans render with `String()`.
 * - `{{` renders a literal `{` and `}}` a literal `}` (`{{firstname}}` renders `{firstname}`).
 * - Any other brace (`{ x }`, `{}`, `{1st}`, a lone `{` or `}`) is not a placeholder and stays as it is.
 */

/** `{{`, `}}`, or a `{column}` placeholder (group 1: the column name). */
const TOKEN = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The columns a template names, in lower case, each once, in order of first appearance. */
export function placeholders(template: string): string[] {
  const seen = new Set<string>();
  for (const match of template.matchAll(TOKEN)) {
    const name = match[1];
    if (name !== undefined) seen.add(name.toLowerCase());
  }
  return [...seen];
}

function show(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return '';
}

/** Renders `template` with `contact`'s column values (see the module comment for the syntax). */
export function renderText(template: string, contact: Readonly<Record<string, unknown>>): string {
  return template.replace(TOKEN, (token: string, name: string | undefined) => {
    if (name === undefined) return token === '{{' ? '{' : '}';
    const column = name.toLowerCase();
    return Object.hasOwn(contact, column) ? show(contact[column]) : '';
  });
}
