/**
 * Which supervisor policy each tenant's events are decided under: the tenant's active stored version
 * (`policy_versions`, kind `supervisor`), or the bootstrap file for a tenant that has none. A newly active
 * version is loaded when the API announces it on Redis and, in case an announcement is lost, by a poll of
 * Postgres every `pollIntervalMs`.
 *
 * A version is parsed and validated completely before it replaces the previous one, in one assignment: a
 * group of events takes a snapshot of its tenants' policies before deciding, so no event is ever decided by a
 * half-loaded policy, and each decision records the version it ran under.
 */
import type { Redis } from 'ioredis';
import { findPolicyVersions, listActivePolicyVersionNumbers, type Db } from '@warden/db';
import { parsePolicySource, storedPolicyVersionLabel, type SupervisorPolicyFile } from '@warden/domain';
import type { Logger } from '@warden/observability';
import { policyActivationChannel } from '@warden/queue';
import { PeriodicTask } from '@warden/runtime';

export interface SupervisorPolicyStoreOptions {
  db: Db;
  /** The policy of tenants without a stored version (SUPERVISOR_POLICY_FILE). */
  bootstrap: SupervisorPolicyFile;
  logger: Logger;
  /** A Redis connection this store may put into subscriber mode (it is closed with the store). */
  subscriber?: Redis;
  /** Key prefix of the announcement channel. @defaultValue `warden` */
  prefix?: string;
  /** Poll of Postgres for versions activated while an announcement was lost. @defaultValue `2000` */
  pollIntervalMs?: number;
}

interface LoadedPolicy {
  version: number;
  policy: SupervisorPolicyFile;
}

export class SupervisorPolicyStore {
  private loaded = new Map<string, LoadedPolicy>();
  private readonly poll: PeriodicTask;
  /** Versions that failed to load, so a bad row is logged once, not on every poll. */
  private readonly unloadable = new Set<string>();

  constructor(private readonly options: SupervisorPolicyStoreOptions) {
    this.poll = new PeriodicTask({
      name: 'policy-poll',
      intervalMs: options.pollIntervalMs ?? 2000,
      run: () => this.refresh(),
      logger: options.logger,
    });
  }

  /** Loads every tenant's active version, then follows announcements and polls. */
  async start(): Promise<void> {
    await this.refresh();
    const subscriber = this.options.subscriber;
    if (subscriber) {
      subscriber.on('message', () => this.poll.runSoon());
      // A subscription lost with its connection is renewed on reconnect by ioredis; until then, the poll.
      await subscriber
        .subscribe(policyActivationChannel(this.options.prefix ?? 'warden'))
        .catch((error: unknown) =>
          this.options.logger.warn(
            { module: 'policies', action: 'subscribe', status: 'error', err: error },
            'cannot subscribe to policy activations; polling only',
          ),
        );
    }
    this.poll.start();
  }

  async stop(): Promise<void> {
    await this.poll.stop();
    this.options.subscriber?.disconnect();
  }

  /** The policy each of `tenants` is decided under right now: one consistent choice for a group. */
  snapshot(tenants: Iterable<string>): Map<string, SupervisorPolicyFile> {
    const chosen = new Map<string, SupervisorPolicyFile>();
    for (const tenant of tenants) {
      const loaded = this.loaded.get(tenant);
      if (loaded) chosen.set(tenant, loaded.policy);
    }
    return chosen;
  }

  /** The stored version a tenant is decided under; undefined while it runs on the bootstrap file. */
  activeVersion(tenantId: string): number | undefined {
    return this.loaded.get(tenantId)?.version;
  }

  /**
   * Reads which version is active per tenant and loads those that changed. A version that no longer parses
   * (a schema changed under it) is logged and skipped: the tenant keeps the policy it had, which was valid.
   */
  async refresh(): Promise<void> {
    const active = await listActivePolicyVersionNumbers(this.options.db, 'supervisor');
    const changed = active.filter((a) => this.loaded.get(a.tenant_id)?.version !== a.version);
    const activeTenants = new Set(active.map((a) => a.tenant_id));
    const next = new Map(this.loaded);
    // A tenant whose versions were all removed goes back to the bootstrap file.
    for (const tenant of next.keys()) if (!activeTenants.has(tenant)) next.delete(tenant);
    for (const row of await findPolicyVersions(this.options.db, 'supervisor', changed)) {
      const key = `${row.tenant_id}\u0000${row.version}`;
      try {
        const document = parsePolicySource(
          'supervisor',
          row.source,
          `stored supervisor policy v${row.version}`,
        );
        next.set(row.tenant_id, {
          version: row.version,
          policy: { ...document, version: storedPolicyVersionLabel(document.version, row.version) },
        });
        this.options.logger.info(
          {
            module: 'policies',
            action: 'load',
            status: 'ok',
            tenant_id: row.tenant_id,
            version: row.version,
          },
          `supervisor policy version ${row.version} of ${row.tenant_id} is active`,
        );
      } catch (error) {
        if (this.unloadable.has(key)) continue;
        this.unloadable.add(key);
        this.options.logger.error(
          {
            module: 'policies',
            action: 'load',
            status: 'error',
            tenant_id: row.tenant_id,
            version: row.version,
            err: error,
          },
          'a stored supervisor policy version cannot be loaded; the tenant keeps its previous policy',
        );
      }
    }
    this.loaded = next;
  }
}
