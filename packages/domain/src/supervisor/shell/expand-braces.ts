/** A `{…}` group at `open`..`close` of `text` that bash would expand, or undefined. */
interface BraceGroup {
  open: number;
  close: number;
  /** The comma-separated alternatives, or undefined for a sequence (`{1..9}`, `{a..z}`). */
  alternatives?: string[];
}

const SEQUENCE = /^(-?\d+\.\.-?\d+|[a-zA-Z]\.\.[a-zA-Z])(\.\.-?\d+)?$/;

function findGroup(text: string, from: number): BraceGroup | undefined {
  for (let open = text.indexOf('{', from); open >= 0; open = text.indexOf('{', open + 1)) {
    if (isEscaped(text, open)) continue;
    let depth = 0;
    const commas: number[] = [];
    for (let i = open; i < text.length; i++) {
      const char = text[i];
      if (char === '\\') {
        i++;
        continue;
      }
      if (char === '{') depth++;
      else if (char === '}') {
        depth--;
        if (depth === 0) {
          const body = text.slice(open + 1, i);
          if (commas.length > 0) {
            const cuts = [open, ...commas, i];
            return {
              open,
              close: i,
              alternatives: cuts.slice(0, -1).map((cut, k) => text.slice(cut + 1, cuts[k + 1])),
            };
          }
          if (SEQUENCE.test(body)) return { open, close: i };
          break;
        }
      } else if (char === ',' && depth === 1) commas.push(i);
    }
  }
  return undefined;
}

function isEscaped(text: string, index: number): boolean {
  let backslashes = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i--) backslashes++;
  return backslashes % 2 === 1;
}

/**
 * Bash brace expansion of one unquoted literal (`a{b,c}d` → `abd acd`, nested groups too), or `undefined`
 * when it would make more than `limit` words or holds a sequence (`{1..100}`): the caller reads such a word as
 * unknown. A text with no expandable group is returned alone.
 */
export function expandBraces(text: string, limit: number): string[] | undefined {
  const group = findGroup(text, 0);
  if (!group) return [text];
  if (!group.alternatives) return undefined;
  const prefix = text.slice(0, group.open);
  const suffixes = expandBraces(text.slice(group.close + 1), limit);
  if (!suffixes) return undefined;
  const out: string[] = [];
  for (const alternative of group.alternatives) {
    const middles = expandBraces(alternative, limit);
    if (!middles) return undefined;
    for (const middle of middles) {
      for (const suffix of suffixes) {
        out.push(prefix + middle + suffix);
        if (out.length > limit) return undefined;
      }
    }
  }
  return out;
}

/** True when an unquoted literal opens a brace group it does not close (the group spans quoted parts). */
export function hasOpenBrace(text: string): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '{') depth++;
    else if (text[i] === '}' && depth > 0) depth--;
  }
  return depth > 0;
}
