import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Platform operators: keys bound to no tenant, for what spans every tenant (Bull Board). Kept apart from
// api_keys so that a tenant's key — its admin key included — can never be one.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('operator_keys')
    .addColumn('key_id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('name', 'text', (col) => col.notNull())
    .addColumn('owner', 'text', (col) => col.notNull())
    .addColumn('key_hash', 'text', (col) => col.notNull().unique())
    .addColumn('key_prefix', 'text', (col) => col.notNull())
    .addColumn('scopes', sql`text[]`, (col) =>
      col.notNull().check(sql`cardinality(scopes) > 0 and scopes <@ array['platform:operate']::text[]`),
    )
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  // A tenant's key never holds a platform scope, whoever writes the row.
  await sql`alter table api_keys add constraint api_keys_no_platform_scopes
              check (not ('platform:operate' = any(scopes)))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table api_keys drop constraint if exists api_keys_no_platform_scopes`.execute(db);
  await db.schema.dropTable('operator_keys').ifExists().execute();
}
