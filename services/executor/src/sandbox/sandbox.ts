/**
 * Runs the verifications of the WriteGate policy (docs/executor.md, "Verification sandbox"): the policy's argv
 * (never the agent's), an empty environment plus an allow-list, resource limits, bubblewrap when it works, a
 * separate user when the executor is root, a timeout that kills the whole process group, and output capped and
 * redacted before anything stores or returns it.
 */
import { mkdtemp, rm, chown } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type Verification } from '@warden/domain';
import { runCommand, type CommandResult } from '../command-runner.js';
import { buildSandboxEnv } from './environment.js';
import {
  bubblewrapArgs,
  prlimitArgs,
  probeBubblewrap,
  probePrlimit,
  type ResourceLimits,
  type RunAs,
} from './isolation.js';
import { redactCommandOutput } from './output.js';

export interface SandboxSettings {
  /** `auto`: bubblewrap when it works; `bwrap`: required; `none`: never. */
  mode: 'auto' | 'bwrap' | 'none';
  /** The PATH of every verification. */
  path: string;
  /** Read-only system directories inside bubblewrap. */
  readOnly: readonly string[];
  /** `uid:gid` or a user name. @defaultValue the executor's own user */
  runAs?: string;
  limits: ResourceLimits;
  /** Names every verification gets from `source`. */
  commonEnv: readonly string[];
  /** Where listed variables are read from. */
  source: NodeJS.ProcessEnv | Record<string, string | undefined>;
  maxTimeoutMs: number;
  outputLimitBytes: number;
}

export interface SandboxContext {
  changesetId: string;
  workspaceName: string;
  workspaceRoot: string;
}

export interface SandboxedResult extends CommandResult {
  /** The timeout that applied (the verification's, bounded by the executor's maximum). */
  timeoutMs: number;
}

/** What the sandbox can do here, found once at start-up. */
export interface SandboxCapabilities {
  /** The path of a working bwrap. @defaultValue none: no isolation */
  bubblewrap?: string;
  /** The path of a working prlimit. @defaultValue none: no resource limits */
  prlimit?: string;
  runAs?: RunAs;
  /** Why the sandbox is weaker than it should be; empty when it is complete. */
  degraded: string[];
}

export class VerificationSandbox {
  private constructor(
    private readonly settings: SandboxSettings,
    readonly capabilities: SandboxCapabilities,
  ) {}

  /** Probes bwrap and prlimit; throws a ConfigError when `bwrap` mode finds no working bubblewrap. */
  static create(
    settings: SandboxSettings,
    probes = { bubblewrap: probeBubblewrap, prlimit: probePrlimit },
  ): VerificationSandbox {
    const isRoot = process.getuid?.() === 0;
    const runAs = settings.runAs === undefined ? undefined : resolveUser(settings.runAs);
    if (runAs && !isRoot)
      throw new ConfigError('EXECUTOR_RUN_AS needs the executor to run as root (only root can switch user)');
    const bubblewrap = settings.mode === 'none' ? undefined : probes.bubblewrap(runAs);
    if (settings.mode === 'bwrap' && !bubblewrap)
      throw new ConfigError(
        'EXECUTOR_SANDBOX=bwrap but bubblewrap does not work here: install it (Debian package bubblewrap) and allow user namespaces, or set EXECUTOR_SANDBOX=auto to run degraded',
      );
    const prlimit = probes.prlimit();
    const degraded: string[] = [];
    if (!bubblewrap)
      degraded.push(
        settings.mode === 'none'
          ? 'bubblewrap disabled (EXECUTOR_SANDBOX=none): no filesystem, network or process isolation'
          : 'bubblewrap missing or user namespaces not permitted: no filesystem, network or process isolation',
      );
    if (!prlimit) degraded.push('prlimit missing: no CPU, memory, process or file-size limits');
    if (isRoot && !runAs) degraded.push('verifications run as root: set EXECUTOR_RUN_AS');
    return new VerificationSandbox(settings, {
      ...(bubblewrap ? { bubblewrap } : {}),
      ...(prlimit ? { prlimit } : {}),
      ...(runAs ? { runAs } : {}),
      degraded,
    });
  }

  /** One line for logs and check details: `bwrap+limits` or `degraded (…)`. */
  describe(): string {
    const { degraded, bubblewrap, prlimit } = this.capabilities;
    if (degraded.length === 0) return `${bubblewrap ? 'bwrap' : 'clean env'}${prlimit ? ' + limits' : ''}`;
    return `degraded: ${degraded.join('; ')}`;
  }

  /** Runs one verification of the policy in the workspace; never throws (a failure is a failed result). */
  async run(verification: Verification, context: SandboxContext): Promise<SandboxedResult> {
    const { settings, capabilities } = this;
    const timeoutMs = Math.min(verification.timeout_ms, settings.maxTimeoutMs);
    const scratch = await mkdtemp(join(tmpdir(), 'warden-verify-'));
    try {
      if (capabilities.runAs) await chown(scratch, capabilities.runAs.uid, capabilities.runAs.gid);
      const insideScratch = capabilities.bubblewrap ? '/tmp' : scratch;
      const env = buildSandboxEnv({
        source: settings.source,
        names: [...settings.commonEnv, ...verification.env],
        path: settings.path,
        scratch: insideScratch,
        changesetId: context.changesetId,
        workspaceName: context.workspaceName,
        workspaceRoot: context.workspaceRoot,
      });
      const argv = [
        ...(capabilities.prlimit ? [capabilities.prlimit, ...prlimitArgs(settings.limits)] : []),
        ...(capabilities.bubblewrap
          ? [
              capabilities.bubblewrap,
              ...bubblewrapArgs({
                readOnly: [...settings.readOnly, ...settings.path.split(':')],
                workspaceRoot: context.workspaceRoot,
                scratch: insideScratch,
                network: verification.network,
              }),
            ]
          : []),
        ...verification.command,
      ];
      const [program, ...args] = argv as [string, ...string[]];
      const result = await runCommand(program, args, {
        cwd: context.workspaceRoot,
        env,
        timeoutMs,
        outputLimitBytes: settings.outputLimitBytes,
        ...(capabilities.runAs ? { runAs: capabilities.runAs } : {}),
      });
      return {
        ...result,
        output: redactCommandOutput(result.output, settings.outputLimitBytes),
        timeoutMs,
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
}

/** `uid:gid`, or a user name looked up in /etc/passwd. */
function resolveUser(spec: string): RunAs {
  const numeric = /^(\d+):(\d+)$/.exec(spec);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2]) };
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // Reported below as an unknown user.
  }
  const entry = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === spec);
  if (!entry) throw new ConfigError(`EXECUTOR_RUN_AS: no user "${spec}" in /etc/passwd`);
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}
