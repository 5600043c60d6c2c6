/**
 * The executor's configuration, workspaces and policy are checked at start-up and refused with a message naming
 * what is wrong; change sets naming an unknown workspace are refused; a change set whose job was lost (Redis away
 * when the API enqueued) is found by the poller and run anyway.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiService, loadConfig as loadApiConfig } from '@warden/api';
import { ConfigError, WriteGatePolicySchema, parsePolicyYaml } from '@warden/domain';
import { createTestDatabase, testQueuePrefix, testServers, type TestDatabase } from '@warden/testing';
import { createExecutorService, loadConfig } from '../../services/executor/src/index.js';
import {
  WRITEGATE_POLICY_FILE,
  change,
  forgeChangeSet,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
} from '../support/executor.js';

describe('executor start-up', () => {
  let database: TestDatabase;
  let dir: string;
  let ws: TempWorkspace;

  beforeAll(async () => {
    database = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'warden-exec-start-'));
    ws = await tempWorkspace({ 'docs/a.md': 'a\n' });
  });

  afterAll(async () => {
    await database?.drop();
    await ws?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const baseEnv = () => ({
    DATABASE_URL: database.url,
    REDIS_URL: testServers.redisUrl,
    QUEUE_PREFIX: testQueuePrefix(),
    OPS_PORT: '0',
    LOG_LEVEL: 'silent',
    WRITEGATE_POLICY_FILE,
  });

  async function startError(env: Record<string, string>): Promise<unknown> {
    const service = createExecutorService(loadConfig({ ...baseEnv(), ...env }));
    try {
      await service.start();
      return undefined;
    } catch (error) {
      return error;
    } finally {
      await service.stop();
    }
  }

  it('should default to the documented ports and files, with no workspaces', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      OPS_PORT: 9104,
      WRITEGATE_POLICY_FILE: 'infra/policies/writegate.yaml',
      EXECUTOR_WORKSPACES: {},
      EXECUTOR_LOCK_TTL_MS: 30_000,
      EXECUTOR_IDEMPOTENCY_RETENTION_HOURS: 48,
    });
  });

  it.each([
    [
      'EXECUTOR_WORKSPACES that is not JSON',
      { EXECUTOR_WORKSPACES: '{app:' },
      /EXECUTOR_WORKSPACES: not valid JSON/,
    ],
    ['a workspace name with a slash', { EXECUTOR_WORKSPACES: '{"a/b":"/tmp"}' }, /EXECUTOR_WORKSPACES/],
    [
      'idempotency kept under 24 h',
      { EXECUTOR_IDEMPOTENCY_RETENTION_HOURS: '2' },
      /EXECUTOR_IDEMPOTENCY_RETENTION_HOURS/,
    ],
  ])('should refuse %s, naming the variable', (_name, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it.each([
    [
      'a relative root',
      () => ({ app: 'relative/dir' }),
      /workspace "app": root "relative\/dir" must be an absolute path/,
    ],
    [
      'a root that does not exist',
      () => ({ app: join(dir, 'missing') }),
      /workspace "app": root .*missing is not an existing directory/,
    ],
    [
      'two names for nested roots',
      () => ({ outer: ws.root, inner: join(ws.root, 'docs') }),
      /workspaces "outer" and "inner" overlap/,
    ],
  ])('should refuse to start with %s', async (_name, workspaces, message) => {
    const error = await startError({ EXECUTOR_WORKSPACES: JSON.stringify(workspaces()) });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
  });

  it('should refuse to start with a bad WriteGate policy, naming the file and the field', async () => {
    const policy = join(dir, 'bad-policy.yaml');
    await writeFile(policy, 'constraints:\n  max_files_touched: -1\n');
    const error = await startError({
      WRITEGATE_POLICY_FILE: policy,
      EXECUTOR_WORKSPACES: JSON.stringify({ app: ws.root }),
    });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/bad-policy\.yaml: constraints\.max_files_touched/);

    const api = createApiService(
      loadApiConfig({
        DATABASE_URL: database.url,
        REDIS_URL: testServers.redisUrl,
        PORT: '0',
        LOG_LEVEL: 'silent',
        WRITEGATE_POLICY_FILE: policy,
      }),
    );
    const apiError = await api.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await api.stop();
    expect((apiError as Error).message).toMatch(/bad-policy\.yaml: constraints\.max_files_touched/);
  });

  it('should read workspaces from a YAML file', async () => {
    const file = join(dir, 'workspaces.yaml');
    await mkdir(join(dir, 'site'), { recursive: true });
    await writeFile(file, `site:\n  root: ${join(dir, 'site')}\n  tenants: [acme]\n`);
    expect(await startError({ EXECUTOR_WORKSPACES_FILE: file })).toBeUndefined();
  });

  it('should ship a valid WriteGate policy', async () => {
    const policy = parsePolicyYaml(
      await readFile(WRITEGATE_POLICY_FILE, 'utf8'),
      WriteGatePolicySchema,
      'infra/policies/writegate.yaml',
    );
    expect(policy.forbidden_paths).toEqual(expect.arrayContaining(['.env', '.git/**', 'infra/policies/**']));
    expect(policy.constraints).toMatchObject({ max_files_touched: 50, max_patch_lines: 5000 });
  });

  describe('when it runs', () => {
    let prefix: string;
    let stop: (() => Promise<void>) | undefined;
    let poll: () => Promise<{ requeued: number }>;

    beforeAll(async () => {
      prefix = testQueuePrefix();
      const executor = await startTestExecutor({
        databaseUrl: database.url,
        prefix,
        workspaces: { app: { root: ws.root, tenants: ['acme'] } },
        env: { EXECUTOR_REQUEUE_GRACE_MS: '100' },
      });
      stop = executor.stop;
      poll = () => executor.service.poller()!.pollOnce();
    });

    afterAll(async () => {
      await stop?.();
    });

    it('should find a change set whose job never reached the queue, and run it', async () => {
      await forgeChangeSet(
        database.db,
        'acme',
        submission({
          changesetId: 'lost-job',
          workspace: 'app',
          changes: [change.update('docs/a.md', 'a\n', 'a v2\n')],
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await poll()).requeued).toBe(1);
      expect((await waitForChangeSet(database.db, 'acme', 'lost-job', ['completed', 'failed'])).status).toBe(
        'completed',
      );
      expect(await ws.read('docs/a.md')).toBe('a v2\n');
    });

    it('should refuse a change set naming a workspace it does not serve, or one the tenant may not use', async () => {
      await forgeChangeSet(
        database.db,
        'acme',
        submission({
          changesetId: 'no-such-ws',
          workspace: 'elsewhere',
          changes: [change.create('docs/x.md', 'x\n')],
        }),
      );
      await forgeChangeSet(
        database.db,
        'globex',
        submission({
          changesetId: 'not-yours',
          workspace: 'app',
          changes: [change.create('docs/y.md', 'y\n')],
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      await poll();
      const unknown = await waitForChangeSet(database.db, 'acme', 'no-such-ws', ['failed']);
      expect(unknown).toMatchObject({
        error_code: 'unknown_workspace',
        error_message: expect.stringContaining('unknown workspace "elsewhere"'),
      });
      const foreign = await waitForChangeSet(database.db, 'globex', 'not-yours', ['failed']);
      expect(foreign.error_message).toContain('tenant "globex" may not use workspace "app"');
      expect(await ws.exists('docs/y.md')).toBe(false);
    });
  });
});
