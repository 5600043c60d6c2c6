// Entry of a policy worker thread. Plain JavaScript because a worker starts without the parent's module
// hooks: it loads the TypeScript entry (and an optional custom policy registry) through tsx itself, or plain
// JavaScript when the service runs compiled.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const load = (url) => (url.endsWith('.ts') ? tsImport(url, import.meta.url) : import(url));
const { runPolicyWorker } = await load(workerData.entry);
const registry = workerData.registryModule
  ? (await load(workerData.registryModule)).createPolicyRegistry()
  : undefined;
runPolicyWorker(registry);
