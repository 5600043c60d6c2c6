/**
 * The scheduler's core: turns a fire into exactly one ledger row, governs it, calls the agent or the fallback
 * and moves the run on as handler calls report back, time out or fail — retries, fallback, breaker, and the
 * migration's red lines included.
 *
 * Every step is one Postgres transaction that locks the trigger row, then the execution row (always in that
 * order: no deadlocks), reads what it needs, asks the pure functions in `@warden/domain` what to do, and
 * writes the result. Side effects — handler jobs, HTTP calls, delayed follow-up jobs — happen only after the
 * commit, and each is safe to repeat, so a crash at any point leaves a state some replica can finish from.
 *
 * A handler call's deadline is enforced where the call runs (the SDK trigger worker, the HTTP client here),
 * and for a call whose worker died, by the sweeper: one delayed job per call would double the Redis work of
 * a burst for a case the sweeper covers within seconds.
 */
import { sql } from 'kysely';
import {
  breakerAfterRun,
  chooseDecisionMode,
  compareOutputs,
  consistencyOf,
  evaluateGovernance,
  fireTimesBetween,
  HandlerResultSchema,
  migrationBucket,
  nextExecutionStep,
  scheduleOf,
  evaluateRedLines,
  zonedDayOf,
  describeIssues,
  type AttemptSnapshot,
  type DecisionMode,
  type ExecutionStatus,
  type HandlerJob,
  type HandlerRole,
  type LedgerSnapshot,
  type Schedule,
  type TriggerContext,
} from '@warden/domain';
import {
  applyBreakerTransition,
  attemptsOfTry,
  attemptTotals,
  bufferedExecution,
  cronExecutionId,
  insertGovernedFires,
  lockFireExecutions,
  consecutiveAgentFailures,
  cronAttemptId,
  findExecution,
  finishAttempt,
  inFlightCount,
  insertAttempts,
  insertMissedFires,
  ledgerSnapshots,
  lockExecution,
  lockTrigger,
  lockTriggers,
  applyFireDecisions,
  previousRun,
  recentRunStatuses,
  rollbackMigration,
  shadowConsistency,
  updateExecution,
  type CronAttemptRow,
  type CronExecutionRow,
  type FireDecision,
  type Db,
  type NewAttempt,
  type TriggerRecord,
} from '@warden/db';
import type { Logger } from '@warden/observability';
import type { WardenQueues } from '@warden/queue';
import type { DispatchRequest, HandlerDispatcher } from './handler-dispatcher.js';
import type { HandlerOutcome } from './http-handler-client.js';
import type { SchedulerMetrics } from './metrics.js';

type Trx = Parameters<Parameters<ReturnType<Db['transaction']>['execute']>[0]>[0];

/** A fire to govern: from a job scheduler, a manual run, a backfill, or the sweeper. */
export interface FireRequest {
  tenant_id: string;
  trigger_id: string;
  scheduled_for: Date;
  /** From a job scheduler: fire times between this one and `processedOn` never got a job and are recorded as missed. */
  fromScheduler: boolean;
  /** When the fire's job became active (ms). */
  processedOn?: number;
  /** The trigger's priority (from the job scheduler's job): higher is governed first under load. */
  priority?: number;
}

/** The parts of a ledger row governing a fire reads (a new fire has no row yet). */
type FireRow = Pick<
  CronExecutionRow,
  | 'execution_id'
  | 'scheduled_for'
  | 'triggered_at'
  | 'manual'
  | 'backfill'
  | 'override_overlap'
  | 'params'
  | 'retry_count'
>;

/** What a fire came to. */
export type FireOutcome = 'gone' | 'duplicate' | 'skipped' | 'buffered' | 'delayed' | 'started';

/** A handler call's end: its outcome, or its deadline passing (seen by the sweeper). */
export interface AttemptReport {
  attempt_id: string;
  outcome: HandlerOutcome | { deadline: true };
}

export interface ExecutionEngineOptions {
  db: Db;
  queues: WardenQueues;
  dispatcher: HandlerDispatcher;
  logger: Logger;
  metrics: SchedulerMetrics;
  /** A handler call's time limit when the trigger sets no `max_duration_ms`. @defaultValue `900000` */
  defaultMaxDurationMs?: number;
  /** Most missed fires recorded when a late fire arrives. @defaultValue `1000` */
  maxMissedRecorded?: number;
  /** The clock (tests). @defaultValue `() => new Date()` */
  now?: () => Date;
}

/** What to do once the transaction committed. */
interface Effects {
  dispatch: DispatchRequest[];
  advances: Array<{ tenant_id: string; execution_id: string; at: Date }>;
  after: Array<() => void>;
}

const noEffects = (): Effects => ({ dispatch: [], advances: [], after: [] });

export class ExecutionEngine {
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly defaultMaxDurationMs: number;
  /** Parsed schedules by expression and zone: parsing a cron pattern on every fire is measurable in a burst. */
  private readonly schedules = new Map<string, Schedule>();

  constructor(private readonly options: ExecutionEngineOptions) {
    this.log = options.logger.child({ module: 'engine' });
    this.now = options.now ?? (() => new Date());
    this.defaultMaxDurationMs = options.defaultMaxDurationMs ?? 900_000;
  }

  /**
   * Governs one fire: records (or finds) its ledger row and decides skip, buffer, delay or start. A duplicate
   * delivery of a fire already governed changes nothing, except re-sending the handler jobs of a run still
   * in flight (a worker that died between commit and dispatch). Returns what happened, for logs and tests.
   */
  async fire(request: FireRequest): Promise<FireOutcome> {
    return (await this.fireMany([request]))[0]!;
  }

  /**
   * {@link fire} for many fires in one transaction (group commit): a burst of fires costs a handful of
   * statements instead of a dozen per fire. Fires of the same trigger go in successive rounds, so each sees
   * the one before it (overlap, caps).
   */
  async fireMany(requests: readonly FireRequest[]): Promise<FireOutcome[]> {
    const outcomes = new Array<FireOutcome>(requests.length);
    let pending = requests.map((request, index) => ({ request, index }));
    while (pending.length > 0) {
      const seen = new Set<string>();
      const round = pending.filter((p) => !seen.has(p.request.trigger_id) && seen.add(p.request.trigger_id));
      pending = pending.filter((p) => !round.includes(p));
      const results = await this.fireRound(round.map((p) => p.request));
      round.forEach((p, i) => (outcomes[p.index] = results[i]!));
    }
    return outcomes;
  }

  private async fireRound(requests: readonly FireRequest[]): Promise<FireOutcome[]> {
    const now = this.now();
    const { result, effects } = await this.transaction(async (trx, effects) => {
      const outcomes = new Array<FireOutcome>(requests.length).fill('gone');
      const triggers = await lockTriggers(
        trx,
        requests.map((r) => r.trigger_id),
      );
      const live: Array<{
        request: FireRequest;
        index: number;
        trigger: TriggerRecord;
        executionId: string;
      }> = [];
      requests.forEach((request, index) => {
        const trigger = triggers.get(request.trigger_id);
        if (trigger && trigger.tenant_id === request.tenant_id) {
          live.push({
            request,
            index,
            trigger,
            executionId: cronExecutionId(trigger.trigger_id, request.scheduled_for),
          });
        }
      });
      const existing = await lockFireExecutions(
        trx,
        live.map((f) => f.executionId),
      );

      // Each fire to govern: a new one (its row is written once, governed) or a manual run / backfill row.
      const toGovern: Array<{ index: number; trigger: TriggerRecord; row: FireRow; isNew: boolean }> = [];
      const missed: Array<{
        tenant_id: string;
        trigger_id: string;
        event_name: string;
        scheduled_for: Date;
      }> = [];
      for (const { request, index, trigger, executionId } of live) {
        const found = existing.get(executionId);
        if (found?.governed_at) {
          outcomes[index] = 'duplicate';
          if (found.status === 'running') await this.repairDispatch(trx, trigger, found, effects);
          effects.after.push(() => this.options.metrics.duplicates.inc());
          continue;
        }
        const d = trigger.definition;
        const row: FireRow = found ?? {
          execution_id: executionId,
          scheduled_for: request.scheduled_for,
          triggered_at: now,
          manual: false,
          backfill: false,
          override_overlap: false,
          params: {},
          retry_count: 0,
        };
        toGovern.push({ index, trigger, row, isNew: !found });
        // A fire later than the shortest gap between two fires hides fires that never got a job.
        const processedOn = request.processedOn ?? now.getTime();
        const schedule =
          request.fromScheduler && !found ? this.scheduleOf(d.expression, d.timezone) : undefined;
        if (
          schedule &&
          processedOn - request.scheduled_for.getTime() >=
            (schedule.kind === 'every' ? schedule.everyMs : 60_000)
        ) {
          for (const at of fireTimesBetween(
            schedule,
            request.scheduled_for,
            new Date(processedOn),
            this.options.maxMissedRecorded ?? 1000,
          )) {
            missed.push({
              tenant_id: trigger.tenant_id,
              trigger_id: trigger.trigger_id,
              event_name: d.event_name,
              scheduled_for: at,
            });
          }
        }
      }
      if (missed.length > 0) {
        const recorded = await insertMissedFires(
          trx,
          missed,
          now,
          'no fire was produced for this time: no scheduler was running (or all were busy) when it was due, and BullMQ collapses missed fires into one late run',
        );
        if (recorded > 0)
          effects.after.push(() => this.options.metrics.skips.inc({ reason: 'skipped_missed' }, recorded));
      }

      const snapshots = await ledgerSnapshots(
        trx,
        toGovern.map(({ trigger, row }) => ({
          trigger_id: trigger.trigger_id,
          execution_id: row.execution_id,
          scheduled_for: row.scheduled_for,
          day: zonedDayOf(row.scheduled_for, trigger.definition.timezone),
          needs: {
            last_success: trigger.definition.cooldown_seconds > 0,
            runs_today: trigger.definition.max_daily_runs !== null,
            cost_today: trigger.definition.max_daily_cost_usd !== null,
          },
        })),
      );

      const decided = toGovern.map((fire) => ({
        fire,
        ...this.decideFire(fire.trigger, fire.row, snapshots.get(fire.row.execution_id)!, now),
      }));
      await applyFireDecisions(
        trx,
        decided.filter((x) => !x.fire.isNew).map((x) => x.decision),
      );
      const inserted = await insertGovernedFires(
        trx,
        decided
          .filter((x) => x.fire.isNew)
          .map(({ fire, decision }) => ({
            ...decision,
            tenant_id: fire.trigger.tenant_id,
            trigger_id: fire.trigger.trigger_id,
            event_name: fire.trigger.definition.event_name,
            scheduled_for: fire.row.scheduled_for,
            triggered_at: fire.row.triggered_at,
          })),
      );

      const attempts: NewAttempt[] = [];
      for (const { fire, decision, outcome, roles, why } of decided) {
        const { trigger, row } = fire;
        const d = trigger.definition;
        // A new fire's row that someone else wrote meanwhile (a manual run in the same millisecond) is theirs.
        if (fire.isNew && !inserted.has(row.execution_id)) {
          outcomes[fire.index] = 'duplicate';
          continue;
        }
        outcomes[fire.index] = outcome;
        if (decision.probe) {
          await applyBreakerTransition(trx, {
            trigger,
            next: { ...trigger.breaker, state: 'half_open', probe_execution_id: row.execution_id },
            transition: 'probing',
            failure_rate: 0,
            runs: 0,
            now,
          });
        }
        if (outcome === 'skipped')
          this.afterSkip(effects, d.event_name, row.execution_id, decision.skip_reason ?? 'unknown', why);
        if (outcome === 'delayed')
          effects.advances.push({
            tenant_id: trigger.tenant_id,
            execution_id: row.execution_id,
            at: decision.next_attempt_at!,
          });
        if (outcome === 'started') {
          attempts.push(
            ...this.buildCalls(
              trigger,
              row,
              roles,
              snapshots.get(row.execution_id)!.previous_run,
              now,
              effects,
            ),
          );
          if (!row.manual && !row.backfill) {
            const delay = Math.max(0, (now.getTime() - row.scheduled_for.getTime()) / 1000);
            effects.after.push(() => this.options.metrics.delay.observe(delay));
          }
        }
      }
      await insertAttempts(trx, attempts);
      return outcomes;
    });
    await this.runEffects(effects);
    return result;
  }

  /** Governance and the path of one fire: what to write and what it came to. */
  private decideFire(
    trigger: TriggerRecord,
    row: FireRow,
    ledger: LedgerSnapshot,
    now: Date,
  ): {
    decision: FireDecision;
    outcome: 'skipped' | 'buffered' | 'delayed' | 'started';
    roles: HandlerRole[];
    why?: string;
  } {
    const d = trigger.definition;
    const governance = evaluateGovernance({
      trigger: {
        enabled: d.enabled,
        paused: trigger.paused,
        pause_source: trigger.pause_source,
        pause_note: trigger.pause_note,
        cooldown_seconds: d.cooldown_seconds,
        max_daily_runs: d.max_daily_runs,
        max_daily_cost_usd: d.max_daily_cost_usd,
        max_cost_per_run_usd: d.max_cost_per_run_usd,
        overlap_policy: d.overlap_policy,
        catchup_window_seconds: d.catchup_window_seconds,
        circuit_breaker: d.circuit_breaker,
      },
      breaker: trigger.breaker,
      fire: {
        scheduled_for: row.scheduled_for,
        manual: row.manual,
        backfill: row.backfill,
        override_overlap: row.override_overlap,
      },
      ledger,
      now,
    });
    const base: FireDecision = {
      execution_id: row.execution_id,
      status: 'skipped',
      governance_checks: governance.checks,
      governed_at: now,
      decision_mode: null,
      reserved_cost_usd: 0,
      probe: false,
      buffered: false,
      next_attempt_at: null,
      started_at: null,
      completed_at: null,
      skip_reason: null,
      error: null,
    };
    if (governance.outcome === 'skip') {
      const why = governance.checks.at(-1)?.reason;
      return {
        decision: { ...base, skip_reason: governance.skip_reason, error: why ?? null, completed_at: now },
        outcome: 'skipped',
        roles: [],
        ...(why ? { why } : {}),
      };
    }
    const mode = chooseDecisionMode({
      trigger_id: trigger.trigger_id,
      scheduled_for: row.scheduled_for,
      mode: d.mode,
      fallback_strategy: d.fallback_strategy,
      migration_weight: d.migration_weight,
      has_agent: d.agent !== null,
      has_fallback: d.fallback !== null,
    });
    const governed: FireDecision = {
      ...base,
      decision_mode: mode,
      reserved_cost_usd: governance.reservation_usd,
      probe: governance.probe,
    };
    if (governance.outcome === 'buffer')
      return { decision: { ...governed, status: 'pending', buffered: true }, outcome: 'buffered', roles: [] };
    const jitterMs =
      !row.manual && !row.backfill && d.jitter_ms > 0
        ? Math.floor(migrationBucket(`${trigger.trigger_id}/jitter`, row.scheduled_for) * d.jitter_ms)
        : 0;
    const startAt = new Date(row.scheduled_for.getTime() + jitterMs);
    if (jitterMs > 0 && startAt.getTime() > now.getTime() + 50)
      return {
        decision: { ...governed, status: 'pending', next_attempt_at: startAt },
        outcome: 'delayed',
        roles: [],
      };
    const step = nextExecutionStep({
      mode,
      fallback_strategy: d.fallback_strategy,
      has_fallback: d.fallback !== null,
      attempts: [],
      retry: {
        retry_on_failure: d.retry_on_failure,
        max_retries: d.max_retries,
        retry_delay_seconds: d.retry_delay_seconds,
      },
      retry_count: row.retry_count,
      probe: governance.probe,
    });
    if (step.kind !== 'start') {
      // Only a missing fallback handler ends a run before any call.
      return {
        decision: {
          ...governed,
          status: 'skipped',
          skip_reason: 'no_fallback_handler',
          error: 'no fallback handler',
          completed_at: now,
          reserved_cost_usd: 0,
          probe: false,
        },
        outcome: 'skipped',
        roles: [],
        why: 'no fallback handler',
      };
    }
    return {
      decision: { ...governed, status: 'running', started_at: now },
      outcome: 'started',
      roles: step.roles,
    };
  }

  private scheduleOf(expression: string, timezone: string): Schedule {
    const key = `${timezone} ${expression}`;
    let schedule = this.schedules.get(key);
    if (!schedule) {
      if (this.schedules.size > 10_000) this.schedules.clear();
      schedule = scheduleOf(expression, timezone);
      this.schedules.set(key, schedule);
    }
    return schedule;
  }

  private afterSkip(
    effects: Effects,
    eventName: string,
    executionId: string,
    reason: string,
    why: string | undefined,
  ): void {
    effects.after.push(() => {
      this.options.metrics.skips.inc({ reason });
      this.options.metrics.executions.inc({ status: 'skipped', decision_mode: 'none' });
      this.log.info(
        {
          action: 'skip',
          status: 'skipped',
          event_name: eventName,
          execution_id: executionId,
          skip_reason: reason,
          reason: why,
        },
        `skipped ${eventName}: ${reason}`,
      );
    });
  }

  /**
   * Moves a run on: records a handler call's end (once: a late or repeated report changes nothing), then
   * starts the next call, finishes the run, or schedules its retry. Also what a due retry, a jittered start
   * or a buffered run's turn comes through (no report).
   */
  async advance(executionId: string, report?: AttemptReport): Promise<void> {
    const peek = await findExecution(this.options.db, executionId);
    if (!peek) return;
    const now = this.now();
    let governLater: FireRequest | undefined;
    const { effects } = await this.transaction(async (trx, effects) => {
      const trigger = await lockTrigger(trx, peek.trigger_id, { includeDeleted: true });
      const execution = await lockExecution(trx, executionId);
      if (!trigger || !execution || !['pending', 'running'].includes(execution.status)) return;
      if (report && !(await this.recordReport(trx, execution, report, now))) return;
      if (execution.status === 'pending') {
        if (!execution.governed_at) {
          governLater = {
            tenant_id: execution.tenant_id,
            trigger_id: execution.trigger_id,
            scheduled_for: execution.scheduled_for,
            fromScheduler: false,
          };
          return;
        }
        if (execution.buffered && (await inFlightCount(trx, trigger.trigger_id, execution.execution_id)) > 0)
          return;
        // A job that came early (clock skew between replicas) waits for the one at the right time.
        if (
          !execution.buffered &&
          execution.next_attempt_at &&
          execution.next_attempt_at.getTime() > now.getTime() + 50
        )
          return;
      }
      await this.progress(trx, trigger, execution, now, effects);
    });
    await this.runEffects(effects);
    if (governLater) await this.fire(governLater);
  }

  /** Records a handler outcome reported by an HTTP call made here (retried briefly: losing it would time the call out). */
  async recordHttpOutcome(job: HandlerJob, outcome: HandlerOutcome): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.advance(job.execution_id, { attempt_id: job.attempt_id, outcome });
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  /** Asks the state machine what comes next for this try and does it. */
  private async progress(
    trx: Trx,
    trigger: TriggerRecord,
    execution: CronExecutionRow,
    now: Date,
    effects: Effects,
  ): Promise<void> {
    const d = trigger.definition;
    const attempts = await attemptsOfTry(trx, execution.execution_id, execution.retry_count);
    const step = nextExecutionStep({
      mode: execution.decision_mode as DecisionMode,
      fallback_strategy: d.fallback_strategy,
      has_fallback: d.fallback !== null,
      attempts: attempts.map(toSnapshot),
      retry: {
        retry_on_failure: d.retry_on_failure,
        max_retries: d.max_retries,
        retry_delay_seconds: d.retry_delay_seconds,
      },
      retry_count: execution.retry_count,
      probe: execution.probe,
    });

    if (step.kind === 'wait') return;
    if (step.kind === 'start') {
      const firstStart = execution.started_at === null;
      const started = await updateExecution(trx, execution.execution_id, {
        status: 'running',
        started_at: execution.started_at ?? now,
        next_attempt_at: null,
        buffered: false,
      });
      const previous = await previousRun(trx, trigger.trigger_id, started.scheduled_for);
      await insertAttempts(trx, this.buildCalls(trigger, started, step.roles, previous, now, effects));
      if (firstStart && !execution.manual && !execution.backfill) {
        const delay = (now.getTime() - execution.scheduled_for.getTime()) / 1000;
        effects.after.push(() => this.options.metrics.delay.observe(Math.max(0, delay)));
      }
      return;
    }
    if (step.kind === 'retry') {
      const at = new Date(now.getTime() + step.delay_seconds * 1000);
      await updateExecution(trx, execution.execution_id, {
        status: 'pending',
        retry_count: execution.retry_count + 1,
        next_attempt_at: at,
        error: step.error,
      });
      effects.advances.push({ tenant_id: trigger.tenant_id, execution_id: execution.execution_id, at });
      effects.after.push(() =>
        this.log.warn(
          {
            action: 'retry',
            status: 'scheduled',
            event_name: d.event_name,
            execution_id: execution.execution_id,
            retry: execution.retry_count + 1,
            delay_s: step.delay_seconds,
            error: step.error,
          },
          `retrying ${d.event_name} in ${step.delay_seconds} s`,
        ),
      );
      return;
    }
    await this.finish(trx, trigger, execution, attempts, step, now, effects);
  }

  /**
   * The handler calls to make for `roles`: their attempt rows (to insert), and — after commit — their jobs or
   * HTTP calls.
   */
  private buildCalls(
    trigger: TriggerRecord,
    execution: Pick<
      CronExecutionRow,
      'execution_id' | 'scheduled_for' | 'triggered_at' | 'manual' | 'params' | 'retry_count'
    >,
    roles: readonly HandlerRole[],
    previous: { execution_id: string; scheduled_for: Date; status: string; completed_at: Date | null } | null,
    now: Date,
    effects: Effects,
  ): NewAttempt[] {
    const d = trigger.definition;
    const maxDuration = d.max_duration_ms ?? this.defaultMaxDurationMs;
    const attempts: NewAttempt[] = [];
    for (const role of roles) {
      const target = role === 'agent' ? d.agent : d.fallback;
      if (!target) continue;
      const deadline = new Date(
        now.getTime() + ('url' in target ? Math.min(maxDuration, target.timeoutMs) : maxDuration),
      );
      const attempt: NewAttempt = {
        attempt_id: cronAttemptId(execution.execution_id, execution.retry_count, role),
        execution_id: execution.execution_id,
        tenant_id: trigger.tenant_id,
        trigger_id: trigger.trigger_id,
        role,
        try: execution.retry_count,
        target_kind: 'url' in target ? 'http' : 'queue',
        target: 'url' in target ? target.url : target.queue,
        started_at: now,
        deadline_at: deadline,
      };
      attempts.push(attempt);
      effects.dispatch.push({
        tenant_id: trigger.tenant_id,
        target,
        deadline,
        job: {
          tenant_id: trigger.tenant_id,
          execution_id: execution.execution_id,
          attempt_id: attempt.attempt_id,
          context: this.contextOf(trigger, execution, role, deadline, previous),
        },
      });
    }
    return attempts;
  }

  private contextOf(
    trigger: TriggerRecord,
    execution: Pick<
      CronExecutionRow,
      'execution_id' | 'scheduled_for' | 'triggered_at' | 'manual' | 'params' | 'retry_count'
    >,
    role: HandlerRole,
    deadline: Date,
    previous: { execution_id: string; scheduled_for: Date; status: string; completed_at: Date | null } | null,
  ): TriggerContext {
    const d = trigger.definition;
    return {
      trigger_type: 'cron',
      event_name: d.event_name,
      focus: d.focus,
      expression: d.expression,
      timezone: d.timezone,
      scheduled_for: execution.scheduled_for.toISOString(),
      triggered_at: execution.triggered_at.toISOString(),
      previous_run: previous
        ? {
            execution_id: previous.execution_id,
            scheduled_for: previous.scheduled_for.toISOString(),
            status: previous.status as ExecutionStatus,
            completed_at: previous.completed_at?.toISOString() ?? null,
          }
        : null,
      payload: d.payload,
      manual: execution.manual,
      params: execution.params,
      execution_id: execution.execution_id,
      retry_count: execution.retry_count,
      role,
      deadline_at: deadline.toISOString(),
    };
  }

  /** Re-sends the handler jobs of a running try (a duplicate fire after a crash between commit and dispatch). */
  private async repairDispatch(
    trx: Trx,
    trigger: TriggerRecord,
    execution: CronExecutionRow,
    effects: Effects,
  ): Promise<void> {
    const attempts = await attemptsOfTry(trx, execution.execution_id, execution.retry_count);
    const running = attempts.filter((a) => a.status === 'running' && a.target_kind === 'queue');
    if (running.length === 0) return;
    const previous = await previousRun(trx, trigger.trigger_id, execution.scheduled_for);
    for (const attempt of running) {
      const target = attempt.role === 'agent' ? trigger.definition.agent : trigger.definition.fallback;
      if (!target || !('queue' in target)) continue;
      effects.dispatch.push({
        tenant_id: trigger.tenant_id,
        target,
        deadline: attempt.deadline_at,
        job: {
          tenant_id: trigger.tenant_id,
          execution_id: execution.execution_id,
          attempt_id: attempt.attempt_id,
          context: this.contextOf(trigger, execution, attempt.role, attempt.deadline_at, previous),
        },
      });
    }
  }

  /** Writes a handler call's end. False when the call was no longer running (a late or repeated report). */
  private async recordReport(
    trx: Trx,
    execution: CronExecutionRow,
    report: AttemptReport,
    now: Date,
  ): Promise<boolean> {
    const attempt = await trx
      .selectFrom('cron_execution_attempts')
      .selectAll()
      .where('attempt_id', '=', report.attempt_id)
      .forUpdate()
      .executeTakeFirst();
    if (!attempt || attempt.execution_id !== execution.execution_id || attempt.status !== 'running')
      return false;
    let finished: CronAttemptRow | undefined;
    if ('deadline' in report.outcome) {
      if (attempt.deadline_at.getTime() > now.getTime() + 50) return false;
      finished = await finishAttempt(trx, {
        attempt_id: attempt.attempt_id,
        status: 'timeout',
        error_kind: 'timeout',
        error: `no result within ${attempt.deadline_at.getTime() - attempt.started_at.getTime()} ms (max_duration_ms)`,
        now,
      });
    } else if (report.outcome.ok) {
      const parsed = HandlerResultSchema.safeParse(report.outcome.result);
      finished = parsed.success
        ? await finishAttempt(trx, {
            attempt_id: attempt.attempt_id,
            status: 'success',
            result: parsed.data as Record<string, unknown>,
            now,
          })
        : await finishAttempt(trx, {
            attempt_id: attempt.attempt_id,
            status: 'failed',
            error_kind: 'validation',
            error: `the handler returned an invalid result: ${describeIssues(parsed.error.issues)
              .map((i) => `${i.path}: ${i.message}`)
              .join('; ')}`,
            now,
          });
    } else {
      finished = await finishAttempt(trx, {
        attempt_id: attempt.attempt_id,
        status: report.outcome.kind === 'timeout' ? 'timeout' : 'failed',
        error_kind: report.outcome.kind,
        error: report.outcome.message.slice(0, 4000),
        now,
      });
    }
    return finished !== undefined;
  }

  private async finish(
    trx: Trx,
    trigger: TriggerRecord,
    execution: CronExecutionRow,
    attempts: CronAttemptRow[],
    step: Extract<ReturnType<typeof nextExecutionStep>, { kind: 'finish' }>,
    now: Date,
    effects: Effects,
  ): Promise<void> {
    const d = trigger.definition;
    const agent = attempts.find((a) => a.role === 'agent');
    const fallback = attempts.find((a) => a.role === 'fallback');
    const served = step.served_by === 'agent' ? agent : step.served_by === 'fallback' ? fallback : undefined;
    const totals = await attemptTotals(trx, execution.execution_id);
    let comparison: Record<string, unknown> | null = null;
    if (execution.decision_mode === 'shadow' && agent && fallback && fallback.status === 'success') {
      comparison =
        agent.status === 'success'
          ? { ...compareOutputs(agent.result?.output, fallback.result?.output, d.migration.compare_keys) }
          : {
              equal: false,
              compared_keys:
                d.migration.compare_keys.length > 0 ? d.migration.compare_keys : ['(whole output)'],
              differences: [],
              agent_error: agent.error ?? agent.status,
            };
    }
    const durationMs = execution.started_at ? now.getTime() - execution.started_at.getTime() : null;
    await updateExecution(trx, execution.execution_id, {
      status: step.status,
      completed_at: now,
      duration_ms: durationMs,
      output: served?.result ? JSON.stringify(served.result.output ?? null) : null,
      cost_usd: totals.cost_usd,
      llm_calls: totals.llm_calls,
      agent_run_id: (agent?.result?.agent_run_id as string | undefined) ?? null,
      reserved_cost_usd: 0,
      error:
        step.status === 'success' || step.status === 'fallback' ? fallbackNote(agent) : (step.error ?? null),
      skip_reason: step.skip_reason ?? null,
      comparison: comparison ? JSON.stringify(comparison) : null,
      agent_outcome: agent?.status ?? null,
      next_attempt_at: null,
    });
    const status = step.status;
    const mode = execution.decision_mode ?? 'none';
    effects.after.push(() => {
      const m = this.options.metrics;
      m.executions.inc({ status, decision_mode: mode });
      if (durationMs !== null && status !== 'skipped') m.duration.observe({ status }, durationMs / 1000);
      if (totals.cost_usd !== null) m.cost.observe(totals.cost_usd);
      if (totals.llm_calls > 0) m.llmCalls.inc(totals.llm_calls);
      this.log.info(
        {
          action: 'finish',
          status,
          event_name: d.event_name,
          execution_id: execution.execution_id,
          decision_mode: mode,
          latency_ms: durationMs,
          run_id: agent?.result?.agent_run_id,
          error: step.error,
        },
        `${d.event_name} ${status}`,
      );
    });
    if (
      d.max_cost_per_run_usd !== null &&
      totals.cost_usd !== null &&
      totals.cost_usd > d.max_cost_per_run_usd
    ) {
      effects.after.push(() => {
        this.options.metrics.costOverruns.inc();
        this.log.warn(
          {
            action: 'cost_overrun',
            event_name: d.event_name,
            execution_id: execution.execution_id,
            cost_usd: totals.cost_usd,
            max: d.max_cost_per_run_usd,
          },
          `${d.event_name} cost more than max_cost_per_run_usd`,
        );
      });
    }

    if (status !== 'skipped') await this.updateBreaker(trx, trigger, execution, status, now, effects);
    if (agent && agent.status !== 'running') await this.checkRedLines(trx, trigger, now, effects);
    if (d.overlap_policy === 'buffer_one') {
      const next = await bufferedExecution(trx, trigger.trigger_id);
      if (next && (await inFlightCount(trx, trigger.trigger_id, next)) === 0)
        effects.advances.push({ tenant_id: trigger.tenant_id, execution_id: next, at: now });
    }
  }

  private async updateBreaker(
    trx: Trx,
    trigger: TriggerRecord,
    execution: CronExecutionRow,
    status: ExecutionStatus,
    now: Date,
    effects: Effects,
  ): Promise<void> {
    const config = trigger.definition.circuit_breaker;
    const recent = await recentRunStatuses(trx, trigger.trigger_id, trigger.breaker_reset_at, config.window);
    const verdict = breakerAfterRun({
      config,
      breaker: trigger.breaker,
      execution_id: execution.execution_id,
      status,
      recent,
      now,
    });
    if (!verdict.transition) return;
    await applyBreakerTransition(trx, {
      trigger,
      next: verdict.state,
      transition: verdict.transition,
      failure_rate: verdict.failure_rate,
      runs: verdict.runs,
      now,
    });
    const transition = verdict.transition;
    effects.after.push(() => {
      this.options.metrics.breakerTransitions.inc({ transition });
      const fields = {
        action: 'circuit_breaker',
        status: transition,
        event_name: trigger.definition.event_name,
        tenant_id: trigger.tenant_id,
        failure_rate: verdict.failure_rate,
        runs: verdict.runs,
      };
      if (transition === 'closed')
        this.log.info(
          fields,
          `circuit breaker of ${trigger.definition.event_name} closed: the probe succeeded`,
        );
      // The alert: an opened breaker pauses the trigger until a probe succeeds.
      else
        this.log.error(
          { ...fields, alert: true },
          `ALERT circuit breaker of ${trigger.definition.event_name} ${transition}: ${verdict.state.reason}; the trigger is paused`,
        );
    });
  }

  private async checkRedLines(trx: Trx, trigger: TriggerRecord, now: Date, effects: Effects): Promise<void> {
    const d = trigger.definition;
    const migrating =
      d.agent !== null && d.fallback !== null && (d.mode === 'shadow' || d.migration_weight > 0);
    if (!migrating || !d.migration.auto_rollback) return;
    const [failures, consistency] = await Promise.all([
      consecutiveAgentFailures(trx, trigger.trigger_id, d.migration.rollback_after_agent_failures),
      d.mode === 'shadow'
        ? shadowConsistency(trx, trigger.trigger_id, d.migration.consistency_window)
        : Promise.resolve(consistencyOf([], 1)),
    ]);
    const verdict = evaluateRedLines({
      config: d.migration,
      migrating,
      consecutive_agent_failures: failures,
      consistency,
    });
    if (!verdict.tripped || !verdict.red_line) return;
    const rolledBack = await rollbackMigration(trx, {
      tenant_id: trigger.tenant_id,
      trigger_id: trigger.trigger_id,
      event_name: d.event_name,
      red_line: verdict.red_line,
      detail: verdict.detail ?? verdict.red_line,
      from: { migration_weight: d.migration_weight, mode: d.mode },
      consistency,
      now,
    });
    const redLine = verdict.red_line;
    effects.after.push(() => {
      this.options.metrics.rollbacks.inc({ red_line: redLine });
      this.log.error(
        {
          action: 'migration_rollback',
          status: 'rolled_back',
          alert: true,
          event_name: d.event_name,
          red_line: redLine,
          report_id: rolledBack.report_id,
          follow_up_task_id: rolledBack.follow_up_task_id,
        },
        `ALERT migration of ${d.event_name} rolled back: ${verdict.detail}`,
      );
    });
  }

  private async transaction<T>(
    work: (trx: Trx, effects: Effects) => Promise<T>,
  ): Promise<{ result: T; effects: Effects }> {
    const effects = noEffects();
    const result = await this.options.db.transaction().execute(async (trx) => {
      // Keep a stuck statement from holding the trigger's lock (and every fire of it) for long.
      await sql`set local lock_timeout = '10s'`.execute(trx);
      return work(trx, effects);
    });
    return { result, effects };
  }

  /** Side effects after commit. A failure here is logged: deadlines and the sweeper repair what did not happen. */
  private async runEffects(effects: Effects): Promise<void> {
    for (const fn of effects.after) {
      try {
        fn();
      } catch {}
    }
    const { queues } = this.options;
    const now = Date.now();
    const jobs: Array<Promise<unknown>> = [];
    if (effects.dispatch.length > 0) jobs.push(this.options.dispatcher.dispatch(effects.dispatch));
    if (effects.advances.length > 0) {
      jobs.push(
        queues.enqueueBulk(
          'cron-fires',
          'advance',
          effects.advances.map((a) => ({
            payload: { tenant_id: a.tenant_id, execution_id: a.execution_id },
            // Unique per wake-up: a finished job with the same id would make BullMQ drop this one.
            options: {
              jobId: `advance-${a.execution_id}-${a.at.getTime()}`,
              delay: Math.max(0, a.at.getTime() - now),
            },
          })),
        ),
      );
    }
    const results = await Promise.allSettled(jobs);
    for (const r of results) {
      if (r.status === 'rejected')
        this.log.warn(
          { action: 'after_commit', status: 'error', err: r.reason },
          'a follow-up job could not be queued; the sweeper will pick the run up',
        );
    }
  }
}

function toSnapshot(attempt: CronAttemptRow): AttemptSnapshot {
  return {
    role: attempt.role,
    status: attempt.status,
    error_kind: attempt.error_kind as AttemptSnapshot['error_kind'],
    error: attempt.error,
  };
}

/** A run the fallback rescued keeps why the agent did not serve it. */
function fallbackNote(agent: CronAttemptRow | undefined): string | null {
  if (!agent || agent.status === 'success' || agent.status === 'running') return null;
  return `agent ${agent.status === 'timeout' ? 'timed out' : 'failed'}${agent.error ? `: ${agent.error}` : ''}`;
}
