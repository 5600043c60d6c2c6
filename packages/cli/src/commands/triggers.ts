/**
 * `warden triggers …`: list, read, operate and declare cron triggers straight on Postgres (and Redis, to start
 * runs and tell the scheduler of changes),
 * for operators — the same operations as the API's `/v1/triggers` routes, audited with the operator's name.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  assertMigrationsCurrent,
  deleteTrigger,
  findExecution,
  findTrigger,
  listTenantTriggers,
  registerTrigger,
  updateTrigger,
  getTrigger,
  listTriggerExecutions,
  listTriggers,
  pauseTrigger,
  requestManualRun,
  resumeTrigger,
  toExecutionView,
  toTriggerView,
  triggerStatus,
  type Db,
} from '@warden/db';
import {
  EventNameSchema,
  ExecutionStatusSchema,
  MAX_BACKFILL_RUNS,
  NotFoundError,
  TenantIdSchema,
  ValidationError,
  TriggerDefinitionSchema,
  TriggersFileSchema,
  decodeCursor,
  formatTriggerPlan,
  nextFireTimes,
  parsePolicyYaml,
  planTriggerApply,
  scheduleOf,
  type ExecutionView,
  type TriggerStatusView,
  type TriggerView,
} from '@warden/domain';
import { WardenQueues, createRedis, type JobInput } from '@warden/queue';
import { loadConfig, type CliConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError, describeError } from '../errors.js';
import { writeJson, type CliIo } from '../output.js';
import { runWatched, withWatchOptions, type WatchFlags } from '../watch.js';
import { closePostgres, connectPostgres } from '../postgres.js';
import { withTimeout } from '../timeout.js';

/** Parses one flag or argument; a ValidationError (exit 2) quotes the value and says why. */
function parseFlag<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(
    `invalid ${what} "${String(value)}": ${result.error.issues.map((issue) => issue.message).join('; ')}`,
  );
}

const intFlag = (min: number, max: number) =>
  z.coerce
    .number()
    .int(`must be a whole number`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const HistoryCursorSchema = z.object({ s: z.string(), id: z.string() });
const ListCursorSchema = z.object({ after: z.string() });

/** `key=value` pairs (values parsed as JSON when they are JSON, else kept as strings). */
export function parseParams(pairs: readonly string[], json: string | undefined): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new ValidationError(`invalid --params: not JSON: ${json}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw new ValidationError('invalid --params: must be a JSON object');
    params = parsed as Record<string, unknown>;
  }
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ValidationError(`invalid --param "${pair}": expected key=value`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {}
    params[pair.slice(0, eq)] = value;
  }
  return params;
}

const actor = () => {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
};

/** Runs `work` with a connected, migrated database; a missing trigger is one line and exit 1. */
async function withDatabase<T>(
  config: CliConfig,
  tenantId: string,
  work: (db: Db) => Promise<T>,
): Promise<T> {
  const db = await connectPostgres(config.DATABASE_URL);
  try {
    await assertMigrationsCurrent(db);
    return await work(db);
  } catch (error) {
    if (error instanceof NotFoundError)
      throw new CommandFailedError(`${error.message} for tenant "${tenantId}"`);
    throw error;
  } finally {
    await closePostgres(db);
  }
}

/** Queues fire jobs; when Redis is away the runs stay recorded and the scheduler's sweeper starts them. */
async function enqueueFires(
  config: CliConfig,
  io: CliIo,
  jobs: Array<{ tenant_id: string; trigger_id: string; scheduled_for: Date; jobId: string }>,
): Promise<void> {
  await enqueueCronJobs(
    config,
    io,
    'fire',
    jobs.map((j) => ({
      payload: {
        tenant_id: j.tenant_id,
        trigger_id: j.trigger_id,
        scheduled_for: j.scheduled_for.toISOString(),
      },
      options: { jobId: j.jobId },
    })),
    "the run(s) are recorded and the scheduler's sweeper will start them shortly",
  );
}

/**
 * Tells the scheduler that triggers changed (a `reconcile` job each); when Redis is away the change is in
 * Postgres already and the scheduler's periodic reconcile applies it.
 */
async function enqueueReconciles(config: CliConfig, io: CliIo, triggerIds: readonly string[]): Promise<void> {
  await enqueueCronJobs(
    config,
    io,
    'reconcile',
    triggerIds.map((trigger_id) => ({ payload: { trigger_id } })),
    "the changes are saved and the scheduler's periodic reconcile will apply them",
  );
}

async function enqueueCronJobs<N extends 'fire' | 'reconcile'>(
  config: CliConfig,
  io: CliIo,
  name: N,
  jobs: Array<{ payload: JobInput<'cron-fires', N>; options?: { jobId: string } }>,
  whenRedisIsAway: string,
): Promise<void> {
  if (jobs.length === 0) return;
  const redis = createRedis(config.REDIS_URL, 'producer', { lazyConnect: true });
  const queues = new WardenQueues({ connection: redis, prefix: config.QUEUE_PREFIX });
  try {
    await withTimeout(redis.connect(), 3000, 'connecting to Redis');
    await queues.enqueueBulk('cron-fires', name, jobs, { timeoutMs: 3000 });
  } catch (error) {
    io.err(`note: could not queue ${name} jobs in Redis (${describeError(error)}); ${whenRedisIsAway}\n`);
  } finally {
    await queues.close().catch(() => {});
    redis.disconnect();
  }
}

const pad = (text: string, width: number) =>
  text.length >= width ? text : text + ' '.repeat(width - text.length);
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : pad(cell, widths[i]!))).join('  '))
      .join('\n') + '\n'
  );
}

function nextFire(trigger: TriggerView): string {
  if (!trigger.enabled) return '-';
  try {
    return nextFireTimes(scheduleOf(trigger.expression, trigger.timezone), new Date(), 1)[0]!.toISOString();
  } catch {
    return '?';
  }
}

function describeExecution(e: ExecutionView): string[] {
  const why = e.status === 'skipped' ? (e.skip_reason ?? '') : (e.error ?? '');
  return [
    e.scheduled_for,
    e.status,
    e.decision_mode ?? '-',
    e.manual ? 'manual' : e.backfill ? 'backfill' : 'scheduled',
    e.duration_ms === null ? '-' : `${e.duration_ms} ms`,
    e.cost_usd === null ? '-' : `$${e.cost_usd}`,
    String(e.retry_count),
    why.length > 80 ? `${why.slice(0, 77)}...` : why,
  ];
}

/** A handler as one line shows it: `queue reports`, its URL, or `lead scan 24h`. */
function targetText(target: TriggerView['agent']): string {
  if (!target) return '-';
  if ('queue' in target) return `queue ${target.queue}`;
  if ('lead_scan' in target) return `lead scan ${target.lead_scan.window}`;
  return target.url;
}

function printStatus(io: CliIo, s: TriggerStatusView): void {
  const t = s.trigger;
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)} %`);
  const lines = [
    `${t.event_name}  ${t.expression}  (${t.timezone})${t.description ? ` — ${t.description}` : ''}`,
    `  state       ${!s.enabled ? 'disabled' : s.paused ? `paused by ${t.pause?.paused_by ?? '?'} at ${t.pause?.paused_at ?? '?'}${t.pause?.note ? `: ${t.pause.note}` : ''}` : 'active'}`,
    `  handlers    agent ${targetText(t.agent)} · fallback ${targetText(t.fallback)} · strategy ${t.fallback_strategy}`,
    `  migration   mode ${s.migration.mode} · weight ${s.migration.migration_weight} · consistency ${pct(s.migration.consistency.rate)} over ${s.migration.consistency.samples} (bar ${pct(s.migration.consistency.threshold)}) · agent failures in a row ${s.migration.consecutive_agent_failures}`,
    `  breaker     ${s.breaker.state}${s.breaker.reason ? ` (${s.breaker.reason})` : ''} · recent failure rate ${pct(s.breaker.recent_failure_rate)} over ${s.breaker.recent_runs} runs`,
    `  last ${s.window.hours} h    ${s.window.runs} fires · success rate ${pct(s.window.success_rate)} · mean duration ${s.window.average_duration_ms === null ? 'n/a' : `${s.window.average_duration_ms} ms`} · cost $${s.window.cost_usd}`,
    `  skips       ${
      Object.entries(s.window.skipped_by_reason)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ') || 'none'
    }`,
    `  next fires  ${s.next_fires.join(', ') || '-'}`,
  ];
  if (s.migration.last_rollback)
    lines.push(
      `  rollback    ${s.migration.last_rollback.created_at} ${s.migration.last_rollback.red_line} → task ${s.migration.last_rollback.follow_up_task_id}`,
    );
  io.out(lines.join('\n') + '\n');
  if (s.last_runs.length > 0) {
    io.out(
      '\nlast runs\n' +
        table([
          ['SCHEDULED FOR', 'STATUS', 'MODE', 'KIND', 'DURATION', 'COST', 'RETRIES', 'REASON'],
          ...s.last_runs.map(describeExecution),
        ]),
    );
  }
  if (s.recent_events.length > 0) {
    io.out(
      '\nrecent events\n' +
        table(
          s.recent_events.map((e) => [
            e.created_at,
            e.event_type,
            String(e.payload.by ?? ''),
            String(e.payload.note ?? e.payload.reason ?? e.payload.red_line ?? ''),
          ]),
        ),
    );
  }
}

export function registerTriggersCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const triggers = program
    .command('triggers')
    .description('list and operate cron triggers (pause, resume, run now, status, history)');
  const tenantOf = (flags: { tenant: string }) => parseFlag(TenantIdSchema, flags.tenant, '--tenant');
  const nameOf = (value: string) => parseFlag(EventNameSchema, value, 'trigger name');

  withWatchOptions(
    triggers
      .command('list')
      .description("list a tenant's triggers")
      .requiredOption('--tenant <tenant>', 'tenant id')
      .option('--tag <tag>', 'only triggers with this tag')
      .option('--enabled <bool>', 'only enabled (true) or disabled (false) triggers')
      .option('--limit <n>', 'page size, 1-100', '100')
      .option('--cursor <cursor>', 'next_cursor of the previous page')
      .option('--json', 'print { items, next_cursor } as JSON'),
  ).action(
    async (
      flags: WatchFlags & {
        tenant: string;
        tag?: string;
        enabled?: string;
        limit: string;
        cursor?: string;
        json?: boolean;
      },
    ) => {
      const tenantId = tenantOf(flags);
      const limit = parseFlag(intFlag(1, 100), flags.limit, '--limit');
      const enabled =
        flags.enabled === undefined
          ? undefined
          : parseFlag(z.enum(['true', 'false']), flags.enabled, '--enabled') === 'true';
      const after =
        flags.cursor === undefined ? undefined : decodeCursor(flags.cursor, ListCursorSchema)?.after;
      if (flags.cursor !== undefined && after === undefined)
        throw new ValidationError(`invalid --cursor "${flags.cursor}": not a cursor this command printed`);
      const config = loadConfig(environment);
      await runWatched(io, flags, async (io) => {
        const page = await withDatabase(config, tenantId, (db) =>
          listTriggers(db, tenantId, {
            limit,
            ...(after !== undefined ? { after } : {}),
            ...(flags.tag !== undefined ? { tag: flags.tag } : {}),
            ...(enabled !== undefined ? { enabled } : {}),
          }),
        );
        if (flags.json) return writeJson(io, page);
        if (page.items.length === 0) return io.out(`no triggers for tenant ${tenantId}\n`);
        io.out(
          table([
            ['NAME', 'EXPRESSION', 'ZONE', 'STATE', 'BREAKER', 'MODE', 'WEIGHT', 'NEXT FIRE'],
            ...page.items.map((t) => [
              t.event_name,
              t.expression,
              t.timezone,
              !t.enabled ? 'disabled' : t.paused ? 'paused' : 'active',
              t.breaker.state,
              t.mode,
              String(t.migration_weight),
              nextFire(t),
            ]),
          ]),
        );
        if (page.next_cursor) io.out(`more: --cursor ${page.next_cursor}\n`);
      });
    },
  );

  triggers
    .command('get')
    .description('print one trigger with every field')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .action(async (name: string, flags: { tenant: string }) => {
      const tenantId = tenantOf(flags);
      const eventName = nameOf(name);
      const trigger = await withDatabase(loadConfig(environment), tenantId, async (db) =>
        toTriggerView(await getTrigger(db, tenantId, eventName)),
      );
      writeJson(io, trigger);
    });

  triggers
    .command('pause')
    .description('pause a trigger; its fires are recorded as skipped until it is resumed (audited)')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--note <text>', 'why (shown in status, history and the audit trail)')
    .option('--json', 'print the trigger as JSON')
    .action(async (name: string, flags: { tenant: string; note?: string; json?: boolean }) => {
      const tenantId = tenantOf(flags);
      const eventName = nameOf(name);
      const result = await withDatabase(loadConfig(environment), tenantId, (db) =>
        db.transaction().execute((trx) =>
          pauseTrigger(trx, {
            tenantId,
            eventName,
            actor: actor(),
            ...(flags.note !== undefined ? { note: flags.note } : {}),
          }),
        ),
      );
      if (flags.json)
        return writeJson(io, { trigger: toTriggerView(result.trigger), changed: result.changed });
      io.out(
        result.changed
          ? `paused ${eventName}${flags.note ? `: ${flags.note}` : ''}\n`
          : `${eventName} was already paused\n`,
      );
    });

  triggers
    .command('resume')
    .description('resume a paused trigger (audited); missed fires are not run unless --backfill')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--note <text>', 'why')
    .option(
      '--backfill',
      `also run the fires skipped while paused (at most ${MAX_BACKFILL_RUNS}, oldest first)`,
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (name: string, flags: { tenant: string; note?: string; backfill?: boolean; json?: boolean }) => {
        const tenantId = tenantOf(flags);
        const eventName = nameOf(name);
        const config = loadConfig(environment);
        const result = await withDatabase(config, tenantId, (db) =>
          db.transaction().execute((trx) =>
            resumeTrigger(trx, {
              tenantId,
              eventName,
              actor: actor(),
              backfill: flags.backfill ?? false,
              maxBackfill: MAX_BACKFILL_RUNS,
              ...(flags.note !== undefined ? { note: flags.note } : {}),
            }),
          ),
        );
        const stamp = Date.now();
        await enqueueFires(
          config,
          io,
          result.backfill.map((b) => ({
            tenant_id: tenantId,
            trigger_id: result.trigger.trigger_id,
            scheduled_for: b.scheduled_for,
            jobId: `backfill-${b.execution_id}-${stamp}`,
          })),
        );
        if (flags.json)
          return writeJson(io, {
            trigger: toTriggerView(result.trigger),
            changed: result.changed,
            backfilled: result.backfill.map((b) => ({
              execution_id: b.execution_id,
              scheduled_for: b.scheduled_for.toISOString(),
            })),
          });
        io.out(
          result.changed
            ? `resumed ${eventName}${result.backfill.length > 0 ? `; backfilling ${result.backfill.length} missed fire(s)` : ''}\n`
            : `${eventName} was not paused\n`,
        );
      },
    );

  triggers
    .command('run')
    .description('run a trigger now (manual: goes through governance and counts toward the daily caps)')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option(
      '--param <key=value>',
      'a parameter for the handler (repeatable; JSON values are parsed)',
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .option('--params <json>', 'parameters as one JSON object')
    .option('--override-overlap', 'run even while another run is in flight')
    .option('--wait', 'wait for the run to finish and print it (exit 1 if it failed)')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '120')
    .option('--json', 'print the execution as JSON')
    .action(
      async (
        name: string,
        flags: {
          tenant: string;
          param: string[];
          params?: string;
          overrideOverlap?: boolean;
          wait?: boolean;
          timeout: string;
          json?: boolean;
        },
      ) => {
        const tenantId = tenantOf(flags);
        const eventName = nameOf(name);
        const params = parseParams(flags.param, flags.params);
        const timeoutSeconds = parseFlag(intFlag(1, 3600), flags.timeout, '--timeout');
        const config = loadConfig(environment);
        const result = await withDatabase(config, tenantId, async (db) => {
          const trigger = await getTrigger(db, tenantId, eventName);
          const run = await db.transaction().execute((trx) =>
            requestManualRun(trx, {
              tenant_id: tenantId,
              trigger_id: trigger.trigger_id,
              event_name: eventName,
              params,
              override_overlap: flags.overrideOverlap ?? false,
              actor: actor(),
            }),
          );
          await enqueueFires(config, io, [
            {
              tenant_id: tenantId,
              trigger_id: trigger.trigger_id,
              scheduled_for: run.scheduled_for,
              jobId: `manual-${run.execution_id}`,
            },
          ]);
          if (!flags.wait) return { run, execution: undefined };
          const deadline = Date.now() + timeoutSeconds * 1000;
          for (;;) {
            const row = await findExecution(db, run.execution_id);
            if (row && row.status !== 'pending' && row.status !== 'running')
              return { run, execution: toExecutionView(row) };
            if (Date.now() > deadline)
              throw new CommandFailedError(
                `run ${run.execution_id} did not finish within ${timeoutSeconds} s (it goes on; see \`warden triggers history ${eventName}\`)`,
              );
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        });
        if (flags.json)
          writeJson(
            io,
            result.execution ?? {
              execution_id: result.run.execution_id,
              scheduled_for: result.run.scheduled_for.toISOString(),
              status: 'pending',
            },
          );
        else if (!result.execution) io.out(`started ${eventName}: execution ${result.run.execution_id}\n`);
        else
          io.out(
            table([
              ['SCHEDULED FOR', 'STATUS', 'MODE', 'KIND', 'DURATION', 'COST', 'RETRIES', 'REASON'],
              describeExecution(result.execution),
            ]),
          );
        if (
          result.execution &&
          (result.execution.status === 'failed' || result.execution.status === 'skipped')
        ) {
          throw new CommandFailedError(
            `${eventName} ${result.execution.status}: ${result.execution.skip_reason ?? result.execution.error ?? ''}`,
          );
        }
      },
    );

  triggers
    .command('status')
    .description(
      'configuration, next fires, last runs, success rate, skips by reason, breaker and migration state',
    )
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--fires <n>', 'next fire times to list, 0-100', '5')
    .option('--window-hours <h>', 'hours the rates and counts cover', '24')
    .option('--json', 'print the status as JSON')
    .action(
      async (name: string, flags: { tenant: string; fires: string; windowHours: string; json?: boolean }) => {
        const tenantId = tenantOf(flags);
        const eventName = nameOf(name);
        const fires = parseFlag(intFlag(0, 100), flags.fires, '--fires');
        const windowHours = parseFlag(intFlag(1, 24 * 90), flags.windowHours, '--window-hours');
        const status = await withDatabase(loadConfig(environment), tenantId, (db) =>
          triggerStatus(db, tenantId, eventName, { fires, windowHours }),
        );
        if (flags.json) return writeJson(io, status);
        printStatus(io, status);
      },
    );

  triggers
    .command('history')
    .description('executions, newest first (keyset-paginated)')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--limit <n>', 'page size, 1-100', '20')
    .option('--cursor <cursor>', 'next_cursor of the previous page')
    .option('--status <status>', 'only executions with this status')
    .option('--json', 'print { items, next_cursor } as JSON')
    .action(
      async (
        name: string,
        flags: { tenant: string; limit: string; cursor?: string; status?: string; json?: boolean },
      ) => {
        const tenantId = tenantOf(flags);
        const eventName = nameOf(name);
        const limit = parseFlag(intFlag(1, 100), flags.limit, '--limit');
        const status =
          flags.status === undefined ? undefined : parseFlag(ExecutionStatusSchema, flags.status, '--status');
        let before: { scheduled_for: string; execution_id: string } | undefined;
        if (flags.cursor !== undefined) {
          const cursor = decodeCursor(flags.cursor, HistoryCursorSchema);
          if (!cursor)
            throw new ValidationError(
              `invalid --cursor "${flags.cursor}": not a cursor this command printed`,
            );
          before = { scheduled_for: cursor.s, execution_id: cursor.id };
        }
        const page = await withDatabase(loadConfig(environment), tenantId, async (db) => {
          const trigger = await getTrigger(db, tenantId, eventName);
          return listTriggerExecutions(db, tenantId, trigger.trigger_id, {
            limit,
            ...(before ? { before } : {}),
            ...(status ? { status } : {}),
          });
        });
        if (flags.json) return writeJson(io, page);
        if (page.items.length === 0) return io.out(`no executions of ${eventName} yet\n`);
        io.out(
          table([
            ['SCHEDULED FOR', 'STATUS', 'MODE', 'KIND', 'DURATION', 'COST', 'RETRIES', 'REASON'],
            ...page.items.map(describeExecution),
          ]),
        );
        if (page.next_cursor) io.out(`more: --cursor ${page.next_cursor}\n`);
      },
    );

  registerDeclarativeCommands(triggers, environment, io, { tenantOf, nameOf });
}

/** Reads a YAML or JSON file of the given schema; a ValidationError (exit 2) names the file, line and field. */
async function readDefinitionFile<S extends z.ZodType>(
  environment: CliEnvironment,
  file: string,
  schema: S,
): Promise<z.output<S>> {
  const path = resolve(environment.cwd, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ValidationError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return parsePolicyYaml(text, schema, file);
}

/**
 * `apply -f FILE [--prune] [--yes]`, `create -f FILE`, `update NAME -f PATCH`, `delete NAME --yes`: triggers as
 * code. Every change goes through the same repository functions as the API (validation, the cutover gate, audit
 * rows as `cli:<user>`), all of one command in one transaction, then a `reconcile` job per changed trigger.
 */
function registerDeclarativeCommands(
  triggers: Command,
  environment: CliEnvironment,
  io: CliIo,
  parse: { tenantOf: (flags: { tenant: string }) => string; nameOf: (value: string) => string },
): void {
  triggers
    .command('apply')
    .description(
      "make a tenant's triggers what FILE says: shows the plan (create, update, delete with --prune) and applies it with --yes, all or nothing",
    )
    .requiredOption('-f, --file <file>', 'YAML or JSON: { tenant?, triggers: [definition, …] }')
    .option('--tenant <tenant>', "tenant id (default: the file's tenant)")
    .option('--prune', 'delete triggers of the tenant that the file does not list')
    .option('--yes', 'apply the plan (without it, only show it)')
    .option('--json', 'print { plan, applied } as JSON')
    .action(
      async (flags: { file: string; tenant?: string; prune?: boolean; yes?: boolean; json?: boolean }) => {
        const file = await readDefinitionFile(environment, flags.file, TriggersFileSchema);
        const named = flags.tenant ?? file.tenant;
        if (named === undefined)
          throw new ValidationError('no tenant: pass --tenant or set `tenant:` in the file');
        if (flags.tenant !== undefined && file.tenant !== undefined && flags.tenant !== file.tenant)
          throw new ValidationError(
            `--tenant "${flags.tenant}" differs from the file's tenant "${file.tenant}"`,
          );
        const tenantId = parse.tenantOf({ tenant: named });
        const config = loadConfig(environment);
        const result = await withDatabase(config, tenantId, async (db) => {
          const plan = planTriggerApply(
            (await listTenantTriggers(db, tenantId)).map((t) => t.definition),
            file.triggers,
            {
              prune: flags.prune ?? false,
            },
          );
          if (!flags.yes || !plan.changes) return { plan, changedIds: [] as string[] };
          // One transaction: a step the cutover gate refuses leaves every trigger as it was.
          const changedIds = await db.transaction().execute(async (trx) => {
            const ids: string[] = [];
            for (const step of plan.steps) {
              if (step.action === 'create' || step.action === 'update') {
                const change = await registerTrigger(trx, {
                  tenantId,
                  definition: step.definition,
                  actor: actor(),
                });
                if (change.changed) ids.push(change.trigger.trigger_id);
              } else if (step.action === 'delete') {
                const deleted = await deleteTrigger(trx, {
                  tenantId,
                  eventName: step.event_name,
                  actor: actor(),
                });
                ids.push(deleted.trigger_id);
              }
            }
            return ids;
          });
          return { plan, changedIds };
        });
        const applied = flags.yes === true && result.plan.changes;
        if (applied) await enqueueReconciles(config, io, result.changedIds);
        if (flags.json) return writeJson(io, { tenant_id: tenantId, plan: result.plan.steps, applied });
        io.out(formatTriggerPlan(result.plan));
        if (!result.plan.changes) io.out('nothing to change\n');
        else if (applied) io.out(`applied to tenant ${tenantId}\n`);
        else io.out('not applied: run again with --yes to apply this plan\n');
      },
    );

  triggers
    .command('create')
    .description(
      'register one trigger from FILE (a definition as the API takes it); fails if the name exists',
    )
    .requiredOption('-f, --file <file>', 'YAML or JSON trigger definition')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--json', 'print the trigger as JSON')
    .action(async (flags: { file: string; tenant: string; json?: boolean }) => {
      const tenantId = parse.tenantOf(flags);
      const definition = await readDefinitionFile(environment, flags.file, TriggerDefinitionSchema);
      const config = loadConfig(environment);
      const change = await withDatabase(config, tenantId, (db) =>
        db.transaction().execute(async (trx) => {
          if (await findTrigger(trx, tenantId, definition.event_name))
            throw new CommandFailedError(
              `trigger "${definition.event_name}" exists already for tenant "${tenantId}": use \`triggers update\` or \`triggers apply\``,
            );
          return registerTrigger(trx, { tenantId, definition, actor: actor() });
        }),
      );
      await enqueueReconciles(config, io, [change.trigger.trigger_id]);
      if (flags.json) return writeJson(io, toTriggerView(change.trigger));
      io.out(`created trigger ${definition.event_name} for tenant ${tenantId}\n`);
    });

  triggers
    .command('update')
    .description(
      'change fields of a trigger: FILE holds the fields to change (nested objects merge), validated whole',
    )
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('-f, --file <file>', 'YAML or JSON with the fields to change')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--json', 'print the trigger as JSON')
    .action(async (name: string, flags: { file: string; tenant: string; json?: boolean }) => {
      const tenantId = parse.tenantOf(flags);
      const eventName = parse.nameOf(name);
      const patch = await readDefinitionFile(environment, flags.file, z.record(z.string(), z.unknown()));
      const config = loadConfig(environment);
      const change = await withDatabase(config, tenantId, (db) =>
        db.transaction().execute((trx) => updateTrigger(trx, { tenantId, eventName, patch, actor: actor() })),
      );
      if (change.changed) await enqueueReconciles(config, io, [change.trigger.trigger_id]);
      if (flags.json) return writeJson(io, toTriggerView(change.trigger));
      io.out(
        change.changed
          ? `updated trigger ${eventName}: ${change.changed_fields.join(', ')}\n`
          : `trigger ${eventName} already had these values; nothing changed\n`,
      );
    });

  triggers
    .command('delete')
    .description('delete a trigger (its ledger and audit trail stay); needs --yes')
    .argument('<name>', 'the trigger (event name)')
    .requiredOption('--tenant <tenant>', 'tenant id')
    .option('--yes', 'really delete it')
    .action(async (name: string, flags: { tenant: string; yes?: boolean }) => {
      const tenantId = parse.tenantOf(flags);
      const eventName = parse.nameOf(name);
      if (!flags.yes) throw new ValidationError(`deleting trigger "${eventName}" needs --yes`);
      const config = loadConfig(environment);
      const deleted = await withDatabase(config, tenantId, (db) =>
        db.transaction().execute((trx) => deleteTrigger(trx, { tenantId, eventName, actor: actor() })),
      );
      await enqueueReconciles(config, io, [deleted.trigger_id]);
      io.out(`deleted trigger ${eventName} of tenant ${tenantId}\n`);
    });
}
