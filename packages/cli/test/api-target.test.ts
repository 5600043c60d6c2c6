import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { apiTarget } from '../src/api-target.js';

describe('apiTarget', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  /** A working directory, with what `npm run up` leaves in .warden/ when `state` is given. */
  function cwd(state?: { url: string; key: string }): string {
    const dir = mkdtempSync(join(tmpdir(), 'warden-api-target-'));
    dirs.push(dir);
    if (state) {
      mkdirSync(join(dir, '.warden'));
      writeFileSync(join(dir, '.warden', 'api-url'), `${state.url}\n`);
      writeFileSync(join(dir, '.warden', 'dev-admin-key'), `${state.key}\n`);
    }
    return dir;
  }
  const local = { url: 'http://127.0.0.1:3100', key: 'wdn_dev' };

  it('should take the flags first, then the environment', () => {
    const dir = cwd(local);
    const env = { WARDEN_API_URL: 'https://warden.example', WARDEN_API_KEY: 'wdn_env' };
    expect(apiTarget({ env, cwd: dir }, { url: 'http://other:1', key: 'wdn_flag' })).toEqual({
      url: 'http://other:1',
      key: 'wdn_flag',
    });
    expect(apiTarget({ env, cwd: dir }, {})).toEqual({ url: 'https://warden.example', key: 'wdn_env' });
  });

  it('should find the API and the admin key that npm run up left in .warden/', () => {
    expect(apiTarget({ env: {}, cwd: cwd(local) }, {})).toEqual(local);
    expect(apiTarget({ env: { WARDEN_API_URL: 'http://127.0.0.1:3100/' }, cwd: cwd(local) }, {})).toEqual({
      url: 'http://127.0.0.1:3100/',
      key: 'wdn_dev',
    });
  });

  it('should never send the development key to another API', () => {
    expect(() =>
      apiTarget({ env: { WARDEN_API_URL: 'https://warden.example' }, cwd: cwd(local) }, {}),
    ).toThrow(/no API key/);
    expect(() => apiTarget({ env: {}, cwd: cwd(local) }, { url: 'https://warden.example' })).toThrow(
      /no API key/,
    );
  });

  it('should default to 127.0.0.1:3000 and ask for a key when nothing says more', () => {
    const dir = cwd();
    expect(() => apiTarget({ env: {}, cwd: dir }, {})).toThrow(/pass --key or set WARDEN_API_KEY/);
    expect(apiTarget({ env: {}, cwd: dir }, { key: 'k' })).toEqual({
      url: 'http://127.0.0.1:3000',
      key: 'k',
    });
  });

  it('should refuse a URL that is not http(s), naming the variable', () => {
    expect(() => apiTarget({ env: { WARDEN_API_URL: 'ftp://x' }, cwd: cwd() }, { key: 'k' })).toThrow(
      /WARDEN_API_URL/,
    );
  });
});
