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

/** True when `path` matches any of `globs`. Leading `./` and `/` are not significant to relative patterns. */
export function matchesAnyGlob(
  path: string,
  globs: readonly string[],
  options: { caseInsensitive?: boolean } = {},
): boolean {
  return globs.some((glob) => {
    const candidate = glob.startsWith('/') ? path : path.replace(/^\.?\/+/, '');
    return globToRegExp(glob, options).test(candidate);
  });
}
