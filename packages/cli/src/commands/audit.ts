import type { Command } from 'commander';
import {
  anchorAuditChains,
  assertMigrationsCurrent,
  checkAuditStore,
  listChainTenants,
  verifyAuditChain,
  type AnchorResult,
  type ChainVerification,
} from '@warden/db';
import { TenantIdSchema, parseOrThrow, type AuditKey } from '@warden/domain';
import { loadConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError, UsageError } from '../errors.js';
import { plural, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';

export interface AuditVerifyOptions {
  databaseUrl: string;
  /** Only this tenant's chain. @defaultValue every tenant with a chain head, an audit row or an anchor */
  tenantId?: string;
  /** Keys to check the anchors with (`WARDEN_AUDIT_KEY`). @defaultValue `[]`: anchors are not checked */
  keys?: readonly AuditKey[];
}

export interface AuditVerifyReport {
  /** False when any tenant or store check failed. */
  ok: boolean;
  /** Whether anchors were checked (a key was given). */
  anchors_checked: boolean;
  /** Failures that belong to no one tenant (dropped constraints, rows set aside at the upgrade). */
  store: string[];
  tenants: ChainVerification[];
}

/**
 * Verifies the tamper-evident audit trail: every tenant's chain (positions, links, hashes, head) and, given a
 * key, its signed anchors. Reads only.
 */
export async function runAuditVerify(options: AuditVerifyOptions): Promise<AuditVerifyReport> {
  const db = await connectPostgres(options.databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    const keys = options.keys ?? [];
    const store = await checkAuditStore(db);
    const tenantIds = options.tenantId ? [options.tenantId] : await listChainTenants(db);
    const tenants: ChainVerification[] = [];
    for (const tenant of tenantIds) tenants.push(await verifyAuditChain(db, tenant, { keys }));
    const ok = store.length === 0 && tenants.every((t) => t.problems.length === 0);
    return { ok, anchors_checked: keys.length > 0, store, tenants };
  } finally {
    await closePostgres(db);
  }
}

export interface AuditAnchorOptions {
  databaseUrl: string;
  /** The first signs; all verify the anchors anchoring resumes from. */
  keys: readonly AuditKey[];
  /** Only this tenant. @defaultValue every tenant whose chain grew since its newest anchor */
  tenantId?: string;
}

/** Anchors each chain that grew since its newest anchor, after verifying the rows since (see anchorAuditChains). */
export async function runAuditAnchor(options: AuditAnchorOptions): Promise<AnchorResult[]> {
  const [key] = options.keys;
  if (!key) throw new UsageError('WARDEN_AUDIT_KEY is not set: anchors are signed with it');
  const db = await connectPostgres(options.databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    return await anchorAuditChains(db, {
      key,
      keys: options.keys,
      ...(options.tenantId ? { tenantId: options.tenantId } : {}),
    });
  } finally {
    await closePostgres(db);
  }
}

/** The report as lines: one per tenant, one per problem, then what was not checked. */
export function formatAuditVerifyReport(report: AuditVerifyReport): string {
  const lines: string[] = [];
  for (const failure of report.store) lines.push(`✗ ${failure}`);
  for (const result of report.tenants) {
    const tenant = result.tenant_id;
    for (const problem of result.problems) {
      // The line the command has always printed: `broken at audit_id A (chain position N): reason`.
      const position = problem.chain_seq === undefined ? '' : `chain position ${problem.chain_seq}`;
      const where = problem.audit_id
        ? `audit_id ${problem.audit_id}${position ? ` (${position})` : ''}`
        : position;
      lines.push(`✗ ${tenant}: ${where ? `broken at ${where}: ` : ''}${problem.message}`);
    }
    if (result.omitted_problems > 0)
      lines.push(`✗ ${tenant}: …and ${plural(result.omitted_problems, 'more problem')}`);
    if (result.problems.length === 0) {
      const anchored = result.anchors.checked
        ? result.anchors.last_anchored_seq === null
          ? '; no anchors yet'
          : `; anchored up to position ${result.anchors.last_anchored_seq} (${plural(result.anchors.count, 'anchor')} checked)`
        : '';
      lines.push(`✓ ${tenant}: ${plural(result.rows, 'row')} verified${anchored}`);
    }
    if (result.anchors.checked && result.anchors.unanchored_rows > 0) {
      const from = (result.anchors.last_anchored_seq ?? 0) + 1;
      lines.push(
        `· ${tenant}: ${plural(result.anchors.unanchored_rows, 'row')} not yet anchored (positions ${from}–${result.last_seq}): information, not a failure`,
      );
    }
  }
  if (report.tenants.length === 0) lines.push('no audit chains to verify');
  if (!report.anchors_checked) {
    lines.push(
      '! anchors not checked: WARDEN_AUDIT_KEY is not set. The checks above find edits made by hand, not a chain recomputed by someone who can write the tables.',
    );
  }
  return lines.map((line) => line + '\n').join('');
}

export function registerAuditCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const audit = program.command('audit').description('inspect the tamper-evident audit trail');
  audit
    .command('verify')
    .description(
      "check every tenant's audit chain (and, with WARDEN_AUDIT_KEY, its signed anchors) and name each problem (exit 1 if any)",
    )
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { tenant?: string; json?: boolean }) => {
      const config = loadConfig(environment);
      const tenantId =
        flags.tenant === undefined ? undefined : parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
      const report = await runAuditVerify({
        databaseUrl: config.DATABASE_URL,
        keys: config.WARDEN_AUDIT_KEY,
        ...(tenantId ? { tenantId } : {}),
      });
      if (flags.json) writeJson(io, report);
      else io.out(formatAuditVerifyReport(report));
      if (!report.ok) {
        const broken = report.tenants.filter((t) => t.problems.length > 0).map((t) => t.tenant_id);
        const parts = [
          ...(report.store.length > 0 ? [plural(report.store.length, 'store problem')] : []),
          ...(broken.length > 0 ? [`${plural(broken.length, 'tenant')}: ${broken.join(', ')}`] : []),
        ];
        throw new CommandFailedError(`audit chain broken for ${parts.join('; ')}`);
      }
    });
  audit
    .command('anchor')
    .description(
      'sign a checkpoint of every audit chain that grew since its last one (needs WARDEN_AUDIT_KEY)',
    )
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { tenant?: string; json?: boolean }) => {
      const config = loadConfig(environment);
      const tenantId =
        flags.tenant === undefined ? undefined : parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
      const results = await runAuditAnchor({
        databaseUrl: config.DATABASE_URL,
        keys: config.WARDEN_AUDIT_KEY,
        ...(tenantId ? { tenantId } : {}),
      });
      if (flags.json) {
        writeJson(io, { ok: results.every((r) => r.status === 'anchored'), results });
      } else {
        for (const result of results) {
          io.out(
            result.status === 'anchored'
              ? `✓ ${result.tenant_id}: anchored at chain position ${result.chain_seq} (rows ${result.from_seq + 1}–${result.chain_seq} verified)\n`
              : `✗ ${result.tenant_id}: not anchored: ${result.problem.chain_seq !== undefined ? `chain position ${result.problem.chain_seq}: ` : ''}${result.problem.message}\n`,
          );
        }
        if (results.length === 0) io.out('every audit chain is anchored at its head\n');
      }
      const broken = results.filter((r) => r.status === 'broken');
      if (broken.length > 0)
        throw new CommandFailedError(
          `not anchored, the chain does not verify: ${broken.map((b) => b.tenant_id).join(', ')} (run warden audit verify)`,
        );
    });
}
