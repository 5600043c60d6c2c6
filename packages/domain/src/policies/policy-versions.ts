/** The API's view of stored policy versions, and the bodies of push, activate and rollback. */
import { z } from 'zod';
import { unstorableTextProblem } from '../validation.js';
import { MAX_POLICY_SOURCE_CHARS, PolicyKindSchema } from './policy-kinds.js';

/** Text Postgres can store: no NUL, no lone surrogate (the message names which). */
const storableText = (schema: z.ZodString) =>
  schema.superRefine((value, ctx) => {
    const problem = unstorableTextProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/**
 * A version's life: `draft` when pushed; `active` once approved (one per tenant and kind); `superseded` when
 * another version was activated after it (it can be rolled back to); `discarded` when a draft was never
 * activated and a later version was (it cannot be activated any more: its diff no longer says what changes).
 */
export const PolicyVersionStatusSchema = z.enum(['draft', 'active', 'superseded', 'discarded']);
export type PolicyVersionStatus = z.infer<typeof PolicyVersionStatusSchema>;

export const PolicyVersionNumberSchema = z.coerce
  .number()
  .int()
  .min(1)
  .max(2_147_483_647)
  .meta({ description: 'A stored version number (1, 2, …), per tenant and kind' });

export const PolicyPushSchema = z
  .object({
    kind: PolicyKindSchema.default('supervisor').meta({
      description: 'Which policy: `supervisor` by default',
    }),
    source: storableText(z.string().min(1).max(MAX_POLICY_SOURCE_CHARS)).meta({
      description: 'The policy file, as YAML text; validated against the schema of its kind',
    }),
    note: storableText(z.string().max(1000))
      .optional()
      .meta({ description: 'What the change is for, shown to the approver' }),
  })
  .strict();
export type PolicyPush = z.infer<typeof PolicyPushSchema>;

export const PolicyActivateSchema = z
  .object({
    note: storableText(z.string().max(1000))
      .optional()
      .meta({ description: 'Why it was approved; recorded in the audit trail' }),
  })
  .strict();

export const PolicyRollbackSchema = z
  .object({
    to_version: PolicyVersionNumberSchema.meta({
      description: 'An earlier version that was active once; it becomes the active version again',
    }),
    reason: storableText(z.string().min(1).max(1000)).meta({
      description: 'Why; recorded in the audit trail',
    }),
  })
  .strict();

export const PolicyVersionViewSchema = z.object({
  tenant_id: z.string(),
  kind: PolicyKindSchema,
  version: z.number().int(),
  status: PolicyVersionStatusSchema,
  /** The `version` field of the file itself. */
  file_version: z.string(),
  /** What decisions made under it record as the policy file's version. */
  version_label: z.string(),
  sha256: z.string(),
  note: z.string().nullable(),
  /** The version that was active when this one was pushed; its diff is against that one. */
  base_version: z.number().int().nullable(),
  diff: z.string(),
  pushed_by: z.string(),
  pushed_by_owner: z.string(),
  pushed_at: z.string(),
  activated_by: z.string().nullable(),
  activated_by_owner: z.string().nullable(),
  activated_at: z.string().nullable(),
  source: z.string().optional(),
});
export type PolicyVersionView = z.infer<typeof PolicyVersionViewSchema>;
