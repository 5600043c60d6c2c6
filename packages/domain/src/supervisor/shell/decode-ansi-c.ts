const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  e: '\x1b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '?': '?',
};

/**
 * The text of a bash `$'…'` string (`$'\x73udo'` is `sudo`), or `undefined` for an escape this decoder does
 * not know — the caller then treats the word as unknown, never as the raw text.
 */
export function decodeAnsiC(raw: string): string | undefined {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (char !== '\\') {
      out += char;
      continue;
    }
    const next = raw[i + 1];
    if (next === undefined) return undefined;
    if (next in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[next];
      i += 1;
      continue;
    }
    const numeric = /^(?:x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{1,4})|U([0-9a-fA-F]{1,8})|([0-7]{1,3}))/.exec(
      raw.slice(i + 1, i + 10),
    );
    if (numeric) {
      const [whole, hex, u16, u32, octal] = numeric;
      const code = hex
        ? parseInt(hex, 16)
        : u16
          ? parseInt(u16, 16)
          : u32
            ? parseInt(u32, 16)
            : parseInt(octal!, 8);
      if (code > 0x10ffff) return undefined;
      // Bash stops a $'…' string at a NUL byte.
      if (code === 0) return out;
      out += String.fromCodePoint(code);
      i += whole.length;
      continue;
    }
    if (next === 'c' && raw[i + 2] !== undefined) {
      out += String.fromCharCode(raw.charCodeAt(i + 2) & 0x1f);
      i += 2;
      continue;
    }
    return undefined;
  }
  return out;
}
