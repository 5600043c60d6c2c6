import sh from 'mvdan-sh';
import { WardenError } from '../../errors.js';

/**
 * A syntax node as GopherJS stores it: the Go struct itself, not the JavaScript wrapper mvdan-sh's API hands
 * out. Every field read through a wrapper converts the value to JavaScript (tens of microseconds each, enough to
 * blow the policy budget on a 12 KB command), while the struct's fields are plain properties. Fields keep their
 * Go names; slices are `{ $array, $offset, $length }`, strings are UTF-8 byte strings, a nil pointer is its
 * type's `nil` object, a nil interface an object without `$val`. Read them with the helpers below.
 * `parse-shell-script.test.ts` pins this layout, which is mvdan-sh 0.10.1's (the version is pinned).
 */
export type GoNode = any;

/** The node's Go type without package: `CallExpr`, `Lit`, `BinaryCmd`, …; `nil` for a nil pointer or interface. */
export function goType(node: GoNode): string {
  if (isNil(node)) return 'nil';
  const name = String(node.constructor?.string ?? '');
  return name.startsWith('*syntax.') ? name.slice(8) : name;
}

export function isNil(node: GoNode): boolean {
  if (node === null || node === undefined || typeof node !== 'object') return true;
  if (!('$val' in node)) return true;
  return node.constructor?.nil === node;
}

/** A Go slice as a JavaScript array (a copy of the window it views). */
export function goSlice(slice: GoNode): GoNode[] {
  if (slice === null || slice === undefined || !Array.isArray(slice.$array)) return [];
  return slice.$array.slice(slice.$offset, slice.$offset + slice.$length);
}

const utf8 = new TextDecoder('utf-8');

/** A Go string (UTF-8 bytes, one per UTF-16 unit) as JavaScript text; invalid bytes become U+FFFD. */
export function goString(value: unknown): string {
  if (typeof value !== 'string') return '';
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(value)) return value;
  return utf8.decode(Uint8Array.from(value, (char) => char.charCodeAt(0) & 0xff));
}

/**
 * Visits `node` and every syntax node below it, by reflection over the struct fields rather than a list of
 * node types, so a node type this code does not know is still visited. `visit` returns false to skip a node's
 * children.
 */
export function walkNodes(node: GoNode, visit: (node: GoNode, type: string) => boolean): void {
  const stack: GoNode[] = [node];
  while (stack.length > 0) {
    const current = stack.pop();
    if (isNil(current)) continue;
    const type = goType(current);
    if (!visit(current, type)) continue;
    for (const key of Object.keys(current)) {
      if (key === '$val') continue;
      const value = current[key];
      if (value === null || typeof value !== 'object') continue;
      if (Array.isArray(value.$array)) {
        for (const item of goSlice(value))
          if (!isNil(item) && String(item.constructor?.string ?? '').startsWith('*syntax.')) stack.push(item);
      } else if (String(value.constructor?.string ?? '').startsWith('*syntax.')) {
        stack.push(value);
      }
    }
  }
}

/**
 * mvdan-sh's operator codes (the Go `token` values of mvdan.cc/sh/v3 as built into mvdan-sh 0.10.1). The
 * package exposes them only as numbers; `parse-shell-script.test.ts` pins each one to the operator it parses,
 * so an upgrade that renumbers them fails a test instead of silently misreading redirects.
 */
export const SHELL_OP = {
  and: 10,
  or: 11,
  pipe: 12,
  pipeAll: 13,
  redirOut: 54,
  appendOut: 55,
  redirIn: 56,
  redirInOut: 57,
  dupIn: 58,
  dupOut: 59,
  clobberOut: 60,
  heredoc: 61,
  dashHeredoc: 62,
  hereString: 63,
  redirAll: 64,
  appendAll: 65,
  procIn: 66,
  procOut: 67,
} as const;

/** A script the shell parser could not read; `message` is the parser's own (`x:1:6: reached EOF …`). */
export class ShellSyntaxError extends WardenError {
  readonly code = 'shell_syntax';
}

// Built once, on first use: a parser holds no state between Parse calls that matters here, and building one
// costs more than parsing a short command. Not at import: in the production build mvdan-sh (1.5 MB of
// GopherJS) is loaded when first used, and a process that never parses a command (the scheduler, `warden
// --help`) then never loads it.
let parser: ReturnType<typeof sh.syntax.NewParser> | undefined;

/**
 * Parses `source` as a bash script and returns its `File` node (a {@link GoNode}). Anything the parser throws — a syntax error (a Go error object, not an
 * `Error`), a GopherJS panic, a stack overflow on deep nesting — becomes a {@link ShellSyntaxError}.
 */
export function parseShellScript(source: string): GoNode {
  parser ??= sh.syntax.NewParser(sh.syntax.KeepComments(false), sh.syntax.Variant(sh.syntax.LangBash));
  let file: GoNode;
  try {
    file = parser.Parse(source, 'command');
  } catch (thrown) {
    throw new ShellSyntaxError(describeThrown(thrown));
  }
  const internal = (file as GoNode)?.__internal_object__;
  if (goType(internal) !== 'File')
    throw new ShellSyntaxError('the shell parser returned a syntax tree of an unexpected shape');
  return internal;
}

function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (thrown !== null && typeof thrown === 'object') {
    const goError = (thrown as { Error?: unknown }).Error;
    if (typeof goError === 'function') {
      try {
        return String(goError.call(thrown));
      } catch {
        // A Go error whose Error() panics says nothing more useful than the fallback below.
      }
    }
  }
  return `the shell parser failed: ${String(thrown).slice(0, 200)}`;
}
