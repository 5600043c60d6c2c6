// Glob matching for policy files (forbidden paths, WriteGate): `**`, `*`, `?`, basename patterns, case.
import { describe, expect, it } from 'vitest';
import { globToRegExp, matchesAnyGlob } from '../src/index.js';

describe('globToRegExp', () => {
  it.each([
    // `**/` is zero or more whole segments
    ['**/*.pem', 'a.pem', true],
    ['**/*.pem', 'certs/a.pem', true],
    ['**/*.pem', 'a/b/c/server.pem', true],
    ['**/*.pem', 'a.pem.bak', false],
    ['**/*.pem', 'apem', false],
    ['src/**/*.ts', 'src/a.ts', true],
    ['src/**/*.ts', 'src/a/b/c.ts', true],
    ['src/**/*.ts', 'lib/a.ts', false],
    ['src/**/test', 'src/test', true],
    ['src/**/test', 'src/a/b/test', true],
    ['src/**/test', 'src/a/b/test/x', false],
    // a trailing `**` is everything below
    ['.git/**', '.git/config', true],
    ['.git/**', '.git/objects/ab/cdef', true],
    ['.git/**', 'src/.git/config', false],
    ['.git/**', '.github/workflows/ci.yml', false],
    ['/etc/**', '/etc/passwd', true],
    ['/etc/**', '/etc/ssh/sshd_config', true],
    ['/etc/**', 'etc/passwd', false],
    ['/etc/**', '/var/etc/x', false],
    ['**', 'any/thing/at/all', true],
    // `*` stays within one segment
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/a/b.ts', false],
    ['src/*.ts', 'lib/src/a.ts', false],
    // `?` is exactly one character, never `/`
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'dir/fileA.txt', true],
    ['file?.txt', 'file.txt', false],
    ['file?.txt', 'file12.txt', false],
    ['a?b/c', 'a/b/c', false],
    // a pattern without `/` matches the basename anywhere
    ['*.pem', 'a.pem', true],
    ['*.pem', 'x/y/a.pem', true],
    ['.env', '.env', true],
    ['.env', 'deploy/prod/.env', true],
    ['.env', '.envrc', false],
    ['.env', 'x.env', false],
    ['id_rsa', 'home/u/.ssh/id_rsa', true],
    ['id_rsa', 'home/u/.ssh/id_rsa.pub', false],
    // regular-expression characters are literal
    ['a+b(1).txt', 'a+b(1).txt', true],
    ['a+b(1).txt', 'aab1.txt', false],
    ['[x].md', '[x].md', true],
    ['[x].md', 'x.md', false],
    ['$HOME/^x|y', '$HOME/^x|y', true],
  ])('should judge %s against %s as a match: %s', (glob, path, expected) => {
    expect(globToRegExp(glob).test(path)).toBe(expected);
  });

  it.each([
    ['*.PEM', 'certs/server.pem'],
    ['**/.ENV', 'app/.env'],
    ['/ETC/**', '/etc/passwd'],
  ])('should match %s against %s only when case-insensitive', (glob, path) => {
    expect(globToRegExp(glob).test(path)).toBe(false);
    expect(globToRegExp(glob, { caseInsensitive: true }).test(path)).toBe(true);
  });
});

describe('matchesAnyGlob', () => {
  const secrets = ['/etc/**', '**/.ssh/**', '**/.env', '**/*.pem', '**/*.key'];

  it.each([
    ['/etc/shadow', true],
    ['/home/dev/.ssh/id_rsa', true],
    ['~/.ssh/config', true],
    ['.ssh/known_hosts', true],
    ['./deploy/.env', true],
    ['/srv/app/.env', true],
    ['certs/tls.pem', true],
    ['../secrets/app.key', true],
    ['src/index.ts', false],
    ['.envrc', false],
    ['/etc', false],
    ['etc/passwd', false],
    ['keys.txt', false],
  ])('should judge %s against the default forbidden paths: %s', (path, expected) => {
    expect(matchesAnyGlob(path, secrets)).toBe(expected);
  });

  it.each([
    ['./.git/config', true],
    ['/.git/HEAD', true],
    ['.//.git/HEAD', true],
    ['.git/config', true],
    ['src/.git/config', false],
  ])('should ignore a leading ./ or / against a relative pattern: %s → %s', (path, expected) => {
    expect(matchesAnyGlob(path, ['.git/**'])).toBe(expected);
  });

  it('should keep a leading / significant to an absolute pattern', () => {
    expect(matchesAnyGlob('/etc/passwd', ['/etc/**'])).toBe(true);
    expect(matchesAnyGlob('./etc/passwd', ['/etc/**'])).toBe(false);
  });

  it('should match nothing against an empty list', () => {
    expect(matchesAnyGlob('anything', [])).toBe(false);
  });

  it('should match when any one of the globs matches', () => {
    expect(matchesAnyGlob('docs/readme.md', ['*.ts', 'docs/**'])).toBe(true);
    expect(matchesAnyGlob('docs/readme.md', ['*.ts', 'src/**'])).toBe(false);
  });

  it('should honour the case-insensitive option', () => {
    expect(matchesAnyGlob('Config/Secrets/.ENV', ['**/.env'])).toBe(false);
    expect(matchesAnyGlob('Config/Secrets/.ENV', ['**/.env'], { caseInsensitive: true })).toBe(true);
  });

  it('should keep the case option apart for one list matched both ways', () => {
    const globs = ['**/.env'];
    expect(matchesAnyGlob('a/.ENV', globs, { caseInsensitive: true })).toBe(true);
    expect(matchesAnyGlob('a/.ENV', globs)).toBe(false);
  });

  it('should match against a list changed in place since it was last matched, not against its old globs', () => {
    // Lists are compiled once and kept per array: one edited afterwards must not keep its old patterns.
    const globs = ['*.md'];
    expect(matchesAnyGlob('secrets/key.pem', globs)).toBe(false);
    globs.push('*.pem');
    expect(matchesAnyGlob('secrets/key.pem', globs)).toBe(true);
    globs[1] = '*.key';
    expect(matchesAnyGlob('secrets/key.pem', globs)).toBe(false);
    globs.length = 0;
    expect(matchesAnyGlob('docs/readme.md', globs)).toBe(false);
  });
});
