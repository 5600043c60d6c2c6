/**
 * Step 5 of a scan: the raw findings against what is stored. A real scan upserts them by fingerprint, a
 * batch per transaction, under the tenant's advisory lock; a dry run only classifies them.
 */
import { planLeadFindingUpsert, type LeadFindingDraft, type LeadScanProgress } from '@warden/domain';
import {
  appendAudits,
  insertLeadFindings,
  lockLeadTenant,
  readLeadFindingStates,
  recordLeadFindingSightings,
  type Db,
  type LeadFindingSighting,
  type NewAudit,
  type QueryExecutor,
} from '@warden/db';
import { findingSeenAgainAudit } from './lead-audits.js';
import { findingResult, type FindingResult } from './scan-report.js';

/** What the writing steps of a scan (store, follow up) share. */
export interface ScanWriteContext {
  /** The scan's start: first and last seen, audit time. */
  now: Date;
  scanId: string;
  /** Checked before each transaction: throws once the scan lost its lock. */
  checkLease: () => void;
  progress: (p: LeadScanProgress) => void;
}

/** Findings per transaction: bounds how long one transaction holds the tenant's lock. */
const STORE_BATCH = 100;

/** A raw finding with its plan against the stored state. */
interface PlannedFinding {
  draft: LeadFindingDraft;
  plan: ReturnType<typeof planLeadFindingUpsert>;
  /** The stored link, when the finding existed. */
  linked_task_id: string | null;
}

async function planBatch(
  db: QueryExecutor,
  tenantId: string,
  batch: readonly LeadFindingDraft[],
  now: Date,
  forUpdate: boolean,
): Promise<PlannedFinding[]> {
  const states = await readLeadFindingStates(
    db,
    tenantId,
    batch.map((d) => d.fingerprint),
    { forUpdate },
  );
  return batch.map((draft) => {
    const existing = states.get(draft.fingerprint);
    return {
      draft,
      plan: planLeadFindingUpsert(existing, now),
      linked_task_id: existing?.linked_task_id ?? null,
    };
  });
}

function batches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let offset = 0; offset < items.length; offset += STORE_BATCH)
    out.push(items.slice(offset, offset + STORE_BATCH));
  return out;
}

/** Dry run: classify against what is stored, write nothing. */
export async function planDryRun(
  db: Db,
  tenantId: string,
  drafts: readonly LeadFindingDraft[],
  now: Date,
): Promise<FindingResult[]> {
  const results: FindingResult[] = [];
  for (const batch of batches(drafts)) {
    const planned = await planBatch(db, tenantId, batch, now, false);
    for (const p of planned) results.push(findingResult(p.draft, p, true));
  }
  return results;
}

/**
 * Writes one batch as planned: inserts the new findings, records the sightings of the stored ones, and
 * audits a reopened finding (a regression) or a silence that ran out on the finding's follow-up task.
 */
async function writeBatch(
  trx: QueryExecutor,
  tenantId: string,
  planned: readonly PlannedFinding[],
  context: { now: Date; scanId: string },
): Promise<void> {
  await insertLeadFindings(
    trx,
    tenantId,
    planned.filter((p) => p.plan.outcome === 'new').map((p) => p.draft),
    context,
  );
  const sightings: LeadFindingSighting[] = planned
    .filter((p) => p.plan.outcome !== 'new')
    .map(({ draft, plan }) => ({
      fingerprint: draft.fingerprint,
      status: plan.status,
      clearSilence: plan.silence_expired,
      clearResolution: plan.outcome === 'reopened',
      severity: draft.severity,
      title: draft.title,
      description: draft.description,
      evidence: draft.evidence,
    }));
  await recordLeadFindingSightings(trx, tenantId, sightings, context);
  const audits = planned
    .map((p) => findingSeenAgainAudit(tenantId, p, context.scanId))
    .filter((audit): audit is NewAudit => audit !== undefined);
  await appendAudits(trx, audits, context.now);
}

/**
 * Upserts the findings by fingerprint, {@link STORE_BATCH} per transaction. Each transaction takes the
 * tenant's advisory lock first, so two forced scans cannot both decide one finding is new.
 */
export async function storeFindings(
  db: Db,
  tenantId: string,
  drafts: readonly LeadFindingDraft[],
  context: ScanWriteContext,
): Promise<FindingResult[]> {
  const results: FindingResult[] = [];
  for (const batch of batches(drafts)) {
    context.checkLease();
    const planned = await db.transaction().execute(async (trx) => {
      await lockLeadTenant(trx, tenantId);
      const plans = await planBatch(trx, tenantId, batch, context.now, true);
      await writeBatch(trx, tenantId, plans, context);
      return plans;
    });
    for (const p of planned) results.push(findingResult(p.draft, p, false));
    context.progress({
      phase: 'store',
      done: results.length,
      total: drafts.length,
      message: `stored ${results.length}/${drafts.length} findings`,
    });
  }
  return results;
}
