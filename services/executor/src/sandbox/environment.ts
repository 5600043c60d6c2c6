/**
 * The environment of a verification: empty, then an explicit allow-list. Nothing of the executor's own
 * environment is inherited — its connections (`DATABASE_URL`, `REDIS_URL`) and secrets (`WARDEN_*`) never reach
 * the child, whatever the policy lists (the policy and the configuration refuse those names too; this is the
 * last line).
 */

/** Never copied into a verification's environment, even when listed. */
const NEVER_PASSED =
  /^(PATH|HOME|TMPDIR|DATABASE_URL|REDIS_URL|TEST_DATABASE_URL|TEST_REDIS_URL|WARDEN_.*|EXECUTOR_.*)$/;

export interface SandboxEnvInput {
  /** Where the values of the listed names are read from: the executor's environment. */
  source: NodeJS.ProcessEnv | Record<string, string | undefined>;
  /** Names every verification gets (`EXECUTOR_COMMAND_ENV`), then the verification's own `env`. */
  names: readonly string[];
  /** The fixed PATH of the sandbox. */
  path: string;
  /** HOME and TMPDIR: a scratch directory of this run (`/tmp` inside bubblewrap). */
  scratch: string;
  /** Which change set and workspace are checked: information, not secrets. */
  changesetId: string;
  workspaceName: string;
  workspaceRoot: string;
}

export function buildSandboxEnv(input: SandboxEnvInput): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of input.names) {
    const value = input.source[name];
    if (value !== undefined && !NEVER_PASSED.test(name)) env[name] = value;
  }
  return {
    ...env,
    PATH: input.path,
    HOME: input.scratch,
    TMPDIR: input.scratch,
    WARDEN_CHANGESET_ID: input.changesetId,
    WARDEN_WORKSPACE: input.workspaceName,
    WARDEN_WORKSPACE_ROOT: input.workspaceRoot,
  };
}
