import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../canonical-json.js';
import { RiskLevelSchema } from './change-set.js';

const GlobSchema = z
  .string()
  .min(1)
  .max(500)
  .refine((g) => !/\p{Cc}|\\/u.test(g), 'must not contain control characters or backslashes');

/** Files no change set may touch, whatever else the policy says (the WriteGate's second step, `forbidden_paths`). */
export const DEFAULT_FORBIDDEN_PATHS = [
  '.git/**',
  '**/.git/**',
  '.env',
  '.env.*',
  '*.pem',
  '*.key',
  'credentials.*',
  'secrets.*',
  '**/.ssh/**',
  'id_rsa*',
  'id_ed25519*',
  'node_modules/**',
  '**/node_modules/**',
  'package-lock.json',
  'pnpm-lock.yaml',
  'yarn.lock',
  'npm-shrinkwrap.json',
  'Cargo.lock',
  'poetry.lock',
  'Pipfile.lock',
  'Gemfile.lock',
  'composer.lock',
  'go.sum',
  'infra/policies/**',
  'writegate.yaml',
  '*.warden-tmp',
];

/** Source code: changing it is at least MEDIUM risk. */
export const DEFAULT_SOURCE_PATHS = [
  'src/**',
  '*.ts',
  '*.tsx',
  '*.js',
  '*.jsx',
  '*.mjs',
  '*.cjs',
  '*.py',
  '*.go',
  '*.rs',
  '*.java',
  '*.kt',
  '*.rb',
  '*.php',
  '*.cs',
  '*.c',
  '*.h',
  '*.cpp',
  '*.hpp',
  '*.swift',
  '*.scala',
  '*.sh',
  'Dockerfile',
];

/** Database schemas and migrations: at least HIGH risk. */
export const DEFAULT_SCHEMA_PATHS = [
  '**/migrations/**',
  '**/migration/**',
  '*.sql',
  'schema.*',
  '*.prisma',
  '**/db/schema/**',
];

/** Always a person's call: schemas, security code, policies, the executor and the gate themselves. */
export const DEFAULT_ALWAYS_REVIEW = [
  '*schema*',
  '**/security/**',
  '**/auth/**',
  '**/policies/**',
  '*.rego',
  'services/executor/**',
  'packages/domain/src/executor/**',
  '.github/workflows/**',
  'Dockerfile',
  'infra/**',
];

/** Programs verification commands and command health checks may run without a person's approval. */
export const DEFAULT_ALLOWED_COMMANDS = [
  'npm',
  'pnpm',
  'yarn',
  'npx',
  'node',
  'tsc',
  'eslint',
  'prettier',
  'vitest',
  'jest',
  'pytest',
  'go',
  'cargo',
  'make',
  'true',
  'test',
];

/**
 * The WriteGate policy file (`infra/policies/writegate.yaml`). Every field has a default, so an empty file is a
 * valid, strict policy; unknown fields are refused so a typo cannot silently loosen it.
 */
export const WriteGatePolicySchema = z
  .object({
    /** Bumped by whoever edits the file; recorded with every verdict beside the policy hash. @defaultValue `1` */
    version: z.union([z.string(), z.number()]).transform(String).default('1'),
    /** A change outside every one of these globs is denied. @defaultValue `['**']` */
    allowed_paths: z.array(GlobSchema).min(1).default(['**']),
    /** Denied, risk CRITICAL. Matched case-insensitively. @defaultValue {@link DEFAULT_FORBIDDEN_PATHS} */
    forbidden_paths: z.array(GlobSchema).default(DEFAULT_FORBIDDEN_PATHS),
    constraints: z
      .object({
        /** More distinct files than this → DENY. @defaultValue `50` */
        max_files_touched: z.number().int().min(1).max(100_000).default(50),
        /** More changed lines (added + removed) than this → DENY. @defaultValue `5000` */
        max_patch_lines: z.number().int().min(1).max(10_000_000).default(5000),
        /** A new content larger than this (UTF-8 bytes) → DENY. @defaultValue `1048576` */
        max_file_bytes: z
          .number()
          .int()
          .min(1)
          .max(100 * 1024 * 1024)
          .default(1024 * 1024),
      })
      .strict()
      .prefault({}),
    risk: z
      .object({
        /** @defaultValue {@link DEFAULT_SOURCE_PATHS} */
        source_paths: z.array(GlobSchema).default(DEFAULT_SOURCE_PATHS),
        /** Risk at least this when source code changes. @defaultValue `MEDIUM` */
        source_floor: RiskLevelSchema.default('MEDIUM'),
        /** Risk at least this when any file is deleted. @defaultValue `MEDIUM` */
        delete_floor: RiskLevelSchema.default('MEDIUM'),
        /** More changed lines than this raise the risk to `large_change_floor`. @defaultValue `500` */
        large_change_lines: z.number().int().min(1).default(500),
        /** @defaultValue `HIGH` */
        large_change_floor: RiskLevelSchema.default('HIGH'),
        /** @defaultValue {@link DEFAULT_SCHEMA_PATHS} */
        schema_paths: z.array(GlobSchema).default(DEFAULT_SCHEMA_PATHS),
        /** @defaultValue `HIGH` */
        schema_floor: RiskLevelSchema.default('HIGH'),
      })
      .strict()
      .prefault({}),
    approval: z
      .object({
        /** Touching any of these always needs a person. @defaultValue {@link DEFAULT_ALWAYS_REVIEW} */
        always_review: z.array(GlobSchema).default(DEFAULT_ALWAYS_REVIEW),
        /** Effective risk at or above this needs a person. @defaultValue `HIGH` */
        risk_threshold: RiskLevelSchema.default('HIGH'),
        /** From this risk on, a plan without health checks needs a person. @defaultValue `MEDIUM` */
        require_health_checks_from: RiskLevelSchema.default('MEDIUM'),
        /** A plan without a rollback plan needs a person. @defaultValue `true` */
        require_rollback_plan: z.boolean().default(true),
        /** A plan without a verification plan needs a person. @defaultValue `true` */
        require_verification_plan: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    commands: z
      .object({
        /**
         * Bare program names verification commands and command health checks may run unreviewed; anything
         * else (another program, or any path such as `./run.sh`) needs a person. @defaultValue {@link DEFAULT_ALLOWED_COMMANDS}
         */
        allowed: z
          .array(z.string().regex(/^[A-Za-z0-9._+-]+$/, 'a bare program name'))
          .default(DEFAULT_ALLOWED_COMMANDS),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type WriteGatePolicy = z.infer<typeof WriteGatePolicySchema>;

/** SHA-256 of the policy as parsed (defaults filled in), so two files meaning the same policy hash the same. */
export function writeGatePolicyHash(policy: WriteGatePolicy): string {
  return sha256Hex(canonicalJson(policy));
}
