/*
 * Why this file is long: it is one reader — `SpecReader` walks the shell parser's syntax tree of a
 * command_spec and yields every command that would run, with its redirects, streams and fail-closed problems.
 * Its methods call each other recursively (a word holds a command substitution holds a script), and splitting
 * them across files would scatter one walk a reviewer must read whole to trust that nothing is skipped.
 * The helpers that stand alone already live beside it: command-wrappers.ts, path-pattern.ts,
 * expand-braces.ts, decode-ansi-c.ts and parse-shell-script.ts.
 */
import { SHELLS, scriptSource, unwrapCommand, type ArgWord } from './command-wrappers.js';
import { decodeAnsiC } from './decode-ansi-c.js';
import {
  GLOB_ONE,
  GLOB_STAR,
  UNKNOWN,
  displayValue,
  isStaticValue,
  normalizePathValue,
} from './path-pattern.js';
import { expandBraces, hasOpenBrace } from './expand-braces.js';
import {
  SHELL_OP,
  ShellSyntaxError,
  goSlice,
  goString,
  goType,
  isNil,
  parseShellScript,
  walkNodes,
  type GoNode,
} from './parse-shell-script.js';

export type { ArgWord } from './command-wrappers.js';

/** The fail-closed finding codes: what the reader could not see through. All REDLINE/MEDIUM → REQUIRE_REVIEW. */
export type FailClosedCode =
  'REDLINE_UNREADABLE_COMMAND' | 'REDLINE_DYNAMIC_COMMAND' | 'REDLINE_UNKNOWN_SPEC_SHAPE';

/**
 * How a program gets its script from a stream rather than from a file or its own arguments. `written-file` is
 * a file an earlier command of the same spec wrote (`curl -o i.sh … && sh i.sh`): a script from a command's
 * output, one step removed.
 */
export type ScriptFrom =
  'pipe' | 'process-substitution' | 'here-document' | 'command-output' | 'written-file';

export interface CommandRedirect {
  /** The operator as written: `>`, `>>`, `&>`, `<`, … */
  op: string;
  mode: 'read' | 'write';
  target: ArgWord;
}

/** One program that would run, with everything the redline rules read about it. */
export interface ParsedCommand {
  /** Basename of the program word (`/usr/bin/sudo` → `sudo`); empty for a bare redirect or assignment. */
  program: string;
  /** The words, program first, after quote removal; see `path-pattern.ts` for the value format. */
  argv: ArgWord[];
  redirects: CommandRedirect[];
  /** `NAME=value` words before the program, and `export`/`declare`/`local` assignments. */
  assigns: Array<{ name: string; value: ArgWord }>;
  /** Set when the program reads its script from a stream; rules name the interpreters this matters for. */
  scriptFrom?: ScriptFrom;
  /** Under `xargs`: more arguments come from stdin, so none of the rules' argument tests can be ruled out. */
  argsFromStdin: boolean;
  /** Wrappers it was found inside, outermost first: `['env', 'sh -c']`. */
  via: string[];
  /** Structural facts rules can name: `fork_bomb` (a function that calls itself in a pipe or background). */
  traits: string[];
  /** The working directory, when a `cd` or the spec's `cwd` says; relative paths are already joined to it. */
  cwd: string | null;
  /** Whether the command was read as a shell line or as an argv (exec form). */
  reading: 'shell' | 'exec';
}

export interface SpecProblem {
  code: FailClosedCode;
  reason: string;
  /** The text that could not be read, shortened. */
  source?: string;
}

/** Every command a `command_spec` could run, under every way of reading it, and what could not be read. */
export interface ParsedCommandSpec {
  /** `command` and `args` joined, whitespace collapsed (evidence, and what the old regexes read). */
  commandLine: string;
  commands: ParsedCommand[];
  problems: SpecProblem[];
  /** The spec's `cwd`, normalized. */
  cwd: string | null;
  /** The spec's `env` entries. */
  env: Array<{ name: string; value: ArgWord }>;
}

export interface ParseCommandSpecOptions {
  /**
   * Most characters of shell text parsed for one spec, summed over every reading and every nested `sh -c`,
   * `eval` and here-document. Past it the rest is not parsed and the spec fails closed: the parser costs
   * a few milliseconds per kilobyte, and the supervisor's policy budget is 200 ms.
   * @defaultValue 16384
   */
  maxSourceChars?: number;
  /** Deepest nesting of `sh -c` / `eval` / wrappers followed; deeper fails closed. @defaultValue 8 */
  maxDepth?: number;
  /** Most commands read from one spec; more fails closed. @defaultValue 2000 */
  maxCommands?: number;
  /**
   * Most words of one command that are judged; the rest fail closed. An argv (exec form) is never parsed, so
   * this is what bounds its cost. @defaultValue 2000
   */
  maxWords?: number;
  /** Most words one brace expansion may produce before the word is read as unknown. @defaultValue 64 */
  maxBraceWords?: number;
  /**
   * Cross-checks, by reflection over every node, that each command node the parser produced was read, and
   * fails closed if one was not. Cheap (plain property reads); off only to measure the reader alone.
   * @defaultValue true
   */
  verifyCoverage?: boolean;
}

/** Keys a `command_spec` object may have. Any other could carry a script this reader never sees. */
export const COMMAND_SPEC_KEYS = [
  'name',
  'command',
  'args',
  'cwd',
  'env',
  'description',
  'timeout',
  'timeout_ms',
] as const;

type Stdin =
  { kind: 'pipe' } | { kind: 'stream' } | { kind: 'file'; path: string } | { kind: 'here'; text: ArgWord };

interface Context {
  depth: number;
  stdin: Stdin | null;
  cwd: string | null;
  via: string[];
  /** Functions whose bodies enclose this point (a call to one of them is recursion). */
  functions: string[];
  /** Inside a pipeline or a background job. */
  forked: boolean;
  reading: 'shell' | 'exec';
  argsFromStdin: boolean;
}

const WRITE_OPS = new Map<number, string>([
  [SHELL_OP.redirOut, '>'],
  [SHELL_OP.appendOut, '>>'],
  [SHELL_OP.clobberOut, '>|'],
  [SHELL_OP.redirAll, '&>'],
  [SHELL_OP.appendAll, '&>>'],
  [SHELL_OP.redirInOut, '<>'],
]);

/** Redirect targets that are not files: writing to them writes nothing to disk. */
const NOT_A_FILE = /^\/dev\/(null|stdout|stderr|tty|fd\/\d+)$/;

const HOME_PARAMS = new Set(['HOME']);

function short(text: string, limit = 200): string {
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The last path segment of a program word: `/usr/bin/sudo` → `sudo`, `./x/` → `x`. */
function basename(value: string): string {
  const segments = value.split('/').filter((segment) => segment !== '');
  return segments.at(-1) ?? value;
}

/** Quote removal of an unquoted literal: backslash escapes, glob characters become markers. */
function unquotedText(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (char === '\\') {
      const next = raw[i + 1];
      if (next !== undefined && next !== '\n') out += next;
      i++;
    } else if (char === '*') {
      out += GLOB_STAR;
    } else if (char === '?') {
      out += GLOB_ONE;
    } else if (char === '[' && raw.indexOf(']', i + 2) > 0) {
      out += GLOB_ONE;
      i = raw.indexOf(']', i + 2);
    } else {
      out += char;
    }
  }
  return out;
}

/** Quote removal inside double quotes (and unquoted here-documents): `\` escapes only `$ \` " \\` and newline. */
function doubleQuotedText(raw: string): string {
  return raw.replace(/\\([$`"\\\n])/g, (_, char: string) => (char === '\n' ? '' : char));
}

class SpecReader {
  readonly commands: ParsedCommand[] = [];
  readonly problems: SpecProblem[] = [];
  private budget: number;
  private readonly seenCalls = new Set<GoNode>();
  /** Words that came out of a brace expansion. */
  private readonly braced = new WeakSet<ArgWord>();
  private readonly maxDepth: number;
  private readonly maxCommands: number;
  private readonly maxBraceWords: number;
  private readonly maxWords: number;
  private readonly verifyCoverage: boolean;
  private tooMany = false;
  /** Files the commands read so far write (redirects, download outputs, tee), normalized. */
  private readonly written = new Set<string>();

  constructor(options: ParseCommandSpecOptions) {
    this.budget = options.maxSourceChars ?? 16_384;
    this.maxDepth = options.maxDepth ?? 8;
    this.maxCommands = options.maxCommands ?? 2000;
    this.maxBraceWords = options.maxBraceWords ?? 64;
    this.maxWords = options.maxWords ?? 2000;
    this.verifyCoverage = options.verifyCoverage ?? true;
  }

  problem(code: FailClosedCode, reason: string, source?: string): void {
    // One problem per reason and text: a spec repeating one trick a thousand times is one finding.
    if (this.problems.some((p) => p.code === code && p.reason === reason && p.source === short(source ?? '')))
      return;
    if (this.problems.length >= 50) return;
    this.problems.push({ code, reason, ...(source !== undefined ? { source: short(source) } : {}) });
  }

  /** Parses `source` as a shell script and reads every command in it. */
  readShell(source: string, ctx: Context): void {
    if (ctx.depth > this.maxDepth) {
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `shell text nested deeper than ${this.maxDepth} levels`,
        source,
      );
      return;
    }
    if (source.length > this.budget) {
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        'command too large to read: shell text past the size limit was not parsed',
        source,
      );
      this.budget = 0;
      return;
    }
    this.budget -= source.length;
    let file: GoNode;
    try {
      file = parseShellScript(source);
    } catch (error) {
      const message = error instanceof ShellSyntaxError ? error.message : String(error);
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `the shell parser cannot read the command: ${message}`,
        source,
      );
      this.readPrefix(source, message, ctx);
      return;
    }
    this.readFile(file, ctx);
  }

  /**
   * A shell runs the lines before a syntax error before it finds the error: read those lines too, so a
   * redline in them still blocks rather than only pausing.
   */
  private readPrefix(source: string, message: string, ctx: Context): void {
    const line = Number(/^command:(\d+):/.exec(message)?.[1] ?? 0);
    if (line <= 1) return;
    const prefix = source
      .split('\n')
      .slice(0, line - 1)
      .join('\n');
    try {
      this.readFile(parseShellScript(prefix), ctx);
    } catch {
      // The prefix alone may not parse either (an open quote started earlier); the problem is already recorded.
    }
  }

  private readFile(file: GoNode, ctx: Context): void {
    this.stmts(file.Stmts, ctx);
    if (!this.verifyCoverage || this.tooMany) return;
    // Cross-check by reflection over every field of every node: each command node the parser produced must
    // have been read. A construct the reader does not follow would otherwise hide what it runs.
    let missed = 0;
    walkNodes(file, (node, type) => {
      if (type === 'CallExpr' && !this.seenCalls.has(node)) missed++;
      return true;
    });
    if (missed > 0)
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `${missed} command(s) sit in shell constructs the reader does not follow`,
      );
  }

  /** A list of statements run in order; returns the working directory after them. */
  stmts(list: GoNode, ctx: Context): string | null {
    let cwd = ctx.cwd;
    for (const stmt of goSlice(list)) cwd = this.stmt(stmt, { ...ctx, cwd });
    return cwd;
  }

  stmt(stmt: GoNode, ctx: Context): string | null {
    if (isNil(stmt)) return ctx.cwd;
    let stdin = ctx.stdin;
    const redirects: CommandRedirect[] = [];
    const inner: Context = {
      ...ctx,
      forked: ctx.forked || stmt.Background === true || stmt.Coprocess === true,
    };
    for (const redirect of goSlice(stmt.Redirs)) {
      const read = this.redirect(redirect, inner);
      if (read.redirect) redirects.push(read.redirect);
      if (read.stdin) stdin = read.stdin;
    }
    return this.command(stmt.Cmd, { ...inner, stdin }, redirects);
  }

  private redirect(redirect: GoNode, ctx: Context): { redirect?: CommandRedirect; stdin?: Stdin } {
    const op: number = redirect.Op;
    const fd = isNil(redirect.N) ? undefined : goString(redirect.N.Value);
    const toStdin = fd === undefined || fd === '0';
    if (op === SHELL_OP.heredoc || op === SHELL_OP.dashHeredoc) {
      const delimiter = isNil(redirect.Word) ? [] : goSlice(redirect.Word.Parts);
      const quoted = delimiter.some((part) => goType(part) !== 'Lit' || goString(part.Value).includes('\\'));
      const parts = isNil(redirect.Hdoc) ? [] : goSlice(redirect.Hdoc.Parts);
      const text = quoted
        ? { source: '<<here-document>>', value: parts.map((p) => goString(p.Value)).join('') }
        : this.partsValue(parts, ctx, 'heredoc');
      return toStdin ? { stdin: { kind: 'here', text } } : {};
    }
    if (isNil(redirect.Word)) return {};
    const target = this.singleWord(redirect.Word, ctx);
    if (op === SHELL_OP.hereString)
      return toStdin ? { stdin: { kind: 'here', text: { ...target, value: `${target.value}\n` } } } : {};
    if (op === SHELL_OP.redirIn) {
      const stdin: Stdin | undefined = toStdin
        ? target.stream
          ? { kind: 'stream' }
          : { kind: 'file', path: normalizePathValue(target.value, ctx.cwd) }
        : undefined;
      return { redirect: { op: '<', mode: 'read', target }, ...(stdin ? { stdin } : {}) };
    }
    if (op === SHELL_OP.dupIn || op === SHELL_OP.dupOut) {
      // `2>&1`, `>&-`: a descriptor, not a file. `>& file` (bash) writes stdout and stderr to the file.
      if (/^(\d+|-|\d+-)$/.test(target.value) || op === SHELL_OP.dupIn) return {};
      return NOT_A_FILE.test(target.value) ? {} : { redirect: { op: '>&', mode: 'write', target } };
    }
    const written = WRITE_OPS.get(op);
    if (written !== undefined) {
      if (NOT_A_FILE.test(target.value)) return {};
      return { redirect: { op: written, mode: 'write', target } };
    }
    this.problem('REDLINE_UNREADABLE_COMMAND', `unknown redirect operator ${op}`);
    return {};
  }

  /** Reads one command node; returns the working directory after it. */
  private command(cmd: GoNode, ctx: Context, redirects: CommandRedirect[]): string | null {
    const type = goType(cmd);
    switch (type) {
      case 'nil':
        if (redirects.length > 0) this.emit({ argv: [], redirects, assigns: [], ctx });
        return ctx.cwd;
      case 'CallExpr':
        return this.call(cmd, ctx, redirects);
      case 'BinaryCmd': {
        if (cmd.Op === SHELL_OP.pipe || cmd.Op === SHELL_OP.pipeAll) {
          this.stmt(cmd.X, { ...ctx, forked: true });
          this.stmt(cmd.Y, { ...ctx, forked: true, stdin: { kind: 'pipe' } });
          return ctx.cwd;
        }
        const cwd = this.stmt(cmd.X, ctx);
        return this.stmt(cmd.Y, { ...ctx, cwd });
      }
      case 'Block':
        return this.withRedirects(redirects, ctx, () => this.stmts(cmd.Stmts, ctx));
      case 'Subshell':
        this.withRedirects(redirects, ctx, () => this.stmts(cmd.Stmts, ctx));
        return ctx.cwd;
      case 'IfClause':
        this.withRedirects(redirects, ctx, () => this.ifClause(cmd, ctx));
        return ctx.cwd;
      case 'WhileClause':
        this.withRedirects(redirects, ctx, () => {
          this.stmts(cmd.Cond, ctx);
          this.stmts(cmd.Do, ctx);
        });
        return ctx.cwd;
      case 'ForClause':
        this.withRedirects(redirects, ctx, () => {
          const loop = cmd.Loop;
          if (goType(loop) === 'WordIter') for (const word of goSlice(loop.Items)) this.words(word, ctx);
          else this.embedded(loop, ctx);
          this.stmts(cmd.Do, ctx);
        });
        return ctx.cwd;
      case 'CaseClause':
        this.withRedirects(redirects, ctx, () => {
          this.words(cmd.Word, ctx);
          for (const item of goSlice(cmd.Items)) {
            for (const pattern of goSlice(item.Patterns)) this.words(pattern, ctx);
            this.stmts(item.Stmts, ctx);
          }
        });
        return ctx.cwd;
      case 'FuncDecl':
        this.stmt(cmd.Body, {
          ...ctx,
          functions: [...ctx.functions, isNil(cmd.Name) ? '' : goString(cmd.Name.Value)],
          forked: false,
        });
        return ctx.cwd;
      case 'TimeClause':
      case 'CoprocClause':
        if (!isNil(cmd.Stmt)) this.stmt(cmd.Stmt, { ...ctx, forked: ctx.forked || type === 'CoprocClause' });
        else if (redirects.length > 0) this.emit({ argv: [], redirects, assigns: [], ctx });
        return ctx.cwd;
      case 'DeclClause':
        return this.declClause(cmd, ctx, redirects);
      case 'TestClause':
      case 'ArithmCmd':
      case 'LetClause': {
        // No program runs, but command substitutions inside do, and test operands name paths.
        const words: ArgWord[] = [];
        walkNodes(cmd, (node, nodeType) => {
          if (nodeType !== 'Word') return true;
          words.push(...this.words(node, ctx));
          return false;
        });
        const name = type === 'TestClause' ? '[[' : type === 'LetClause' ? 'let' : '((';
        this.emit({ argv: [{ source: name, value: name }, ...words], redirects, assigns: [], ctx });
        return ctx.cwd;
      }
      default:
        this.problem(
          'REDLINE_UNREADABLE_COMMAND',
          `shell construct ${type} is not read by the redline judge`,
        );
        return ctx.cwd;
    }
  }

  /** A compound command's redirects apply to everything inside; record them as a command of their own. */
  private withRedirects<T>(redirects: CommandRedirect[], ctx: Context, body: () => T): T {
    if (redirects.length > 0) this.emit({ argv: [], redirects, assigns: [], ctx });
    return body();
  }

  private ifClause(clause: GoNode, ctx: Context): void {
    this.stmts(clause.Cond, ctx);
    this.stmts(clause.Then, ctx);
    if (!isNil(clause.Else)) this.ifClause(clause.Else, ctx);
  }

  private declClause(cmd: GoNode, ctx: Context, redirects: CommandRedirect[]): string | null {
    const variant = isNil(cmd.Variant) ? 'declare' : goString(cmd.Variant.Value);
    const assigns: ParsedCommand['assigns'] = [];
    const argv: ArgWord[] = [{ source: variant, value: variant }];
    for (const assign of goSlice(cmd.Args)) {
      const read = this.assign(assign, ctx);
      if (read.name !== undefined) assigns.push({ name: read.name, value: read.value });
      else {
        argv.push(read.value);
        // `export $X`: the name is not known, so it could be IFS or PATH.
        if (!isStaticValue(read.value.value))
          this.problem(
            'REDLINE_DYNAMIC_COMMAND',
            `${variant} of a name not known before run time`,
            read.value.source,
          );
      }
    }
    this.emit({ argv, redirects, assigns, ctx });
    return ctx.cwd;
  }

  private assign(assign: GoNode, ctx: Context): { name?: string; value: ArgWord } {
    const name = isNil(assign.Name) ? undefined : goString(assign.Name.Value);
    if (!isNil(assign.Index)) this.embedded(assign.Index, ctx);
    let value: ArgWord;
    if (!isNil(assign.Array)) {
      const elems = goSlice(assign.Array.Elems).flatMap((elem: GoNode) => {
        if (!isNil(elem.Index)) this.embedded(elem.Index, ctx);
        return isNil(elem.Value) ? [] : this.words(elem.Value, ctx);
      });
      value = { source: elems.map((e) => e.source).join(' '), value: elems.map((e) => e.value).join(' ') };
    } else {
      value = isNil(assign.Value) ? { source: '', value: '' } : this.singleWord(assign.Value, ctx);
    }
    // A naked word (`export X`, `declare -x`) has no value of its own: the word is what was written.
    if (assign.Naked === true && isNil(assign.Value) && name !== undefined)
      return { value: { source: name, value: name } };
    return { ...(name !== undefined && assign.Naked !== true ? { name } : {}), value };
  }

  private call(call: GoNode, ctx: Context, redirects: CommandRedirect[]): string | null {
    this.seenCalls.add(call);
    const assigns: ParsedCommand['assigns'] = [];
    for (const assign of goSlice(call.Assigns)) {
      const read = this.assign(assign, ctx);
      if (read.name !== undefined) assigns.push({ name: read.name, value: read.value });
    }
    const argv = goSlice(call.Args).flatMap((word) => this.words(word, ctx));
    if (argv[0] && this.braced.has(argv[0])) {
      this.problem(
        'REDLINE_DYNAMIC_COMMAND',
        'brace expansion in the program position changes which program runs',
        argv[0].source,
      );
    }
    this.emit({ argv, redirects, assigns, ctx });
    const program = argv[0] ? basename(argv[0].value) : '';
    if (program === 'cd' || program === 'pushd') {
      const target = argv.slice(1).find((word) => !word.value.startsWith('-') || word.value === '-');
      if (!target) return '~';
      if (target.value === '-' || !isStaticValue(target.value)) return null;
      return normalizePathValue(target.value, ctx.cwd);
    }
    return ctx.cwd;
  }

  /** A word as the words it expands to: brace expansion can make several. */
  words(word: GoNode, ctx: Context): ArgWord[] {
    const parts = goSlice(word.Parts);
    const literals = parts.map((part) => (goType(part) === 'Lit' ? goString(part.Value) : undefined));
    const braceAt = literals.findIndex((text) => text !== undefined && text.includes('{'));
    if (braceAt < 0) return [this.partsValue(parts, ctx, 'word')];
    if (literals.some((text) => text !== undefined && hasOpenBrace(text))) {
      // A group that spans quotes or expansions (`{"su"do,x}`): too rare to expand, so not known.
      const value = this.partsValue(parts, ctx, 'word');
      const unknown = { ...value, value: UNKNOWN };
      this.braced.add(unknown);
      return [unknown];
    }
    // Expand each literal's groups, then take every combination across the word's parts.
    let combos: Array<Array<GoNode | string>> = [[]];
    for (let i = 0; i < parts.length; i++) {
      const text = literals[i];
      const choices = text === undefined ? [parts[i]] : expandBraces(text, this.maxBraceWords);
      if (!choices) {
        const unknown = { source: '{…}', value: UNKNOWN };
        this.braced.add(unknown);
        this.partsValue(parts, ctx, 'word');
        return [unknown];
      }
      const next: Array<Array<GoNode | string>> = [];
      for (const combo of combos) for (const choice of choices) next.push([...combo, choice]);
      if (next.length > this.maxBraceWords) {
        const unknown = { source: '{…}', value: UNKNOWN };
        this.braced.add(unknown);
        this.partsValue(parts, ctx, 'word');
        return [unknown];
      }
      combos = next;
    }
    if (combos.length === 1) return [this.partsValue(parts, ctx, 'word')];
    const words = combos.map((combo) => this.partsValue(combo, ctx, 'word'));
    for (const expanded of words) this.braced.add(expanded);
    return words;
  }

  /** A word that stays one word (a redirect target, an assignment value): braces are not expanded there. */
  private singleWord(word: GoNode, ctx: Context): ArgWord {
    return this.partsValue(goSlice(word.Parts), ctx, 'word');
  }

  /** Quote removal and expansion of word parts into one value; a string part is an already-expanded literal. */
  private partsValue(
    parts: Array<GoNode | string>,
    ctx: Context,
    where: 'word' | 'double' | 'heredoc',
  ): ArgWord {
    let value = '';
    let fromCommand = false;
    let stream = false;
    parts.forEach((part, index) => {
      if (typeof part === 'string') {
        value += unquotedText(part);
        return;
      }
      const type = goType(part);
      switch (type) {
        case 'Lit':
          value +=
            where === 'word' ? unquotedText(goString(part.Value)) : doubleQuotedText(goString(part.Value));
          break;
        case 'SglQuoted':
          value +=
            part.Dollar === true ? (decodeAnsiC(goString(part.Value)) ?? UNKNOWN) : goString(part.Value);
          break;
        case 'DblQuoted': {
          const inner = this.partsValue(goSlice(part.Parts), ctx, 'double');
          value += inner.value;
          fromCommand ||= inner.fromCommand === true;
          break;
        }
        case 'ParamExp': {
          this.embedded(part, ctx);
          const plain =
            part.Excl !== true &&
            part.Length !== true &&
            part.Width !== true &&
            isNil(part.Index) &&
            isNil(part.Slice) &&
            isNil(part.Repl) &&
            isNil(part.Exp) &&
            !part.Names;
          const name = isNil(part.Param) ? '' : goString(part.Param.Value);
          value += plain && index === 0 && HOME_PARAMS.has(name) ? '~' : UNKNOWN;
          break;
        }
        case 'CmdSubst':
          this.stmts(part.Stmts, { ...ctx, stdin: null, via: [...ctx.via, '$(…)'] });
          value += UNKNOWN;
          fromCommand = true;
          break;
        case 'ArithmExp':
          this.embedded(part, ctx);
          value += UNKNOWN;
          break;
        case 'ProcSubst': {
          const output = part.Op === SHELL_OP.procOut;
          this.stmts(part.Stmts, {
            ...ctx,
            stdin: output ? { kind: 'pipe' } : null,
            forked: true,
            via: [...ctx.via, output ? '>(…)' : '<(…)'],
          });
          value += '/dev/fd/63';
          stream = true;
          break;
        }
        case 'ExtGlob':
          value += GLOB_STAR;
          break;
        default:
          this.problem('REDLINE_UNREADABLE_COMMAND', `word part ${type} is not read by the redline judge`);
          value += UNKNOWN;
      }
    });
    return {
      source: displayValue(value),
      value,
      ...(fromCommand ? { fromCommand } : {}),
      ...(stream ? { stream } : {}),
    };
  }

  /** Commands hidden inside an expression (`${x:-$(cmd)}`, `$(( $(cmd) ))`, `[[ … ]]`): read them. */
  private embedded(node: GoNode, ctx: Context): void {
    walkNodes(node, (child, type) => {
      if (child === node) return true;
      if (type === 'CmdSubst' || type === 'ProcSubst') {
        this.partsValue([child], ctx, 'word');
        return false;
      }
      return true;
    });
  }

  /** Records a command and follows what it runs. */
  emit(input: {
    argv: ArgWord[];
    redirects: CommandRedirect[];
    assigns: ParsedCommand['assigns'];
    ctx: Context;
    scriptFrom?: ScriptFrom;
  }): void {
    const { redirects, assigns, ctx } = input;
    let argv = input.argv;
    if (argv.length > this.maxWords) {
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `a command of more than ${this.maxWords} words: the rest were not judged`,
      );
      argv = argv.slice(0, this.maxWords);
    }
    if (this.commands.length >= this.maxCommands) {
      if (!this.tooMany)
        this.problem(
          'REDLINE_UNREADABLE_COMMAND',
          `more than ${this.maxCommands} commands: the rest were not read`,
        );
      this.tooMany = true;
      return;
    }
    const program = argv[0] ? basename(argv[0].value) : '';
    const command: ParsedCommand = {
      program,
      argv,
      redirects,
      assigns,
      argsFromStdin: ctx.argsFromStdin,
      via: ctx.via,
      traits: [],
      cwd: ctx.cwd,
      reading: ctx.reading,
    };
    this.commands.push(command);
    for (const assign of assigns) this.judgeEnvironment(assign.name, assign.value, ctx);
    if (['export', 'declare', 'typeset', 'readonly', 'local'].includes(program)) {
      for (const word of argv.slice(1)) {
        const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(word.value);
        if (match) this.judgeEnvironment(match[1]!, { ...word, value: match[2]! }, ctx);
      }
    }
    for (const assign of assigns) {
      if (assign.name === 'IFS')
        this.problem(
          'REDLINE_DYNAMIC_COMMAND',
          'assigning IFS changes how the shell splits words into commands',
          `IFS=${assign.value.source}`,
        );
    }
    if (argv[0] && !isStaticValue(program)) {
      this.problem(
        'REDLINE_DYNAMIC_COMMAND',
        'the program name is not known before run time',
        argv[0].source,
      );
    }
    if (program !== '' && ctx.functions.includes(program) && ctx.forked) command.traits.push('fork_bomb');
    if (killsEveryProcess(program, argv.slice(1))) command.traits.push('kill_every_process');
    if (program === '' || ctx.depth > this.maxDepth) {
      if (ctx.depth > this.maxDepth)
        this.problem('REDLINE_UNREADABLE_COMMAND', `commands nested deeper than ${this.maxDepth} levels`);
      return;
    }
    this.followScript(command, ctx);
    this.recordWrites(command);
    this.follow(command, ctx);
  }

  /**
   * An environment variable some program runs as a command line (`GIT_SSH_COMMAND`, `PAGER`, `EDITOR`, …) is
   * read as shell; one that loads code into a program (`LD_PRELOAD`, `NODE_OPTIONS=--require …`, `PERL5OPT`,
   * git's `GIT_CONFIG_*`) is unreadable.
   */
  judgeEnvironment(name: string, value: ArgWord, ctx: Context): void {
    if (SHELL_TEXT_ENV.has(name)) {
      if (isStaticValue(value.value)) this.readShell(value.value, this.nested(ctx, `${name}=`));
      else
        this.problem(
          'REDLINE_DYNAMIC_COMMAND',
          `${name}, a command line, is not known before run time`,
          value.source,
        );
      return;
    }
    const loads = CODE_ENV.find(([pattern]) => pattern.test(name));
    if (loads && (!isStaticValue(value.value) || loads[1].test(value.value)))
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `${name} loads code into the programs it runs`,
        `${name}=${value.source}`,
      );
  }

  /** Remembers what a command writes, so a later interpreter running that file is seen as running output. */
  private recordWrites(command: ParsedCommand): void {
    for (const redirect of command.redirects) {
      if (redirect.mode === 'write') this.written.add(normalizePathValue(redirect.target.value, command.cwd));
    }
    const name = command.program.toLowerCase();
    const outputs = name === 'curl' ? ['-o', '--output'] : name === 'wget' ? ['-O', '--output-document'] : [];
    const args = command.argv.slice(1);
    args.forEach((word, i) => {
      const [flag = '', attached] = word.value.split(/=(.*)/s);
      let target: string | undefined;
      if (outputs.includes(flag)) target = attached ?? args[i + 1]?.value;
      else if (outputs.some((o) => o.length === 2 && word.value.startsWith(o) && word.value.length > 2))
        target = word.value.slice(2);
      else if (name === 'tee' && !word.value.startsWith('-')) target = word.value;
      if (target !== undefined && target !== '-') this.written.add(normalizePathValue(target, command.cwd));
    });
  }

  /** Where an interpreter's script comes from: a stream sets `scriptFrom`; shell text is read in turn. */
  private followScript(command: ParsedCommand, ctx: Context): void {
    const source = scriptSource(command.program, command.argv.slice(1));
    const shell = SHELLS.has(command.program.toLowerCase());
    if (source.kind === 'operand' && source.word.stream) command.scriptFrom = 'process-substitution';
    if (source.kind === 'inline' && source.word.fromCommand) command.scriptFrom = 'command-output';
    else if (source.kind === 'inline' && !shell) {
      // `python3 -c "import os; os.system('rm -rf /')"`: a program in a language this reader does not read can
      // do anything a shell can, so it is unreadable, never allowed unseen (a person reviews it).
      this.problem(
        'REDLINE_UNREADABLE_COMMAND',
        `${command.program} runs a program given inline, which is not shell and cannot be judged`,
        source.word.source,
      );
    }
    if (source.kind === 'operand' && this.written.has(normalizePathValue(source.word.value, ctx.cwd))) {
      command.scriptFrom = 'written-file';
    }
    if (source.kind !== 'stdin' || ctx.stdin === null) return;
    if (ctx.stdin.kind === 'file' && this.written.has(ctx.stdin.path)) command.scriptFrom = 'written-file';
    else if (ctx.stdin.kind === 'pipe') command.scriptFrom = 'pipe';
    else if (ctx.stdin.kind === 'stream') command.scriptFrom = 'process-substitution';
    else if (ctx.stdin.kind === 'here') {
      const text = ctx.stdin.text;
      if (!shell) command.scriptFrom = 'here-document';
      else if (text.fromCommand) command.scriptFrom = 'command-output';
      else if (!isStaticValue(text.value))
        this.problem(
          'REDLINE_DYNAMIC_COMMAND',
          `the script ${command.program} reads from a here-document is not known before run time`,
          text.source,
        );
      else this.readShell(text.value, this.nested(ctx, `${command.program} <<`));
    }
  }

  private nested(ctx: Context, via: string): Context {
    return {
      ...ctx,
      depth: ctx.depth + 1,
      via: [...ctx.via, via],
      reading: 'shell',
      stdin: null,
      forked: false,
      argsFromStdin: false,
    };
  }

  /** Reads the shell text a wrapper runs, or fails closed when it is known only at run time. */
  private readScriptBody(command: ParsedCommand, body: ArgWord, ctx: Context): void {
    if (isStaticValue(body.value)) {
      this.readShell(body.value, {
        ...this.nested(ctx, `${command.program} -c`),
        stdin: ctx.stdin,
        argsFromStdin: ctx.argsFromStdin,
      });
      return;
    }
    if (body.fromCommand) command.scriptFrom = 'command-output';
    this.problem(
      'REDLINE_DYNAMIC_COMMAND',
      `the shell text ${command.program} runs is not known before run time`,
      body.source,
    );
  }

  /** Follows wrappers, `-c` text, `eval` and `find -exec` to the commands they run. */
  private follow(command: ParsedCommand, ctx: Context): void {
    const unwrapped = unwrapCommand(command.program, command.argv.slice(1));
    const via = [...ctx.via, command.program];
    switch (unwrapped.kind) {
      case 'none':
        return;
      case 'command':
        this.emit({
          argv: unwrapped.argv,
          redirects: command.redirects,
          assigns: [],
          ctx: {
            ...ctx,
            depth: ctx.depth + 1,
            via,
            stdin: unwrapped.stdinConsumed ? null : ctx.stdin,
            argsFromStdin: ctx.argsFromStdin || unwrapped.argsFromStdin === true,
          },
        });
        return;
      case 'script':
        this.readScriptBody(command, unwrapped.body, ctx);
        return;
      case 'scripts':
        for (const body of unwrapped.bodies) this.readScriptBody(command, body, ctx);
        return;
      case 'find':
        for (const argv of unwrapped.commands) {
          for (const root of unwrapped.roots) {
            // find puts each path it finds in place of `{}`: at least the start point itself.
            const substituted = argv.map((word) =>
              word.value.includes('{}') ? { ...word, value: word.value.replaceAll('{}', root.value) } : word,
            );
            this.emit({
              argv: substituted,
              redirects: [],
              assigns: [],
              ctx: { ...ctx, depth: ctx.depth + 1, via, stdin: null },
            });
          }
        }
        return;
      case 'unknown':
        this.problem(
          'REDLINE_UNREADABLE_COMMAND',
          `cannot tell what ${command.program} runs: ${unwrapped.reason}`,
          command.argv.map((w) => w.source).join(' '),
        );
        return;
    }
  }
}

/** Variables whose value some program runs as a shell command line. */
const SHELL_TEXT_ENV = new Set([
  'GIT_SSH_COMMAND',
  'GIT_SSH',
  'GIT_PAGER',
  'PAGER',
  'MANPAGER',
  'GIT_EDITOR',
  'EDITOR',
  'VISUAL',
  'GIT_SEQUENCE_EDITOR',
  'GIT_EXTERNAL_DIFF',
  'GIT_ASKPASS',
  'SSH_ASKPASS',
  'SUDO_ASKPASS',
  'RSYNC_RSH',
  'PROMPT_COMMAND',
  'BROWSER',
  'LESSOPEN',
  'LESSCLOSE',
]);
/** Variables that load code into a program, and the values that do (an empty value loads nothing). */
const CODE_ENV: Array<[RegExp, RegExp]> = [
  [/^LD_(PRELOAD|AUDIT)$/, /\S/],
  [
    /^NODE_OPTIONS$/,
    /(^|\s)(-r|--require|--import|--loader|--experimental-loader|-e|--eval|-p|--print)(\s|=|$)/,
  ],
  [/^PERL5(OPT|DB)$/, /\S/],
  [/^RUBYOPT$/, /(^|\s)-r/],
  [/^GIT_CONFIG_(PARAMETERS|COUNT|KEY_\d+|VALUE_\d+)$/, /\S/],
];

function rootContext(reading: 'shell' | 'exec', cwd: string | null): Context {
  return { depth: 0, stdin: null, cwd, via: [], functions: [], forked: false, reading, argsFromStdin: false };
}

/**
 * An argv as words. Whitespace around a word is dropped: a runner that trims its arguments would run
 * `'  rm\t'` as `rm`, and whitespace must never be what hides a program or a path from the judge.
 */
function execWords(argv: readonly string[]): ArgWord[] {
  return argv.map((text) => ({ source: text, value: text.trim() }));
}

/**
 * Reads a `command_spec` — `{ name, command, args, cwd?, env? }` with `command` a string or an argv array and
 * `args` an array or a string, or a plain string (a shell line) — into every command it could run. A string
 * `command` with `args` is read both as one shell line (`command` and `args` joined by spaces) and as an
 * argv run without a shell, since the spec does not say which its runner does; what either reading runs is
 * judged. Anything that cannot be read becomes a problem that fails closed; nothing is skipped.
 */
export function parseCommandSpec(spec: unknown, options: ParseCommandSpecOptions = {}): ParsedCommandSpec {
  const reader = new SpecReader(options);
  const result = (
    commandLine: string,
    cwd: string | null,
    env: ParsedCommandSpec['env'],
  ): ParsedCommandSpec => ({
    commandLine: collapse(commandLine),
    commands: reader.commands,
    problems: reader.problems,
    cwd,
    env,
  });
  if (spec === undefined) return result('', null, []);
  if (spec === null) {
    // Declared, but as nothing: a runner may fill in a default the judge never sees.
    reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', 'command_spec is null, not { name, command, args }');
    return result('', null, []);
  }
  if (typeof spec === 'string') {
    reader.readShell(spec, rootContext('shell', null));
    return result(spec, null, []);
  }
  if (Array.isArray(spec)) {
    reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', 'command_spec is an array, not { name, command, args }');
    const words = spec.filter((item): item is string => typeof item === 'string');
    if (words.length === spec.length && words.length > 0)
      reader.emit({ argv: execWords(words), redirects: [], assigns: [], ctx: rootContext('exec', null) });
    return result(words.join(' '), null, []);
  }
  if (typeof spec !== 'object') {
    reader.problem(
      'REDLINE_UNKNOWN_SPEC_SHAPE',
      `command_spec is a ${typeof spec}, not { name, command, args }`,
    );
    return result(String(spec), null, []);
  }

  const record = spec as Record<string, unknown>;
  const unknownKeys = Object.keys(record).filter(
    (key) => !(COMMAND_SPEC_KEYS as readonly string[]).includes(key),
  );
  if (unknownKeys.length > 0)
    reader.problem(
      'REDLINE_UNKNOWN_SPEC_SHAPE',
      `command_spec has fields the redline judge does not read: ${unknownKeys.join(', ')}`,
    );

  let cwd: string | null = null;
  if (typeof record.cwd === 'string') cwd = normalizePathValue(record.cwd);
  else if (record.cwd !== undefined && record.cwd !== null)
    reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', 'command_spec.cwd is not a string');

  const env: ParsedCommandSpec['env'] = [];
  if (record.env !== undefined && record.env !== null) {
    if (typeof record.env === 'object' && !Array.isArray(record.env)) {
      for (const [name, value] of Object.entries(record.env as Record<string, unknown>)) {
        if (typeof value === 'string') {
          env.push({ name, value: { source: value, value } });
          reader.judgeEnvironment(name, { source: value, value }, rootContext('exec', null));
        } else reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', `command_spec.env.${name} is not a string`);
        if (name === 'IFS')
          reader.problem(
            'REDLINE_DYNAMIC_COMMAND',
            'command_spec.env sets IFS, which changes how the shell splits words into commands',
          );
      }
    } else reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', 'command_spec.env is not an object of strings');
  }

  const { command, args } = record;
  const argsIsList = Array.isArray(args);
  const argList = argsIsList ? args.filter((arg): arg is string => typeof arg === 'string') : [];
  if (argsIsList && argList.length !== args.length)
    reader.problem('REDLINE_UNKNOWN_SPEC_SHAPE', 'command_spec.args holds values that are not strings');
  if (!argsIsList && args !== undefined && args !== null && typeof args !== 'string')
    reader.problem(
      'REDLINE_UNKNOWN_SPEC_SHAPE',
      `command_spec.args is a ${typeof args}, not an array or a string`,
    );
  const argText = typeof args === 'string' ? args : argList.join(' ');

  if (typeof command === 'string') {
    const line = argText === '' ? command : `${command} ${argText}`;
    reader.readShell(line, rootContext('shell', cwd));
    if (argsIsList)
      reader.emit({
        argv: execWords([command, ...argList]),
        redirects: [],
        assigns: [],
        ctx: rootContext('exec', cwd),
      });
    return result(line, cwd, env);
  }
  if (Array.isArray(command)) {
    const words = command.filter((item): item is string => typeof item === 'string');
    if (words.length !== command.length || words.length === 0)
      reader.problem(
        'REDLINE_UNKNOWN_SPEC_SHAPE',
        'command_spec.command is an array that is empty or holds values that are not strings',
      );
    if (typeof args === 'string') {
      // An argv program with its arguments as one string: only a shell would split them.
      reader.readShell(`${words.join(' ')} ${args}`, rootContext('shell', cwd));
    } else if (words.length > 0) {
      reader.emit({
        argv: execWords([...words, ...argList]),
        redirects: [],
        assigns: [],
        ctx: rootContext('exec', cwd),
      });
    }
    return result([...words, argText].join(' '), cwd, env);
  }
  if (command !== undefined && command !== null)
    reader.problem(
      'REDLINE_UNKNOWN_SPEC_SHAPE',
      `command_spec.command is a ${typeof command}, not a string or an array`,
    );
  return result(argText, cwd, env);
}

/**
 * `kill -9 -1`, `kill -s KILL -- -1`, `kill -01`: pid -1 is every process the caller may signal. The first
 * word is the signal when it is an option (`kill -1 1234` sends SIGHUP to one process); the words after it
 * (and after `--`) are targets.
 */
function killsEveryProcess(program: string, args: readonly ArgWord[]): boolean {
  if (program.toLowerCase() !== 'kill') return false;
  let i = 0;
  if (args[0]?.value === '-s' || args[0]?.value === '-n') i = 2;
  else if (args[0] && /^-./.test(args[0].value) && args[0].value !== '--') i = 1;
  if (args[i]?.value === '--') i++;
  return args.slice(i).some((word) => /^-0*1$/.test(word.value));
}
