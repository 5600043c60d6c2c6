import { createApiService, loadConfig, type ApiService } from '@warden/api';
import { ensureTenant, insertApiKey, insertOperatorKey, type Db } from '@warden/db';
import { displayPrefix, generateApiKey, hashApiKey, type Scope } from '@warden/domain';
import {
  createTestDatabase,
  deleteQueuePrefix,
  testQueuePrefix,
  testServers,
  type TestDatabase,
} from '@warden/testing';

export interface TestApi {
  url: string;
  db: Db;
  database: TestDatabase;
  prefix: string;
  service: ApiService;
  /**
   * Creates a tenant (if needed) and an API key for it; returns the raw key. `owner` is the person or system
   * the key belongs to. @defaultValue `test`
   */
  createKey(tenantId: string, scopes: Scope[], owner?: string): Promise<string>;
  /** Creates a platform operator's key (bound to no tenant: Bull Board); returns the raw key. */
  createOperatorKey(owner?: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The real API, in this process, on a free port, over a database and a queue prefix of its own.
 * `env` overrides configuration (e.g. `REDIS_URL` of a Redis that is down, `MAX_BODY`).
 */
export async function startTestApi(env: Record<string, string> = {}): Promise<TestApi> {
  const database = await createTestDatabase();
  const prefix = testQueuePrefix();
  const service = createApiService(
    loadConfig({
      DATABASE_URL: database.url,
      REDIS_URL: testServers.redisUrl,
      QUEUE_PREFIX: prefix,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      AUTH_CACHE_TTL_MS: '0',
      // Notification receivers in tests run on this machine: loopback allowed on purpose.
      EGRESS_ALLOWED_HOSTS: '127.0.0.1,localhost',
      EGRESS_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
      ...env,
    }),
  );
  try {
    await service.start();
  } catch (error) {
    await database.drop();
    throw error;
  }
  return {
    url: `http://127.0.0.1:${service.port()}`,
    db: database.db,
    database,
    prefix,
    service,
    async createKey(tenantId, scopes, owner = 'test') {
      await ensureTenant(database.db, tenantId);
      const key = generateApiKey();
      await insertApiKey(database.db, {
        tenantId,
        name: 'test',
        owner,
        keyHash: hashApiKey(key),
        keyPrefix: displayPrefix(key),
        scopes,
      });
      return key;
    },
    async createOperatorKey(owner = 'operator@example.com') {
      const key = generateApiKey();
      await insertOperatorKey(database.db, {
        name: 'test operator',
        owner,
        keyHash: hashApiKey(key),
        keyPrefix: displayPrefix(key),
      });
      return key;
    },
    async stop() {
      await service.stop();
      await database.drop();
      await deleteQueuePrefix(prefix);
    },
  };
}

/** A JSON request; returns the status, parsed body and headers. */
export async function call(
  url: string,
  options: {
    method?: string;
    key?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const response = await fetch(url, {
    method: options.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (Bull Board HTML, metrics text): keep the text
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

export function event(id: string, overrides: Record<string, unknown> = {}) {
  return { event_id: id, task_id: 'task-1', event_type: 'TASK_CREATED', payload: { step: 1 }, ...overrides };
}
