/**
 * HTML with escaping by default: every value interpolated into {@link html} is escaped unless it is already
 * {@link SafeHtml} (made by `html` itself or, for a renderer's output we trust, {@link trusted}). Agent-supplied
 * text — task ids, reasons, file contents, finding titles — is hostile, so forgetting to escape must be impossible.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

type Interpolated = SafeHtml | string | number | boolean | null | undefined | readonly Interpolated[];

function render(value: Interpolated): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return (value as readonly Interpolated[]).map(render).join('');
  return escapeHtml(String(value));
}

/**
 * The static parts of each template with the indentation after line breaks removed, computed once per call site
 * (a template's strings array is the same object every time): pages are smaller and faster to build. Only the
 * template's own text is touched, never an interpolated value (a `<pre>` holds values only).
 */
const compacted = new WeakMap<TemplateStringsArray, string[]>();
function compact(strings: TemplateStringsArray): string[] {
  let parts = compacted.get(strings);
  if (!parts) compacted.set(strings, (parts = strings.map((part) => part.replace(/\n[ \t]+/g, '\n'))));
  return parts;
}

/** A template literal tag: escapes every interpolation but SafeHtml; arrays are joined. */
export function html(strings: TemplateStringsArray, ...values: Interpolated[]): SafeHtml {
  const parts = compact(strings);
  let out = parts[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + parts[i + 1]!;
  return new SafeHtml(out);
}

/** Marks a string as HTML already: only for the output of a renderer that escapes its input (diff2html). */
export function trusted(value: string): SafeHtml {
  return new SafeHtml(value);
}

/** A path segment for a link: percent-encoded, so an id cannot break out of the URL. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}
