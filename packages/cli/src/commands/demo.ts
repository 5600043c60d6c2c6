/**
 * `warden demo`: a short scripted story against a running stack (`npm run up`) — a blocked task, a paused one
 * released, a cron run served by its fallback, a lead finding, a change set approved and applied — each step
 * printed as it happens with ✓ or ✗ and where to look at the result. It acts through the HTTP API only, with
 * the development keys `npm run up` writes to `.warden/` (an agent's and a person's). A failing step says what
 * did not happen and what to check first, and the next step runs anyway; exit 1 when any step failed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { TriggersClient, WardenApiError, WardenClient, WardenConnectionError } from '@warden/client';
import { TenantIdSchema, ValidationError, WorkspaceNameSchema, parseOrThrow } from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { DEMO_STEPS } from '../demo/demo-steps.js';
import { DemoStepFailure, type DemoContext, type DemoStep, type StepIo } from '../demo/demo-context.js';
import { CommandFailedError, describeError } from '../errors.js';
import type { CliIo } from '../output.js';

const DemoEnvSchema = z.object({
  /** Where the API is. @defaultValue `http://127.0.0.1:3000` */
  WARDEN_API_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:3000'),
  /** A person's key (admin) to act with. @defaultValue the contents of `<keys-dir>/dev-admin-key` */
  WARDEN_DEMO_ADMIN_KEY: z.string().min(1).optional(),
  /** An agent's key (events:write, tasks:read, changesets:write). @defaultValue `<keys-dir>/dev-agent-key` */
  WARDEN_DEMO_AGENT_KEY: z.string().min(1).optional(),
  /** The executor's workspaces, read only to find the demo workspace on disk. @defaultValue none */
  EXECUTOR_WORKSPACES: z.string().optional(),
});

interface DemoFlags {
  api?: string;
  tenant: string;
  adminKey?: string;
  agentKey?: string;
  keysDir: string;
  workspace: string;
  workspaceDir?: string;
  fallbackHost: string;
  timeout: string;
}

/** Slack over a step's own deadline before the runner gives up on a step stuck in one HTTP call. */
const STEP_GUARD_MS = 15_000;

function parseTimeout(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600)
    throw new ValidationError(`--timeout must be a number of seconds from 1 to 3600, got "${value}"`);
  return seconds * 1000;
}

function parseApiUrl(value: string): string {
  const result = z.url({ protocol: /^https?$/ }).safeParse(value);
  if (!result.success) throw new ValidationError(`--api must be an http(s) URL, got "${value}"`);
  return value.replace(/\/+$/, '');
}

/** `demo-20261204-191500-a1b2`: sortable, readable, unique enough for two runs in the same second. */
function newRunId(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '-')
    .replace(/\.\d+Z$/, '');
  return `demo-${stamp}-${randomBytes(2).toString('hex')}`;
}

/** A key from a flag or variable, else from the file `npm run up` wrote; missing → one line saying what to do. */
async function keyOf(given: string | undefined, file: string, what: string, flag: string): Promise<string> {
  if (given !== undefined) return given.trim();
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const key = text?.trim();
  if (!key)
    throw new CommandFailedError(
      `no ${what} key: ${file} does not exist — start the stack with \`npm run up\` (it writes the development keys there), or pass ${flag}`,
    );
  return key;
}

/** How a printed curl or command names a key without printing it: the file it was read from, or its variable. */
function keyHint(
  flag: string | undefined,
  fromEnv: string | undefined,
  who: 'admin' | 'agent',
  file: string,
  cwd: string,
): string {
  if (flag !== undefined) return `<the --${who}-key>`;
  if (fromEnv !== undefined) return `$WARDEN_DEMO_${who.toUpperCase()}_KEY`;
  const shown = relative(cwd, file);
  return `$(cat ${shown.startsWith('..') || isAbsolute(shown) ? file : shown})`;
}

/** Where the named workspace is on this machine: `--workspace-dir`, EXECUTOR_WORKSPACES, or `npm run up`'s. */
function workspaceDirOf(
  flags: DemoFlags,
  env: z.infer<typeof DemoEnvSchema>,
  cwd: string,
  keysDir: string,
): string | undefined {
  if (flags.workspaceDir !== undefined) return resolve(cwd, flags.workspaceDir);
  if (env.EXECUTOR_WORKSPACES !== undefined) {
    try {
      const entry = (JSON.parse(env.EXECUTOR_WORKSPACES) as Record<string, unknown>)[flags.workspace];
      const root = typeof entry === 'string' ? entry : (entry as { root?: unknown } | undefined)?.root;
      if (typeof root === 'string') return resolve(cwd, root);
    } catch {
      // Only used to show the file on disk; the executor reports its own configuration problems.
    }
  }
  const local = join(keysDir, 'workspaces', flags.workspace);
  return existsSync(local) ? local : undefined;
}

/** One line for an error a step did not turn into a DemoStepFailure, and the first thing to check. */
function explain(error: unknown, apiUrl: string): { message: string; hint: string } {
  if (error instanceof DemoStepFailure) return { message: error.message, hint: error.hint };
  if (error instanceof WardenApiError) {
    const message = `the API answered ${error.status} ${error.code}: ${error.message}`;
    if (error.status === 401)
      return {
        message,
        hint: 'the key was refused: keys of another database? restart `npm run up` to renew .warden/dev-*-key',
      };
    if (error.status === 403) return { message, hint: 'the key lacks the scope named above' };
    if (error.status >= 500)
      return { message, hint: 'the API is up but Postgres or Redis is not: read the log of `npm run up`' };
    return { message, hint: 'read the answer above; `npm run warden -- preflight` checks the deployment' };
  }
  if (error instanceof WardenConnectionError)
    return {
      message: `cannot reach the API at ${apiUrl}: ${error.message}`,
      hint: 'is it running? `npm run up`',
    };
  return { message: describeError(error), hint: 'read the log of `npm run up`' };
}

/** Runs one step with its deadline; never throws. Lines a late step would print after its end are dropped. */
async function runStep(
  step: DemoStep,
  index: number,
  ctx: DemoContext,
  io: CliIo,
  timeoutMs: number,
): Promise<boolean> {
  io.out(`\n▸ ${index + 1}/${DEMO_STEPS.length} ${step.title}\n`);
  const deadline = Date.now() + timeoutMs;
  const looks: string[] = [];
  let open = true;
  const stepIo: StepIo = {
    say: (line) => {
      if (open) io.out(`    ${line}\n`);
    },
    look: (line) => {
      if (open && !looks.includes(line)) looks.push(line);
    },
    remainingMs: () => Math.max(1, deadline - Date.now()),
  };
  let guard: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    guard = setTimeout(
      () =>
        reject(
          new DemoStepFailure(
            `the step did not finish within ${Math.round((timeoutMs + STEP_GUARD_MS) / 1000)} s (an API call hung)`,
            'is the API answering? `curl ' + ctx.apiUrl + '/readyz`',
          ),
        ),
      timeoutMs + STEP_GUARD_MS,
    );
    guard.unref();
  });
  const running = step.run(ctx, stepIo);
  running.catch(() => {});
  let ok: boolean;
  try {
    await Promise.race([running, stuck]);
    io.out(`  ✓ ${step.title}\n`);
    ok = true;
  } catch (error) {
    const { message, hint } = explain(error, ctx.apiUrl);
    io.out(`  ✗ ${message}\n    first check: ${hint}\n`);
    ok = false;
  } finally {
    clearTimeout(guard);
    open = false;
  }
  if (looks.length > 0) io.out(`  where to look:\n${looks.map((line) => `    ${line}\n`).join('')}`);
  return ok;
}

export function registerDemoCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  program
    .command('demo')
    .description(
      'drive a short story against a running stack (npm run up): a blocked task, a gate released, a cron fallback, a lead finding, a change set applied',
    )
    .option('--api <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--tenant <tenant>', 'the tenant of the keys, for the printed `warden …` commands', 'dev')
    .option(
      '--admin-key <key>',
      "a person's admin key (default: $WARDEN_DEMO_ADMIN_KEY or <keys-dir>/dev-admin-key)",
    )
    .option(
      '--agent-key <key>',
      "an agent's key with events:write, tasks:read, changesets:write (default: $WARDEN_DEMO_AGENT_KEY or <keys-dir>/dev-agent-key)",
    )
    .option('--keys-dir <dir>', 'where `npm run up` wrote the development keys', '.warden')
    .option('--workspace <name>', 'the executor workspace the change set goes to', 'default')
    .option(
      '--workspace-dir <dir>',
      "that workspace's directory, to show the file on disk (default: from $EXECUTOR_WORKSPACES, else <keys-dir>/workspaces/<name>)",
    )
    .option(
      '--fallback-host <host>',
      "the address the scheduler reaches the demo trigger's fallback handler on (served by this process)",
      '127.0.0.1',
    )
    .option('--timeout <seconds>', 'how long each step may take', '60')
    .action(async (flags: DemoFlags) => {
      const env = parseOrThrow(
        DemoEnvSchema,
        {
          WARDEN_API_URL: environment.env.WARDEN_API_URL,
          WARDEN_DEMO_ADMIN_KEY: environment.env.WARDEN_DEMO_ADMIN_KEY,
          WARDEN_DEMO_AGENT_KEY: environment.env.WARDEN_DEMO_AGENT_KEY,
          EXECUTOR_WORKSPACES: environment.env.EXECUTOR_WORKSPACES,
        },
        'configuration',
      );
      const apiUrl = parseApiUrl(flags.api ?? env.WARDEN_API_URL);
      const tenant = parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
      const workspace = parseOrThrow(WorkspaceNameSchema, flags.workspace, '--workspace');
      const timeoutMs = parseTimeout(flags.timeout);
      const keysDir = isAbsolute(flags.keysDir) ? flags.keysDir : resolve(environment.cwd, flags.keysDir);
      const adminFile = join(keysDir, 'dev-admin-key');
      const agentFile = join(keysDir, 'dev-agent-key');
      const adminKey = await keyOf(
        flags.adminKey ?? env.WARDEN_DEMO_ADMIN_KEY,
        adminFile,
        'admin',
        '--admin-key',
      );
      const agentKey = await keyOf(
        flags.agentKey ?? env.WARDEN_DEMO_AGENT_KEY,
        agentFile,
        'agent',
        '--agent-key',
      );
      // Each call gives up within seconds; a step's deadline bounds its waits.
      const clientOptions = { baseUrl: apiUrl, retries: 1, timeoutMs: 10_000 };
      const ctx: DemoContext = {
        runId: newRunId(),
        apiUrl,
        tenant,
        agent: new WardenClient({ ...clientOptions, apiKey: agentKey }),
        admin: new WardenClient({ ...clientOptions, apiKey: adminKey }),
        triggers: new TriggersClient({ ...clientOptions, apiKey: adminKey }),
        adminKey,
        workspace: { name: workspace, dir: workspaceDirOf(flags, env, environment.cwd, keysDir) },
        keyHints: {
          admin: keyHint(flags.adminKey, env.WARDEN_DEMO_ADMIN_KEY, 'admin', adminFile, environment.cwd),
          agent: keyHint(flags.agentKey, env.WARDEN_DEMO_AGENT_KEY, 'agent', agentFile, environment.cwd),
        },
        fallbackHost: flags.fallbackHost,
      };

      io.out(`warden demo ${ctx.runId} against ${apiUrl} (tenant "${tenant}")\n`);
      const failed: string[] = [];
      for (const [index, step] of DEMO_STEPS.entries()) {
        if (!(await runStep(step, index, ctx, io, timeoutMs))) failed.push(`${index + 1}`);
      }
      io.out('\n');
      if (failed.length > 0)
        throw new CommandFailedError(
          `${failed.length} of ${DEMO_STEPS.length} demo steps failed (step ${failed.join(', ')}); each says what to check first`,
        );
      io.out(
        `✓ all ${DEMO_STEPS.length} steps passed; sign in to ${apiUrl}/console with the admin key to see them\n`,
      );
    });
}
