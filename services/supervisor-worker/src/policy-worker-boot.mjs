// Entry of a policy worker thread. Plain JavaScript because a worker starts without the parent's module
// hooks: it loads the TypeScript entry (and an optional custom policy registry) through tsx itself, or plain
// JavaScript when the service runs compiled. tsx is imported only for a `.ts` module: a production install
// (the build in dist/) has no tsx, and a compiled worker must not need it.
import { workerData } from 'node:worker_threads';

const load = async (url) =>
  url.endsWith('.ts') ? (await import('tsx/esm/api')).tsImport(url, import.meta.url) : import(url);
const { runPolicyWorker } = await load(workerData.entry);
const registry = workerData.registryModule
  ? (await load(workerData.registryModule)).createPolicyRegistry()
  : undefined;
runPolicyWorker(registry);
