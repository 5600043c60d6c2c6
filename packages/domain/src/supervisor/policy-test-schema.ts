/**
 * The schema of the unit tests a supervisor policy file carries (`tests:`); `policy-tests.ts` runs them.
 * Kept apart from the runner so the policy file's schema does not depend on the decision code.
 */
import { z } from 'zod';
import { DecisionTypeSchema } from '../decisions.js';
import { TaskStatusSchema } from '../tasks.js';

const FindingCodesSchema = z.array(z.string().min(1).max(200)).max(100);

/** What one event of a test must be decided. */
export const PolicyTestExpectationSchema = z
  .object({
    /** The decision type the event must get (after the file's enforcement mode). */
    decision: DecisionTypeSchema,
    /** Finding codes that must each be among the decision's findings. @defaultValue `[]` */
    findings: FindingCodesSchema.default([]),
    /** Finding codes that must not be among them. @defaultValue `[]` */
    absent_findings: FindingCodesSchema.default([]),
    /** The task's status after this event. @defaultValue not checked */
    status: TaskStatusSchema.optional(),
  })
  .strict();

export const PolicyTestEventSchema = z
  .object({
    event_type: z.string().min(1).max(100),
    /** @defaultValue `{}` */
    payload: z.record(z.string(), z.unknown()).default({}),
    expect: PolicyTestExpectationSchema,
  })
  .strict();

export const PolicyTestSchema = z
  .object({
    name: z.string().min(1).max(200),
    /** The task as stored before the first event. @defaultValue a task seen for the first time */
    task: z
      .object({
        status: TaskStatusSchema,
        metadata: z.record(z.string(), z.unknown()).default({}),
        retry_count: z.number().int().min(0).default(0),
      })
      .strict()
      .optional(),
    /** Other tasks of the tenant holding exclusive resources (for conflict checks). @defaultValue `[]` */
    other_tasks: z
      .array(z.object({ task_id: z.string().min(1), resources: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
    /** The events, in the order they arrive; each is decided seeing the effects of the ones before it. */
    events: z.array(PolicyTestEventSchema).min(1).max(1000),
  })
  .strict();
export type PolicyTest = z.infer<typeof PolicyTestSchema>;
