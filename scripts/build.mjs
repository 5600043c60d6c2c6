#!/usr/bin/env node
// The production build: each service and the CLI bundled with esbuild into `<package>/dist/`, for images
// that run `node dist/main.js` without tsx. Development does not use it — it runs the TypeScript sources.
//
//   npm run build                      build every target
//   npm run build -- --if-stale        skip a target whose output is newer than everything it was built from
//   npm run build -- services/api      only the named targets (package directories)
//   node scripts/build.mjs --list      the target directories, one a line
//
// What a bundle holds and how it finds things at run time:
// - The `@warden/*` workspace packages are bundled in; every other package stays outside, loaded at run time
//   from the target's own node_modules (with require(), and lazily where it can be: see externalModule). So
//   each such package must be a `dependencies` entry of the target's package.json (what the image's
//   `pnpm install --prod` installs); the build fails naming any that is not. The files of a bundle import
//   each such package through one shared module (see sharedImportFacade), not each on its own.
// - A `@warden/*` module the target does not use is left out (the packages run nothing at import but build
//   constants), so a service does not hold every other service's schemas; the target's own modules all stay.
// - Files found by path at run time (`new URL('./x', import.meta.url)`, `import.meta.dirname`,
//   `createRequire(import.meta.url)`): every source file's `import.meta.url` is rewritten to the place the
//   file would have if `dist/` mirrored `src/` (src/a/b.ts → dist/a/b.js), and every file under `src/` that
//   is not TypeScript (worker boot scripts, a console's static assets, …) is copied there. A path relative
//   to a source file therefore means the same thing from dist. A workspace package bundled in mirrors to
//   `dist/packages/<name>/`, with its own non-TypeScript `src/` files copied there.
// - Extra entry points (a worker thread's module) are listed per target below.
// - A target may be split (`splitting: true`, the CLI): each dynamically imported module becomes a chunk of its
//   own beside the entry points in dist/, read only when it is imported.
// - A target may inline some third-party packages (`inline: [...]`, the CLI): they are bundled like the
//   `@warden/*` packages instead of loaded from node_modules, which costs a process one file lookup per module
//   at start. Only for packages whose own imports are all inlined too, and that no external package shares
//   objects with (a second copy of a class breaks `instanceof`).
// - A build newer than every input recorded in `dist/.build-inputs.json` is reused with `--if-stale`.
// Plain Node and esbuild only: it runs before anything is compiled.
import { builtinModules, createRequire } from 'node:module';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What is built: a package directory and its entry points under `src/` (each becomes `dist/<name>.js`). */
export const TARGETS = [
  { dir: 'services/api', entries: ['main.ts'] },
  // The policy worker runs in a worker thread, started by path from policy-sandbox.ts.
  { dir: 'services/supervisor-worker', entries: ['main.ts', 'policy-worker.ts'] },
  { dir: 'services/scheduler', entries: ['main.ts'] },
  { dir: 'services/lead-miner', entries: ['main.ts'] },
  { dir: 'services/executor', entries: ['main.ts'] },
  // A CLI's start-up is most of its run time (see packages/cli/src/command-catalog.ts). Split: each command's
  // modules are a chunk of their own, read only when that command runs. Inline: these packages (with no
  // dependencies of their own but each other) are bundled in rather than loaded from node_modules, where
  // Node would resolve and read hundreds of files at each start (zod and kysely: ~0.1-0.3 s each, measured).
  {
    dir: 'packages/cli',
    entries: ['main.ts'],
    splitting: true,
    inline: ['commander', 'zod', 'kysely', 'yaml', 'cron-parser', 'luxon'],
  },
];

const BUILT_INS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const STAMP = '.build-inputs.json';

/** `pino` for `pino/file`, `@scope/name` for `@scope/name/sub`. */
function packageNameOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The directory of the nearest package.json above `file`. */
function packageRootOf(file) {
  let dir = dirname(file);
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${file}`);
    dir = parent;
  }
  return dir;
}

/** Where a workspace source file lives in `dist/`, relative to it (src/a/b.ts → a/b.js). */
function mirroredPath(targetDir, file) {
  const owner = packageRootOf(file);
  const fromSrc = relative(join(owner, 'src'), file).replace(/\.ts$/, '.js');
  if (fromSrc.startsWith('..'))
    throw new Error(`${relative(root, file)} is bundled but lies outside its package's src/ directory`);
  const base = owner === targetDir ? '' : join('packages', basename(owner));
  return join(base, fromSrc).split(sep).join('/');
}

/** Every file under `dir` that is not TypeScript source, as paths relative to `dir`. */
function nonTypeScriptFiles(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) return nonTypeScriptFiles(join(dir, entry.name), rel);
    return entry.name.endsWith('.ts') ? [] : [rel];
  });
}

/**
 * The stand-in through which a bundle loads the third-party module `specifier`: it is loaded with require(),
 * because importing CommonJS from ESM makes Node lex the whole file for its export names (mvdan-sh is
 * 1.5 MB), and, when the module exports a plain object, only when one of its exports is first used — so a
 * command or service that never parses a shell line or opens a queue never loads the parser or BullMQ.
 * The export names are read here, from the module itself, at build time. A module exporting a function (a
 * class, `pino`, `express`) is loaded as the bundle starts: a stand-in could not be both callable and
 * `instanceof`-faithful.
 */
function externalModule(targetDir, specifier) {
  const load = `require(${JSON.stringify(specifier)})`;
  const real = createRequire(join(targetDir, 'package.json'))(specifier);
  if (typeof real !== 'object' || real === null) return `module.exports = ${load};`;
  const names = Object.getOwnPropertyNames(real).filter((name) => name !== '__esModule');
  return [
    'let loaded;',
    `const load = () => (loaded ??= ${load});`,
    `for (const name of ${JSON.stringify(names)})`,
    '  Object.defineProperty(module.exports, name, { enumerable: true, get: () => load()[name] });',
  ].join('\n');
}

const RESOLVING = Symbol('resolving a workspace import');

/** True for a source file of a bundled `@warden/*` package (not of the target being built, nor a dependency). */
function isWorkspacePackageFile(file, targetDir) {
  if (file.includes(`${sep}node_modules${sep}`) || !file.startsWith(join(root, 'packages') + sep))
    return false;
  return packageRootOf(file) !== targetDir;
}

/**
 * The one ES module through which every `import` statement of the third-party module `specifier` reaches its
 * stand-in. esbuild gives each importing file its own ESM view of a CommonJS module (`__toESM`: a getter per
 * export, per file): with 47 files importing kysely and 37 importing zod, each of hundreds of exports, that
 * was some 30,000 getters, about 1-2 MB of every service's idle heap. Re-exported once here, importers read
 * the exports from this module's namespace instead; the stand-in is still loaded only when an export is used.
 * `require()` calls (from inlined CommonJS) keep the stand-in itself: they expect `module.exports`.
 */
function sharedImportFacade(specifier) {
  const quoted = JSON.stringify(specifier);
  return `export * from ${quoted};\nexport { default } from ${quoted};`;
}

/**
 * Bundles `@warden/*`, leaves every other bare import external (recording it), and rewrites
 * `import.meta.url` / `import.meta.dirname` in workspace sources to their mirrored place in dist.
 */
function wardenPlugin(targetDir, externals, inline = []) {
  return {
    name: 'warden',
    setup(pluginBuild) {
      // A bundled `@warden/*` package runs nothing at import but building constants (zod schemas, compiled
      // patterns), so esbuild may leave out each of its modules that the target never uses: a service does
      // not build the schemas of every other service's domain at start (the policy worker thread: the
      // decision code only). The target's own modules are all kept, as written.
      pluginBuild.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === RESOLVING || args.namespace !== 'file') return undefined;
        const fromPackage = args.importer !== '' && isWorkspacePackageFile(args.importer, targetDir);
        if (!args.path.startsWith('@warden/') && !(args.path.startsWith('.') && fromPackage))
          return undefined;
        const { path, namespace, external, errors } = await pluginBuild.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: RESOLVING,
        });
        if (errors.length > 0) return { errors };
        return { path, namespace, external, sideEffects: !isWorkspacePackageFile(path, targetDir) };
      });
      pluginBuild.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('@warden/')) return undefined;
        const standIn = args.namespace === 'required' || args.namespace === 'facade';
        if (inline.includes(packageNameOf(args.path)) && !standIn) return undefined;
        if (BUILT_INS.has(args.path) || args.namespace === 'required')
          return { path: args.path, external: true };
        externals.add(packageNameOf(args.path));
        const viaFacade = args.namespace !== 'facade' && args.kind !== 'require-call';
        return { path: args.path, namespace: viaFacade ? 'facade' : 'required' };
      });
      pluginBuild.onLoad({ filter: /.*/, namespace: 'facade' }, (args) => ({
        contents: sharedImportFacade(args.path),
        loader: 'js',
        resolveDir: targetDir,
      }));
      pluginBuild.onLoad({ filter: /.*/, namespace: 'required' }, (args) => ({
        contents: externalModule(targetDir, args.path),
        loader: 'js',
        resolveDir: targetDir,
      }));
      pluginBuild.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        let contents = readFileSync(args.path, 'utf8');
        if (contents.includes('import.meta.')) {
          const mirrored = JSON.stringify(`./${mirroredPath(targetDir, args.path)}`);
          const url = `new URL(${mirrored}, import.meta.url).href`;
          contents = contents
            .replace(
              /\bimport\.meta\.dirname\b/g,
              `decodeURIComponent(new URL(".", ${url}).pathname).replace(/\\/$/, "")`,
            )
            .replace(/\bimport\.meta\.filename\b/g, `decodeURIComponent(new URL(${url}).pathname)`)
            .replace(/\bimport\.meta\.url\b/g, `(${url})`);
        }
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** True when `dist/` is newer than every input it was last built from (and still has every output). */
export function isFresh(targetDir) {
  const stampFile = join(targetDir, 'dist', STAMP);
  if (!existsSync(stampFile)) return false;
  const { inputs, outputs } = JSON.parse(readFileSync(stampFile, 'utf8'));
  const builtAt = statSync(stampFile).mtimeMs;
  if (!outputs.every((file) => existsSync(join(root, file)))) return false;
  return inputs.every((file) => existsSync(join(root, file)) && statSync(join(root, file)).mtimeMs < builtAt);
}

/** Builds one target; throws naming what is wrong. */
export async function buildTarget(target) {
  const targetDir = join(root, target.dir);
  const distDir = join(targetDir, 'dist');
  const manifest = JSON.parse(readFileSync(join(targetDir, 'package.json'), 'utf8'));
  const externals = new Set();
  rmSync(distDir, { recursive: true, force: true });
  // Imported here, not at the top: `--list` runs where only production dependencies are installed.
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: root,
    entryPoints: target.entries.map((entry) => join(targetDir, 'src', entry)),
    outdir: distDir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Chunks sit beside the entry points, in dist/ itself: the import.meta.url rewrite above assumes it.
    splitting: target.splitting ?? false,
    target: 'node20',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    banner: {
      js: "import { createRequire as __wardenCreateRequire } from 'node:module';\nconst require = __wardenCreateRequire(import.meta.url);",
    },
    plugins: [wardenPlugin(targetDir, externals, target.inline)],
  });

  const declared = new Set(Object.keys(manifest.dependencies ?? {}));
  const missing = [...externals].filter((name) => !declared.has(name)).sort();
  if (missing.length > 0)
    throw new Error(
      `${target.dir}: the bundle imports ${missing.join(', ')}, which ${target.dir}/package.json does not list in ` +
        `"dependencies"; a production install (\`pnpm install --prod\`, as in the image) would not have ${missing.length === 1 ? 'it' : 'them'}`,
    );

  // Source files only: the stand-ins of third-party modules are `required:<name>` / `facade:<name>`, not files.
  const inputs = new Set(
    Object.keys(result.metafile.inputs).filter(
      (file) => !file.startsWith('required:') && !file.startsWith('facade:'),
    ),
  );
  // Non-TypeScript files next to the sources, mirrored: the target's own, then each bundled package's.
  const owners = new Set([...inputs].map((file) => packageRootOf(join(root, file))));
  const copied = [];
  for (const owner of owners) {
    const base = owner === targetDir ? distDir : join(distDir, 'packages', basename(owner));
    for (const file of nonTypeScriptFiles(join(owner, 'src'))) {
      mkdirSync(dirname(join(base, file)), { recursive: true });
      cpSync(join(owner, 'src', file), join(base, file));
      inputs.add(relative(root, join(owner, 'src', file)));
      copied.push(relative(root, join(base, file)));
    }
  }
  const outputs = [...Object.keys(result.metafile.outputs), ...copied];
  inputs.add(relative(root, join(targetDir, 'package.json')));
  // The stand-ins list each third-party module's exports as installed: a new version means a new build.
  inputs.add('pnpm-lock.yaml');
  inputs.add(relative(root, fileURLToPath(import.meta.url)));
  writeFileSync(
    join(distDir, STAMP),
    JSON.stringify(
      { inputs: [...inputs].sort(), outputs: outputs.sort(), externals: [...externals].sort() },
      null,
      2,
    ),
  );
  // The target's own entry points (with splitting, each dynamically imported module is an entry point too).
  const entryFiles = new Set(target.entries.map((entry) => relative(root, join(targetDir, 'src', entry))));
  const entries = Object.entries(result.metafile.outputs)
    .filter(([, output]) => output.entryPoint !== undefined && entryFiles.has(output.entryPoint))
    .map(([file]) => file);
  return { entries, outputs, externals: [...externals].sort() };
}

/** Builds the named targets (all by default); `ifStale` skips the ones that are up to date. */
export async function buildAll({ only = [], ifStale = false, log = console.log } = {}) {
  const unknown = only.filter((dir) => !TARGETS.some((t) => t.dir === dir.replace(/\/$/, '')));
  if (unknown.length > 0)
    throw new Error(
      `unknown build target ${unknown.join(', ')} (targets: ${TARGETS.map((t) => t.dir).join(', ')})`,
    );
  const chosen =
    only.length > 0 ? TARGETS.filter((t) => only.some((dir) => dir.replace(/\/$/, '') === t.dir)) : TARGETS;
  for (const target of chosen) {
    if (ifStale && isFresh(join(root, target.dir))) {
      log(`  ${target.dir}/dist up to date`);
      continue;
    }
    const started = performance.now();
    const { entries } = await buildTarget(target);
    log(
      `  ${target.dir}/dist  ${entries.map((file) => basename(file)).join(', ')}  (${Math.round(performance.now() - started)} ms)`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  // The target directories, one a line: what the Dockerfile installs and copies.
  if (args.includes('--list')) {
    console.log(TARGETS.map((t) => t.dir).join('\n'));
    process.exit(0);
  }
  try {
    await buildAll({ only: args.filter((a) => !a.startsWith('--')), ifStale: args.includes('--if-stale') });
  } catch (error) {
    console.error(`✗ build failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
