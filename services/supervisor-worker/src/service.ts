import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { RunnableService } from '@warden/observability';
import type { Config } from './config.js';

/** The supervisor-worker: decides on every task event through policies and records each decision atomically (issue #3 adds the consumer). */
export function createService(config: Config): RunnableService & { runtime(): ServiceRuntime | undefined } {
  let runtime: ServiceRuntime | undefined;
  return {
    runtime: () => runtime,
    async start() {
      runtime = await openRuntime({ service: 'supervisor-worker', config, opsPort: config.OPS_PORT });
      runtime.logger.info({ module: 'lifecycle', action: 'start', status: 'ok', ops_port: runtime.ops?.port }, 'supervisor-worker started');
    },
    async stop() {
      const current = runtime;
      runtime = undefined;
      await current?.close();
    },
  };
}
