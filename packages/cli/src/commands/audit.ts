import type { Command } from 'commander';
import { assertMigrationsCurrent, listChainTenants, verifyAuditChain, type ChainVerification } from '@warden/db';
import { TenantIdSchema, parseOrThrow } from '@warden/domain';
import { loadConfig, type CliEnvironment } from '../config.js';
import { CommandFailedError } from '../errors.js';
import { plural, writeJson, type CliIo } from '../output.js';
import { closePostgres, connectPostgres } from '../postgres.js';

export interface AuditVerifyOptions {
  databaseUrl: string;
  /** Only this tenant's chain. @defaultValue every tenant with a chain */
  tenantId?: string;
}

/**
 * Verifies the tamper-evident audit trail: walks each tenant's hash chain and reports the first broken row
 * (edited, removed or reordered). Reads only.
 */
export async function runAuditVerify(options: AuditVerifyOptions): Promise<ChainVerification[]> {
  const db = await connectPostgres(options.databaseUrl);
  try {
    await assertMigrationsCurrent(db);
    const tenants = options.tenantId ? [options.tenantId] : await listChainTenants(db);
    const results: ChainVerification[] = [];
    for (const tenant of tenants) results.push(await verifyAuditChain(db, tenant));
    return results;
  } finally {
    await closePostgres(db);
  }
}

export function registerAuditCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const audit = program.command('audit').description('inspect the tamper-evident audit trail');
  audit
    .command('verify')
    .description('check every tenant\'s audit hash chain and name the first broken row (exit 1 if any)')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--json', 'print the result as JSON')
    .action(async (flags: { tenant?: string; json?: boolean }) => {
      const config = loadConfig(environment);
      const tenantId = flags.tenant === undefined ? undefined : parseOrThrow(TenantIdSchema, flags.tenant, '--tenant');
      const results = await runAuditVerify({ databaseUrl: config.DATABASE_URL, ...(tenantId ? { tenantId } : {}) });
      const broken = results.filter((r) => r.broken);
      if (flags.json) {
        writeJson(io, { ok: broken.length === 0, tenants: results });
      } else {
        for (const result of results) {
          io.out(
            result.broken
              ? `✗ ${result.tenant_id}: broken at audit_id ${result.broken.audit_id} (chain position ${result.broken.chain_seq}): ${result.broken.reason}\n`
              : `✓ ${result.tenant_id}: ${plural(result.rows, 'row')} verified\n`,
          );
        }
        if (results.length === 0) io.out('no audit chains to verify\n');
      }
      if (broken.length > 0) throw new CommandFailedError(`audit chain broken for ${plural(broken.length, 'tenant')}: ${broken.map((b) => b.tenant_id).join(', ')}`);
    });
}
