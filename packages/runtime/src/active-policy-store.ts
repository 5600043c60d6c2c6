/**
 * Which stored version of one kind of policy (`supervisor`, `writegate`, `lead-rules`) each tenant runs under:
 * its active version in `policy_versions`, or — for a tenant that has none — the service's bootstrap file, which
 * the caller keeps. A newly active version is loaded when the API announces it on Redis and, in case an
 * announcement is lost, by a poll of Postgres every `pollIntervalMs`.
 *
 * A version is parsed and validated completely before it replaces the previous one, in one assignment: a
 * caller that takes a tenant's policy (or a snapshot of several) never sees a half-loaded one. A version that
 * no longer parses is logged once and skipped: the tenant keeps the policy it had, which was valid (fail closed).
 */
import { findPolicyVersions, listActivePolicyVersionNumbers, type Db } from '@warden/db';
import {
  parsePolicySource,
  storedPolicyVersionLabel,
  type PolicyDocumentOf,
  type PolicyKind,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import { policyActivationChannel } from '@warden/queue';
import { PeriodicTask } from './periodic-task.js';

/**
 * What the store needs of a Redis connection to follow announcements: an ioredis client, or a cluster
 * connection (REDIS_URL may name a Redis Cluster).
 */
export interface PolicyAnnouncementSubscriber {
  /** The connection's state (`ready` once it can take commands). */
  readonly status: string;
  subscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  disconnect(): void;
}

export interface ActivePolicyStoreOptions<K extends PolicyKind, T> {
  db: Db;
  /** The kind of policy this store follows; announcements of other kinds are ignored. */
  kind: K;
  /**
   * Turns a stored version's validated document into what the service runs (e.g. the WriteGate policy with its
   * hash). The document's `version` is already the stored label (`storedPolicyVersionLabel`, e.g. `1@v3`), so
   * whatever records it tells a stored version from the bootstrap file. Throwing makes the version unloadable,
   * like a parse error. @defaultValue the document itself
   */
  prepare?: (document: PolicyDocumentOf<K>, storedVersion: number) => T;
  logger: Logger;
  /** A Redis connection this store may put into subscriber mode (it is closed with the store). @defaultValue none (polling only) */
  subscriber?: PolicyAnnouncementSubscriber;
  /** Key prefix of the announcement channel. @defaultValue `warden` */
  prefix?: string;
  /** Poll of Postgres for versions activated while an announcement was lost. @defaultValue `2000` */
  pollIntervalMs?: number;
}

/** A tenant's loaded stored version: its number and the policy prepared from it. */
export interface ActivePolicy<T> {
  version: number;
  policy: T;
}

/**
 * Follows the active stored versions of one policy kind for every tenant.
 *
 * @example
 * const leadRules = new ActivePolicyStore({ db, kind: 'lead-rules', logger, subscriber, prefix });
 * await leadRules.start();
 * const rules = leadRules.policyOf(tenantId) ?? bootstrapRules;
 */
export class ActivePolicyStore<K extends PolicyKind, T = PolicyDocumentOf<K>> {
  private loaded = new Map<string, ActivePolicy<T>>();
  private readonly poll: PeriodicTask;
  /** Versions that failed to load, so a bad row is logged once, not on every poll. */
  private readonly unloadable = new Set<string>();
  private readonly prepare: (document: PolicyDocumentOf<K>, storedVersion: number) => T;

  constructor(private readonly options: ActivePolicyStoreOptions<K, T>) {
    this.prepare = options.prepare ?? ((document) => document as unknown as T);
    this.poll = new PeriodicTask({
      name: `${options.kind}-policy-poll`,
      intervalMs: options.pollIntervalMs ?? 2000,
      run: () => this.refresh(),
      logger: options.logger,
    });
  }

  get kind(): K {
    return this.options.kind;
  }

  /**
   * Loads every tenant's active version (a database error here fails the start), then follows announcements
   * and polls. The subscription is not awaited: a service starts while Redis is away, polling until it is back.
   */
  async start(): Promise<void> {
    await this.refresh();
    const subscriber = this.options.subscriber;
    if (subscriber) {
      const channel = policyActivationChannel(this.options.prefix ?? 'warden');
      let subscribed = false;
      const subscribe = () =>
        subscriber.subscribe(channel).then(
          () => (subscribed = true),
          (error: unknown) =>
            this.options.logger.warn(
              { module: 'policies', action: 'subscribe', status: 'error', kind: this.kind, err: error },
              'cannot subscribe to policy activations; polling only until Redis is back',
            ),
        );
      subscriber.on('message', (_channel: string, message: string) => {
        if (this.concerns(message)) this.poll.runSoon();
      });
      // Subscribed once the connection is ready (now, or when it comes); ioredis renews a subscription that
      // succeeded when it reconnects, and one that never did is asked for again at the next 'ready'.
      subscriber.on('ready', () => {
        if (!subscribed) void subscribe();
      });
      if (subscriber.status === 'ready') void subscribe();
    }
    this.poll.start();
  }

  async stop(): Promise<void> {
    await this.poll.stop();
    this.options.subscriber?.disconnect();
  }

  /** The policy a tenant runs under right now; undefined while it runs on the bootstrap file. */
  policyOf(tenantId: string): T | undefined {
    return this.loaded.get(tenantId)?.policy;
  }

  /** The stored version a tenant runs under; undefined while it runs on the bootstrap file. */
  activeVersion(tenantId: string): number | undefined {
    return this.loaded.get(tenantId)?.version;
  }

  /** The stored policy of each of `tenants` that has one right now: one consistent choice for a group. */
  snapshot(tenants: Iterable<string>): Map<string, T> {
    const chosen = new Map<string, T>();
    for (const tenant of tenants) {
      const loaded = this.loaded.get(tenant);
      if (loaded) chosen.set(tenant, loaded.policy);
    }
    return chosen;
  }

  /**
   * Reads which version is active per tenant and loads those that changed. A version that no longer parses
   * (a schema changed under it, a row edited by hand) is logged once and skipped: the tenant keeps the policy it
   * had, which was valid.
   */
  async refresh(): Promise<void> {
    const { db, kind, logger } = this.options;
    const active = await listActivePolicyVersionNumbers(db, kind);
    const changed = active.filter((a) => this.loaded.get(a.tenant_id)?.version !== a.version);
    const activeTenants = new Set(active.map((a) => a.tenant_id));
    const next = new Map(this.loaded);
    // A tenant whose versions were all removed goes back to the bootstrap file.
    for (const tenant of next.keys()) if (!activeTenants.has(tenant)) next.delete(tenant);
    for (const row of await findPolicyVersions(db, kind, changed)) {
      const key = `${row.tenant_id}\u0000${row.version}`;
      try {
        const document = parsePolicySource(kind, row.source, `stored ${kind} policy v${row.version}`);
        const labelled = {
          ...document,
          version: storedPolicyVersionLabel(document.version, row.version),
        } as PolicyDocumentOf<K>;
        next.set(row.tenant_id, { version: row.version, policy: this.prepare(labelled, row.version) });
        logger.info(
          {
            module: 'policies',
            action: 'load',
            status: 'ok',
            kind,
            tenant_id: row.tenant_id,
            version: row.version,
          },
          `${kind} policy version ${row.version} of ${row.tenant_id} is active`,
        );
      } catch (error) {
        if (this.unloadable.has(key)) continue;
        this.unloadable.add(key);
        logger.error(
          {
            module: 'policies',
            action: 'load',
            status: 'error',
            kind,
            tenant_id: row.tenant_id,
            version: row.version,
            err: error,
          },
          `a stored ${kind} policy version cannot be loaded; the tenant keeps its previous policy`,
        );
      }
    }
    this.loaded = next;
  }

  /** Whether an announcement may be about this kind: anything unreadable is taken as "maybe" (a poll costs little). */
  private concerns(message: string): boolean {
    try {
      const announced = JSON.parse(message) as { kind?: unknown };
      return announced.kind === undefined || announced.kind === this.kind;
    } catch {
      return true;
    }
  }
}

/** Where a service takes a tenant's policy from: always an answer, never a half-loaded one. */
export interface TenantPolicySource<T> {
  /** The tenant's active stored version when it has one that loaded, else the bootstrap file's policy. */
  policyFor(tenantId: string): T;
}

/**
 * A tenant's active stored version from `store`, else `bootstrap` (the service's policy file). Without a store
 * (tests, embedding) every tenant gets `bootstrap`.
 */
export function withBootstrap<T>(
  store: Pick<ActivePolicyStore<PolicyKind, T>, 'policyOf'> | undefined,
  bootstrap: T,
): TenantPolicySource<T> {
  return { policyFor: (tenantId) => store?.policyOf(tenantId) ?? bootstrap };
}
