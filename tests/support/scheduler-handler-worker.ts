/**
 * A trigger worker as its own process, for the chaos suites: `node --import tsx tests/support/scheduler-handler-worker.ts`.
 * Env: TENANT, QUEUE, QUEUE_PREFIX, REDIS_URL, MODE (`hang`: every call blocks until the process is killed;
 * `ok`: every call succeeds). Prints `started <execution_id> <retry_count>` when a call starts and `ready` once
 * the worker listens.
 */
import { createTriggerWorker } from '../../packages/client/src/index.js';

const mode = process.env.MODE ?? 'ok';
const worker = createTriggerWorker(
  process.env.QUEUE ?? 'agent',
  async (ctx) => {
    process.stdout.write(`started ${ctx.execution_id} ${ctx.retry_count}\n`);
    if (mode === 'hang') await new Promise(() => {});
    return { agent_run_id: `pid-${process.pid}`, output: { pid: process.pid } };
  },
  {
    tenantId: process.env.TENANT ?? 'acme',
    connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: process.env.QUEUE_PREFIX ?? 'warden',
    concurrency: 4,
  },
);
await worker.worker.waitUntilReady();
process.stdout.write('ready\n');
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
