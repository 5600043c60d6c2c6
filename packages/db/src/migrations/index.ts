import type { Migration } from 'kysely';
import * as createCoreTables from './2026_11_22_0001_create_core_tables.js';
import * as addAuditChain from './2026_11_22_0002_add_audit_chain.js';
import * as createLeadTables from './2026_11_22_0003_create_lead_tables.js';
import * as createChangesets from './2026_11_22_0004_create_changesets.js';
import * as createCronTables from './2026_11_22_0005_create_cron_tables.js';
import * as hardenAuditChain from './2026_12_01_0001_harden_audit_chain.js';
import * as orderTaskEvents from './2026_12_03_0001_order_task_events.js';
import * as journalWriteState from './2026_12_03_0002_journal_write_state.js';
import * as hardenScheduler from './2026_12_03_0003_harden_scheduler.js';
import * as separationOfDuties from './2026_12_03_0004_separation_of_duties.js';
import * as policyVersions from './2026_12_04_0002_policy_versions.js';
import * as eventArchive from './2026_12_04_0003_event_archive.js';
import * as gateExpiry from './2026_12_04_0004_gate_expiry.js';
import * as notifications from './2026_12_04_0005_notifications.js';
import * as operatorKeys from './2026_12_04_0006_operator_keys.js';
import * as gateDenial from './2026_12_04_0007_gate_denial.js';
import * as tenantSeparationOfDuties from './2026_12_04_0008_tenant_separation_of_duties.js';
import * as leadScanTriggers from './2026_12_04_0010_lead_scan_triggers.js';

/**
 * Every migration, by name, in the order they apply. Listed statically (not read from a folder) so the same
 * list works from source, from a bundle and inside an image. Add new ones at the end; never rename one.
 */
export const migrations: Record<string, Migration> = {
  '2026_11_22_0001_create_core_tables': createCoreTables,
  '2026_11_22_0002_add_audit_chain': addAuditChain,
  '2026_11_22_0003_create_lead_tables': createLeadTables,
  '2026_11_22_0004_create_changesets': createChangesets,
  '2026_11_22_0005_create_cron_tables': createCronTables,
  '2026_12_01_0001_harden_audit_chain': hardenAuditChain,
  '2026_12_03_0001_order_task_events': orderTaskEvents,
  '2026_12_03_0002_journal_write_state': journalWriteState,
  '2026_12_03_0003_harden_scheduler': hardenScheduler,
  '2026_12_03_0004_separation_of_duties': separationOfDuties,
  '2026_12_04_0002_policy_versions': policyVersions,
  '2026_12_04_0003_event_archive': eventArchive,
  '2026_12_04_0004_gate_expiry': gateExpiry,
  '2026_12_04_0005_notifications': notifications,
  '2026_12_04_0006_operator_keys': operatorKeys,
  '2026_12_04_0007_gate_denial': gateDenial,
  '2026_12_04_0008_tenant_separation_of_duties': tenantSeparationOfDuties,
  '2026_12_04_0010_lead_scan_triggers': leadScanTriggers,
};
