import { openRuntime, type ServiceRuntime } from '@warden/runtime';
import type { RunnableService } from '@warden/observability';
import type { Config } from './config.js';

/** The lead-miner: mines the audit trail for systemic risk (issue #5 adds the scans). */
export function createService(config: Config): RunnableService & { runtime(): ServiceRuntime | undefined } {
  let runtime: ServiceRuntime | undefined;
  return {
    runtime: () => runtime,
    async start() {
      runtime = await openRuntime({ service: 'lead-miner', config, opsPort: config.OPS_PORT });
      runtime.logger.info({ module: 'lifecycle', action: 'start', status: 'ok', ops_port: runtime.ops?.port }, 'lead-miner started');
    },
    async stop() {
      const current = runtime;
      runtime = undefined;
      await current?.close();
    },
  };
}
