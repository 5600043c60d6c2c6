/**
 * What waits for a person in one tenant — open gates, change sets awaiting approval, open critical/high findings,
 * triggers whose breaker opened or whose migration rolled back — read for the console's inbox. Reads only: every
 * act on these goes through the API's own routes.
 */
import type { QueryExecutor } from '../database.js';

export interface WaitingGate {
  gate_id: string;
  task_id: string;
  checkpoint: string;
  reason: string;
  opened_at: string;
  /** The deadline: past it the gate expires and its task is blocked. */
  expires_at: string | null;
  task_status: string;
  /** The event whose decision opened the gate, its decision and findings (null when the decision is gone). */
  event_id: string | null;
  decision_reason: string | null;
  findings: unknown[];
}

export interface WaitingChangeSet {
  changeset_id: string;
  plan_id: string;
  workspace: string;
  risk_effective: string;
  submitted_by: string;
  submitted_at: string;
  /** When the pending approval is denied (the change set rejected); null when none was set. */
  expires_at: string | null;
}

export interface WaitingFinding {
  fingerprint: string;
  code: string;
  severity: string;
  title: string;
  status: string;
  last_seen_at: string;
  count: number;
}

export interface WaitingTrigger {
  event_name: string;
  breaker_state: string;
  breaker_reason: string | null;
  breaker_opened_at: string | null;
  /** The newest migration rollback report, when there is one (the red line it crossed and when). */
  rolled_back_red_line: string | null;
  rolled_back_at: string | null;
}

export interface WaitingItems {
  gates: WaitingGate[];
  changesets: WaitingChangeSet[];
  findings: WaitingFinding[];
  triggers: WaitingTrigger[];
}

export interface WaitingItemsOptions {
  /** At most this many of each kind, newest first. @defaultValue `1000` */
  limit?: number;
  /** A migration rollback older than this no longer waits for anyone. @defaultValue 7 days */
  rollbackWindowMs?: number;
  /** @defaultValue `new Date()` */
  now?: Date;
}

const iso = (value: Date | string | null): string | null =>
  value === null ? null : value instanceof Date ? value.toISOString() : new Date(value).toISOString();

/** Everything waiting for a person in `tenantId`, each kind newest first; four indexed reads run together. */
export async function listWaitingItems(
  db: QueryExecutor,
  tenantId: string,
  options: WaitingItemsOptions = {},
): Promise<WaitingItems> {
  const limit = options.limit ?? 1000;
  const now = options.now ?? new Date();
  const rollbackSince = new Date(now.getTime() - (options.rollbackWindowMs ?? 7 * 24 * 3600_000));

  const [gates, changesets, findings, breakers, rollbacks] = await Promise.all([
    db
      .selectFrom('task_gates as g')
      .innerJoin('tasks as t', (join) =>
        join.onRef('t.tenant_id', '=', 'g.tenant_id').onRef('t.task_id', '=', 'g.task_id'),
      )
      .leftJoin('decisions as d', (join) =>
        join.onRef('d.tenant_id', '=', 'g.tenant_id').onRef('d.decision_id', '=', 'g.decision_id'),
      )
      .select([
        'g.gate_id',
        'g.task_id',
        'g.checkpoint',
        'g.reason',
        'g.opened_at',
        'g.expires_at',
        't.status as task_status',
        'd.event_id',
        'd.reason as decision_reason',
        'd.findings',
      ])
      .where('g.tenant_id', '=', tenantId)
      .where('g.state', '=', 'open')
      .orderBy('g.opened_at', 'desc')
      .orderBy('g.gate_id', 'desc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('changesets')
      .select([
        'changeset_id',
        'plan_id',
        'workspace',
        'risk_effective',
        'submitted_by',
        'submitted_at',
        'approval_expires_at',
      ])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'pending')
      .where('approval_state', '=', 'pending')
      .where('verdict', '=', 'NEED_APPROVAL')
      .orderBy('submitted_at', 'desc')
      .orderBy('changeset_id', 'desc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('lead_findings')
      .select(['fingerprint', 'code', 'severity', 'title', 'status', 'last_seen_at', 'count'])
      .where('tenant_id', '=', tenantId)
      .where('status', '=', 'open')
      .where('severity', 'in', ['CRITICAL', 'HIGH'])
      .orderBy('last_seen_at', 'desc')
      .orderBy('fingerprint', 'desc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('cron_triggers')
      .select(['trigger_id', 'event_name', 'breaker_state', 'breaker_reason', 'breaker_opened_at'])
      .where('tenant_id', '=', tenantId)
      .where('deleted_at', 'is', null)
      .where('breaker_state', '=', 'open')
      .orderBy('breaker_opened_at', 'desc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('cron_rollback_reports as r')
      .innerJoin('cron_triggers as c', 'c.trigger_id', 'r.trigger_id')
      .select(['r.trigger_id', 'c.event_name', 'c.breaker_state', 'c.breaker_reason', 'c.breaker_opened_at'])
      .select(['r.red_line', 'r.created_at'])
      .where('r.tenant_id', '=', tenantId)
      .where('c.deleted_at', 'is', null)
      .where('r.created_at', '>=', rollbackSince)
      .orderBy('r.created_at', 'desc')
      .limit(limit)
      .execute(),
  ]);

  const triggers = new Map<string, WaitingTrigger & { at: string }>();
  for (const r of rollbacks)
    if (!triggers.has(r.trigger_id))
      triggers.set(r.trigger_id, {
        event_name: r.event_name,
        breaker_state: r.breaker_state,
        breaker_reason: r.breaker_reason,
        breaker_opened_at: iso(r.breaker_opened_at),
        rolled_back_red_line: r.red_line,
        rolled_back_at: iso(r.created_at),
        at: iso(r.created_at)!,
      });
  for (const b of breakers) {
    const seen = triggers.get(b.trigger_id);
    const opened = iso(b.breaker_opened_at) ?? '';
    if (seen) seen.at = opened > seen.at ? opened : seen.at;
    else
      triggers.set(b.trigger_id, {
        event_name: b.event_name,
        breaker_state: b.breaker_state,
        breaker_reason: b.breaker_reason,
        breaker_opened_at: iso(b.breaker_opened_at),
        rolled_back_red_line: null,
        rolled_back_at: null,
        at: opened,
      });
  }

  return {
    gates: gates.map((g) => ({
      gate_id: g.gate_id,
      task_id: g.task_id,
      checkpoint: g.checkpoint,
      reason: g.reason,
      opened_at: iso(g.opened_at)!,
      expires_at: iso(g.expires_at),
      task_status: g.task_status,
      event_id: g.event_id,
      decision_reason: g.decision_reason,
      findings: Array.isArray(g.findings) ? g.findings : [],
    })),
    changesets: changesets.map(({ approval_expires_at, ...c }) => ({
      ...c,
      submitted_at: iso(c.submitted_at)!,
      expires_at: iso(approval_expires_at),
    })),
    findings: findings.map((f) => ({ ...f, last_seen_at: iso(f.last_seen_at)! })),
    triggers: [...triggers.values()]
      .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0))
      .slice(0, limit)
      .map(({ at: _at, ...trigger }) => trigger),
  };
}
