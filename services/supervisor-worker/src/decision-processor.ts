import {
  appendAudits,
  type ArchivedEventRecord,
  failClaimedEvent,
  findTasksHoldingResources,
  insertAndClaimEvents,
  lockTaskContexts,
  openGates,
  recordDecidedGroup,
  settleClaims,
  type ClaimedEvent,
  type Database,
  type Db,
  type NewAudit,
  type TaskUpdate,
} from '@warden/db';
import {
  applyPlan,
  builtInPolicies,
  decideInOrder,
  gateDeadline,
  taskStateKey,
  type DecisionPlan,
  type DecisionState,
  type DecisionType,
  type PolicyRegistry,
  type SupervisorPolicyFile,
  type RunningTaskResources,
  type TaskEvent,
} from '@warden/domain';
import { groupMemberLinks, withSpan, type Logger } from '@warden/observability';
import type { Transaction } from 'kysely';
import type { SupervisorMetrics } from './metrics.js';

/** What became of one delivered event. */
export type EventOutcome =
  | { status: 'decided'; decision_id: string; decision_type: DecisionType }
  /** Nothing to do: finished already, claimed by another processor, or its claim moved on. */
  | { status: 'skipped'; reason: 'not_claimable' | 'claim_lost' | 'already_decided' }
  | { status: 'failed'; error: string; dead: boolean };

export interface DecidedEvent {
  tenant_id: string;
  task_id: string;
  event_id: string;
  decision_id: string;
  decision_type: DecisionType;
  event_ts: Date;
  /** The policy version the decision ran under (the file's version, or the tenant's stored one). */
  policy_version: string;
  /** The producer's trace id, when the event carried one. */
  trace_id?: string;
}

/** Decides a run of events in order, carrying each plan's effects into `state` (see `decideInOrder`). */
export interface GroupDecider {
  /** `policies`: the tenants decided under a stored version, and theirs; others get the bootstrap policy. */
  decideInOrder(
    events: readonly TaskEvent[],
    state: DecisionState,
    policies?: ReadonlyMap<string, SupervisorPolicyFile>,
  ): Promise<DecisionPlan[]>;
}

/**
 * Decides in the calling thread: no budget can stop a policy that runs away, so the service uses the
 * {@link PolicySandbox} instead; this is for embedding the processor where the policies are trusted (tests).
 */
export function inProcessDecider(policy: SupervisorPolicyFile, registry: PolicyRegistry): GroupDecider {
  return {
    decideInOrder: async (events, state, policies) =>
      decideInOrder(
        events,
        state,
        policies && policies.size > 0 ? (tenantId) => policies.get(tenantId) ?? policy : policy,
        registry,
      ),
  };
}

/** Each tenant's active stored policy version (see SupervisorPolicyStore). */
export interface TenantPolicies {
  /** The policies of those of `tenants` that run on a stored version; one consistent choice for a group. */
  snapshot(tenants: Iterable<string>): ReadonlyMap<string, SupervisorPolicyFile>;
}

export interface DecisionProcessorOptions {
  db: Db;
  /** The bootstrap policy: every tenant's, unless `tenantPolicies` has a stored version for it. */
  policy: SupervisorPolicyFile;
  /** Tenants' stored policy versions. @defaultValue none: every tenant is decided under `policy` */
  tenantPolicies?: TenantPolicies;
  /** The policies, when they run in this thread (no `decider`). @defaultValue the built-in policies */
  registry?: PolicyRegistry;
  /** Where policies run. @defaultValue in this thread, with `policy` and `registry` ({@link inProcessDecider}) */
  decider?: GroupDecider;
  logger: Logger;
  metrics?: SupervisorMetrics;
  /** @defaultValue `30000` */
  claimTtlMs?: number;
  /** @defaultValue `5` */
  maxAttempts?: number;
  /** @defaultValue `1000` */
  retryBaseDelayMs?: number;
  /** Called after commit with the decisions made (publishing); failures are logged, never thrown. */
  onDecided?: (decided: DecidedEvent[]) => Promise<void>;
  /**
   * Writes each decided event, with the task context its policy saw, to the event archive in the decision's
   * transaction (the replay input of backtests). @defaultValue `true`
   */
  archiveEvents?: boolean;
  /** Test hook: runs inside each decision transaction before commit (failure injection). */
  beforeCommit?: (trx: Transaction<Database>, claims: ClaimedEvent[]) => Promise<void>;
}

const keyOf = (e: { tenant_id: string; event_id: string }) => `${e.tenant_id}\u0000${e.event_id}`;

function toTaskEvent(row: ClaimedEvent): TaskEvent {
  return {
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    task_id: row.task_id,
    event_type: row.event_type,
    ts: row.event_ts.toISOString(),
    source: row.source as TaskEvent['source'],
    payload: row.payload,
    ...(row.trace_id ? { trace_id: row.trace_id } : {}),
  };
}

/**
 * The archive record of a decided event: the event as received, and the task and resource holders as the
 * policy saw them (`seen`, before this event's plan is applied). Holders only when the event declares
 * exclusive resources, the one case a policy reads them.
 */
function archiveRecordOf(
  claim: ClaimedEvent,
  plan: DecisionPlan,
  seen: DecisionState,
  decidedAt: Date,
): ArchivedEventRecord {
  const task = seen.tasks.get(taskStateKey(claim))!;
  const declares =
    Array.isArray(claim.payload.exclusive_resources) && claim.payload.exclusive_resources.length > 0;
  return {
    tenant_id: claim.tenant_id,
    event_id: claim.event_id,
    task_id: claim.task_id,
    event_type: claim.event_type,
    inbox_id: String(claim.inbox_id),
    source: claim.source,
    trace_id: claim.trace_id,
    event_ts: claim.event_ts,
    received_at: claim.received_at,
    payload: claim.payload,
    task_context: { status: task.status ?? null, metadata: task.metadata, retry_count: task.retry_count },
    running_tasks: declares ? [...(seen.holders.get(claim.tenant_id) ?? [])] : [],
    decision_id: plan.decision.decision_id,
    decision_type: plan.decision.decision_type,
    policy: plan.decision.policy,
    policy_version: plan.decision.policy_version,
    finding_codes: plan.decision.findings.map((finding) => finding.code),
    would_have: plan.decision.would_have ?? null,
    decided_at: decidedAt,
  };
}

/**
 * Turns delivered events into decisions, exactly once per event however often and by whichever path
 * (queue, HTTP, poller) it arrives: ensure the inbox row → claim it (generation + expiry) → in ONE
 * transaction complete the still-owned claims, lock the tasks, decide, and store decisions, task changes,
 * gates and hash-chained audit rows. Many events share one transaction (group commit); when a group fails,
 * each event is retried alone so one bad event cannot hold the others back.
 */
export class DecisionProcessor {
  private readonly claimTtlMs: number;
  private readonly maxAttempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly decider: GroupDecider;
  private readonly archive: boolean;

  constructor(private readonly options: DecisionProcessorOptions) {
    this.decider = options.decider ?? inProcessDecider(options.policy, options.registry ?? builtInPolicies());
    this.archive = options.archiveEvents ?? true;
    this.claimTtlMs = options.claimTtlMs ?? 30_000;
    this.maxAttempts = options.maxAttempts ?? 5;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 1000;
  }

  async processEvents(events: readonly TaskEvent[]): Promise<EventOutcome[]> {
    const { db } = this.options;
    // Events enqueued straight onto the queue (SDK, in-cluster) have no inbox row yet: it is created claimed.
    const claimed = await insertAndClaimEvents(db, events, this.claimTtlMs);

    const results = new Map<string, EventOutcome>();
    if (claimed.length > 0) {
      try {
        for (const [key, outcome] of await this.decideAndApply(claimed)) results.set(key, outcome);
      } catch (groupError) {
        if (claimed.length === 1) {
          results.set(keyOf(claimed[0]!), await this.recordFailure(claimed[0]!, groupError));
        } else {
          this.options.logger.warn(
            {
              module: 'supervisor',
              action: 'group_commit',
              status: 'retry_singly',
              size: claimed.length,
              err: groupError,
            },
            'group failed; deciding its events one by one',
          );
          for (const claim of claimed) {
            try {
              for (const [key, outcome] of await this.decideAndApply([claim])) results.set(key, outcome);
            } catch (error) {
              results.set(keyOf(claim), await this.recordFailure(claim, error));
            }
          }
        }
      }
    }
    return events.map((event) => results.get(keyOf(event)) ?? { status: 'skipped', reason: 'not_claimable' });
  }

  private async decideAndApply(claims: ClaimedEvent[]): Promise<Map<string, EventOutcome>> {
    const outcomes = new Map<string, EventOutcome>();
    const decided: DecidedEvent[] = [];
    let auditIds: string[] = [];
    // The decision transaction's span: a child of the job that started the group, linked to the others'; once
    // committed it names the events, decisions and audit rows it wrote.
    const committedAt = await withSpan(
      'supervisor.decide',
      { links: groupMemberLinks(), attributes: { 'warden.group.size': claims.length } },
      async (span) => {
        const at = await this.options.db.transaction().execute(async (trx) => {
          // Task rows first, in a fixed order: a task's events are decided by one transaction at a time, and
          // no other transaction can be holding this task's inbox rows while we wait (they lock tasks first
          // too).
          const contexts = await lockTaskContexts(trx, claims);
          // Then, in one statement: complete the claims still ours; take over earlier events of these tasks not
          // decided yet (pending, failed, or claimed by a group still waiting for the task lock), so a task's
          // events apply in inbox order whichever group they landed in (their own processors will find their
          // claims gone); and learn which events have a decision already (an operator replayed a completed
          // row): never decide an event twice.
          const settled = await settleClaims(trx, claims);
          const mine = [
            ...claims.filter((claim) => settled.owned.has(String(claim.inbox_id))),
            ...settled.takenOver,
          ];
          for (const claim of claims)
            if (!settled.owned.has(String(claim.inbox_id)))
              outcomes.set(keyOf(claim), { status: 'skipped', reason: 'claim_lost' });
          const toDecide = mine
            .filter((claim) => {
              if (!settled.decided.has(String(claim.inbox_id))) return true;
              outcomes.set(keyOf(claim), { status: 'skipped', reason: 'already_decided' });
              return false;
            })
            .sort((a, b) => Number(a.inbox_id) - Number(b.inbox_id));
          if (toDecide.length === 0) return new Date();

          const needsHolders = toDecide.some(
            (c) =>
              c.event_type === 'TASK_CREATED' &&
              Array.isArray(c.payload.exclusive_resources) &&
              c.payload.exclusive_resources.length > 0,
          );
          const holders: Map<string, RunningTaskResources[]> = needsHolders
            ? await findTasksHoldingResources(trx, [...new Set(toDecide.map((c) => c.tenant_id))])
            : new Map();
          const state: DecisionState = { tasks: contexts, holders };
          // What each event's policy saw, for the archive: the state is carried forward event by event below.
          const seen = this.archive ? structuredClone(state) : undefined;
          // The tenants' policies are chosen once for the group, after the task locks: a version activated
          // while the group is decided applies from the next group on, never to half of this one.
          const policies = this.options.tenantPolicies?.snapshot(new Set(toDecide.map((c) => c.tenant_id)));
          const events = toDecide.map(toTaskEvent);
          const decidedPlans = await this.decider.decideInOrder(events, state, policies);
          const plans = toDecide.map((claim, index) => ({ claim, plan: decidedPlans[index]! }));
          const touched = new Map<string, TaskUpdate>();
          for (const { claim } of plans) {
            const task = state.tasks.get(taskStateKey(claim))!;
            touched.set(taskStateKey(claim), {
              tenant_id: claim.tenant_id,
              task_id: claim.task_id,
              status: task.status ?? 'running',
              retry_count: task.retry_count,
              metadata: task.metadata,
            });
          }

          const processedAt = new Date();
          await recordDecidedGroup(trx, {
            decisions: plans.map(({ claim, plan }) => ({
              tenant_id: claim.tenant_id,
              task_id: claim.task_id,
              event_id: claim.event_id,
              decision: plan.decision,
            })),
            tasks: [...touched.values()],
            archive: seen
              ? plans.map(({ claim, plan }, index) => {
                  const record = archiveRecordOf(claim, plan, seen, processedAt);
                  applyPlan(seen, events[index]!, plan);
                  return record;
                })
              : [],
          });
          // Every gate carries its deadline from the tenant's policy: nothing waits for a person for ever.
          const openedAt = new Date();
          await openGates(
            trx,
            plans.flatMap(({ claim, plan }) =>
              plan.gate
                ? [
                    {
                      tenant_id: claim.tenant_id,
                      task_id: claim.task_id,
                      ...plan.gate,
                      decision_id: plan.decision.decision_id,
                      expires_at: gateDeadline(
                        policies?.get(claim.tenant_id) ?? this.options.policy,
                        plan.gate.checkpoint,
                        openedAt,
                      ),
                    },
                  ]
                : [],
            ),
          );
          // The audit rows last: appending locks the tenants' chain heads until commit, and every other group of
          // these tenants waits for that lock, so it is held for the append's two statements and the commit only.
          const audits: NewAudit[] = plans.flatMap(({ claim, plan }) =>
            plan.audits.map((audit) => ({
              ...audit,
              tenant_id: claim.tenant_id,
              task_id: claim.task_id,
              event_id: claim.event_id,
              source_event_ts: claim.event_ts,
            })),
          );
          auditIds = await appendAudits(trx, audits, processedAt);
          await this.options.beforeCommit?.(trx, mine);

          for (const [index, { claim, plan }] of plans.entries()) {
            const traceId = events[index]?.trace_id;
            outcomes.set(keyOf(claim), {
              status: 'decided',
              decision_id: plan.decision.decision_id,
              decision_type: plan.decision.decision_type,
            });
            decided.push({
              tenant_id: claim.tenant_id,
              task_id: claim.task_id,
              event_id: claim.event_id,
              decision_id: plan.decision.decision_id,
              decision_type: plan.decision.decision_type,
              event_ts: claim.event_ts,
              policy_version: plan.decision.policy_version,
              ...(traceId === undefined ? {} : { trace_id: traceId }),
            });
          }
          return processedAt;
        });
        span.setAttributes({
          'warden.event_ids': decided.map((d) => d.event_id),
          'warden.decision_ids': decided.map((d) => d.decision_id),
          'warden.decision_types': decided.map((d) => d.decision_type),
          'warden.tenant_ids': [...new Set(decided.map((d) => d.tenant_id))],
          'warden.audit_ids': auditIds,
        });
        return at;
      },
    );

    // One line per decision, so `grep <task id>` in the logs finds what was decided, under which policy, how late.
    for (const d of decided) {
      this.options.logger.info(
        {
          module: 'supervisor',
          action: 'decide',
          status: 'ok',
          tenant_id: d.tenant_id,
          task_id: d.task_id,
          event_id: d.event_id,
          decision_id: d.decision_id,
          decision: d.decision_type,
          policy_version: d.policy_version,
          lag_ms: committedAt.getTime() - d.event_ts.getTime(),
          ...(d.trace_id === undefined ? {} : { trace_id: d.trace_id }),
        },
        `${d.decision_type} ${d.tenant_id}/${d.task_id} (event ${d.event_id})`,
      );
    }
    const metrics = this.options.metrics;
    if (metrics && decided.length > 0) {
      metrics.groupSize.observe(decided.length);
      for (const d of decided) {
        metrics.processed.inc({ decision_type: d.decision_type });
        const lag = (committedAt.getTime() - d.event_ts.getTime()) / 1000;
        if (lag >= 0) metrics.decisionLatency.observe(lag);
      }
    }
    if (decided.length > 0 && this.options.onDecided) {
      await this.options
        .onDecided(decided)
        .catch((error) =>
          this.options.logger.warn(
            { module: 'supervisor', action: 'publish', status: 'error', err: error },
            'decisions are committed but could not be published',
          ),
        );
    }
    return outcomes;
  }

  /** A failed attempt: `failed` with backoff, or `dead` past the cap (audited). Throws when Postgres is down. */
  private async recordFailure(claim: ClaimedEvent, error: unknown): Promise<EventOutcome> {
    const message = error instanceof Error ? error.message : String(error);
    const delay = Math.min(this.retryBaseDelayMs * 2 ** Math.max(0, claim.attempts - 1), 300_000);
    const status = await failClaimedEvent(this.options.db, claim, message, {
      maxAttempts: this.maxAttempts,
      retryDelayMs: delay,
    });
    if (status === undefined) return { status: 'skipped', reason: 'claim_lost' };
    this.options.metrics?.failed.inc({ outcome: status });
    const log = {
      module: 'supervisor',
      action: 'decide',
      status,
      tenant_id: claim.tenant_id,
      event_id: claim.event_id,
      attempts: claim.attempts,
      error_code: 'processing_failed',
      err: error,
    };
    if (status === 'dead') {
      this.options.logger.error(log, `event is dead after ${claim.attempts} attempts`);
      await auditDeadEvents(this.options.db, [claim], message);
    } else {
      this.options.logger.warn(log, `attempt ${claim.attempts} failed; retrying in ${delay} ms`);
    }
    return { status: 'failed', error: message, dead: status === 'dead' };
  }
}

/** A `SUPERVISOR_EVENT_DEAD` audit row per event that gave up, so the trail shows what was never decided. */
export async function auditDeadEvents(
  db: Db,
  rows: ReadonlyArray<
    Pick<
      ClaimedEvent,
      'tenant_id' | 'task_id' | 'event_id' | 'event_type' | 'event_ts' | 'attempts' | 'error'
    >
  >,
  error?: string,
): Promise<void> {
  if (rows.length === 0) return;
  await db.transaction().execute((trx) =>
    appendAudits(
      trx,
      rows.map((row) => ({
        tenant_id: row.tenant_id,
        task_id: row.task_id,
        event_type: 'SUPERVISOR_EVENT_DEAD',
        level: 'error',
        decision_id: null,
        event_id: row.event_id,
        source_event_ts: row.event_ts,
        payload: {
          event_id: row.event_id,
          event_type: row.event_type,
          attempts: row.attempts,
          error: error ?? row.error ?? 'unknown',
        },
      })),
    ),
  );
}
