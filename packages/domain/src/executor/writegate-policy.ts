import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../canonical-json.js';
import { RiskLevelSchema } from './change-set.js';
import { DEFAULT_EXPIRY_MINUTES, ExpiryMinutesSchema } from '../expiry.js';

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

/**
 * Files that decide what a verification runs whatever its own `inputs` say (`npm test` runs the `test` script of
 * `package.json`, `make` the Makefile, a test runner its config): a change touching one of them is at least
 * HIGH risk and needs a person whenever the policy names any verification. Matched case-insensitively.
 */
export const VERIFICATION_DEFINITION_FILES = [
  'package.json',
  '.npmrc',
  '.yarnrc',
  '.yarnrc.yml',
  '.pnpmfile.cjs',
  'Makefile',
  'GNUmakefile',
  '*.mk',
  'tsconfig*.json',
  'vitest.config.*',
  'vitest.workspace.*',
  'vite.config.*',
  'jest.config.*',
  'jest.setup.*',
  'babel.config.*',
  '.babelrc*',
  '.mocharc*',
  'playwright.config.*',
  'pytest.ini',
  'conftest.py',
  'pyproject.toml',
  'setup.cfg',
  'setup.py',
  'tox.ini',
  'noxfile.py',
  'Cargo.toml',
  'build.rs',
  'go.mod',
];

/** Environment variables a verification may never be given: the executor's own connections and secrets. */
const RESERVED_ENV = /^(DATABASE_URL|REDIS_URL|PATH|WARDEN_.*|EXECUTOR_.*|TEST_DATABASE_URL|TEST_REDIS_URL)$/;

/** How a change set names a verification of the policy. */
export const VerificationNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9_.-]*$/,
    'must start with a lowercase letter or digit and use only lowercase letters, digits, "_", "." and "-"',
  );

/**
 * A verification command the policy author wrote (the agent only names it): run without a shell in the workspace
 * root, in the executor's sandbox (docs/executor.md, "Verification sandbox").
 */
export const VerificationSchema = z
  .object({
    /** Shown to reviewers beside the name. @defaultValue `''` */
    description: z.string().max(2000).default(''),
    /** The program and its arguments, exactly as run: `[npm, test]`. The program is a bare name looked up on the sandbox PATH or an absolute path. */
    command: z
      .array(
        z
          .string()
          .min(1)
          .max(4000)
          // Tabs and newlines are fine in an argument (no shell reads it); other control characters are not.
          .refine(
            (arg) => !/[^\P{Cc}\t\n]/u.test(arg),
            'must not contain control characters other than tab and newline',
          ),
      )
      .min(1)
      .max(100),
    /** Killed, with everything it started, after this long (bounded by `EXECUTOR_MAX_COMMAND_TIMEOUT_MS`). @defaultValue `60000` */
    timeout_ms: z.number().int().min(1).max(3_600_000).default(60_000),
    /**
     * Names of environment variables passed through from the executor's environment (nothing else is; PATH is
     * the sandbox's own). The executor's connections and secrets are refused here. @defaultValue `[]`
     */
    env: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
          .refine((name) => !RESERVED_ENV.test(name), {
            message: "is the executor's own (connections, secrets, PATH): never given to a verification",
          }),
      )
      .max(50)
      .default([]),
    /**
     * Globs of files this command executes or reads as configuration (test files, scripts it calls): a change
     * touching one is at least HIGH risk and needs a person, as {@link VERIFICATION_DEFINITION_FILES} always do.
     * @defaultValue `[]`
     */
    inputs: z.array(GlobSchema).max(200).default([]),
    /** Whether the command may use the network (with bubblewrap; without it nothing is isolated). @defaultValue `false` */
    network: z.boolean().default(false),
  })
  .strict();
export type Verification = z.infer<typeof VerificationSchema>;

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
        /**
         * Minutes a change set waits for approval; at the deadline it is rejected (docs/executor.md, "Expiry").
         * @defaultValue `1440` (24 h)
         */
        expire_after_minutes: ExpiryMinutesSchema.default(DEFAULT_EXPIRY_MINUTES),
        /** Per effective risk (`CRITICAL: 240`): overrides `expire_after_minutes`. @defaultValue `{}` */
        expire_after_minutes_by_risk: z.partialRecord(RiskLevelSchema, ExpiryMinutesSchema).default({}),
      })
      .strict()
      .prefault({}),
    /**
     * The only commands the executor runs after applying a change: change sets name them
     * (`verification_plan.verifications`, health checks of `type: verification`); an agent never writes argv.
     * @defaultValue `{}` (change sets can name none)
     */
    verifications: z.record(VerificationNameSchema, VerificationSchema).default({}),
    /** Removed: agent-written commands are never run. Refused with a message rather than silently ignored. */
    commands: z
      .unknown()
      .optional()
      .refine((value) => value === undefined, {
        message:
          'commands.allowed was removed: agent-written commands are never run; declare named commands under `verifications`',
      }),
  })
  .strict();
export type WriteGatePolicy = z.infer<typeof WriteGatePolicySchema>;

/** SHA-256 of the policy as parsed (defaults filled in), so two files meaning the same policy hash the same. */
export function writeGatePolicyHash(policy: WriteGatePolicy): string {
  return sha256Hex(canonicalJson(policy));
}
