import type { Logger } from '@warden/observability';
import { VerificationSandbox, type SandboxSettings } from './sandbox.js';

/** The executor's sandbox, with a warning at start-up when it is degraded (docs/executor.md says what to set). */
export function createVerificationSandbox(settings: SandboxSettings, logger: Logger): VerificationSandbox {
  const sandbox = VerificationSandbox.create(settings);
  const fields = { module: 'sandbox', action: 'probe', sandbox: sandbox.describe() };
  if (sandbox.capabilities.degraded.length > 0)
    logger.warn(
      { ...fields, status: 'degraded', degraded: sandbox.capabilities.degraded },
      `verification sandbox degraded: ${sandbox.capabilities.degraded.join('; ')}`,
    );
  else logger.info({ ...fields, status: 'ok' }, `verification sandbox: ${sandbox.describe()}`);
  return sandbox;
}
