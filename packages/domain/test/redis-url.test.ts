import { describe, expect, it } from 'vitest';
import { commonEnvShape, isRedisClusterUrl, parseRedisClusterUrl, redisUrlProblem } from '../src/index.js';

describe('parseRedisClusterUrl', () => {
  it('should read the seed nodes, credentials and TLS of a cluster URL', () => {
    expect(
      parseRedisClusterUrl('rediss+cluster://app:p%40ss@10.0.0.1:6379,redis-b:6380,[::1]:7000/'),
    ).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 6379 },
        { host: 'redis-b', port: 6380 },
        { host: '::1', port: 7000 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
  });

  it('should take a password without a user name', () => {
    expect(parseRedisClusterUrl('redis+cluster://:secret@a:1')).toEqual({
      nodes: [{ host: 'a', port: 1 }],
      password: 'secret',
      tls: false,
    });
  });

  it('should say a one-server URL is not a cluster URL', () => {
    expect(isRedisClusterUrl('redis://127.0.0.1:6379')).toBe(false);
    expect(parseRedisClusterUrl('redis://127.0.0.1:6379')).toBeUndefined();
  });

  it.each([
    ['redis+cluster://a:1,b', '"b" is not a host:port'],
    ['redis+cluster://a:99999', 'is not a host:port'],
    ['redis+cluster://', 'is not a host:port'],
    ['redis+cluster://a:1/2', 'no path'],
  ])('should refuse %s', (url, message) => {
    expect(() => parseRedisClusterUrl(url)).toThrow(message);
    expect(redisUrlProblem(url)).toContain(message);
  });
});

describe('REDIS_URL', () => {
  it.each(['redis://127.0.0.1:6379', 'rediss://u:p@host:6380/2', 'redis+cluster://a:1,b:2,c:3'])(
    'should accept %s',
    (url) => {
      expect(commonEnvShape.REDIS_URL.parse(url)).toBe(url);
    },
  );

  it.each(['not a url', 'http://127.0.0.1:6379', 'redis+cluster://a'])('should refuse %s', (url) => {
    expect(commonEnvShape.REDIS_URL.safeParse(url).success).toBe(false);
  });
});
