/**
 * Supply-chain and tool-configuration files: what package managers, git and CI run or fetch on their own. A
 * change to one is code execution at one remove (an install script, a registry swapped in `.npmrc`, a workflow
 * with the repository's secrets, a repository with hooks of its own), so the WriteGate never treats it as low
 * risk, whatever the policy file says. Built in rather than configured: a policy can add to it (with
 * `always_review` or `forbidden_paths`) but not take it away.
 */

/** File names (any directory, compared case-insensitively) that package managers, git or CI act on. */
const SUPPLY_CHAIN_NAMES = new Set([
  // Manifests and lockfiles: install scripts, dependency sources and pinned versions.
  'package.json',
  'package-lock.json',
  'npm-shrinkwrap.json',
  'pnpm-lock.yaml',
  'pnpm-workspace.yaml',
  '.pnpmfile.cjs',
  'yarn.lock',
  'bun.lock',
  'bun.lockb',
  // Package-manager configuration: registries, tokens, scripts run on install.
  '.npmrc',
  '.yarnrc',
  '.yarnrc.yml',
  // git configuration that fetches from elsewhere.
  '.gitmodules',
  // CI pipelines defined by one file.
  '.gitlab-ci.yml',
  '.travis.yml',
  'azure-pipelines.yml',
  'bitbucket-pipelines.yml',
  'jenkinsfile',
]);

/** What a bare repository holds at its top; written next to `objects/` and `refs/`, each makes it one. */
const REPOSITORY_ENTRIES = new Set(['objects', 'refs', 'config', 'hooks', 'info', 'packed-refs', 'head']);

/** Directories (as consecutive segments, compared case-insensitively) whose every file is CI or tool code. */
const SUPPLY_CHAIN_DIRS: readonly (readonly string[])[] = [
  ['.github', 'workflows'],
  ['.github', 'actions'],
  ['.circleci'],
  ['.husky'],
  ['.yarn', 'plugins'],
  ['.yarn', 'releases'],
];

/**
 * The paths of a change set that are supply-chain or tool-configuration files, or that build an embedded bare
 * git repository (a `HEAD` file anywhere, or `objects/` and `refs/` written under the same directory: git treats
 * such a directory as a repository, with a `config` that can run commands).
 *
 * @example
 * supplyChainPaths(['package.json', 'src/package.json.md', '.github/workflows/ci.yml']);
 * // ['package.json', '.github/workflows/ci.yml']
 */
export function supplyChainPaths(paths: readonly string[]): string[] {
  const repoDirs = embeddedRepositoryDirs(paths);
  return paths.filter((path) => {
    const segments = path.toLowerCase().split('/');
    const name = segments[segments.length - 1]!;
    if (SUPPLY_CHAIN_NAMES.has(name) || name === 'head') return true;
    if (SUPPLY_CHAIN_DIRS.some((dir) => containsRun(segments.slice(0, -1), dir))) return true;
    return [...repoDirs].some((dir) => {
      const depth = dir === '' ? 0 : dir.split('/').length;
      return (
        segments.length > depth &&
        segments.slice(0, depth).join('/') === dir &&
        REPOSITORY_ENTRIES.has(segments[depth]!)
      );
    });
  });
}

/** Directories under which the change set writes both `objects/…` and `refs/…` (lower case). */
function embeddedRepositoryDirs(paths: readonly string[]): Set<string> {
  const under = { objects: new Set<string>(), refs: new Set<string>() };
  for (const path of paths) {
    const segments = path.toLowerCase().split('/');
    segments.slice(0, -1).forEach((segment, i) => {
      if (segment === 'objects' || segment === 'refs') under[segment].add(segments.slice(0, i).join('/'));
    });
  }
  return new Set([...under.objects].filter((dir) => under.refs.has(dir)));
}

function containsRun(segments: readonly string[], run: readonly string[]): boolean {
  for (let i = 0; i + run.length <= segments.length; i++)
    if (run.every((part, j) => segments[i + j] === part)) return true;
  return false;
}
