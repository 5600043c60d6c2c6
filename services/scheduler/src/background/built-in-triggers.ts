/**
 * Gives every tenant the built-in triggers (the daily and weekly lead scans, `BUILT_IN_TRIGGERS` in
 * @warden/domain) once: at start and before every periodic reconcile, so a new tenant has them within
 * `RECONCILE_INTERVAL_MS`. Only triggers a tenant has never had are created — a built-in trigger an operator
 * changed keeps its changes, and one deleted stays deleted. Registering goes through the same audited
 * transaction as `POST /v1/triggers` (`TRIGGER_REGISTERED`, by `scheduler`).
 */
import {
  lockTriggerByNameIfExists,
  registerTrigger,
  tenantsMissingBuiltInTriggers,
  type Db,
} from '@warden/db';
import { BUILT_IN_TRIGGERS, TriggerDefinitionSchema, type TriggerDefinition } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { inLockTurn, type Redlock } from './lock-turn.js';

export interface BuiltInTriggerSeederOptions {
  db: Db;
  redlock: Redlock;
  /** Namespaces the lock (the BullMQ prefix). */
  prefix: string;
  logger: Logger;
}

/** How long one pass may hold the lock; a pass is one query plus an insert per missing trigger. */
const SEED_LOCK_TTL_MS = 30_000;

/** Whoever registered a built-in trigger, as its audit row names them. */
export const BUILT_IN_TRIGGER_ACTOR = 'scheduler';

export class BuiltInTriggerSeeder {
  private readonly log: Logger;
  private readonly definitions: Map<string, TriggerDefinition>;

  constructor(private readonly options: BuiltInTriggerSeederOptions) {
    this.log = options.logger.child({ module: 'built_in_triggers' });
    // Parsed once: a built-in definition that does not validate is a bug, and fails the start.
    this.definitions = new Map(
      BUILT_IN_TRIGGERS.map((input) => {
        const definition = TriggerDefinitionSchema.parse(input);
        return [definition.event_name, definition];
      }),
    );
  }

  /**
   * Creates the built-in triggers tenants lack. Returns their ids (to reconcile), or undefined when another
   * replica holds the lock (it is doing the same work).
   */
  seed(): Promise<string[] | undefined> {
    return inLockTurn(
      this.options.redlock,
      `${this.options.prefix}:lock:cron-built-ins`,
      SEED_LOCK_TTL_MS,
      () => this.seedHoldingLock(),
    );
  }

  private async seedHoldingLock(): Promise<string[]> {
    const missing = await tenantsMissingBuiltInTriggers(this.options.db, [...this.definitions.keys()]);
    const created: string[] = [];
    for (const { tenant_id, event_name } of missing) {
      const definition = this.definitions.get(event_name)!;
      // One transaction per trigger. registerTrigger would update a trigger of that name, so one a person
      // registered since the query is left exactly as it is.
      const change = await this.options.db.transaction().execute(async (trx) => {
        if (await lockTriggerByNameIfExists(trx, tenant_id, event_name)) return undefined;
        return registerTrigger(trx, { tenantId: tenant_id, definition, actor: BUILT_IN_TRIGGER_ACTOR });
      });
      if (!change?.created) continue;
      created.push(change.trigger.trigger_id);
      this.log.info(
        {
          action: 'create',
          status: 'ok',
          tenant_id,
          event_name,
          trigger_id: change.trigger.trigger_id,
        },
        'built-in trigger created',
      );
    }
    return created;
  }
}
