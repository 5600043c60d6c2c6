// Preloaded (`node --import`) by tests that run a production build: writes a line to the file named by
// WARDEN_TSX_PROBE_LOG for every module resolved inside tsx — through import or require, in the main thread
// or in any worker thread the process starts — and when the process was started with tsx in its options.
// An empty file after the run means no tsx was loaded. Worker threads do not run `--import` preloads nor
// inherit module hooks, so each Worker is started through a one-line wrapper that loads this probe first.
import { appendFileSync } from 'node:fs';
import Module, { register, syncBuiltinESMExports } from 'node:module';
import { pathToFileURL } from 'node:url';
import workerThreads from 'node:worker_threads';

const log = process.env.WARDEN_TSX_PROBE_LOG;
if (!log) throw new Error('no-tsx-probe: set WARDEN_TSX_PROBE_LOG to the file to record into');
const isTsx = (path) => /[\\/]tsx@[^\\/]+[\\/]|[\\/]node_modules[\\/]tsx[\\/]/.test(path);
const where = workerThreads.isMainThread ? 'main thread' : `worker thread ${workerThreads.threadId}`;
const record = (line) => appendFileSync(log, `${where}: ${line}\n`);

// `--import tsx`, `--loader tsx/esm`, a path into tsx — not this probe's own name.
for (const option of [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)])
  if (/(^|=)tsx($|\/)/.test(option) || isTsx(option)) record(`started with ${option}`);

// import: a resolve hook (it runs on the loader's own thread, so it writes the file itself).
const hook = `
import { appendFileSync } from 'node:fs';
let log, where;
export function initialize(data) { ({ log, where } = data); }
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if ((${isTsx.toString()})(resolved.url)) appendFileSync(log, where + ': import ' + resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`, { data: { log, where } });

// require
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const resolved = resolveFilename.apply(this, args);
  if (isTsx(resolved)) record(`require ${resolved}`);
  return resolved;
};

// worker threads: start each one through this probe.
const probeUrl = import.meta.url;
class ProbedWorker extends workerThreads.Worker {
  constructor(filename, options = {}) {
    if (options.eval) {
      super(filename, options);
      return;
    }
    const url = filename instanceof URL ? filename.href : pathToFileURL(String(filename)).href;
    super(`import(${JSON.stringify(probeUrl)}).then(() => import(${JSON.stringify(url)}))`, {
      ...options,
      eval: true,
    });
  }
}
workerThreads.Worker = ProbedWorker;
syncBuiltinESMExports();
