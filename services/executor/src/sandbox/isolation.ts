/**
 * The wrappers a verification runs inside: `prlimit` for resource limits and bubblewrap (`bwrap`) for Linux
 * isolation — new user, PID, IPC, UTS, cgroup and (unless the verification declares `network: true`) network
 * namespaces, a read-only view of the system directories, a private `/tmp`, the workspace as the only writable
 * mount. Both are found and tried once at start-up; what is missing is reported as a degraded sandbox.
 */
import { existsSync, lstatSync, readlinkSync } from 'node:fs';

export interface ResourceLimits {
  /** RLIMIT_CPU seconds; 0 = none. */
  cpuSeconds: number;
  /** RLIMIT_AS bytes; 0 = none. */
  memoryBytes: number;
  /** RLIMIT_NPROC; 0 = none. */
  processes: number;
  /** RLIMIT_FSIZE bytes; 0 = none. */
  fileBytes: number;
}

export type { RunAs } from '@warden/runtime/sandbox-probe';

// Probing is shared with `warden preflight`, which reports the sandbox the executor would get on this host.
export { findProgram, probeBubblewrap, probePrlimit, runsHere } from '@warden/runtime/sandbox-probe';

/** `prlimit --cpu=… --as=… --nproc=… --fsize=… --`: the limits, inherited by everything the command starts. */
export function prlimitArgs(limits: ResourceLimits): string[] {
  const args: string[] = [];
  if (limits.cpuSeconds > 0) args.push(`--cpu=${limits.cpuSeconds}`);
  if (limits.memoryBytes > 0) args.push(`--as=${limits.memoryBytes}`);
  if (limits.processes > 0) args.push(`--nproc=${limits.processes}`);
  if (limits.fileBytes > 0) args.push(`--fsize=${limits.fileBytes}`);
  return [...args, '--'];
}

export interface BubblewrapMounts {
  /** System directories shown read-only (absent ones skipped; symlinks such as `/bin -> usr/bin` kept as links). */
  readOnly: readonly string[];
  /** The only writable mount, and the working directory. */
  workspaceRoot: string;
  /** Inside the sandbox this is a private tmpfs; HOME and TMPDIR point at it. */
  scratch: string;
  network: boolean;
}

/** `bwrap … --`: the arguments before the program. */
export function bubblewrapArgs(mounts: BubblewrapMounts): string[] {
  const args = ['--unshare-all', '--die-with-parent'];
  if (mounts.network) args.push('--share-net');
  // Capabilities matter when the executor is root: drop them all inside.
  args.push('--cap-drop', 'ALL');
  const seen = new Set<string>();
  for (const dir of mounts.readOnly) {
    if (seen.has(dir) || !existsSync(dir)) continue;
    seen.add(dir);
    const stats = lstatSync(dir);
    if (stats.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else args.push('--ro-bind', dir, dir);
  }
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', mounts.scratch);
  args.push('--bind', mounts.workspaceRoot, mounts.workspaceRoot, '--chdir', mounts.workspaceRoot);
  return [...args, '--'];
}
