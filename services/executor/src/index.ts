export { loadConfig, configSchema, type Config } from './config.js';
export { createExecutorService, type ExecutorService, type ExecutorServiceOptions } from './service.js';
export { ChangeSetRunner } from './pipeline/runner.js';
export type { ExecuteOutcome, ExecutionPoint, ExecutorHooks } from './pipeline/context.js';
export { ExecutorPoller, type PollReport } from './executor-poller.js';
export { JournalRecovery } from './journal-recovery.js';
export { loadWriteGatePolicy, type LoadedWriteGatePolicy } from './policy-loader.js';
export { loadWorkspaces, WorkspaceRegistry, type Workspace } from './workspaces.js';
export { WorkspaceLocks, HeldWorkspace } from './workspace-lock.js';
