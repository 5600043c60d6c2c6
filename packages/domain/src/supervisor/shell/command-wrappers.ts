/*
 * Why this file is long: it is mostly a table — for each program that runs another program (`env`, `nice`,
 * `timeout`, `xargs`, `sudo`, `ssh`, `find -exec`, shells with `-c`, …) the options it takes and where the
 * program it runs begins. One wrapper, one entry; the entries are read together to see which are covered.
 */
import { UNKNOWN, isStaticValue } from './path-pattern.js';

/** One argument as the wrappers read it: its value (see `path-pattern.ts`) and what the shell made of it. */
export interface ArgWord {
  /** The text as written, for evidence. */
  source: string;
  value: string;
  /** A process substitution `<(…)` / `>(…)`: the program sees a path to a stream. */
  stream?: boolean;
  /** Some of the value is the output of a command (`$(…)`, backticks). */
  fromCommand?: boolean;
}

/** What running `argv` really runs, when its program runs another program. */
export type Unwrapped =
  /** Not a wrapper, or a wrapper that runs nothing here (`command -v sudo`, bare `env`). */
  | { kind: 'none' }
  /** Runs `argv` (`nohup`, `env`, `nice`, `timeout`, `xargs`, `sudo`, …). */
  | { kind: 'command'; argv: ArgWord[]; argsFromStdin?: boolean; stdinConsumed?: boolean }
  /** Runs `body` as shell text (`sh -c`, `eval`, `watch`, `ssh host …`, `flock -c`, `su -c`). */
  | { kind: 'script'; body: ArgWord }
  /** Runs each of `bodies` as shell text of its own (`git -c core.pager=… -c core.editor=…`, `ssh -o ProxyCommand=… host cmd`). */
  | { kind: 'scripts'; bodies: ArgWord[] }
  /** `find … -exec …;`: each argv, with `{}` standing for what find found under `roots`. */
  | { kind: 'find'; commands: ArgWord[][]; roots: ArgWord[] }
  /** Options this reader does not know, or a word it cannot read, where the wrapped program starts. */
  | { kind: 'unknown'; reason: string };

/** Shells whose `-c` text and here-documents are parsed as scripts in their own right. */
export const SHELLS = new Set([
  'sh',
  'bash',
  'zsh',
  'dash',
  'ksh',
  'mksh',
  'ash',
  'rbash',
  'fish',
  'csh',
  'tcsh',
  'yash',
  'posh',
]);

interface OptionTable {
  /** Short options that take a value (the rest of the word, or the next word). */
  shortValue?: string;
  /** Short options that take no value. Any other short option is unknown. */
  shortFlag?: string;
  /** Long options (no leading `--`) that take a value (`--x=v` or `--x v`). */
  longValue?: readonly string[];
  /** Long options that take no value, or only an attached `=value`. */
  longFlag?: readonly string[];
  /** `-5`, `-10`: a number as an option (`nice -10`). */
  numeric?: boolean;
}

interface ParsedOptions {
  /** Option letters and long names seen, with their values. */
  options: Map<string, ArgWord | true>;
  /** Index of the first operand. */
  rest: number;
}

/**
 * Reads leading options of `args` by `table`, stopping at `--` or the first operand. `undefined` with a reason
 * when an option is unknown or not readable: a wrapper whose options cannot be read could hide its command
 * anywhere, so the caller fails closed.
 */
function readOptions(args: readonly ArgWord[], table: OptionTable): ParsedOptions | string {
  const options = new Map<string, ArgWord | true>();
  let i = 0;
  for (; i < args.length; i++) {
    const word = args[i]!;
    const text = word.value;
    if (!isStaticValue(text)) {
      if (text.startsWith('-') || text.startsWith(UNKNOWN)) return `cannot read option ${word.source}`;
      break;
    }
    if (text === '--') return { options, rest: i + 1 };
    if (!text.startsWith('-') || text === '-') break;
    if (text.startsWith('--')) {
      const [name = '', value] = splitOnce(text.slice(2), '=');
      if (table.longValue?.includes(name)) {
        if (value !== undefined) options.set(name, { source: word.source, value });
        else {
          const next = args[++i];
          if (!next) return `option --${name} needs a value`;
          options.set(name, next);
        }
      } else if (table.longFlag?.includes(name)) {
        options.set(name, value === undefined ? true : { source: word.source, value });
      } else {
        return `unknown option --${name}`;
      }
      continue;
    }
    if (table.numeric && /^-\d+$/.test(text)) continue;
    const letters = text.slice(1);
    for (let j = 0; j < letters.length; j++) {
      const letter = letters[j]!;
      if (table.shortValue?.includes(letter)) {
        const attached = letters.slice(j + 1);
        if (attached !== '') options.set(letter, { source: word.source, value: attached });
        else {
          const next = args[++i];
          if (!next) return `option -${letter} needs a value`;
          options.set(letter, next);
        }
        break;
      }
      if (!table.shortFlag?.includes(letter)) return `unknown option -${letter}`;
      options.set(letter, true);
    }
  }
  return { options, rest: i };
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Words joined by spaces, as `eval` and `ssh` join them before the shell reads them. */
export function joinWords(words: readonly ArgWord[]): ArgWord {
  return {
    source: words.map((w) => w.source).join(' '),
    value: words.map((w) => w.value).join(' '),
    fromCommand: words.some((w) => w.fromCommand),
  };
}

function runs(argv: ArgWord[], extra: Partial<Extract<Unwrapped, { kind: 'command' }>> = {}): Unwrapped {
  return argv.length === 0 ? { kind: 'none' } : { kind: 'command', argv, ...extra };
}

/** The command lines a program runs, each read on its own (joined, one's open quote could swallow the next). */
function commandLines(bodies: ArgWord[]): Unwrapped {
  if (bodies.length === 0) return { kind: 'none' };
  return bodies.length === 1 ? { kind: 'script', body: bodies[0]! } : { kind: 'scripts', bodies };
}

function withOptions(
  args: readonly ArgWord[],
  table: OptionTable,
  then: (parsed: ParsedOptions) => Unwrapped,
): Unwrapped {
  const parsed = readOptions(args, table);
  return typeof parsed === 'string' ? { kind: 'unknown', reason: parsed } : then(parsed);
}

function unwrapEnv(args: ArgWord[]): Unwrapped {
  const table: OptionTable = {
    shortValue: 'uCSP',
    shortFlag: 'i0v',
    longValue: ['unset', 'chdir', 'split-string'],
    longFlag: [
      'ignore-environment',
      'null',
      'debug',
      'help',
      'version',
      'default-signal',
      'ignore-signal',
      'block-signal',
      'list-signal-handling',
    ],
  };
  let rest = args;
  // `-S 'a b'` splits its value into arguments and goes on reading: loop until no -S is left to expand.
  for (let round = 0; round < 8; round++) {
    const parsed = readOptions(rest, table);
    if (typeof parsed === 'string') return { kind: 'unknown', reason: `env: ${parsed}` };
    if (parsed.options.has('help') || parsed.options.has('version')) return { kind: 'none' };
    const split = parsed.options.get('S') ?? parsed.options.get('split-string');
    let after = rest.slice(parsed.rest);
    if (split !== undefined && split !== true) {
      if (!isStaticValue(split.value))
        return { kind: 'unknown', reason: 'env -S with a value not known before run time' };
      const words = split.value
        .split(/\s+/)
        .filter((w) => w !== '')
        .map((value) => ({ source: value, value }));
      rest = [...words, ...after];
      continue;
    }
    while (after[0] && ASSIGNMENT.test(after[0].value)) after = after.slice(1);
    // GNU env stops reading options at the first assignment, so a `--` after one would be run as a program;
    // skipping it here can only make the judge see the real command, never miss one.
    if (after[0]?.value === '--') after = after.slice(1);
    if (after[0] && !isStaticValue(after[0].value) && after[0].value.startsWith(UNKNOWN)) {
      // `env $X cmd`: $X may be an assignment or the command.
      return {
        kind: 'unknown',
        reason: `env: cannot tell whether ${after[0].source} is an assignment or the command`,
      };
    }
    return runs(after);
  }
  return { kind: 'unknown', reason: 'env: too many -S options' };
}

function unwrapXargs(args: ArgWord[]): Unwrapped {
  const table: OptionTable = {
    shortValue: 'adEILnPs',
    shortFlag: '0prtxo',
    longValue: ['arg-file', 'delimiter', 'max-args', 'max-procs', 'max-chars', 'process-slot-var'],
    longFlag: [
      'null',
      'interactive',
      'no-run-if-empty',
      'verbose',
      'exit',
      'open-tty',
      'show-limits',
      'eof',
      'replace',
      'max-lines',
      'help',
      'version',
    ],
  };
  // `-i[R]`, `-e[EOF]`, `-l[N]` take only an attached value: read them as flags of their own.
  const normalized = args.map((word) =>
    /^-[iel]/.test(word.value) && isStaticValue(word.value)
      ? {
          ...word,
          value: `--${{ i: 'replace', e: 'eof', l: 'max-lines' }[word.value[1] as 'i' | 'e' | 'l']}`,
        }
      : word,
  );
  return withOptions(normalized, table, ({ options, rest }) => {
    const replace = options.get('I') ?? options.get('replace') ?? (options.has('i') ? true : undefined);
    const token = replace === undefined ? undefined : replace === true ? '{}' : replace.value;
    const argv = args
      .slice(rest)
      .map((word) =>
        token !== undefined && word.value.includes(token)
          ? { ...word, value: word.value.replaceAll(token, UNKNOWN) }
          : word,
      );
    return runs(argv.length > 0 ? argv : [{ source: 'echo', value: 'echo' }], {
      argsFromStdin: true,
      stdinConsumed: true,
    });
  });
}

function unwrapFind(args: ArgWord[]): Unwrapped {
  const roots: ArgWord[] = [];
  let i = 0;
  // Leading -H/-L/-P/-D/-O options, then start points up to the first expression word.
  while (i < args.length && /^-[HLP]$/.test(args[i]!.value)) i++;
  while (i < args.length && /^-(D|O\d*)$/.test(args[i]!.value)) i += args[i]!.value === '-D' ? 2 : 1;
  for (; i < args.length; i++) {
    const text = args[i]!.value;
    if (text.startsWith('-') || text === '(' || text === '!' || text === ')') break;
    roots.push(args[i]!);
  }
  if (roots.length === 0) roots.push({ source: '.', value: '.' });
  const commands: ArgWord[][] = [];
  for (; i < args.length; i++) {
    if (!/^-(exec|execdir|ok|okdir)$/.test(args[i]!.value)) continue;
    const argv: ArgWord[] = [];
    let closed = false;
    for (i++; i < args.length; i++) {
      const text = args[i]!.value;
      if (text === ';' || (text === '+' && argv.at(-1)?.value === '{}')) {
        closed = true;
        break;
      }
      argv.push(args[i]!);
    }
    if (!closed) return { kind: 'unknown', reason: 'find: -exec without a closing ; or +' };
    if (argv.length > 0) commands.push(argv);
  }
  return commands.length === 0 ? { kind: 'none' } : { kind: 'find', commands, roots };
}

/** `sh -c TEXT`, `bash -lc TEXT`, `bash -o pipefail -c TEXT`: the text; `undefined` when not `-c`. */
function shellBody(args: ArgWord[]): Unwrapped | undefined {
  let i = 0;
  let command = false;
  for (; i < args.length; i++) {
    const text = args[i]!.value;
    if (!isStaticValue(text)) {
      // After -c the first word that is not a known option is the text, whatever it holds.
      if (!command && (text.startsWith('-') || text.startsWith('+') || text.startsWith(UNKNOWN)))
        return { kind: 'unknown', reason: `cannot read shell option ${args[i]!.source}` };
      break;
    }
    if (text === '--' || text === '-') {
      i++;
      break;
    }
    if (text.startsWith('--')) {
      if (['rcfile', 'init-file'].includes(text.slice(2))) i++;
      continue;
    }
    if (!/^[-+]./.test(text)) break;
    const letters = text.slice(1);
    if (letters.includes('c')) command = true;
    // `-o NAME`, `-O NAME`: the option name is the next word.
    if (/[oO]/.test(letters)) i++;
  }
  if (!command) return undefined;
  const body = args[i];
  return body ? { kind: 'script', body } : { kind: 'unknown', reason: 'shell -c without its text' };
}

/** Git settings whose value git runs as a shell command (`alias.*` only when it starts with `!`). */
const GIT_SHELL_KEYS =
  /^(core\.(sshcommand|pager|editor|fsmonitor|askpass|hookspath|gitproxy|alternaterefscommand)|pager\..+|sequence\.editor|diff\.external|(gpg|gpg\.(ssh|x509|openpgp))\.program|gpg\.ssh\.defaultkeycommand|credential\.(.+\.)?helper|(diff|merge|filter|mergetool|difftool)\..+\.(command|driver|textconv|clean|smudge|process|cmd)|remote\..+\.(uploadpack|receivepack|proxy)|interactive\.difffilter|sendemail\..*(cmd|command)|alias\..+)$/i;
/** Settings that are not a command line but let one run: `protocol.ext.allow=always` enables `ext::CMD` URLs. */
const GIT_UNSAFE_KEYS =
  /^(protocol\.(ext\.)?allow|core\.(worktree|bare)|include(if\..+)?\.path|uploadpack\.packobjectshook)$/i;

function gitShellValue(key: string, value: ArgWord): ArgWord | undefined {
  if (!GIT_SHELL_KEYS.test(key)) return undefined;
  if (/^alias\./i.test(key))
    return value.value.startsWith('!') ? { ...value, value: value.value.slice(1) } : undefined;
  // A credential helper starting with `!` is a shell snippet, the `!` git's marker, not the shell's.
  if (/^credential\./i.test(key) && value.value.startsWith('!'))
    return { ...value, value: value.value.slice(1) };
  return value;
}

/** `git -c core.sshCommand='…'` and `git config alias.x '!…'`: settings whose value git runs as shell text. */
function unwrapGit(args: ArgWord[]): Unwrapped {
  const bodies: ArgWord[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const text = args[i]!.value;
    if (text === '--config-env' || text.startsWith('--config-env=')) {
      // `--config-env=core.pager=VAR`: a setting whose value is an environment variable, known only at run time.
      return { kind: 'unknown', reason: 'git --config-env sets a value known only at run time' };
    }
    if ((text === '-c' && args[i + 1]) || (text.startsWith('-c') && text.length > 2)) {
      const setting = text === '-c' ? args[++i]! : { ...args[i]!, value: text.slice(2) };
      if (!isStaticValue(setting.value))
        return { kind: 'unknown', reason: 'git -c with a setting known only at run time' };
      const [key = '', value] = setting.value.split(/=(.*)/s);
      if (GIT_UNSAFE_KEYS.test(key)) return { kind: 'unknown', reason: `git -c ${key} lets a command run` };
      const body = value === undefined ? undefined : gitShellValue(key, { ...setting, value });
      if (body) bodies.push(body);
    } else if (['-C', '--git-dir', '--work-tree', '--namespace'].includes(text)) i++;
    else if (!text.startsWith('-')) break;
  }
  if (args[i]?.value === 'config') {
    const operands = args.slice(i + 1).filter((word) => !word.value.startsWith('-'));
    const [key, value] = operands;
    const body = key && value ? gitShellValue(key.value, value) : undefined;
    if (body) bodies.push(body);
  }
  return commandLines(bodies);
}

/**
 * When `program` (a basename) runs another program, what it runs. Knows the wrappers an agent could use to
 * put distance between a redline and the program position: env, nohup, nice, timeout, stdbuf, time, command,
 * exec, builtin, busybox, xargs, find -exec, setsid, ionice, chroot, flock, watch, script, ssh, the sudo family,
 * the shells' `-c`, `eval`, and the text of `trap` and `alias`, which runs later.
 */
export function unwrapCommand(program: string, args: ArgWord[]): Unwrapped {
  const name = program.toLowerCase();
  if (SHELLS.has(name)) return shellBody(args) ?? { kind: 'none' };
  switch (name) {
    case 'env':
      return unwrapEnv(args);
    case 'nohup':
      return args[0]?.value.startsWith('--') ? { kind: 'none' } : runs(args);
    case 'nice':
      return withOptions(
        args,
        { shortValue: 'n', longValue: ['adjustment'], longFlag: ['help', 'version'], numeric: true },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'timeout':
      return withOptions(
        args,
        {
          shortValue: 'sk',
          shortFlag: 'v',
          longValue: ['signal', 'kill-after'],
          longFlag: ['foreground', 'preserve-status', 'verbose', 'help', 'version'],
        },
        ({ rest }) => runs(args.slice(rest + 1)),
      );
    case 'stdbuf':
      return withOptions(
        args,
        { shortValue: 'ioe', longValue: ['input', 'output', 'error'], longFlag: ['help', 'version'] },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'time':
      return withOptions(
        args,
        {
          shortValue: 'fo',
          shortFlag: 'pvaq',
          longValue: ['format', 'output'],
          longFlag: ['portability', 'verbose', 'append', 'quiet', 'help', 'version'],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'command':
      return withOptions(args, { shortFlag: 'pvV' }, ({ options, rest }) =>
        options.has('v') || options.has('V') ? { kind: 'none' } : runs(args.slice(rest)),
      );
    case 'exec':
      return withOptions(args, { shortValue: 'a', shortFlag: 'cl' }, ({ rest }) => runs(args.slice(rest)));
    case 'builtin':
    case 'nohup.exe':
      return runs(args);
    case 'busybox':
      return args[0]?.value.startsWith('-') ? { kind: 'none' } : runs(args);
    case 'xargs':
      return unwrapXargs(args);
    case 'find':
      return unwrapFind(args);
    // Tracers, schedulers and namespace tools run the command after their options; an option these tables
    // do not know fails closed (unknown), since it might take the command's place.
    case 'strace':
    case 'ltrace':
      return withOptions(
        args,
        {
          shortValue: 'aeEIoOpPsSuXbAUn',
          shortFlag: 'cCdDfFhiqrtTvVwxyzkZ',
          longValue: ['output', 'trace', 'signal', 'status', 'user', 'env', 'string-limit', 'attach'],
          longFlag: ['follow-forks', 'output-separately', 'summary-only', 'help', 'version'],
        },
        ({ rest, options }) => {
          // `-o |cmd` / `-o !cmd` pipes the trace into a shell command.
          const output = options.get('o') ?? options.get('output');
          if (output !== undefined && output !== true && /^[|!]/.test(output.value))
            return { kind: 'script', body: { ...output, value: output.value.slice(1) } };
          return runs(args.slice(rest));
        },
      );
    case 'taskset':
      return withOptions(
        args,
        { shortFlag: 'acpV', longFlag: ['all-tasks', 'cpu-list', 'pid', 'help', 'version'] },
        ({ rest }) => runs(args.slice(rest + 1)),
      );
    case 'chrt':
      return withOptions(
        args,
        {
          shortValue: 'T',
          shortFlag: 'abdefimoprRvhV',
          longValue: ['sched-runtime', 'sched-deadline', 'sched-period'],
          longFlag: [
            'all-tasks',
            'batch',
            'deadline',
            'fifo',
            'idle',
            'max',
            'other',
            'pid',
            'rr',
            'reset-on-fork',
            'verbose',
            'help',
            'version',
          ],
        },
        ({ rest }) => runs(args.slice(rest + 1)),
      );
    case 'unshare':
    case 'nsenter':
      return withOptions(
        args,
        {
          shortValue: 'tSGwR',
          shortFlag: 'imnpuUCTfrcFaehV',
          longValue: [
            'target',
            'setuid',
            'setgid',
            'wd',
            'root',
            'propagation',
            'setgroups',
            'map-user',
            'map-group',
            'kill-child',
          ],
          longFlag: [
            'ipc',
            'mount',
            'net',
            'pid',
            'uts',
            'user',
            'cgroup',
            'time',
            'fork',
            'map-root-user',
            'map-current-user',
            'mount-proc',
            'preserve-credentials',
            'all',
            'help',
            'version',
          ],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'systemd-run':
      return withOptions(
        args,
        {
          shortValue: 'upEMH',
          shortFlag: 'trPGSqh',
          longValue: [
            'unit',
            'property',
            'description',
            'slice',
            'uid',
            'gid',
            'nice',
            'working-directory',
            'setenv',
            'machine',
            'host',
            'on-calendar',
            'on-active',
          ],
          longFlag: [
            'user',
            'system',
            'scope',
            'remain-after-exit',
            'pty',
            'pipe',
            'wait',
            'collect',
            'quiet',
            'same-dir',
            'shell',
            'no-block',
            'help',
            'version',
          ],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'sshpass':
      return withOptions(args, { shortValue: 'pfdP', shortFlag: 'evh', longFlag: ['help'] }, ({ rest }) =>
        runs(args.slice(rest)),
      );
    case 'nix-shell':
    case 'nix-shell.exe': {
      const at = args.findIndex((word) => word.value === '--run' || word.value === '--command');
      const body = at >= 0 ? args[at + 1] : undefined;
      return at < 0
        ? { kind: 'none' }
        : body
          ? { kind: 'script', body }
          : { kind: 'unknown', reason: 'nix-shell --run without its text' };
    }
    case 'parallel':
      // GNU parallel runs each line or `:::` argument through a shell: what it runs is only known at run time.
      return { kind: 'unknown', reason: 'parallel builds its commands at run time' };
    case 'make':
    case 'gmake':
      return args.some((word) => /^--eval(=|$)|^-E/.test(word.value))
        ? { kind: 'unknown', reason: `${name} --eval runs a makefile given inline` }
        : { kind: 'none' };
    case 'npx':
    case 'pnpx':
    case 'bunx':
      return packageRunner(name, args, 0);
    case 'npm':
    case 'pnpm':
    case 'yarn':
    case 'bun':
      return args[0]?.value === 'exec' || args[0]?.value === 'x' || args[0]?.value === 'dlx'
        ? packageRunner(name, args, 1)
        : { kind: 'none' };
    case 'uv':
    case 'poetry':
    case 'pipenv':
    case 'conda':
    case 'mamba':
    case 'pyenv':
    case 'bundle':
    case 'rbenv':
    case 'nodenv':
      // `poetry run pytest`: the command follows at once; after options this reader cannot follow, fail closed.
      if (!['run', 'exec'].includes(args[0]?.value ?? '')) return { kind: 'none' };
      if (args[1] && !args[1].value.startsWith('-')) return runs(args.slice(1));
      return {
        kind: 'unknown',
        reason: `${name} ${args[0]!.value} runs a command after options this reader does not follow`,
      };
    case 'setsid':
      return withOptions(
        args,
        { shortFlag: 'cfw', longFlag: ['ctty', 'fork', 'wait', 'help', 'version'] },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'ionice':
      return withOptions(
        args,
        {
          shortValue: 'cnpPu',
          shortFlag: 't',
          longValue: ['class', 'classdata', 'pid', 'pgid', 'uid'],
          longFlag: ['ignore', 'help', 'version'],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'chroot':
      return withOptions(
        args,
        { longValue: ['userspec', 'groups'], longFlag: ['skip-chdir', 'help', 'version'] },
        ({ rest }) => runs(args.slice(rest + 1)),
      );
    case 'flock':
      return withOptions(
        args,
        {
          shortValue: 'wEc',
          shortFlag: 'sxenuoFv',
          longValue: ['timeout', 'wait', 'conflict-exit-code', 'command'],
          longFlag: [
            'shared',
            'exclusive',
            'nonblock',
            'nb',
            'unlock',
            'close',
            'no-fork',
            'verbose',
            'help',
            'version',
          ],
        },
        ({ options, rest }) => {
          const body = options.get('c') ?? options.get('command');
          if (body !== undefined && body !== true) return { kind: 'script', body };
          return runs(args.slice(rest + 1));
        },
      );
    case 'watch':
      return withOptions(
        args,
        {
          shortValue: 'nq',
          shortFlag: 'dtbegcxpwr',
          longValue: ['interval', 'equexit'],
          longFlag: [
            'differences',
            'no-title',
            'no-wrap',
            'beep',
            'errexit',
            'chgexit',
            'color',
            'no-color',
            'exec',
            'precise',
            'no-linewrap',
            'no-rerun',
            'help',
            'version',
          ],
        },
        ({ options, rest }) => {
          const argv = args.slice(rest);
          if (argv.length === 0) return { kind: 'none' };
          // watch runs `sh -c` on its arguments joined, unless -x asks for exec.
          return options.has('x') || options.has('exec')
            ? runs(argv)
            : { kind: 'script', body: joinWords(argv) };
        },
      );
    case 'git':
      return unwrapGit(args);
    case 'ssh':
      return withOptions(
        args,
        { shortValue: 'BbcDEeFIiJLlmOoPpQRSWw', shortFlag: '46AaCfGgKkMNnqsTtVvXxYy' },
        ({ rest }) => {
          const remote = args.slice(rest + 1);
          const commands = sshOptionCommands(args.slice(0, rest));
          if (remote.length > 0) commands.push(joinWords(remote));
          return commandLines(commands);
        },
      );
    case 'script':
      return withOptions(
        args,
        {
          shortValue: 'cEIOBTm',
          shortFlag: 'aefqkrt',
          longValue: [
            'command',
            'echo',
            'log-in',
            'log-out',
            'log-io',
            'log-timing',
            'logging-format',
            'output-limit',
          ],
          longFlag: ['append', 'return', 'flush', 'force', 'quiet', 'timing', 'help', 'version'],
        },
        ({ options }) => {
          const body = options.get('c') ?? options.get('command');
          return body !== undefined && body !== true ? { kind: 'script', body } : { kind: 'none' };
        },
      );
    case 'trap': {
      // `trap 'text' SIGNAL…`: the text runs when the signal (or EXIT) comes.
      const body = args[0]?.value === '--' ? args[1] : args[0];
      return body && !/^-[lp]$/.test(body.value) && args.length >= 2
        ? { kind: 'script', body }
        : { kind: 'none' };
    }
    case 'alias': {
      // `alias s=sudo`: the value runs wherever the alias is used, which this reader does not track.
      const bodies = args
        .filter((word) => word.value.includes('='))
        .map((word) => ({ ...word, value: word.value.slice(word.value.indexOf('=') + 1) }));
      return bodies.length === 0
        ? { kind: 'none' }
        : { kind: 'script', body: { ...joinWords(bodies), value: bodies.map((b) => b.value).join('\n') } };
    }
    case 'eval':
      return args.length === 0 ? { kind: 'none' } : { kind: 'script', body: joinWords(args) };
    case 'sudo':
    case 'sudoedit':
      return withOptions(
        args,
        {
          shortValue: 'ugpCDhrtUTc',
          shortFlag: 'AbEeHiKklnPSsVvBNR',
          longValue: [
            'user',
            'group',
            'prompt',
            'close-from',
            'chdir',
            'host',
            'role',
            'type',
            'other-user',
            'command-timeout',
            'preserve-env',
          ],
          longFlag: [
            'askpass',
            'background',
            'preserve-env',
            'edit',
            'set-home',
            'login',
            'remove-timestamp',
            'reset-timestamp',
            'list',
            'non-interactive',
            'preserve-groups',
            'stdin',
            'shell',
            'validate',
            'version',
            'help',
            'bell',
          ],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    case 'doas':
      return withOptions(args, { shortValue: 'uC', shortFlag: 'nsL' }, ({ rest }) => runs(args.slice(rest)));
    case 'su':
    case 'runuser':
      return withOptions(
        args,
        {
          shortValue: 'cgGsuw',
          shortFlag: 'lmpPf',
          longValue: [
            'command',
            'group',
            'supp-group',
            'shell',
            'user',
            'whitelist-environment',
            'session-command',
          ],
          longFlag: ['login', 'preserve-environment', 'pty', 'fast', 'help', 'version'],
        },
        ({ options }) => {
          const body = options.get('c') ?? options.get('command') ?? options.get('session-command');
          return body !== undefined && body !== true ? { kind: 'script', body } : { kind: 'none' };
        },
      );
    case 'pkexec':
    case 'run0':
      return withOptions(
        args,
        {
          longValue: [
            'user',
            'unit',
            'property',
            'description',
            'slice',
            'setenv',
            'chdir',
            'nice',
            'background',
          ],
          longFlag: ['disable-internal-agent', 'keep-cwd', 'no-ask-password', 'machine', 'help', 'version'],
        },
        ({ rest }) => runs(args.slice(rest)),
      );
    default:
      return programGivenInline(name, args);
  }
}

/** ssh `-o` options whose value is a command line: run locally (Proxy, Local, KnownHosts) or remotely. */
const SSH_COMMAND_OPTIONS =
  /^\s*"?(proxycommand|localcommand|knownhostscommand|remotecommand)"?\s*(=|\s)\s*(.*)$/is;

/** The command lines of `-o Key=value` options among ssh's leading options (`-oKey=v`, `-vo Key v` too). */
function sshOptionCommands(options: readonly ArgWord[]): ArgWord[] {
  const commands: ArgWord[] = [];
  for (let i = 0; i < options.length; i++) {
    const cluster = /^-[46AaCfGgKkMNnqsTtVvXxYy]*o(.*)$/s.exec(options[i]!.value);
    if (!cluster) continue;
    const word = cluster[1] !== '' ? { ...options[i]!, value: cluster[1]! } : options[++i];
    // An option known only at run time could be any of them: its whole text is judged as a command line.
    if (word && !isStaticValue(word.value)) {
      commands.push(word);
      continue;
    }
    const command = word && SSH_COMMAND_OPTIONS.exec(word.value)?.[3];
    if (word && command !== undefined && command.toLowerCase() !== 'none')
      commands.push({ ...word, value: command });
  }
  return commands;
}

/** gdb's options that run commands: `-ex`, `-iex`, `-x`, `-ix` and any abbreviation of their long names. */
function gdbCommandOption(text: string): boolean {
  const [flag = text] = splitOnce(text.replace(/^--/, '-'), '=');
  if (['-ex', '-iex', '-x', '-ix'].includes(flag)) return true;
  const long = flag.slice(1);
  return (
    long.length >= 2 &&
    ['eval-command', 'init-eval-command', 'command', 'init-command'].some((full) => full.startsWith(long))
  );
}

/**
 * `npx [options] pkg args…` / `npm exec -- pkg args…`: `-c 'text'` / `--call` runs shell text; otherwise the
 * package's binary runs with the rest, read as a command when no option could have taken its place.
 */
function packageRunner(name: string, args: ArgWord[], from: number): Unwrapped {
  for (let i = from; i < args.length; i++) {
    const text = args[i]!.value;
    if (text === '--') return runs(args.slice(i + 1));
    if (/^(-c|--call)(=|$)/.test(text)) {
      const [, attached] = splitOnce(text, '=');
      const body = attached !== undefined ? { ...args[i]!, value: attached } : args[i + 1];
      return body ? { kind: 'script', body } : { kind: 'unknown', reason: `${name} -c without its text` };
    }
    if (!text.startsWith('-')) return runs(args.slice(i));
    if (!/^(-y|--yes|--no|-q|--quiet|--silent|--no-install|--prefer-offline|--ignore-existing)$/.test(text))
      return { kind: 'unknown', reason: `${name}: option ${text} is not known` };
  }
  return { kind: 'none' };
}

const AWKS = new Set(['awk', 'gawk', 'mawk', 'nawk', 'original-awk']);
const VIMS = new Set(['vi', 'vim', 'nvim', 'view', 'ex', 'gvim', 'rvim', 'rview', 'vimdiff', 'evim']);
/**
 * What an awk program needs to run a command or write a file — `system()`, `getline`, a pipe to or from a
 * command (`print | "sh"`, `|&`), a redirect of `print`/`printf`, gawk's `@load` / `@include` — looked for
 * once string and regex literals are taken out, so `NR > 1`, `/a|b/` and `OFS = "|"` stay plain programs.
 */
function awkHasEffects(program: string): boolean {
  const bare = program
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
    // A regex literal: a slash where an operand starts (start, `(`, `,`, `!`, `~`, `&&`, `||`, `{`, `;`).
    .replace(/(^|[(,!~{;&|]\s*|\n\s*)\/(?:[^/\\\n]|\\.)*\//g, '$1//');
  return /\bsystem\s*\(|\bgetline\b|(?<!\|)\|(?!\|)|\bprintf?\b[^;}\n]*>|@\s*(load|include|namespace)\b/.test(
    bare,
  );
}

/** gawk's long options that take a value, so the word after them is not the program. */
const AWK_VALUE_OPTIONS = ['--field-separator', '--assign', '--include', '--dump-variables', '--profile'];
/** Every gawk long option that takes no value (any other, or an abbreviation of one, fails closed). */
const AWK_FLAG_OPTIONS = [
  '--posix',
  '--traditional',
  '--compat',
  '--lint',
  '--sandbox',
  '--characters-as-bytes',
  '--use-lc-numeric',
  '--re-interval',
  '--bignum',
  '--csv',
  '--optimize',
  '--no-optimize',
  '--copyright',
  '--version',
  '--help',
  '--gen-pot',
  '--non-decimal-data',
  '--pretty-print',
];
/** tar options whose value is a command tar hands to a shell. */
const TAR_COMMAND_OPTIONS = [
  '--checkpoint-action',
  '--to-command',
  '--use-compress-program',
  '--rsh-command',
  '--rmt-command',
  '--info-script',
  '--new-volume-script',
];

/**
 * Programs that take a program or commands of their own as an argument. Command lines they hand to a shell
 * (tar's `--to-command` / `--checkpoint-action=exec=`, rsync's `-e`, zip's `-TT`, scp's `-S` and `-o
 * ProxyCommand`) are read as shell. Programs in a language this reader does not judge (awk's program text,
 * vim's ex commands — `:!` runs a shell —, gdb and lldb commands, `deno eval`, a database client's shell
 * escapes) are `unknown`, so a person reviews them, unless they certainly run nothing: an awk program that
 * neither calls `system()`, pipes, reads with `getline` nor redirects.
 */
function programGivenInline(name: string, args: ArgWord[]): Unwrapped {
  if (AWKS.has(name)) return awkProgram(name, args);
  if (name === 'tar' || name === 'bsdtar' || name === 'gtar') return tarCommands(args);
  if (VIMS.has(name)) {
    // `-c CMD`, `-cCMD`, `--cmd CMD`, `+CMD`; `+42` and a `+/pattern` search run nothing (unless `|` chains a
    // second command), and `-s` / `-S` read keystrokes or commands from a file, as a script file would.
    const inline = args.some(
      (word) =>
        !isStaticValue(word.value) ||
        /^-c/.test(word.value) ||
        word.value === '--cmd' ||
        (/^\+./.test(word.value) && !/^\+(\d+|[/?][^|]*)$/.test(word.value)),
    );
    return inline ? { kind: 'unknown', reason: `${name} runs ex commands given inline` } : { kind: 'none' };
  }
  if (name === 'gdb' && args.some((word) => gdbCommandOption(word.value)))
    return { kind: 'unknown', reason: 'gdb runs debugger commands given inline or from a file' };
  if (name === 'lldb' && args.some((word) => /^(-[oOsSkK]|--(one-line|source|batch))/.test(word.value)))
    return { kind: 'unknown', reason: 'lldb runs debugger commands given inline or from a file' };
  if (name === 'deno' && args.find((word) => !word.value.startsWith('-'))?.value === 'eval')
    return { kind: 'unknown', reason: 'deno eval runs a program given inline' };
  // Database clients run shell commands from their own escapes: psql and mysql `\!` (mysql also `system`),
  // sqlite3 `.shell` / `.system`.
  if (
    ['psql', 'mysql', 'mariadb', 'sqlite3'].includes(name) &&
    args.some(
      (word) =>
        !isStaticValue(word.value) ||
        /\\!|\\[og]\s*\||(^|[;\n])\s*(\.sh[a-z]*|\.sy[a-z]*|system)\s|(^|[;\n])\s*\.(once|output|o[a-z]*)\s+("|')?\|/i.test(
          word.value,
        ),
    )
  )
    return { kind: 'unknown', reason: `${name} is given a shell escape` };
  // rsync's remote shell and zip's test command are command lines it runs.
  const commandOption = COMMAND_OPTIONS[name];
  if (commandOption) {
    // scp and sftp take ssh's `-o ProxyCommand=…` too.
    const viaSsh = name === 'scp' || name === 'sftp' ? sshOptionCommands(args) : [];
    const own = commandOptionBody(name, args, commandOption);
    if (own.kind === 'unknown' || own.kind === 'command' || own.kind === 'find') return own;
    const bodies = own.kind === 'script' ? [own.body] : own.kind === 'scripts' ? own.bodies : [];
    return commandLines([...viaSsh, ...bodies]);
  }
  return { kind: 'none' };
}

const COMMAND_OPTIONS: Record<string, { short: string[]; long: string[] }> = {
  rsync: { short: ['-e'], long: ['--rsh', '--rsync-path'] },
  zip: { short: ['-TT'], long: ['--unzip-command'] },
  scp: { short: ['-S'], long: [] },
  sftp: { short: ['-S'], long: [] },
};

function commandOptionBody(
  name: string,
  args: ArgWord[],
  options: { short: string[]; long: string[] },
): Unwrapped {
  const bodies: ArgWord[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const [flag = word.value, value] = splitOnce(word.value, '=');
    const long = flag.length > 4 ? options.long.find((full) => full.startsWith(flag)) : undefined;
    // `-e CMD`, `-eCMD`, or the letter at the end of a cluster (`rsync -avze CMD`, `-avz'eCMD'` too).
    const short = options.short
      .map((letters) => new RegExp(`^-[A-Za-z]*?${letters.slice(1)}(.*)$`, 's').exec(word.value))
      .find((match) => match !== null);
    if (!long && !short) continue;
    const attached = long ? value : short![1] !== '' ? short![1] : undefined;
    const given = attached ?? args[++i]?.value;
    if (given === undefined) return { kind: 'unknown', reason: `${name} ${flag} without its command` };
    bodies.push({ ...word, value: given });
  }
  return commandLines(bodies);
}

function awkProgram(name: string, args: ArgWord[]): Unwrapped {
  const effects = {
    kind: 'unknown',
    reason: `${name} runs a program that can run commands or write files`,
  } as const;
  const risky = (word: ArgWord | undefined) =>
    word !== undefined &&
    (word.fromCommand === true || !isStaticValue(word.value) || awkHasEffects(word.value));
  let fromFile = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const text = word.value;
    if (text === '--') {
      const program = fromFile ? undefined : args[i + 1];
      return risky(program) ? effects : { kind: 'none' };
    }
    // `$OPTS` or `-$X`: an option (or the program) known only at run time.
    if (!isStaticValue(text) && (text.startsWith('-') || hasUnknownPrefix(text))) return effects;
    if (text.startsWith('--') || text.startsWith('-W')) {
      // gawk long options, abbreviated as far as they stay unambiguous, or spelled `-W name[=value]`.
      const spelled = text.startsWith('-W') ? `--${text.slice(2) || (args[++i]?.value ?? '')}` : text;
      const [flag = spelled, value] = splitOnce(spelled, '=');
      const is = (full: string) => flag.length > 2 && full.startsWith(flag);
      if (is('--source')) {
        if (risky(value !== undefined ? { ...word, value } : args[++i])) return effects;
      } else if (is('--load') || is('--exec')) {
        return { kind: 'unknown', reason: `${name} loads an extension or a program file it runs` };
      } else if (is('--file')) {
        fromFile = true;
        if (value === undefined) i++;
      } else if (AWK_VALUE_OPTIONS.some(is)) {
        if (value === undefined && !['--dump-variables', '--profile'].some(is)) i++;
      } else if (!AWK_FLAG_OPTIONS.some(is)) {
        return { kind: 'unknown', reason: `${name}: option ${flag} is not known` };
      }
      continue;
    }
    if (/^-[A-Za-z]/.test(text)) {
      // A cluster of short options (`-bF:`): a value-taking letter takes the rest of the word or the next.
      for (let at = 1; at < text.length; at++) {
        const letter = text[at]!;
        const rest = text.slice(at + 1);
        const valueWord = () => (rest !== '' ? { ...word, value: rest } : args[++i]);
        if (letter === 'e') {
          if (risky(valueWord())) return effects;
          break;
        }
        if (letter === 'l' || letter === 'E') {
          return { kind: 'unknown', reason: `${name} loads an extension or a program file it runs` };
        }
        if (letter === 'f') {
          fromFile = true;
          valueWord();
          break;
        }
        if ('Fvi'.includes(letter)) {
          valueWord();
          break;
        }
      }
      continue;
    }
    if (text === '-') continue;
    // The first operand is the program, unless a file gave it; then operands are input files.
    return !fromFile && risky(word) ? effects : { kind: 'none' };
  }
  return { kind: 'none' };
}

/** Whether a word starts with something known only at run time (`$X-c`). */
function hasUnknownPrefix(text: string): boolean {
  return text.startsWith(UNKNOWN);
}

function tarCommands(args: ArgWord[]): Unwrapped {
  const bodies: ArgWord[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const [flag = word.value, value] = splitOnce(word.value, '=');
    // tar takes any unambiguous abbreviation of a long option (`--to-comm`, `--checkpoint-act`).
    const option = flag.length > 5 ? TAR_COMMAND_OPTIONS.find((full) => full.startsWith(flag)) : undefined;
    if (option) {
      const given = value ?? args[++i]?.value;
      if (given === undefined) return { kind: 'unknown', reason: `tar ${flag} without its command` };
      // `--checkpoint-action=exec=CMD` (or `sleep=`, `echo`, …: only `exec` runs a command).
      if (option === '--checkpoint-action' && isStaticValue(given) && !/^exec=/.test(given)) continue;
      bodies.push({ ...word, value: given.replace(/^exec=/, '') });
    } else if (/^-[A-Za-z]*[IF]/.test(word.value) || (i === 0 && /^[A-Za-z]*[IF]/.test(word.value))) {
      // `-I prog`, `-F script`, or either inside a cluster of short options (`tar -xvI zstd`, `tar xIf …`).
      return { kind: 'unknown', reason: 'tar runs a compression program or volume script' };
    }
  }
  return commandLines(bodies);
}

// --- Interpreters ------------------------------------------------------------------------------------------

/** Where an interpreter takes its program from, as far as its arguments say. */
export type ScriptSource =
  /** From stdin: no script operand, `-`, `/dev/stdin`, or `-s`. */
  | { kind: 'stdin' }
  /** From this operand (a file, or a stream when the word is a process substitution). */
  | { kind: 'operand'; word: ArgWord }
  /** From an option's text (`python -c`, `node -e`, `perl -e`): the text is the program. */
  | { kind: 'inline'; word: ArgWord }
  /** A module or a subcommand, not a script (`python -m http.server`). */
  | { kind: 'other' };

interface InterpreterSyntax {
  /** Options whose value is the program text. */
  inline: readonly string[];
  /** Options that take a value that is not the program. */
  value: readonly string[];
  /** Options after which no script is read (`-m module`). */
  other: readonly string[];
}

const INTERPRETER_SYNTAX: Array<[RegExp, InterpreterSyntax]> = [
  [
    /^(python|pypy)[\d.]*(m|d|-dbg)?(\.exe)?$|^ipython[\d.]*$|^py(\.exe)?$/,
    { inline: ['-c'], value: ['-W', '-X', '-Q'], other: ['-m'] },
  ],
  [
    /^(node|nodejs)[\d.]*(\.exe)?$|^(bun|tsx|ts-node|ts-node-esm)$/,
    {
      inline: ['-e', '-p', '--eval', '--print'],
      value: ['-r', '--require', '--import', '--loader', '-C', '--conditions', '--input-type'],
      other: [],
    },
  ],
  [/^perl[\d.]*(\.exe)?$/, { inline: ['-e', '-E'], value: ['-I', '-M', '-m', '-x'], other: [] }],
  [/^ruby[\d.]*(\.exe)?$/, { inline: ['-e'], value: ['-I', '-r', '-C', '-E'], other: [] }],
  [
    /^php[\d.]*(-cli)?(\.exe)?$/,
    { inline: ['-r', '-R', '-B', '-E'], value: ['-c', '-d', '-z'], other: ['-S'] },
  ],
  [/^lua[\d.]*$|^luajit$/, { inline: ['-e'], value: ['-l'], other: [] }],
  [/^(rscript|r)$/, { inline: ['-e'], value: [], other: [] }],
  [/^julia$/, { inline: ['-e', '--eval', '-E', '--print'], value: [], other: [] }],
  [/^(osascript|jxa)$/, { inline: ['-e'], value: ['-l'], other: [] }],
  [/^expect$/, { inline: ['-c'], value: [], other: [] }],
  [/^(tclsh|wish)[\d.]*$/, { inline: [], value: [], other: [] }],
];

/** Python modules whose arguments are Python code (`python -m timeit 'os.system(…)'`, `-m pdb -c …`). */
const PYTHON_CODE_MODULES = new Set(['timeit', 'pdb', 'code', 'trace', 'cprofile', 'profile']);
/** A perl `-M` / `-m` value that is a module name (with import list), not code smuggled after a `;`. */
const PERL_MODULE = /^[\w:]+(=[\w:,.-]*)?$/;

/**
 * PowerShell's parameters are case-insensitive and may be shortened to any unambiguous prefix: `-c`, `-Comm`,
 * `-Command`, `-ec`, `-EncodedCommand` all pass a program as text. Windows PowerShell also takes a bare
 * operand as a command.
 */
const POWERSHELL_INLINE =
  /^([-\u2013\u2014\u2015]{1,2}|\/)(c|co|com|comm|comma|comman|command|commandw[a-z]*|cwa|e|ec|en|enc|enco|encod|encode|encoded|encodedc[a-z]*)(:.*)?$/i;

/** Code passed where a module name goes: `perl '-Mstrict;system"id"'`, `python3 -m timeit 'code'`. */
function smuggledCode(name: string, args: readonly ArgWord[]): ArgWord | undefined {
  for (let i = 0; i < args.length; i++) {
    const text = args[i]!.value;
    if (text === '--' || !text.startsWith('-')) return undefined;
    const isPerl = /^perl/.test(name);
    if (isPerl && /^-[Mm]/.test(text)) {
      const value = text.length > 2 ? text.slice(2) : args[i + 1]?.value;
      if (value !== undefined && !PERL_MODULE.test(value.replace(/^-/, ''))) return args[i];
    }
    if (/^(python|pypy|py$)/.test(name) && /^-m/.test(text)) {
      const module = text.length > 2 ? text.slice(2) : args[i + 1]?.value;
      if (module !== undefined && PYTHON_CODE_MODULES.has(module.toLowerCase())) return args[i];
      return undefined;
    }
  }
  return undefined;
}

/** A word an interpreter certainly runs as its script: a file with a script's extension. */
const SCRIPT_FILE =
  /\.(py|pyw|pyc|js|mjs|cjs|ts|mts|cts|jsx|tsx|pl|pm|rb|php|lua|r|jl|exp|ps1|applescript|scpt)$/i;

const STDIN_PATHS = new Set(['-', '/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);

/**
 * Where `program` (a basename) would read its script from, given its arguments. Shells know `-c` (inline) and
 * `-s` (stdin); a few interpreters' inline and module options are known; for any other program the first
 * operand is the script. Used to judge programs a rule names as interpreters, and to find a program given inline.
 */
export function scriptSource(program: string, args: readonly ArgWord[]): ScriptSource {
  const name = program.toLowerCase();
  if (SHELLS.has(name)) {
    const body = shellBody([...args]);
    if (body?.kind === 'script') return { kind: 'inline', word: body.body };
    for (let i = 0; i < args.length; i++) {
      const text = args[i]!.value;
      if (text === '--' || text === '-') {
        const operand = text === '--' ? args[i + 1] : undefined;
        return operand && !STDIN_PATHS.has(operand.value)
          ? { kind: 'operand', word: operand }
          : { kind: 'stdin' };
      }
      if (text.startsWith('--')) {
        if (['--rcfile', '--init-file'].includes(text)) i++;
        continue;
      }
      if (/^[-+]./.test(text) && !args[i]!.stream) {
        if (text.startsWith('-') && text.includes('s')) return { kind: 'stdin' };
        if (/[oO]/.test(text)) i++;
        continue;
      }
      return STDIN_PATHS.has(text) ? { kind: 'stdin' } : { kind: 'operand', word: args[i]! };
    }
    return { kind: 'stdin' };
  }
  if (/^(pwsh|powershell)(-preview)?(\.exe)?$/.test(name)) {
    const at = args.findIndex((word) => POWERSHELL_INLINE.test(word.value));
    if (at >= 0) return { kind: 'inline', word: args[at + 1] ?? args[at]! };
    if (name.startsWith('powershell')) {
      const operand = args.find((word) => !word.value.startsWith('-'));
      if (operand) return { kind: 'inline', word: operand };
    }
  }
  const known = INTERPRETER_SYNTAX.find(([pattern]) => pattern.test(name))?.[1];
  const syntax = known ?? { inline: [], value: [], other: [] };
  const smuggled = smuggledCode(name, args);
  if (smuggled) return { kind: 'inline', word: smuggled };
  // For an interpreter whose inline options are known, an option this table does not list may take a value
  // (`node --env-file .env -e …`), so a word that is not clearly a script file does not end the options: the
  // search for an inline program goes on to the first script file (`app.py`, `index.mjs`) or `--`.
  let firstOperand: ArgWord | undefined;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    const text = word.value;
    if (text === '--') {
      const operand = firstOperand ?? args[i + 1];
      return operand && !STDIN_PATHS.has(operand.value)
        ? { kind: 'operand', word: operand }
        : { kind: 'stdin' };
    }
    // `-${X}c`, `$FLAGS`: an option known only at run time could be the inline one.
    if (known && !isStaticValue(text)) return { kind: 'inline', word };
    if (STDIN_PATHS.has(text) || !text.startsWith('-') || word.stream) {
      if (!known || STDIN_PATHS.has(text) || word.stream || SCRIPT_FILE.test(text))
        return STDIN_PATHS.has(text) && !firstOperand
          ? { kind: 'stdin' }
          : { kind: 'operand', word: firstOperand ?? word };
      firstOperand ??= word;
      continue;
    }
    const [flag = text] = splitOnce(text, '=');
    const attachedShort = /^-[a-zA-Z]/.test(text) && !text.startsWith('--') ? text.slice(0, 2) : flag;
    if (syntax.inline.includes(flag) || syntax.inline.includes(attachedShort)) {
      const [, attachedLong] = splitOnce(text, '=');
      const inline =
        text.startsWith('--') && attachedLong !== undefined
          ? { ...word, value: attachedLong }
          : text.length > attachedShort.length && !text.startsWith('--')
            ? { ...word, value: text.slice(2) }
            : args[i + 1];
      return inline ? { kind: 'inline', word: inline } : { kind: 'other' };
    }
    if (syntax.other.includes(flag) || syntax.other.includes(attachedShort)) return { kind: 'other' };
    // A cluster of short options (`perl -ne`, `node -pe`, `python3 -Bc`): read letter by letter, as the
    // interpreter does, until one takes a value; an inline option's value is the rest of the word or the next.
    if (/^-[a-zA-Z]{2,}$/.test(text)) {
      for (let at = 1; at < text.length; at++) {
        const letter = `-${text[at]}`;
        if (syntax.inline.includes(letter)) {
          const rest = text.slice(at + 1);
          const inline = rest !== '' ? { ...word, value: rest } : args[i + 1];
          return inline ? { kind: 'inline', word: inline } : { kind: 'other' };
        }
        if (syntax.other.includes(letter)) return { kind: 'other' };
        if (syntax.value.includes(letter)) break;
      }
    }
    if (
      (syntax.value.includes(flag) && !text.includes('=')) ||
      (syntax.value.includes(attachedShort) && text === attachedShort)
    )
      i++;
  }
  return firstOperand ? { kind: 'operand', word: firstOperand } : { kind: 'stdin' };
}
