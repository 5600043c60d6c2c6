/**
 * Runs the example inventory service until SIGTERM/SIGINT:
 *
 *   WARDEN_API_URL=http://127.0.0.1:3000 WARDEN_API_KEY=$(cat .warden/dev-admin-key) \
 *     node --import tsx examples/cron-agent/main.ts
 */
import { startInventoryService } from './inventory-service.js';

const apiKey = process.env.WARDEN_API_KEY;
if (!apiKey) {
  process.stderr.write('WARDEN_API_KEY is required (a key with triggers:read and triggers:write)\n');
  process.exit(2);
}
const service = await startInventoryService({
  apiUrl: process.env.WARDEN_API_URL ?? 'http://127.0.0.1:3000',
  apiKey,
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  queuePrefix: process.env.QUEUE_PREFIX ?? 'warden',
  ...(process.env.INVENTORY_CRON ? { expression: process.env.INVENTORY_CRON } : {}),
});
const { trigger, created } = service.registration;
process.stdout.write(
  `${created ? 'registered' : 'up to date'}: ${trigger.event_name} "${trigger.expression}" (${trigger.timezone}), mode ${trigger.mode}\n`,
);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void service.close().then(() => process.exit(0));
  });
}
