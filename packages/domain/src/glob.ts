/**
 * Glob matching for policy files: `**` any number of path segments, `*` anything within one segment, `?` one
 * character. Paths are matched with `/` separators; a pattern without `/` matches the last segment anywhere
 * (as `.gitignore` does), so `*.pem` and `**\/*.pem` mean the same.
 */
export function globToRegExp(glob: string, options: { caseInsensitive?: boolean } = {}): RegExp {
  const anchored = glob.includes('/') ? glob : `**/${glob}`;
  let source = '';
  for (let i = 0; i < anchored.length; i++) {
    const char = anchored[i]!;
    if (char === '*') {
      if (anchored[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` matches everything below.
        if (anchored[i + 2] === '/') {
          source += '(?:[^/]*/)*';
          i += 2;
        } else {
          source += '.*';
          i += 1;
        }
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`, options.caseInsensitive ? 'i' : '');
}

interface CompiledGlob {
  glob: string;
  regExp: RegExp;
}

/**
 * Compiled glob lists, per list (a policy's `forbidden_paths`, say) and case flag. A WriteGate evaluation matches
 * every path of a change set against every glob of its policy, and compiling each pattern again per path cost
 * more than the rest of the gate. Keyed weakly by the array, so a policy's compiled globs go when it goes; a list
 * changed in place since it was compiled is noticed (the patterns are compared) and compiled again.
 */
const compiledLists = {
  sensitive: new WeakMap<readonly string[], CompiledGlob[]>(),
  insensitive: new WeakMap<readonly string[], CompiledGlob[]>(),
};

function compiledList(globs: readonly string[], caseInsensitive: boolean): CompiledGlob[] {
  const cache = caseInsensitive ? compiledLists.insensitive : compiledLists.sensitive;
  const cached = cache.get(globs);
  if (cached && cached.length === globs.length && cached.every((c, i) => c.glob === globs[i])) return cached;
  // Without the `g` or `y` flag a RegExp keeps no state between `test` calls, so one instance serves every call.
  const compiled = globs.map((glob) => ({ glob, regExp: globToRegExp(glob, { caseInsensitive }) }));
  cache.set(globs, compiled);
  return compiled;
}

/** True when `path` matches any of `globs`. Leading `./` and `/` are not significant to relative patterns. */
export function matchesAnyGlob(
  path: string,
  globs: readonly string[],
  options: { caseInsensitive?: boolean } = {},
): boolean {
  let relative: string | undefined;
  return compiledList(globs, options.caseInsensitive ?? false).some(({ glob, regExp }) =>
    regExp.test(glob.startsWith('/') ? path : (relative ??= path.replace(/^\.?\/+/, ''))),
  );
}
