/**
 * A word's value as the redline judge sees it: plain text in which three private-use characters stand for what
 * the shell would fill in. Unquoted `*` (and extended globs) become {@link GLOB_STAR}, unquoted `?` and `[…]`
 * become {@link GLOB_ONE}: the shell expands them to names that exist, so a match through them is certain.
 * An expansion whose value is not known before run time (`$X`, `$(cmd)`) becomes {@link UNKNOWN}: a match
 * through it is only possible. Text from the agent that already holds one of these characters can only make a
 * value look less certain, never more.
 */
export const GLOB_STAR = '\uE000';
export const GLOB_ONE = '\uE001';
export const UNKNOWN = '\uE002';

const MARKERS = /[\uE000-\uE002]/;

/** True when the value holds no glob and no unknown part: it is exactly the text the program receives. */
export function isStaticValue(value: string): boolean {
  return !MARKERS.test(value);
}

export function hasUnknown(value: string): boolean {
  return value.includes(UNKNOWN);
}

/** The value written back as shell-like text for evidence: `*`, `?`, and `${?}` for an unknown part. */
export function displayValue(value: string): string {
  return value.replaceAll(GLOB_STAR, '*').replaceAll(GLOB_ONE, '?').replaceAll(UNKNOWN, '${?}');
}

/**
 * Normalizes a path-like value the way the kernel resolves it, lexically: `//` and `/.` collapse, `..` climbs
 * (`/tmp/../etc` → `/etc`), `~/` is the home directory `~`, and a relative value is joined to `cwd` when the
 * working directory is known. Where a `..` climbs out of a part that is not known — an unknown expansion, the
 * home directory — the result is unknown from there; a relative value that is nothing but `..` climbs to an
 * ancestor that cannot be named, so it is unknown too.
 */
export function normalizePathValue(value: string, cwd: string | null = null): string {
  // `~root` is /root and `~name` a home under /home: other users' homes are as much a redline as one's own.
  let path = value.replace(/^~([a-z_][a-z0-9_.-]*)(?=\/|$)/i, (_, user: string) =>
    user === 'root' ? '/root' : `/home/${user}`,
  );
  const rooted = path.startsWith('/') || path.startsWith('~') || path.startsWith(UNKNOWN);
  if (!rooted && cwd !== null) path = `${cwd}/${path}`;
  const absolute = path.startsWith('/');
  let out: string[] = [];
  let climbedOut = false;
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment !== '..') {
      out.push(segment);
      continue;
    }
    const previous = out.at(-1);
    if (previous === undefined) {
      // `/..` is `/`; a relative path climbing above its start leaves somewhere not named here.
      if (!absolute) climbedOut = true;
      if (!absolute) out.push('..');
    } else if (previous === '..') {
      out.push('..');
    } else if (previous.includes(UNKNOWN) || (out.length === 1 && previous.startsWith('~'))) {
      // An unknown part may span several directories, and `~/..` is wherever home's parent is.
      out = [UNKNOWN];
    } else {
      out.pop();
    }
  }
  if (climbedOut && out.every((segment) => segment === '..')) return UNKNOWN;
  const joined = out.join('/');
  if (absolute) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

// --- Glob intersection -------------------------------------------------------------------------------------

/** Edge classes of the small automata below: a character code, any character but `/`, or any character. */
const NOT_SLASH = -1;
const ANY_CHAR = -2;
const SLASH = 47;

interface Automaton {
  edges: Array<Array<[cls: number, to: number]>>;
  epsilon: number[][];
  accept: number;
}

function newAutomaton(): Automaton {
  return { edges: [[]], epsilon: [[]], accept: 0 };
}

function addState(automaton: Automaton): number {
  automaton.edges.push([]);
  automaton.epsilon.push([]);
  return automaton.edges.length - 1;
}

/**
 * A name no policy glob spells out, standing for what an unquoted shell glob expands to. A glob in an argument
 * is matched as one generic name (`build/*` as `build/\uE0FF`), not as every name it could expand to: `/*`
 * still matches `/*`, `~/.ssh/*` still matches `**\/.ssh/**`, but `cp -r src/* dist/` does not become a
 * write to `**\/*.pem` just because some file under src could be one.
 */
const GENERIC_NAME = '\uE0FF';

function genericGlobs(value: string): string {
  return value.replaceAll(GLOB_STAR, GENERIC_NAME).replaceAll(GLOB_ONE, GENERIC_NAME);
}

const valueCache = new Map<string, Automaton>();

/** The values a marker-bearing value can take: a chain of states, a loop where an unknown part matches a run. */
function valueAutomaton(value: string): Automaton {
  const cached = valueCache.get(value);
  if (cached) return cached;
  const automaton = buildValueAutomaton(genericGlobs(value));
  // Values repeat across rules and globs within one judgement; the cache is bounded, not a leak.
  if (valueCache.size > 2_000) valueCache.clear();
  valueCache.set(value, automaton);
  return automaton;
}

function buildValueAutomaton(value: string): Automaton {
  const automaton = newAutomaton();
  let state = 0;
  for (const char of value) {
    const next = addState(automaton);
    if (char === GLOB_STAR || char === UNKNOWN) {
      automaton.edges[state]!.push([char === GLOB_STAR ? NOT_SLASH : ANY_CHAR, state]);
      automaton.epsilon[state]!.push(next);
    } else if (char === GLOB_ONE) {
      automaton.edges[state]!.push([NOT_SLASH, next]);
    } else {
      automaton.edges[state]!.push([char.codePointAt(0)!, next]);
    }
    state = next;
  }
  automaton.accept = state;
  return automaton;
}

/**
 * The paths a policy glob matches, with the semantics of `glob.ts` (`**` any number of segments, `*` within
 * one segment, `?` one character, a glob without `/` matching the last segment anywhere).
 */
function globAutomaton(glob: string): Automaton {
  const anchored = glob.includes('/') ? glob : `**/${glob}`;
  const chars = [...anchored];
  const automaton = newAutomaton();
  let state = 0;
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!;
    if (char === '*' && chars[i + 1] === '*') {
      if (chars[i + 2] === '/') {
        // `**/`: zero or more whole segments — nothing, or any text ending in `/`.
        const loop = addState(automaton);
        const next = addState(automaton);
        automaton.epsilon[state]!.push(next, loop);
        automaton.edges[loop]!.push([ANY_CHAR, loop], [SLASH, next]);
        state = next;
        i += 2;
      } else {
        const next = addState(automaton);
        automaton.edges[state]!.push([ANY_CHAR, state]);
        automaton.epsilon[state]!.push(next);
        state = next;
        i += 1;
      }
    } else if (char === '*') {
      const next = addState(automaton);
      automaton.edges[state]!.push([NOT_SLASH, state]);
      automaton.epsilon[state]!.push(next);
      state = next;
    } else {
      const next = addState(automaton);
      automaton.edges[state]!.push([char === '?' ? NOT_SLASH : char.codePointAt(0)!, next]);
      state = next;
    }
  }
  automaton.accept = state;
  return automaton;
}

function compatible(a: number, b: number): boolean {
  if (a >= 0 && b >= 0) return a === b;
  if (a >= 0) return b === ANY_CHAR || a !== SLASH;
  if (b >= 0) return a === ANY_CHAR || b !== SLASH;
  return true;
}

/** True when some string is accepted by both: a walk over pairs of states, each pair visited once. */
function intersects(a: Automaton, b: Automaton): boolean {
  const width = b.edges.length;
  const seen = new Uint8Array(a.edges.length * width);
  const stack: number[] = [0];
  seen[0] = 1;
  const visit = (x: number, y: number) => {
    const key = x * width + y;
    if (seen[key] === 0) {
      seen[key] = 1;
      stack.push(key);
    }
  };
  while (stack.length > 0) {
    const key = stack.pop()!;
    const x = Math.floor(key / width);
    const y = key % width;
    if (x === a.accept && y === b.accept) return true;
    for (const to of a.epsilon[x]!) visit(to, y);
    for (const to of b.epsilon[y]!) visit(x, to);
    for (const [classA, toA] of a.edges[x]!) {
      for (const [classB, toB] of b.edges[y]!) if (compatible(classA, classB)) visit(toA, toB);
    }
  }
  return false;
}

interface CompiledGlob {
  automaton: Automaton;
  /** Text every match starts with, and ends with: a cheap test that rules out most values before the walk. */
  prefix: string;
  suffix: string;
}

const globCache = new Map<string, CompiledGlob>();

function cachedGlob(glob: string): CompiledGlob {
  let compiled = globCache.get(glob);
  if (!compiled) {
    const lowered = glob.toLowerCase();
    const anchored = lowered.includes('/') ? lowered : `**/${lowered}`;
    const wildcard = /[*?]/;
    const first = anchored.search(wildcard);
    const lastWildcard = Math.max(anchored.lastIndexOf('*'), anchored.lastIndexOf('?'));
    compiled = {
      automaton: globAutomaton(lowered),
      prefix: first < 0 ? anchored : anchored.slice(0, first),
      // After `**/` the slash is optional (`**/.env` matches `.env`), so it is not part of the suffix.
      suffix:
        first < 0
          ? anchored
          : anchored
              .slice(lastWildcard + 1)
              .replace(anchored.slice(lastWildcard - 1, lastWildcard + 2) === '**/' ? /^\// : /^$/, ''),
    };
    // Globs come from the policy file: a handful, so the cache stays small.
    if (globCache.size < 10_000) globCache.set(glob, compiled);
  }
  return compiled;
}

function mayMatch(candidate: string, glob: CompiledGlob): boolean {
  if (hasUnknown(candidate)) return true;
  return candidate.startsWith(glob.prefix) && candidate.endsWith(glob.suffix);
}

/**
 * True when some value the (normalized) path value can take matches `glob`, case-insensitively. Like
 * `matchesAnyGlob`, a leading `./` or `/` is not significant to a relative glob, and a directory matches a
 * `dir/**` glob that protects it (`/etc` against `/etc/**`). Linear in the value's length times the glob's.
 */
export function pathValueMatchesGlob(value: string, glob: string): boolean {
  return memo(pathResults, `${glob}\u0000${value}`, () => pathMatch(value, glob));
}

// Results by glob and value: commands repeat their programs and paths, and every rule asks again.
const pathResults = new Map<string, boolean>();
const wordResults = new Map<string, boolean>();

function memo(cache: Map<string, boolean>, key: string, compute: () => boolean): boolean {
  const known = cache.get(key);
  if (known !== undefined) return known;
  const result = compute();
  if (cache.size > 20_000) cache.clear();
  cache.set(key, result);
  return result;
}

function pathMatch(value: string, glob: string): boolean {
  const lowered = value.toLowerCase();
  const candidate = genericGlobs(glob.startsWith('/') ? lowered : lowered.replace(/^\.?\/+/, ''));
  const compiled = cachedGlob(glob);
  const directory = `${candidate}/`;
  return (
    (mayMatch(candidate, compiled) && intersects(valueAutomaton(candidate), compiled.automaton)) ||
    (mayMatch(directory, compiled) && intersects(valueAutomaton(directory), compiled.automaton))
  );
}

/** A whole-word glob (program names, arguments): `*` any run of characters, `/` included; `?` any one. */
function wordGlobAutomaton(glob: string): Automaton {
  const automaton = newAutomaton();
  let state = 0;
  for (const char of glob) {
    const next = addState(automaton);
    if (char === '*') {
      automaton.edges[state]!.push([ANY_CHAR, state]);
      automaton.epsilon[state]!.push(next);
    } else {
      automaton.edges[state]!.push([char === '?' ? ANY_CHAR : char.codePointAt(0)!, next]);
    }
    state = next;
  }
  automaton.accept = state;
  return automaton;
}

const wordGlobCache = new Map<string, Automaton>();

/**
 * True when some value the word can take equals `glob` read as a whole-word pattern (`*` any run, `?` any
 * character), case-insensitively: how program names and arguments are matched.
 */
export function wordValueMatchesGlob(value: string, glob: string): boolean {
  return memo(wordResults, `${glob}\u0000${value}`, () => wordMatch(value, glob));
}

function wordMatch(value: string, glob: string): boolean {
  if (!/[*?]/.test(glob) && isStaticValue(value)) return value.toLowerCase() === glob.toLowerCase();
  let automaton = wordGlobCache.get(glob);
  if (!automaton) {
    automaton = wordGlobAutomaton(glob.toLowerCase());
    if (wordGlobCache.size < 10_000) wordGlobCache.set(glob, automaton);
  }
  return intersects(valueAutomaton(value.toLowerCase()), automaton);
}
