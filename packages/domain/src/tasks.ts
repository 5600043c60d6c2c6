import { z } from 'zod';

/**
 * Lifecycle of a supervised task as Warden sees it (the transitions are in `supervisor/task-lifecycle.ts`). A
 * task is `pending` until its first decision; decisions move it to `verifying` (allowed at pre-flight),
 * `running`, `retrying`, `paused` (a gate is open) or `blocked`; the agent finishes it as `completed`, `failed`
 * or `cancelled`. Follow-up tasks Warden opens itself (the lead miner) start `ready` or as a `draft`.
 */
export const TaskStatusSchema = z.enum([
  'pending',
  'draft',
  'ready',
  'running',
  'verifying',
  'retrying',
  'paused',
  'blocked',
  'completed',
  'failed',
  'cancelled',
]);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** `expired`: nobody released the gate before its deadline, so the task was blocked (docs/supervisor.md). */
export const GateStateSchema = z.enum(['open', 'released', 'expired', 'denied']);
export type GateState = z.infer<typeof GateStateSchema>;

/** A pause: the task waits at `checkpoint` until a person releases the gate. */
export const GateSchema = z.object({
  gate_id: z.string(),
  task_id: z.string(),
  checkpoint: z.string(),
  reason: z.string(),
  state: GateStateSchema,
  decision_id: z.string().nullable(),
  opened_at: z.string(),
  released_at: z.string().nullable(),
  released_by: z.string().nullable(),
  /** The deadline: past it the gate expires and its task is blocked. */
  expires_at: z.string(),
});
export type Gate = z.infer<typeof GateSchema>;

export const TaskViewSchema = z.object({
  task_id: z.string(),
  status: TaskStatusSchema,
  metadata: z.record(z.string(), z.unknown()),
  retry_count: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
  open_gates: z.array(GateSchema),
});
export type TaskView = z.infer<typeof TaskViewSchema>;

export const AuditLevelSchema = z.enum(['info', 'warn', 'error']);
export type AuditLevel = z.infer<typeof AuditLevelSchema>;

export const AuditViewSchema = z.object({
  audit_id: z.string(),
  event_type: z.string(),
  level: AuditLevelSchema,
  decision_id: z.string().nullable(),
  payload: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});
export type AuditView = z.infer<typeof AuditViewSchema>;
