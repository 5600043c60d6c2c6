/**
 * Whether the verification sandbox's wrappers work on this host: bubblewrap (`bwrap`, Linux namespaces) and
 * `prlimit` (resource limits). The executor probes them once at start-up; `warden preflight` probes the same
 * way so an operator learns before deploying that verifications would run without isolation.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** A user to run a verification as (root only). */
export interface RunAs {
  uid: number;
  gid: number;
}

/** Whether `program args…` runs and exits 0 (as `runAs` when given): how bwrap and prlimit are probed. */
export function runsHere(program: string, args: readonly string[], runAs?: RunAs): boolean {
  const result = spawnSync(program, [...args], {
    stdio: 'ignore',
    timeout: 10_000,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
    ...(runAs ?? {}),
  });
  return result.status === 0;
}

/**
 * The absolute path of a wrapper program, from the executor's PATH or the usual system directories: the
 * wrappers are started by absolute path, so the sandbox PATH need not list them.
 */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | undefined {
  const dirs = [
    ...path.split(':'),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ];
  for (const dir of dirs) {
    if (!dir.startsWith('/')) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

/** bubblewrap's path when it is installed and may create the namespaces it needs (user namespaces can be forbidden). */
export function probeBubblewrap(runAs?: RunAs): string | undefined {
  const bwrap = findProgram('bwrap');
  if (!bwrap) return undefined;
  return runsHere(bwrap, ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', 'true'], runAs)
    ? bwrap
    : undefined;
}

/** prlimit's path when it works here (util-linux). */
export function probePrlimit(): string | undefined {
  const prlimit = findProgram('prlimit');
  if (!prlimit) return undefined;
  return runsHere(prlimit, ['--cpu=60', '--', 'true']) ? prlimit : undefined;
}
