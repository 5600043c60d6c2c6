/**
 * An example agent service: an inventory check that runs every hour under Warden's governance. The legacy
 * job (a fixed threshold rule) is the fallback; the "agent" ranks what to reorder. The trigger starts in
 * shadow mode — both run, the legacy job's answer is served, and Warden compares the two — which is the
 * first step of moving a legacy cron job to an agent (see docs/scheduler.md, "Migration guide").
 *
 * In your own service, import from `@warden/client`; this example imports the SDK by path because
 * `examples/` is not a workspace package.
 */
import {
  WardenCron,
  TriggerValidationError,
  type CronRegistration,
  type TriggerContext,
} from '../../packages/client/src/index.js';

export interface Stock {
  sku: string;
  on_hand: number;
  daily_sales: number;
}

/** The legacy job, unchanged: anything with less than 7 days of stock is low. */
export function legacyLowStock(stock: readonly Stock[]): string[] {
  return stock
    .filter((s) => s.daily_sales > 0 && s.on_hand / s.daily_sales < 7)
    .map((s) => s.sku)
    .sort();
}

/**
 * Stands in for an LLM agent so the example runs anywhere: it reaches the same low-stock list (that is what
 * shadow mode checks) and adds a reorder plan the legacy job never had.
 */
async function inventoryAgent(context: TriggerContext, signal: AbortSignal) {
  const stock = context.payload.stock as Stock[] | undefined;
  if (!Array.isArray(stock))
    throw new TriggerValidationError('payload.stock must be a list of { sku, on_hand, daily_sales }');
  if (signal.aborted) throw signal.reason;
  const low_stock = legacyLowStock(stock);
  const reorder = low_stock.map((sku) => {
    const item = stock.find((s) => s.sku === sku)!;
    return { sku, quantity: Math.ceil(item.daily_sales * 14 - item.on_hand) };
  });
  return {
    agent_run_id: `inv-${context.execution_id.slice(0, 8)}`,
    llm_calls: 2,
    cost_usd: 0.004,
    output: { low_stock, reorder, focus: context.focus },
  };
}

export interface InventoryServiceOptions {
  /** Warden's API, e.g. `http://127.0.0.1:3000`. */
  apiUrl: string;
  /** A key with `triggers:read` and `triggers:write`. */
  apiKey: string;
  /** Redis the handler workers use. @defaultValue `redis://127.0.0.1:6379` */
  redisUrl?: string;
  /** Warden's `QUEUE_PREFIX`. @defaultValue `warden` */
  queuePrefix?: string;
  /** When to check. @defaultValue `0 * * * *` (hourly) */
  expression?: string;
  /** @defaultValue `Europe/Rome` */
  timezone?: string;
}

export interface InventoryService {
  registration: CronRegistration;
  warden: WardenCron;
  close(): Promise<void>;
}

/** Registers the `inventory-check` trigger and runs its two handlers. */
export async function startInventoryService(options: InventoryServiceOptions): Promise<InventoryService> {
  const warden = new WardenCron({
    baseUrl: options.apiUrl,
    apiKey: options.apiKey,
    redis: options.redisUrl ?? 'redis://127.0.0.1:6379',
    queuePrefix: options.queuePrefix ?? 'warden',
  });
  const registration = await warden.cron('inventory-check', options.expression ?? '0 * * * *', {
    tz: options.timezone ?? 'Europe/Rome',
    description: 'Flag low stock and propose reorders',
    focus: ['inventory', 'purchasing'],
    payload: {
      stock: [
        { sku: 'A-100', on_hand: 20, daily_sales: 5 },
        { sku: 'B-200', on_hand: 400, daily_sales: 10 },
        { sku: 'C-300', on_hand: 3, daily_sales: 1 },
      ],
    },
    // Governance: at most 48 runs and $1 a day, never two at once, a breaker after repeated failures.
    maxDailyRuns: 48,
    maxDailyCostUsd: 1,
    maxCostPerRunUsd: 0.05,
    maxDurationMs: 60_000,
    overlapPolicy: 'skip',
    catchupWindowSeconds: 300,
    retryDelaySeconds: 30,
    maxRetries: 2,
    // Migration: run both and compare the low-stock lists; raise migrationWeight once consistency holds.
    mode: 'shadow',
    migrationWeight: 0,
    migration: { compareKeys: ['low_stock'], minSamples: 24 },
    agent: (context, { signal }) => inventoryAgent(context, signal),
    fallback: (context) => ({
      output: { low_stock: legacyLowStock((context.payload.stock as Stock[] | undefined) ?? []) },
    }),
    concurrency: 2,
  });
  return { registration, warden, close: () => warden.close() };
}
