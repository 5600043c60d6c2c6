/**
 * What an agent proposes: a ChangePlan (intent, risk, rollback and verification plans, health checks)
 * and a ChangeSet (the file changes, sealed by a checksum). The schemas are shared by the API, the executor, the
 * SDK and the CLI, and generate the OpenAPI document.
 */
import { z } from 'zod';
import { SeveritySchema } from '../decisions.js';
import { sha256Hex } from '../canonical-json.js';

/** Risk levels a plan proposes and the WriteGate settles on; the same scale as finding severities. */
export const RiskLevelSchema = SeveritySchema;
export type RiskLevel = z.infer<typeof RiskLevelSchema>;

/**
 * Free text that is stored and audited. NUL is refused: Postgres cannot store it in text or jsonb, and no
 * legitimate description needs it. (Paths are not free text: a NUL there is a WriteGate DENY, escaped on display.)
 */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .refine((value) => !value.includes('\u0000'), 'must not contain NUL characters');

export const Sha256HexSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 digest: 64 lowercase hex digits');

/** Ids chosen by the agent: printable, URL- and log-safe. */
const ClientIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/,
    'must start with a letter or digit and use only letters, digits, "_", ".", ":", "@" and "-"',
  );

export const ChangeSetIdSchema = ClientIdSchema;
export const PlanIdSchema = ClientIdSchema;

/** A workspace is named, never addressed by path: the executor maps names to roots from its configuration. */
export const WorkspaceNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'must start with a letter or digit and use only letters, digits, "_", "." and "-"',
  );

/**
 * A verification named in the WriteGate policy (`verifications:`). The agent picks one by name; the command, its
 * environment and its inputs are the policy author's (docs/executor.md, "Verifications").
 */
export const VerificationRefSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9_.-]*$/,
    'must name a verification of the WriteGate policy (lowercase letters, digits, "_", "." and "-")',
  );

/** Why a command written by the agent is refused: shown at the field that carries it. */
export const AGENT_COMMAND_REFUSED =
  'agent-written commands are not run: name a verification of the WriteGate policy instead';

const retryShape = {
  /** Tries before the check counts as failed (a service coming back up may need a few). @defaultValue `1` */
  attempts: z.number().int().min(1).max(20).default(1),
  /** Wait between tries. @defaultValue `1000` */
  interval_ms: z.number().int().min(0).max(60_000).default(1000),
};

export const HttpHealthCheckSchema = z
  .object({
    type: z.literal('http'),
    name: text(200).min(1),
    url: z.url({ protocol: /^https?$/ }),
    /** @defaultValue `GET` */
    method: z.enum(['GET', 'HEAD']).default('GET'),
    /** Statuses that count as healthy. @defaultValue any 2xx */
    expected_status: z.array(z.number().int().min(100).max(599)).min(1).max(50).optional(),
    /** @defaultValue `5000` */
    timeout_ms: z.number().int().min(1).max(120_000).default(5000),
    ...retryShape,
  })
  .strict();

/** A health check that runs one of the policy's verifications (again, with retries) after the change. */
export const VerificationHealthCheckSchema = z
  .object({
    type: z.literal('verification'),
    name: text(200).min(1),
    /** The name of a verification in the WriteGate policy. */
    verification: VerificationRefSchema,
    ...retryShape,
  })
  .strict();

export const HealthCheckSchema = z.preprocess(
  (value, ctx) => {
    // Refused with its own message rather than "invalid discriminator": this used to be accepted.
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'command') {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `${AGENT_COMMAND_REFUSED} (type "verification")`,
      });
      return z.NEVER;
    }
    return value;
  },
  z.discriminatedUnion('type', [HttpHealthCheckSchema, VerificationHealthCheckSchema]),
);
export type HealthCheck = z.infer<typeof HealthCheckSchema>;

/** How the change is verified: prose for the reviewer and the names of the policy's verifications to run. */
export const VerificationPlanSchema = z.preprocess(
  // Agents often send the plan as prose; it is kept, with nothing to run.
  (value) => (typeof value === 'string' ? { description: value } : value),
  z
    .object({
      description: text(8000).default(''),
      /** Verifications of the WriteGate policy to run after the apply, in order. @defaultValue `[]` */
      verifications: z.array(VerificationRefSchema).max(20).default([]),
      /** Refused unless empty: kept only so older producers sending `commands: []` still validate. */
      commands: z
        .array(z.unknown())
        .max(0, AGENT_COMMAND_REFUSED + ' (verification_plan.verifications)')
        .optional(),
    })
    .strict()
    .transform(({ commands: _refused, ...plan }) => plan),
);
export type VerificationPlan = z.infer<typeof VerificationPlanSchema>;

export const ChangePlanSchema = z
  .object({
    plan_id: PlanIdSchema,
    intent: text(2000).min(1),
    objective: text(4000).default(''),
    rationale: text(8000).default(''),
    affected_paths: z.array(z.string().max(4096)).max(10_000).default([]),
    risk_level_proposed: RiskLevelSchema,
    /** How to undo the change by hand if it comes to that (the executor rolls back on its own). */
    rollback_plan: text(8000).default(''),
    verification_plan: VerificationPlanSchema.optional(),
    health_checks: z.array(HealthCheckSchema).max(20).default([]),
    created_by: text(200).min(1),
    confidence: z.number().min(0).max(1),
    run_id: text(200).optional(),
  })
  .strict();
export type ChangePlan = z.infer<typeof ChangePlanSchema>;

export const FileOperationSchema = z.enum(['create', 'update', 'delete']);
export type FileOperation = z.infer<typeof FileOperationSchema>;

/**
 * One file change. The path is not validated here: an unsafe path is a WriteGate DENY with its reason, stored
 * and audited like any verdict, rather than a bare 400. Hashes are SHA-256 of the UTF-8 bytes.
 */
export const FileChangeSchema = z
  .object({
    operation: FileOperationSchema,
    path: z.string().max(4096),
    old_content: z.string().optional(),
    new_content: z.string().optional(),
    old_hash: Sha256HexSchema.optional(),
    new_hash: Sha256HexSchema.optional(),
  })
  .strict()
  .superRefine((change, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    if (change.operation === 'create') {
      if (change.new_content === undefined) problem('new_content', 'a create needs new_content');
      if (change.old_content !== undefined || change.old_hash !== undefined)
        problem('old_hash', 'a create must not name old content: the file must not exist');
    } else if (change.operation === 'update') {
      if (change.new_content === undefined) problem('new_content', 'an update needs new_content');
      if (change.old_content === undefined && change.old_hash === undefined)
        problem('old_hash', 'an update needs old_hash (or old_content): it is the compare-and-swap guard');
    } else {
      if (change.new_content !== undefined || change.new_hash !== undefined)
        problem('new_content', 'a delete must not carry new content');
      if (change.old_content === undefined && change.old_hash === undefined)
        problem('old_hash', 'a delete needs old_hash (or old_content): it is the compare-and-swap guard');
    }
    if (
      change.old_content !== undefined &&
      change.old_hash !== undefined &&
      sha256Hex(change.old_content) !== change.old_hash
    ) {
      problem('old_hash', 'does not match the SHA-256 of old_content');
    }
    if (
      change.new_content !== undefined &&
      change.new_hash !== undefined &&
      sha256Hex(change.new_content) !== change.new_hash
    ) {
      problem('new_hash', 'does not match the SHA-256 of new_content');
    }
  });
export type FileChange = z.infer<typeof FileChangeSchema>;

export const ChangeSetSchema = z
  .object({
    changeset_id: ChangeSetIdSchema,
    plan_id: PlanIdSchema,
    workspace: WorkspaceNameSchema,
    changes: z.array(FileChangeSchema).min(1).max(10_000),
    /** SHA-256 over the canonical JSON (sorted keys) of `changes`; see `computeChangeSetChecksum`. */
    checksum: Sha256HexSchema,
    generated_by: text(200).min(1),
  })
  .strict();
export type ChangeSet = z.infer<typeof ChangeSetSchema>;

/** `POST /v1/changesets`: the plan and its change set, submitted together. */
export const ChangeSetSubmissionSchema = z
  .object({ plan: ChangePlanSchema, changeset: ChangeSetSchema })
  .strict()
  .superRefine((submission, ctx) => {
    if (submission.plan.plan_id !== submission.changeset.plan_id) {
      ctx.addIssue({
        code: 'custom',
        path: ['changeset', 'plan_id'],
        message: `must equal plan.plan_id ("${submission.plan.plan_id}")`,
      });
    }
  });
export type ChangeSetSubmission = z.infer<typeof ChangeSetSubmissionSchema>;
/** A submission as a producer writes it (defaults may be left out). */
export type ChangeSetSubmissionInput = z.input<typeof ChangeSetSubmissionSchema>;
