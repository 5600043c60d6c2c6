import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { RunnableService } from '@warden/observability';
import type { Config } from './config.js';

/** The executor: applies approved change sets atomically with rollback (issue #6 adds execution). */
export function createService(config: Config): RunnableService & { runtime(): ServiceRuntime | undefined } {
  let runtime: ServiceRuntime | undefined;
  return {
    runtime: () => runtime,
    async start() {
      runtime = await openRuntime({ service: 'executor', config, opsPort: config.OPS_PORT });
      runtime.logger.info({ module: 'lifecycle', action: 'start', status: 'ok', ops_port: runtime.ops?.port }, 'executor started');
    },
    async stop() {
      const current = runtime;
      runtime = undefined;
      await current?.close();
    },
  };
}
