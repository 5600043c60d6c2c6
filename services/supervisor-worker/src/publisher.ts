// A server or a cluster connection (REDIS_URL may name a Redis Cluster).
import type { RedisConnection as Redis } from '@warden/queue';
import { decisionStreamKey } from '@warden/queue';
import type { DecidedEvent } from './decision-processor.js';

/** Keeps the stream bounded; readers that fall further behind read decisions from Postgres instead. */
const STREAM_MAX_LENGTH = 100_000;

/** Publishes committed decisions on the decision stream, one pipelined round trip per group. */
export function createDecisionPublisher(redis: Redis, prefix: string) {
  const key = decisionStreamKey(prefix);
  return async (decided: DecidedEvent[]): Promise<void> => {
    const pipeline = redis.pipeline();
    for (const d of decided) {
      pipeline.xadd(
        key,
        'MAXLEN',
        '~',
        STREAM_MAX_LENGTH,
        '*',
        'tenant_id',
        d.tenant_id,
        'task_id',
        d.task_id,
        'event_id',
        d.event_id,
        'decision_id',
        d.decision_id,
        'decision_type',
        d.decision_type,
      );
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed?.[0]) throw failed[0];
  };
}
