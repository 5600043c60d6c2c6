// Word values with glob and unknown markers: path normalization and glob intersection.
import { describe, expect, it } from 'vitest';
import {
  GLOB_STAR,
  UNKNOWN,
  normalizePathValue,
  pathValueMatchesGlob,
  wordValueMatchesGlob,
} from '../src/supervisor/shell/path-pattern.js';

describe('normalizePathValue', () => {
  it.each([
    ['/', '/'],
    ['//', '/'],
    ['/.', '/'],
    ['/./', '/'],
    ['///usr//bin/', '/usr/bin'],
    ['/tmp/../etc/shadow', '/etc/shadow'],
    ['/..', '/'],
    ['/../../etc', '/etc'],
    ['~/', '~'],
    ['~/.ssh/../.ssh/id_rsa', '~/.ssh/id_rsa'],
    ['./build', 'build'],
    ['a/b/../c', 'a/c'],
  ])('should normalize %j to %j', (value, normalized) => {
    expect(normalizePathValue(value)).toBe(normalized);
  });

  it('should join a relative path to a known working directory', () => {
    expect(normalizePathValue(GLOB_STAR, '/')).toBe(`/${GLOB_STAR}`);
    expect(normalizePathValue('.', '~')).toBe('~');
    expect(normalizePathValue('../etc/passwd', '/srv')).toBe('/etc/passwd');
  });

  it('should not join a path that starts with an unknown part', () => {
    expect(normalizePathValue(`${UNKNOWN}/x`, '/srv')).toBe(`${UNKNOWN}/x`);
  });

  it('should make a climb out of an unknown part, or out of home, unknown', () => {
    expect(pathValueMatchesGlob(normalizePathValue(`/srv/${UNKNOWN}/../../etc`), '/etc/**')).toBe(true);
    expect(pathValueMatchesGlob(normalizePathValue(`/srv/${UNKNOWN}/../../etc`), '/opt/**')).toBe(true);
    expect(normalizePathValue('~/..')).toBe(UNKNOWN);
  });

  it('should make a path of nothing but .. an unknown ancestor', () => {
    expect(normalizePathValue('../../../..')).toBe(UNKNOWN);
    expect(normalizePathValue('build/../..')).toBe(UNKNOWN);
    expect(normalizePathValue('../build')).toBe('../build');
  });
});

describe('pathValueMatchesGlob', () => {
  it.each([
    ['/etc/passwd', '/etc/**', true],
    ['/etc', '/etc/**', true],
    ['/etcetera', '/etc/**', false],
    ['deploy/.env', '**/.env', true],
    ['.envrc', '**/.env', false],
    ['server.pem', '**/*.pem', true],
    ['/home/u/.ssh/id_rsa', '**/.ssh/**', true],
    ['config/secrets.yaml', '**/*secret*', true],
    ['/tmp/build', '/*', false],
    ['/usr', '/*', true],
    ['/ETC/passwd', '/etc/**', true],
  ])('should match %j against %j: %s', (value, glob, expected) => {
    expect(pathValueMatchesGlob(value, glob)).toBe(expected);
  });

  it('should match an unquoted glob as one generic name, not as everything it could name', () => {
    expect(pathValueMatchesGlob(`/${GLOB_STAR}`, '/*')).toBe(true);
    expect(pathValueMatchesGlob(`~/.ssh/${GLOB_STAR}`, '**/.ssh/**')).toBe(true);
    expect(pathValueMatchesGlob(`build/${GLOB_STAR}`, '**/*.pem')).toBe(false);
    expect(pathValueMatchesGlob(GLOB_STAR, '**/.env')).toBe(false);
  });

  it('should match an unknown part against anything it could be', () => {
    expect(pathValueMatchesGlob(UNKNOWN, '/')).toBe(true);
    expect(pathValueMatchesGlob(`${UNKNOWN}/out.log`, '**/*secret*')).toBe(false);
    expect(pathValueMatchesGlob(`/${UNKNOWN}`, '/etc/**')).toBe(true);
  });
});

describe('wordValueMatchesGlob', () => {
  it.each([
    ['sudo', 'sudo', true],
    ['SUDO', 'sudo', true],
    ['sudoku', 'sudo', false],
    ['mkfs.ext4', 'mkfs*', true],
    ['python3.12', 'python*', true],
    ['of=/dev/sda', 'of=/dev/sd*', true],
  ])('should match %j against %j: %s', (value, glob, expected) => {
    expect(wordValueMatchesGlob(value, glob)).toBe(expected);
  });
});
