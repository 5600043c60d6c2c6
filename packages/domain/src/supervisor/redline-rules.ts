import { RE2JS } from 're2js';
import { z } from 'zod';

/**
 * The redline rule language: rules over parsed commands, not regexes over a command line. A rule matches one
 * command when every condition it gives holds; a condition given as a list holds when any item matches. See
 * `docs/supervisor.md`, "Redline rule language".
 */

/** Traits the command reader can attach to a command (see `ParsedCommand.traits`). */
export const COMMAND_TRAITS = ['fork_bomb', 'kill_every_process'] as const;

const glob = z.string().min(1, 'must not be empty');
const globs = z.array(glob).min(1, 'must list at least one item');

const flag = z.string().regex(/^--?[^\s-][^\s=]*$/, 'must be an option such as -r, --recursive or -delete');

const re2 = z.string().superRefine((source, ctx) => {
  try {
    RE2JS.compile(source, RE2JS.CASE_INSENSITIVE);
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: `not a valid RE2 regular expression: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
});

const matcherShape = {
  /** Program basenames, whole-word globs (`*`, `?`), case-insensitive: `[sudo, doas]`, `[mkfs*]`. */
  programs: globs.optional(),
  /** The first operand after options (`git clone`); `value_flags` names options that consume the next word. */
  subcommands: globs.optional(),
  value_flags: z.array(flag).optional(),
  /** Options: `-r` also matches inside a short cluster (`-rf`), `--x` also `--x=v`, `-delete` matches exactly. */
  flags_any: z.array(flag).min(1, 'must list at least one item').optional(),
  /** Any argument after quote removal equals a whole-word glob, case-insensitive: `[777, 'of=/dev/sd*']`. */
  args_any: globs.optional(),
  /** Any argument matches an RE2 regular expression (case-insensitive, unanchored). Linear time, never JS RegExp. */
  args_match: z.array(re2).min(1, 'must list at least one item').optional(),
  /**
   * Any path the command names — arguments, `key=value` values, redirect targets, assignment values — after
   * normalization (`//`, `/.`, `..`, `~` and `$HOME` as `~`, joined to a known working directory) matches a
   * path glob (`**` any segments, `*` within a segment).
   */
  paths_any: globs.optional(),
  /** A redirect that writes (`>`, `>>`, `&>`, `>|`, `<>`, `>& file`) targets a path matching a path glob. */
  writes_any: globs.optional(),
  /**
   * The program is one of these (whole-word globs) and reads its script from a stream: a pipe, a process
   * substitution, a here-document it cannot be judged from, or a command's output (`bash -c "$(curl …)"`).
   */
  stdin_into: globs.optional(),
  /** The reader saw a structural trait on the command: `fork_bomb`. */
  traits_any: z.array(z.enum(COMMAND_TRAITS)).min(1, 'must list at least one item').optional(),
};

const CONDITIONS = [
  'programs',
  'subcommands',
  'flags_any',
  'args_any',
  'args_match',
  'paths_any',
  'writes_any',
  'stdin_into',
  'traits_any',
] as const;

function needsACondition(rule: Record<string, unknown>, ctx: z.RefinementCtx): void {
  if (!CONDITIONS.some((key) => rule[key] !== undefined)) {
    ctx.addIssue({
      code: 'custom',
      message: `a rule needs at least one condition: ${CONDITIONS.join(', ')}`,
    });
  }
}

const LEGACY_PATTERN =
  'regex rules over the joined command line are no longer read: write the rule with programs, flags_any, paths_any, … (docs/supervisor.md, "Redline rule language")';

export const ForbiddenCommandRuleSchema = z
  .object({
    description: z.string().min(1, 'must say what the rule forbids'),
    /** @defaultValue `HIGH` */
    severity: z.enum(['HIGH', 'CRITICAL']).default('HIGH'),
    ...matcherShape,
    /** The old format's regex: named here only to reject it with a message saying what replaced it. */
    pattern: z.never({ message: LEGACY_PATTERN }).optional(),
  })
  .strict()
  .superRefine(needsACondition)
  .transform(({ pattern: _pattern, ...rule }) => rule);
export type ForbiddenCommandRule = z.output<typeof ForbiddenCommandRuleSchema>;

export const CapabilityRuleSchema = z
  .object({
    /** The capability the agent must declare (`network`, `file_write`); the finding is `REDLINE_UNDECLARED_<CAPABILITY>`. */
    capability: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/, 'must be a lower-case name such as network or file_write'),
    description: z.string().min(1, 'must say what needs the capability'),
    ...matcherShape,
  })
  .strict()
  .superRefine(needsACondition);
export type CapabilityRule = z.output<typeof CapabilityRuleSchema>;

const SECRET_FILES = [
  '**/.env',
  '**/*secret*',
  '**/*secret*/**',
  '**/*credentials*',
  '**/*credentials*/**',
  '**/*.pem',
  '**/*.key',
  '~/.ssh/**',
  '**/.ssh/**',
];
const RAW_DISKS = [
  '/dev/sd*',
  '/dev/hd*',
  '/dev/vd*',
  '/dev/xvd*',
  '/dev/nvme*',
  '/dev/mmcblk*',
  '/dev/disk*',
  '/dev/mapper/*',
];
const ROOT_OR_HOME = ['/', '/*', '~', '~/*', '/home/*', '/Users/*'];
const INTERPRETERS = [
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
  'busybox',
  'python',
  'python*',
  'pypy*',
  'node',
  'nodejs',
  'deno',
  'bun',
  'perl',
  'perl*',
  'ruby',
  'ruby*',
  'php',
  'php?*',
  'lua',
  'lua*',
  'pwsh',
  'powershell',
  'osascript',
  'eval',
  'source',
  '.',
];

/** The shipped forbidden commands; `infra/policies/supervisor.yaml` lists the same (a test keeps them equal). */
export const DEFAULT_FORBIDDEN_COMMANDS: z.input<typeof ForbiddenCommandRuleSchema>[] = [
  {
    description: 'privilege escalation',
    programs: ['sudo', 'sudoedit', 'doas', 'pkexec', 'su', 'run0', 'runuser'],
  },
  {
    description: 'recursive delete of / or the home directory',
    programs: ['rm'],
    flags_any: ['-r', '-R', '--recursive'],
    paths_any: ROOT_OR_HOME,
  },
  {
    description: 'delete of / or the home directory with find',
    programs: ['find'],
    flags_any: ['-delete'],
    paths_any: ROOT_OR_HOME,
  },
  {
    description: 'recursive permission or owner change of /',
    programs: ['chmod', 'chown', 'chgrp'],
    flags_any: ['-R', '--recursive'],
    paths_any: ROOT_OR_HOME,
  },
  { description: 'pipe into an interpreter', stdin_into: INTERPRETERS },
  { description: 'write to a secrets file', writes_any: SECRET_FILES },
  {
    description: 'write to a secrets file',
    programs: ['tee', 'cp', 'mv', 'install', 'ln', 'touch', 'truncate', 'dd'],
    paths_any: SECRET_FILES,
  },
  {
    description: 'in-place edit of a secrets file',
    programs: ['sed', 'perl'],
    flags_any: ['-i', '--in-place'],
    paths_any: SECRET_FILES,
  },
  {
    description: 'raw disk access by a program that writes files',
    programs: ['dd', 'tee', 'cp', 'mv', 'shred', 'truncate', 'ln'],
    paths_any: RAW_DISKS,
  },
  { description: 'write to a raw disk', writes_any: RAW_DISKS },
  { description: 'format or wipe a disk', programs: ['mkfs', 'mkfs.*', 'mke2fs', 'mkswap', 'wipefs'] },
  {
    description: 'shut down or reboot the machine',
    programs: ['shutdown', 'reboot', 'halt', 'poweroff', 'kexec'],
  },
  {
    description: 'shut down or reboot the machine',
    programs: ['systemctl', 'loginctl'],
    subcommands: ['poweroff', 'reboot', 'halt', 'kexec', 'soft-reboot', 'emergency', 'rescue'],
    value_flags: ['-M', '-H', '--machine', '--host', '-t', '--type', '-p', '--property', '--root'],
  },
  {
    description: 'shut down or reboot the machine',
    programs: ['systemctl'],
    args_any: ['poweroff.target', 'reboot.target', 'halt.target', 'kexec.target', 'ctrl-alt-del.target'],
  },
  { description: 'shut down or reboot the machine', programs: ['init', 'telinit'], args_any: ['0', '6'] },
  { description: 'signal every process (pid -1)', traits_any: ['kill_every_process'] },
  { description: 'kill every process', programs: ['killall5'] },
  {
    description: 'flush or disable the firewall',
    programs: ['iptables', 'ip6tables', 'iptables-*', 'ip6tables-*'],
    flags_any: ['-F', '--flush', '-X', '--delete-chain'],
  },
  {
    description: 'flush or disable the firewall',
    programs: ['nft'],
    subcommands: ['flush', 'flush *', 'delete', 'delete *'],
  },
  {
    description: 'flush or disable the firewall',
    programs: ['ufw'],
    subcommands: ['disable', 'reset', 'default'],
  },
  { description: 'remove every cron job', programs: ['crontab'], flags_any: ['-r'] },
  {
    description: "a container with the host's root, its Docker socket or full privileges",
    programs: ['docker', 'podman', 'nerdctl'],
    args_match: [
      '^(-v=?|--volume=)?/+(\\.?/*)*:',
      '^(-v=?|--volume=)?/+(var/+)?run/*(:|/+docker\\.sock)',
      '(^|,)"?(source|src)"?=/+(\\.?/*)*(,|$)',
      '(^|,)"?(source|src)"?=/+(var/+)?run/*(,|$)',
      'docker\\.sock:',
      '(source|src)=[^,]*docker\\.sock',
      '^--privileged(=(1|t|true))?$',
      '^--(pid|userns)(=host)?$',
      '^--cap-add=(all|sys_admin)$',
    ],
  },
  {
    description: 'shut down or reboot the machine',
    programs: ['busctl', 'dbus-send', 'gdbus'],
    args_match: ['(poweroff|reboot|halt)'],
  },
  { description: 'shut down or reboot the machine', writes_any: ['/proc/sysrq-trigger'] },
  { description: 'kill every process', programs: ['pkill', 'pgrep'], flags_any: ['-v', '--inverse'] },
  {
    description: 'kill every process',
    programs: ['pkill', 'killall'],
    args_any: ['.', '.\\*', '.+', '^', '^.\\*$'],
  },
  {
    description: 'flush or disable the firewall',
    programs: ['iptables', 'ip6tables', 'iptables-*', 'ip6tables-*'],
    flags_any: ['-P', '--policy'],
  },
  {
    description: 'flush or disable the firewall',
    programs: ['iptables-restore', 'ip6tables-restore', 'iptables-legacy-restore', 'iptables-nft-restore'],
  },
  { description: 'flush or disable the firewall', programs: ['nft'], flags_any: ['-f', '--file'] },
  {
    description: 'flush or disable the firewall',
    programs: ['systemctl'],
    subcommands: ['stop', 'disable', 'mask', 'kill'],
    args_any: [
      'firewalld',
      'firewalld.service',
      'ufw',
      'ufw.service',
      'nftables',
      'nftables.service',
      'iptables',
      'iptables.service',
    ],
  },
  { description: 'replace every cron job', programs: ['crontab'], args_any: ['-'] },
  { description: 'replace every cron job', programs: ['crontab'], args_match: ['^[^-]'] },
  { description: 'fork bomb', traits_any: ['fork_bomb'] },
];

/** The shipped capability rules; `infra/policies/supervisor.yaml` lists the same. */
export const DEFAULT_CAPABILITY_RULES: z.input<typeof CapabilityRuleSchema>[] = [
  {
    capability: 'network',
    description: 'a network client',
    programs: [
      'curl',
      'wget',
      'ssh',
      'scp',
      'sftp',
      'rsync',
      'nc',
      'ncat',
      'netcat',
      'socat',
      'telnet',
      'ftp',
    ],
  },
  {
    capability: 'network',
    description: 'git talking to a remote',
    programs: ['git'],
    subcommands: ['clone', 'push', 'pull', 'fetch', 'ls-remote'],
    value_flags: ['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env'],
  },
  {
    capability: 'network',
    description: 'a URL argument',
    args_match: ['(https?|ftps?|wss?|sftp|ssh|git|rsync)://'],
  },
  {
    capability: 'network',
    description: 'a /dev/tcp or /dev/udp socket',
    paths_any: ['/dev/tcp/**', '/dev/udp/**'],
  },
  {
    capability: 'file_write',
    description: 'a program that writes files',
    programs: [
      'rm',
      'mv',
      'cp',
      'touch',
      'mkdir',
      'rmdir',
      'tee',
      'truncate',
      'dd',
      'chmod',
      'chown',
      'ln',
      'install',
      'shred',
    ],
  },
  {
    capability: 'file_write',
    description: 'an in-place edit',
    programs: ['sed', 'perl'],
    flags_any: ['-i', '--in-place'],
  },
  {
    capability: 'file_write',
    description: 'find deleting what it finds',
    programs: ['find'],
    flags_any: ['-delete'],
  },
  { capability: 'file_write', description: 'an output redirect to a file', writes_any: ['**'] },
];

// --- Compiled form -----------------------------------------------------------------------------------------

type Matcher = typeof matcherShape;
type MatcherFields = { [K in keyof Matcher]?: z.output<Matcher[K]> };

/** A rule ready to judge with: its regexes compiled once with RE2 (linear time). */
export interface CompiledMatcher extends MatcherFields {
  description: string;
  compiledArgsMatch?: RE2JS[];
}

export interface CompiledRedlineRules {
  forbidden: Array<CompiledMatcher & { severity: 'HIGH' | 'CRITICAL' }>;
  capabilities: Array<CompiledMatcher & { capability: string }>;
  forbiddenPaths: readonly string[];
}

const compiledCache = new WeakMap<object, CompiledRedlineRules>();

/**
 * The redlines of a parsed policy file, compiled for {@link judgeCommands}: a policy file is parsed once at
 * start-up, so the compiled form is kept for as long as the parsed object lives.
 */
export function compileRedlineRules(redlines: {
  forbidden_commands: readonly ForbiddenCommandRule[];
  capability_rules: readonly CapabilityRule[];
  forbidden_paths: readonly string[];
}): CompiledRedlineRules {
  const cached = compiledCache.get(redlines);
  if (cached) return cached;
  const compile = <T extends MatcherFields>(rule: T): T & { compiledArgsMatch?: RE2JS[] } =>
    rule.args_match
      ? {
          ...rule,
          compiledArgsMatch: rule.args_match.map((source) => RE2JS.compile(source, RE2JS.CASE_INSENSITIVE)),
        }
      : rule;
  const compiled: CompiledRedlineRules = {
    forbidden: redlines.forbidden_commands.map(compile),
    capabilities: redlines.capability_rules.map(compile),
    forbiddenPaths: redlines.forbidden_paths,
  };
  compiledCache.set(redlines, compiled);
  return compiled;
}
