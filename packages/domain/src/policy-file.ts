import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ValidationError, type ErrorDetail } from './errors.js';
import {
  CapabilityRuleSchema,
  DEFAULT_CAPABILITY_RULES,
  DEFAULT_FORBIDDEN_COMMANDS,
  ForbiddenCommandRuleSchema,
} from './supervisor/redline-rules.js';
import { PolicyTestSchema } from './supervisor/policy-test-schema.js';
import { describeIssues } from './validation.js';
import { DEFAULT_EXPIRY_MINUTES, ExpiryMinutesSchema } from './expiry.js';

/**
 * Parses a YAML policy or rules file against its schema. Both YAML syntax errors (with line and column)
 * and schema violations (with the dotted path of the field) become a {@link ValidationError} naming `fileName`.
 */
export function parsePolicyYaml<S extends z.ZodType>(text: string, schema: S, fileName: string): z.output<S> {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const details: ErrorDetail[] = doc.errors.map((error) => {
      const pos = error.linePos?.[0];
      return {
        path: pos ? `line ${pos.line}, column ${pos.col}` : '(root)',
        message: (error.message.split('\n')[0] ?? 'YAML syntax error').replace(
          / at line \d+, column \d+:?$/,
          '',
        ),
      };
    });
    throw new ValidationError(
      `${fileName}: not valid YAML: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
      details,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS() ?? {};
  } catch (error) {
    // The yaml library refuses to expand an alias bomb (`&a [*b, *b, …]` nested) here, with a plain Error.
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    throw new ValidationError(`${fileName}: not valid YAML: ${message}`, [{ path: '(root)', message }]);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = describeIssues(result.error.issues);
  throw new ValidationError(
    `${fileName}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`,
    details,
  );
}

export const EnforcementModeSchema = z.enum(['enforce', 'monitor']);
export type EnforcementMode = z.infer<typeof EnforcementModeSchema>;

/**
 * The supervisor's policy file (`infra/policies/supervisor.yaml`): thresholds, redlines and enforcement
 * modes. Every field has its documented default (docs/supervisor.md), so an empty file is a valid, strict policy.
 */
export const SupervisorPolicyFileSchema = z
  .object({
    /** Bumped by whoever edits the file; recorded on every decision. @defaultValue `1` */
    version: z.union([z.string(), z.number()]).transform(String).default('1'),
    thresholds: z
      .object({
        /** `risk_indicators.error_rate` above this → RISK/MEDIUM. @defaultValue `0.3` */
        error_rate: z.number().min(0).max(1).default(0.3),
        /** `risk_indicators.resource_usage` above this → RISK/MEDIUM. @defaultValue `0.8` */
        resource_usage: z.number().min(0).max(1).default(0.8),
        /** `risk_indicators.security_score` below this → RISK/MEDIUM. @defaultValue `50` */
        security_score: z.number().min(0).max(100).default(50),
        /** Retries allowed when the task's metadata does not say. @defaultValue `3` */
        max_retries: z.number().int().min(0).max(100).default(3),
        /** A policy running longer than this fails closed (REQUIRE_REVIEW). @defaultValue `200` */
        policy_timeout_ms: z.number().int().min(1).max(60_000).default(200),
      })
      .strict()
      .prefault({}),
    redlines: z
      .object({
        /**
         * Commands no task may run, as rules over parsed commands (programs, flags, paths, stdin): each match
         * is a REDLINE_FORBIDDEN_COMMAND finding. See `redline-rules.ts` and docs/supervisor.md.
         * @defaultValue {@link DEFAULT_FORBIDDEN_COMMANDS}
         */
        forbidden_commands: z.array(ForbiddenCommandRuleSchema).prefault(DEFAULT_FORBIDDEN_COMMANDS),
        /**
         * Commands a task may run only when its agent declares a capability: a match without it is a
         * REDLINE_UNDECLARED_<CAPABILITY> finding (`network`, `file_write`).
         * @defaultValue {@link DEFAULT_CAPABILITY_RULES}
         */
        capability_rules: z.array(CapabilityRuleSchema).prefault(DEFAULT_CAPABILITY_RULES),
        /** Globs no command argument or declared path may name. */
        forbidden_paths: z
          .array(z.string().min(1))
          .default([
            '/etc/**',
            '**/.ssh/**',
            '**/.env',
            '**/*.pem',
            '**/*.key',
            '**/.aws/**',
            '**/.gnupg/**',
            '**/.kube/**',
            '**/.docker/config.json',
            '**/.git-credentials',
            '**/.netrc',
            '**/.pgpass',
            '**/.npmrc',
            '**/.pypirc',
            '**/.config/gh/**',
            '**/.config/gcloud/**',
            '**/.azure/**',
          ]),
        /** Fields each spec must declare when present. */
        required_fields: z
          .object({
            agent_spec: z.array(z.string()).default(['name', 'capabilities']),
            command_spec: z.array(z.string()).default(['name', 'command']),
            rule_spec: z.array(z.string()).default(['name', 'condition', 'action']),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /**
     * How long a pause gate waits for a person: at the deadline the gate expires and its task is blocked
     * (docs/supervisor.md, "Expiry"). See `gateDeadline`.
     */
    gates: z
      .object({
        /** Minutes an open gate waits, for checkpoints not listed below. @defaultValue `1440` (24 h) */
        expire_after_minutes: ExpiryMinutesSchema.default(DEFAULT_EXPIRY_MINUTES),
        /** Per checkpoint (`open_plan`, `deploy`, …): minutes a gate there waits. @defaultValue `{}` */
        checkpoints: z
          .record(
            z.string().min(1).max(200),
            z.object({ expire_after_minutes: ExpiryMinutesSchema }).strict(),
          )
          .default({}),
      })
      .strict()
      .prefault({}),
    enforcement: z
      .object({
        /** Mode for every event type and tenant not listed below. @defaultValue `enforce` */
        default: EnforcementModeSchema.default('enforce'),
        event_types: z.record(z.string(), EnforcementModeSchema).default({}),
        tenants: z.record(z.string(), EnforcementModeSchema).default({}),
      })
      .strict()
      .prefault({}),
    /**
     * Unit tests of this file (`warden policy test -f FILE`): stories of events with the decision each must
     * get. The supervisor ignores them. See docs/supervisor.md, "Testing a policy". @defaultValue `[]`
     */
    tests: z.array(PolicyTestSchema).max(1000).default([]),
  })
  .strict();
export type SupervisorPolicyFile = z.infer<typeof SupervisorPolicyFileSchema>;
