import { finding, type FindingDraft } from '../policy.js';
import type { CompiledMatcher, CompiledRedlineRules } from '../redline-rules.js';
import type { ArgWord, ParsedCommand, ParsedCommandSpec } from './parse-command-spec.js';
import {
  displayValue,
  hasUnknown,
  normalizePathValue,
  pathValueMatchesGlob,
  wordValueMatchesGlob,
} from './path-pattern.js';

/** Whether a condition holds: certainly, only for some value of an expansion not known before run time, or not. */
type Match = 'yes' | 'maybe' | 'no';

function certainty(value: string): Match {
  return hasUnknown(value) ? 'maybe' : 'yes';
}

/** The best of several matches: one certain match settles it. */
function any(matches: Iterable<Match>): Match {
  let best: Match = 'no';
  for (const match of matches) {
    if (match === 'yes') return 'yes';
    if (match === 'maybe') best = 'maybe';
  }
  return best;
}

/** Arguments after the program, up to `--` for option tests. */
function args(command: ParsedCommand): ArgWord[] {
  return command.argv.slice(1);
}

/** Every path a command names: arguments (and their `=value` parts), redirect targets, assignment values. */
export function commandPaths(command: ParsedCommand): string[] {
  const raw: string[] = [];
  // `curl -d @/etc/shadow`, `-F 'f=@~/.ssh/id_rsa;type=text/plain'`: `@path` hands the file's content over
  // (curl, httpie, wget); curl's `;type=` / `;filename=` after it is not part of the path.
  const withFile = (value: string) =>
    value.startsWith('@') ? [value, value.slice(1), value.slice(1).split(';')[0]!] : [value];
  for (const word of args(command)) {
    const value = word.value;
    const equals = value.indexOf('=');
    // `--file=/etc/x`, `of=/dev/sda`, `KEY=~/.ssh/id`: the value names a path as much as a bare word does.
    if (equals >= 0) raw.push(...withFile(value.slice(equals + 1)));
    if (!value.startsWith('-')) raw.push(...withFile(value));
    // A short option with its value attached: `-d@/etc/shadow`, `-T~/.netrc`, `-o/etc/x`.
    else if (/^-[A-Za-z][@~./]/.test(value)) raw.push(...withFile(value.slice(2)));
  }
  for (const redirect of command.redirects) raw.push(redirect.target.value);
  for (const assign of command.assigns) raw.push(assign.value.value);
  return [
    ...new Set(
      raw
        .filter((value) => value !== '' && !value.startsWith('-'))
        .map((value) => normalizePathValue(value, command.cwd)),
    ),
  ];
}

function matchFlag(word: string, flag: string): boolean {
  if (flag.startsWith('--')) return word === flag || word.startsWith(`${flag}=`);
  if (flag.length === 2) return /^-[A-Za-z0-9][A-Za-z0-9._]*$/.test(word) && word.includes(flag[1]!);
  return word === flag;
}

function flagsMatch(command: ParsedCommand, flags: readonly string[]): Match {
  const found: Match[] = [];
  for (const word of args(command)) {
    if (word.value === '--') break;
    if (hasUnknown(word.value)) {
      // `$FLAGS`, `-$X`: could be any of the flags.
      if (word.value.startsWith('-') || word.value.startsWith('\uE002')) found.push('maybe');
      continue;
    }
    if (flags.some((flag) => matchFlag(word.value, flag))) return 'yes';
  }
  if (command.argsFromStdin) found.push('maybe');
  return any(found);
}

function subcommandMatch(
  command: ParsedCommand,
  subcommands: readonly string[],
  valueFlags: readonly string[],
): Match {
  const words = args(command);
  for (let i = 0; i < words.length; i++) {
    const value = words[i]!.value;
    if (hasUnknown(value) && (value.startsWith('-') || value.startsWith('\uE002')))
      return any(subcommands.map((glob) => (wordValueMatchesGlob(value, glob) ? 'maybe' : 'no')));
    if (value.startsWith('-')) {
      if (valueFlags.includes(value)) i++;
      continue;
    }
    return any(subcommands.map((glob) => (wordValueMatchesGlob(value, glob) ? certainty(value) : 'no')));
  }
  return command.argsFromStdin ? 'maybe' : 'no';
}

/** Cyrillic and Greek letters that look like Latin ones: `ѕudo` is judged as `sudo`. */
const CONFUSABLES: Record<string, string> = {
  а: 'a',
  в: 'b',
  с: 'c',
  ԁ: 'd',
  е: 'e',
  һ: 'h',
  і: 'i',
  ј: 'j',
  к: 'k',
  ӏ: 'l',
  м: 'm',
  н: 'h',
  о: 'o',
  р: 'p',
  ԛ: 'q',
  ѕ: 's',
  т: 't',
  у: 'y',
  х: 'x',
  ԝ: 'w',
  α: 'a',
  β: 'b',
  ε: 'e',
  η: 'n',
  ι: 'i',
  κ: 'k',
  ν: 'v',
  ο: 'o',
  ρ: 'p',
  τ: 't',
  υ: 'u',
  χ: 'x',
};

/** The program name as it would be read by eye: compatibility forms folded (NFKC), look-alike letters mapped. */
function skeleton(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(name)) return name.toLowerCase();
  return [...name.normalize('NFKC').toLowerCase()].map((char) => CONFUSABLES[char] ?? char).join('');
}

/** A rule's program globs split into plain names (a set lookup) and real globs (an automaton each). */
interface ProgramGlobs {
  names: Set<string>;
  wildcards: string[];
}

const programGlobs = new WeakMap<readonly string[], ProgramGlobs>();

function programGlobsOf(globs: readonly string[]): ProgramGlobs {
  let compiled = programGlobs.get(globs);
  if (!compiled) {
    compiled = {
      names: new Set(globs.filter((g) => !/[*?]/.test(g)).map((g) => g.toLowerCase())),
      wildcards: globs.filter((g) => /[*?]/.test(g)),
    };
    programGlobs.set(globs, compiled);
  }
  return compiled;
}

function programMatch(command: ParsedCommand, globs: readonly string[]): Match {
  if (command.program === '') return 'no';
  const { names, wildcards } = programGlobsOf(globs);
  const candidates =
    command.program === skeleton(command.program)
      ? [command.program]
      : [command.program, skeleton(command.program)];
  return any(
    candidates.flatMap((name) => {
      if (!hasUnknown(name) && names.has(name.toLowerCase())) return ['yes' as Match];
      const globbed = hasUnknown(name) ? [...names, ...wildcards] : wildcards;
      return globbed.map((glob): Match => (wordValueMatchesGlob(name, glob) ? certainty(name) : 'no'));
    }),
  );
}

function argsAnyMatch(command: ParsedCommand, globs: readonly string[]): Match {
  const found = args(command).map((word) =>
    any(globs.map((glob) => (wordValueMatchesGlob(word.value, glob) ? certainty(word.value) : 'no'))),
  );
  if (command.argsFromStdin) found.push('maybe');
  return any(found);
}

function argsRegexMatch(command: ParsedCommand, rule: CompiledMatcher): Match {
  const regexes = rule.compiledArgsMatch ?? [];
  const values = [
    ...args(command).map((word) => word.value),
    ...command.assigns.map((assign) => assign.value.value),
  ];
  const found = values.map((value): Match => {
    if (regexes.some((regex) => regex.test(displayValue(value)))) return certainty(value);
    return hasUnknown(value) ? 'maybe' : 'no';
  });
  if (command.argsFromStdin) found.push('maybe');
  return any(found);
}

function pathsMatch(paths: readonly string[], globs: readonly string[], fromStdin: boolean): Match {
  const found = paths.map((path) =>
    any(globs.map((glob) => (pathValueMatchesGlob(path, glob) ? certainty(path) : 'no'))),
  );
  if (fromStdin) found.push('maybe');
  return any(found);
}

/** Whether `rule` matches `command`: every condition it gives must hold. */
export function ruleMatches(rule: CompiledMatcher, command: ParsedCommand): Match {
  const conditions: Array<() => Match> = [];
  if (rule.programs) conditions.push(() => programMatch(command, rule.programs!));
  if (rule.stdin_into)
    conditions.push(() => (command.scriptFrom ? programMatch(command, rule.stdin_into!) : 'no'));
  if (rule.traits_any)
    conditions.push(() => (rule.traits_any!.some((trait) => command.traits.includes(trait)) ? 'yes' : 'no'));
  if (rule.subcommands)
    conditions.push(() => subcommandMatch(command, rule.subcommands!, rule.value_flags ?? []));
  if (rule.flags_any) conditions.push(() => flagsMatch(command, rule.flags_any!));
  if (rule.args_any) conditions.push(() => argsAnyMatch(command, rule.args_any!));
  if (rule.args_match) conditions.push(() => argsRegexMatch(command, rule));
  if (rule.writes_any) {
    const targets = command.redirects
      .filter((r) => r.mode === 'write')
      .map((r) => normalizePathValue(r.target.value, command.cwd));
    conditions.push(() => pathsMatch(targets, rule.writes_any!, false));
  }
  if (rule.paths_any)
    conditions.push(() => pathsMatch(commandPaths(command), rule.paths_any!, command.argsFromStdin));
  let result: Match = 'yes';
  let certain = false;
  for (const condition of conditions) {
    const match = condition();
    if (match === 'no') return 'no';
    if (match === 'maybe') result = 'maybe';
    else certain = true;
  }
  // A rule none of whose conditions is certain says nothing: every `$X` could be anything.
  return result === 'maybe' && !certain ? 'no' : result;
}

function describeCommand(command: ParsedCommand): string {
  const words = command.argv.map((word) => displayValue(word.value));
  const redirects = command.redirects.map((r) => `${r.op} ${displayValue(r.target.value)}`);
  const text = [...words, ...redirects].join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function evidenceOf(
  parsed: ParsedCommandSpec,
  command: ParsedCommand,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    command_line:
      parsed.commandLine.length > 500 ? `${parsed.commandLine.slice(0, 500)}…` : parsed.commandLine,
    command: describeCommand(command),
    program: command.program,
    ...(command.via.length > 0 ? { via: command.via } : {}),
    reading: command.reading,
    ...extra,
  };
}

/**
 * Judges the commands of a parsed `command_spec` against the redline rules and the agent's declared
 * capabilities. Findings, all kind REDLINE:
 * - `REDLINE_FORBIDDEN_COMMAND` (the rule's severity, HIGH by default) — one per forbidden rule matched;
 * - `REDLINE_FORBIDDEN_PATH` (HIGH) — paths named by the commands that match `forbidden_paths`;
 * - `REDLINE_UNDECLARED_<CAPABILITY>` (HIGH) — a capability rule matched and the capability is not declared;
 * - `REDLINE_DYNAMIC_COMMAND`, `REDLINE_UNREADABLE_COMMAND`, `REDLINE_UNKNOWN_SPEC_SHAPE` (MEDIUM) — what
 *   could not be judged: the parse's problems, and forbidden rules that match only for some run-time value.
 * Pure; linear in the commands' size times the rules' size.
 */
export function judgeCommands(
  parsed: ParsedCommandSpec,
  rules: CompiledRedlineRules,
  capabilities: readonly string[],
): FindingDraft[] {
  const declared = new Set(capabilities.map((c) => c.toLowerCase()));
  const findings: FindingDraft[] = [];
  const forbiddenSeen = new Set<number>();
  const dynamicSeen = new Set<string>();
  for (const command of parsed.commands) {
    rules.forbidden.forEach((rule, index) => {
      if (forbiddenSeen.has(index)) return;
      const match = ruleMatches(rule, command);
      if (match === 'yes') {
        forbiddenSeen.add(index);
        findings.push(
          finding(
            'REDLINE_FORBIDDEN_COMMAND',
            'REDLINE',
            rule.severity,
            `forbidden command: ${rule.description}`,
            [evidenceOf(parsed, command, { rule: rule.description })],
          ),
        );
      } else if (match === 'maybe' && !dynamicSeen.has(rule.description)) {
        dynamicSeen.add(rule.description);
        findings.push(
          finding(
            'REDLINE_DYNAMIC_COMMAND',
            'REDLINE',
            'MEDIUM',
            `could be a forbidden command (${rule.description}) depending on values known only at run time`,
            [evidenceOf(parsed, command, { rule: rule.description })],
          ),
        );
      }
    });
  }
  // A certain match elsewhere makes the "could be" of the same rule redundant.
  const forbiddenDescriptions = new Set(
    [...forbiddenSeen].map((index) => rules.forbidden[index]!.description),
  );
  const kept = findings.filter(
    (f) =>
      f.code !== 'REDLINE_DYNAMIC_COMMAND' ||
      !forbiddenDescriptions.has(String((f.evidence[0] as Record<string, unknown>).rule)),
  );

  const forbiddenPaths = new Set<string>();
  const pathCandidates = [
    ...parsed.commands.flatMap(commandPaths),
    ...parsed.env.map((entry) => normalizePathValue(entry.value.value)),
    ...(parsed.cwd !== null ? [parsed.cwd] : []),
  ];
  for (const path of new Set(pathCandidates)) {
    if (hasUnknown(path)) continue;
    if (rules.forbiddenPaths.some((glob) => pathValueMatchesGlob(path, glob)))
      forbiddenPaths.add(displayValue(path));
  }
  if (forbiddenPaths.size > 0) {
    kept.push(
      finding(
        'REDLINE_FORBIDDEN_PATH',
        'REDLINE',
        'HIGH',
        `command names forbidden paths: ${[...forbiddenPaths].join(', ')}`,
        [{ paths: [...forbiddenPaths], command_line: parsed.commandLine.slice(0, 500) }],
      ),
    );
  }

  const capabilityFound = new Set<string>();
  for (const command of parsed.commands) {
    for (const rule of rules.capabilities) {
      const capability = rule.capability.toLowerCase();
      if (declared.has(capability) || capabilityFound.has(capability)) continue;
      if (ruleMatches(rule, command) !== 'yes') continue;
      capabilityFound.add(capability);
      kept.push(
        finding(
          `REDLINE_UNDECLARED_${capability.toUpperCase()}`,
          'REDLINE',
          'HIGH',
          `${rule.description} needs the "${capability}" capability, which the agent does not declare`,
          [evidenceOf(parsed, command, { rule: rule.description })],
        ),
      );
    }
  }

  for (const problem of parsed.problems) {
    kept.push(
      finding(problem.code, 'REDLINE', 'MEDIUM', problem.reason, [
        {
          command_line: parsed.commandLine.slice(0, 500),
          ...(problem.source !== undefined ? { source: problem.source } : {}),
        },
      ]),
    );
  }
  return kept;
}
