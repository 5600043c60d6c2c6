import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { RunnableService } from '@warden/observability';
import type { Config } from './config.js';

/** The scheduler: fires governed cron triggers (issue #4 adds the triggers). */
export function createService(config: Config): RunnableService & { runtime(): ServiceRuntime | undefined } {
  let runtime: ServiceRuntime | undefined;
  return {
    runtime: () => runtime,
    async start() {
      runtime = await openRuntime({ service: 'scheduler', config, opsPort: config.OPS_PORT });
      runtime.logger.info({ module: 'lifecycle', action: 'start', status: 'ok', ops_port: runtime.ops?.port }, 'scheduler started');
    },
    async stop() {
      const current = runtime;
      runtime = undefined;
      await current?.close();
    },
  };
}
