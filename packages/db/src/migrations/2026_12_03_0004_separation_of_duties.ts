import { sql, type Kysely } from 'kysely';

// Frozen in time: this file must never import application code or change after it has shipped.
// Separation of duties: keys get an owner; `tasks:write` is split into `tasks:approve`, and no key keeps both
// an agent's scope (`events:write`) and an approving one. Every scope it takes away is recorded, without secrets.

export async function up(db: Kysely<any>): Promise<void> {
  // Old keys belong to whoever their name says; new keys must name their owner (the CLI requires it).
  await sql`alter table api_keys add column owner text`.execute(db);
  await sql`update api_keys set owner = name`.execute(db);
  await sql`alter table api_keys alter column owner set not null`.execute(db);

  // What this migration (and any later scope rewrite) changed on which key: ids, prefixes and scope names only —
  // never a key or its hash — so an operator can tell which agent lost which power, and issue a person's key.
  await db.schema
    .createTable('api_key_scope_changes')
    .addColumn('change_id', 'bigserial', (col) => col.primaryKey())
    .addColumn('key_id', 'uuid', (col) => col.notNull().references('api_keys.key_id'))
    .addColumn('tenant_id', 'text', (col) => col.notNull())
    .addColumn('key_prefix', 'text', (col) => col.notNull())
    .addColumn('owner', 'text', (col) => col.notNull())
    .addColumn('removed', sql`text[]`, (col) => col.notNull())
    .addColumn('added', sql`text[]`, (col) => col.notNull())
    .addColumn('reason', 'text', (col) => col.notNull())
    .addColumn('changed_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();

  // 1. `tasks:write` released gates and unblocked tasks. A key that does not write events keeps that power as
  //    `tasks:approve`; a key that also writes events loses it (it could release the gates its own events opened).
  await sql`
    with changed as (
      select key_id, tenant_id, key_prefix, owner, scopes as before,
             case when 'events:write' = any(scopes)
                  then array_remove(scopes, 'tasks:write')
                  else array_replace(scopes, 'tasks:write', 'tasks:approve')
             end as after
        from api_keys
       where 'tasks:write' = any(scopes)
    ), updated as (
      update api_keys k set scopes = c.after from changed c where k.key_id = c.key_id returning k.key_id
    )
    insert into api_key_scope_changes (key_id, tenant_id, key_prefix, owner, removed, added, reason)
    select c.key_id, c.tenant_id, c.key_prefix, c.owner, array['tasks:write'],
           case when 'events:write' = any(c.before) then array[]::text[] else array['tasks:approve'] end,
           case when 'events:write' = any(c.before)
                then 'tasks:write dropped: the key also holds events:write (separation of duties)'
                else 'tasks:write renamed to tasks:approve' end
      from changed c join updated u on u.key_id = c.key_id`.execute(db);

  // 2. Any other key that writes events and approves (a change-set or trigger approver, or admin) keeps writing
  //    events — the agent goes on working — and loses the approving scopes, which belong on a person's key.
  await sql`
    with changed as (
      select key_id, tenant_id, key_prefix, owner,
             array(select s from unnest(scopes) s where s like '%:approve' or s = 'admin') as removed,
             array(select s from unnest(scopes) s where not (s like '%:approve' or s = 'admin')) as kept
        from api_keys
       where 'events:write' = any(scopes)
         and exists (select 1 from unnest(scopes) s where s like '%:approve' or s = 'admin')
    ), updated as (
      update api_keys k set scopes = c.kept from changed c where k.key_id = c.key_id returning k.key_id
    )
    insert into api_key_scope_changes (key_id, tenant_id, key_prefix, owner, removed, added, reason)
    select c.key_id, c.tenant_id, c.key_prefix, c.owner, c.removed, array[]::text[],
           'approving scopes dropped: the key also holds events:write (separation of duties)'
      from changed c join updated u on u.key_id = c.key_id`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // Gives back exactly what up() took, from its own record, oldest change first.
  const { rows } = await sql<{ key_id: string; removed: string[]; added: string[] }>`
    select key_id, removed, added from api_key_scope_changes order by change_id`.execute(db);
  for (const change of rows) {
    const { rows: keys } = await sql<{ scopes: string[] }>`
      select scopes from api_keys where key_id = ${change.key_id}`.execute(db);
    const scopes = keys[0]?.scopes.filter((scope) => !change.added.includes(scope)) ?? [];
    const restored = [...new Set([...scopes, ...change.removed])];
    await sql`update api_keys set scopes = ${restored} where key_id = ${change.key_id}`.execute(db);
  }
  await db.schema.dropTable('api_key_scope_changes').ifExists().execute();
  await sql`alter table api_keys drop column if exists owner`.execute(db);
}
