import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Separation of duties per tenant: `enforced` (every tenant, by default) strips the approving scopes from a key
// that writes an agent's events; a platform operator may set `relaxed` for a tenant, and both changes are
// audit rows of the tenant's hash chain.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table tenants add column separation_of_duties text not null default 'enforced'
              check (separation_of_duties in ('enforced','relaxed'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table tenants drop column if exists separation_of_duties`.execute(db);
}
