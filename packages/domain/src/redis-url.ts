// How `REDIS_URL` names a Redis Cluster. A WHATWG URL cannot hold several hosts, so the cluster form is parsed
// here, once, for both the config schemas (which refuse a malformed one) and `createRedis` (which connects).

/** One seed node of a Redis Cluster. */
export interface RedisClusterNode {
  host: string;
  port: number;
}

/** A Redis Cluster as `redis+cluster://[user:password@]host:port[,host:port…]` names it. */
export interface RedisClusterTarget {
  /** Seed nodes; the client discovers the others from them. */
  nodes: RedisClusterNode[];
  username?: string;
  password?: string;
  /** `rediss+cluster://`: every node over TLS. */
  tls: boolean;
}

const CLUSTER_SCHEME = /^(rediss?)\+cluster:\/\//i;
const STANDALONE_SCHEME = /^rediss?:\/\//i;

/** Whether `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isRedisClusterUrl(url: string): boolean {
  return CLUSTER_SCHEME.test(url);
}

/**
 * Parses a cluster URL: `redis+cluster://[user:password@]host:port[,host:port…][/]` (`rediss+cluster://` for TLS;
 * user and password, percent-encoded, apply to every node). Returns `undefined` when `url` is not a cluster
 * URL; throws an `Error` naming what is wrong when it is one but malformed.
 *
 * @example
 * parseRedisClusterUrl('redis+cluster://:s3cret@10.0.0.1:6379,10.0.0.2:6379')
 * // { nodes: [{ host: '10.0.0.1', port: 6379 }, { host: '10.0.0.2', port: 6379 }], password: 's3cret', tls: false }
 */
export function parseRedisClusterUrl(url: string): RedisClusterTarget | undefined {
  const scheme = CLUSTER_SCHEME.exec(url);
  if (!scheme) return undefined;
  let rest = url.slice(scheme[0].length).replace(/\/$/, '');
  if (/[/?#]/.test(rest))
    throw new Error('a cluster URL takes no path, query or fragment (no database: a cluster has only db 0)');
  const target: RedisClusterTarget = { nodes: [], tls: scheme[1]!.toLowerCase() === 'rediss' };
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const credentials = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = credentials.indexOf(':');
    const username = decodeURIComponent(colon < 0 ? credentials : credentials.slice(0, colon));
    const password = colon < 0 ? '' : decodeURIComponent(credentials.slice(colon + 1));
    if (username) target.username = username;
    if (password) target.password = password;
  }
  for (const entry of rest.split(',')) {
    const node = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry.trim());
    const port = node ? Number(node[2]) : 0;
    if (!node || port < 1 || port > 65535)
      throw new Error(
        `"${entry}" is not a host:port (a cluster URL lists its seed nodes as host:port,host:port)`,
      );
    target.nodes.push({ host: node[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return target;
}

/**
 * What is wrong with a Redis URL, or `undefined` when it is usable: `redis://` / `rediss://` (one server) or a
 * cluster URL (see {@link parseRedisClusterUrl}).
 */
export function redisUrlProblem(url: string, options: { allowCluster?: boolean } = {}): string | undefined {
  if (isRedisClusterUrl(url)) {
    if (options.allowCluster === false)
      return 'must name one Redis server (redis:// or rediss://), not a cluster';
    try {
      parseRedisClusterUrl(url);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }
  if (!STANDALONE_SCHEME.test(url))
    return 'must start with redis:// or rediss:// (or redis+cluster:// for a Redis Cluster)';
  try {
    new URL(url);
    return undefined;
  } catch {
    return 'is not a valid URL';
  }
}
