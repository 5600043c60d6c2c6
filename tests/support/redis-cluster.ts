/**
 * A Redis Cluster of a test file's own: three masters (no replicas) started from the installed `redis-server`
 * on free ports, joined with `redis-cli --cluster create`, keeping nothing but their node files in a temporary
 * directory, killed and removed by `stop()`. Slots split as redis-cli splits them: 0–5460, 5461–10922,
 * 10923–16383.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedis } from '@warden/queue';
import { waitFor } from '@warden/testing';
import { freePort } from './supervisor.js';

export interface TestRedisCluster {
  /** `redis+cluster://127.0.0.1:<port>,…`, for `REDIS_URL`. */
  url: string;
  /** The masters' client ports. */
  ports: number[];
  /** Every key on each master, by port (a SCAN per node: keys live only on the master of their slot). */
  keysByNode(pattern?: string): Promise<Map<number, string[]>>;
  /** Kills the servers and removes their directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts `masters` cluster-enabled servers and joins them into one cluster whose every slot is served. */
export async function startRedisCluster(masters = 3): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.splice(0).map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      // The cluster bus port is chosen too (by default it is port + 10000, which may be taken).
      const [port, busPort] = [await freePort(), await freePort()];
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '5000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      );
      // Never outlive the test process, even when its teardown did not run to the end.
      const killOnExit = () => child.kill('SIGKILL');
      process.once('exit', killOnExit);
      child.once('exit', () => process.off('exit', killOnExit));
      children.push(child);
      ports.push(port);
    }
    for (const port of ports)
      await waitFor(`redis-server on port ${port}`, () => answers(port), {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    // `create` returns once the nodes agree on the configuration; each node serves only once it says `ok`.
    for (const port of ports)
      await waitFor(`cluster node ${port} to be ok`, () => clusterOk(port), {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `redis+cluster://${ports.map((port) => `127.0.0.1:${port}`).join(',')}`,
    ports,
    async keysByNode(pattern = '*') {
      const byNode = new Map<number, string[]>();
      for (const port of ports) {
        const node = nodeClient(port, { maxRetriesPerRequest: 1 });
        try {
          const keys: string[] = [];
          let cursor = '0';
          do {
            const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
            keys.push(...batch);
            cursor = next;
          } while (cursor !== '0');
          byNode.set(port, keys);
        } finally {
          node.disconnect();
        }
      }
      return byNode;
    },
    stop,
  };
}

/** A plain client of one node (not the cluster): to look at what that node holds. */
function nodeClient(port: number, overrides: Parameters<typeof createRedis>[2]) {
  return createRedis(`redis://127.0.0.1:${port}`, 'general', overrides);
}

async function answers(port: number): Promise<boolean> {
  const node = nodeClient(port, { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  try {
    return (await node.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    node.disconnect();
  }
}

async function clusterOk(port: number): Promise<boolean> {
  const node = nodeClient(port, { maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  try {
    return /cluster_state:ok/.test(String(await node.call('CLUSTER', 'INFO')));
  } catch {
    return false;
  } finally {
    node.disconnect();
  }
}

async function run(command: string, args: string[]): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output.slice(-2000)}`);
}
