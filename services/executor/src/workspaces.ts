import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, sep } from 'node:path';
import { ConfigError, ValidationError, parsePolicyYaml } from '@warden/domain';
import { WorkspacesSchema, type WorkspacesConfig } from './config.js';

/** A workspace the executor may write to: its name, its real root directory and who may use it. */
export interface Workspace {
  name: string;
  /** The root with every symlink resolved, as checked at start-up; all writes stay below it. */
  root: string;
  /** Tenants allowed to name it; undefined means every tenant. */
  tenants?: readonly string[];
}

/** The configured workspaces, by name. */
export class WorkspaceRegistry {
  private readonly byName: ReadonlyMap<string, Workspace>;

  constructor(workspaces: readonly Workspace[]) {
    this.byName = new Map(workspaces.map((w) => [w.name, w]));
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  get(name: string): Workspace | undefined {
    return this.byName.get(name);
  }

  /** The workspace when it exists and `tenantId` may use it; otherwise why not. */
  resolve(name: string, tenantId: string): { workspace: Workspace } | { problem: string } {
    const workspace = this.byName.get(name);
    if (!workspace)
      return {
        problem: `unknown workspace "${name}" (this executor serves: ${this.names().join(', ') || 'none'})`,
      };
    if (workspace.tenants && !workspace.tenants.includes(tenantId))
      return { problem: `tenant "${tenantId}" may not use workspace "${name}"` };
    return { workspace };
  }
}

/**
 * Reads the workspaces from the configuration (and `EXECUTOR_WORKSPACES_FILE`, merged over it) and checks each
 * root at start-up: absolute, an existing directory, and not inside another workspace (two names for one tree
 * would mean two locks for one set of files). Any problem is a ConfigError naming the workspace.
 */
export async function loadWorkspaces(config: {
  EXECUTOR_WORKSPACES: WorkspacesConfig;
  EXECUTOR_WORKSPACES_FILE?: string | undefined;
}): Promise<WorkspaceRegistry> {
  let entries: WorkspacesConfig = { ...config.EXECUTOR_WORKSPACES };
  if (config.EXECUTOR_WORKSPACES_FILE)
    entries = { ...entries, ...(await readWorkspacesFile(config.EXECUTOR_WORKSPACES_FILE)) };
  const workspaces: Workspace[] = [];
  for (const [name, entry] of Object.entries(entries)) {
    const configured = typeof entry === 'string' ? entry : entry.root;
    if (!isAbsolute(configured))
      throw new ConfigError(
        `workspace "${name}": root ${JSON.stringify(configured)} must be an absolute path`,
      );
    let root: string;
    try {
      root = await realpath(configured);
      if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
    } catch (error) {
      throw new ConfigError(
        `workspace "${name}": root ${configured} is not an existing directory (${(error as Error).message})`,
      );
    }
    workspaces.push({
      name,
      root,
      ...(typeof entry === 'object' && entry.tenants ? { tenants: entry.tenants } : {}),
    });
  }
  for (const a of workspaces) {
    for (const b of workspaces) {
      if (a === b) continue;
      const inside = relative(a.root, b.root);
      if (
        inside === '' ||
        (!inside.startsWith('..') && !isAbsolute(inside) && !inside.startsWith(`..${sep}`))
      ) {
        throw new ConfigError(
          `workspaces "${a.name}" and "${b.name}" overlap (${b.root} is ${inside === '' ? 'the same directory as' : 'inside'} ${a.root}); each tree may have one name`,
        );
      }
    }
  }
  return new WorkspaceRegistry(workspaces);
}

async function readWorkspacesFile(path: string): Promise<WorkspacesConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read EXECUTOR_WORKSPACES_FILE ${path}: ${(error as Error).message}`);
  }
  try {
    // JSON is YAML, so one parser reads both; its errors name the file, the line or the field.
    return parsePolicyYaml(text, WorkspacesSchema, path);
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ConfigError(`invalid EXECUTOR_WORKSPACES_FILE: ${error.message}`, error.details);
    throw error;
  }
}
