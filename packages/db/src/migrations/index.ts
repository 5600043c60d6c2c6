import type { Migration } from 'kysely';
import * as createCoreTables from './2026_11_22_0001_create_core_tables.js';
import * as addAuditChain from './2026_11_22_0002_add_audit_chain.js';

/**
 * Every migration, by name, in the order they apply. Listed statically (not read from a folder) so the same
 * list works from source, from a bundle and inside an image. Add new ones at the end; never rename one.
 */
export const migrations: Record<string, Migration> = {
  '2026_11_22_0001_create_core_tables': createCoreTables,
  '2026_11_22_0002_add_audit_chain': addAuditChain,
};
