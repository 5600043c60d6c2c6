/**
 * Step `locked`: one writer per workspace. The Redlock lock (extended while the execution runs) comes with a
 * fencing token from Postgres that every later write checks. A busy workspace defers the job (it is delayed,
 * not failed); an unknown workspace, or one the tenant may not use, is refused before anything is touched.
 */
import type { ChangeSetHeadRow } from '@warden/db';
import type { Logger } from '@warden/observability';
import type { HeldWorkspace } from '../../workspace-lock.js';
import type { Workspace } from '../../workspaces.js';
import { EXECUTABLE_STATUSES, type Attempt, type ExecuteOutcome, type Pipeline } from '../context.js';
import { refuse } from '../outcomes/refuse.js';
import { settleChangeSet } from '../settle.js';

/** A deferred job comes back after this plus up to `RETRY_JITTER_MS`, so waiting jobs do not return in step. */
const RETRY_BASE_MS = 500;
const RETRY_JITTER_MS = 1500;

/** The workspace, held; otherwise how the execution ends for now (refused, or deferred while it is busy). */
export async function lockWorkspace(
  pipeline: Pipeline,
  row: ChangeSetHeadRow,
  log: Logger,
): Promise<{ held: HeldWorkspace; workspace: Workspace } | ExecuteOutcome> {
  const { workspaces, locks, lockWaitMs, metrics } = pipeline.options;
  const resolved = workspaces.resolve(row.workspace, row.tenant_id);
  if ('problem' in resolved)
    return refuse(pipeline, row, { code: 'unknown_workspace', message: resolved.problem });
  const waitStarted = performance.now();
  const held = await locks.acquire(
    row.workspace,
    { tenantId: row.tenant_id, changesetId: row.changeset_id },
    lockWaitMs,
  );
  metrics?.lockWaitSeconds.observe((performance.now() - waitStarted) / 1000);
  if (held) return { held, workspace: resolved.workspace };
  log.info({ action: 'lock', status: 'deferred' }, `workspace "${row.workspace}" is busy; deferred`);
  return {
    status: 'deferred',
    reason: `workspace "${row.workspace}" is busy`,
    retryInMs: RETRY_BASE_MS + Math.round(Math.random() * RETRY_JITTER_MS),
  };
}

/**
 * Starts the attempt once the workspace is held (and whatever a previous holder left is recovered): status
 * `validating` under this holder's fencing token, and the `locked` step. False when the change set moved on.
 */
export async function startAttempt({ options, recorder }: Pipeline, at: Attempt): Promise<boolean> {
  return settleChangeSet(options.db, {
    key: at.key,
    owner: { statusIn: EXECUTABLE_STATUSES },
    patch: {
      status: 'validating',
      attempts: at.attempt,
      started_at: new Date(),
      finished_at: null,
      fence_token: at.held.token,
      error_code: null,
      error_message: null,
    },
    steps: [
      recorder.entry(at, {
        step: 'locked',
        status: 'ok',
        message: `workspace "${at.workspace.name}" locked by ${options.executorId} with fencing token ${at.held.token}`,
        detail: { executor_id: options.executorId, fence_token: at.held.token },
        event: 'CHANGESET_EXECUTION_STARTED',
      }),
    ],
  });
}
