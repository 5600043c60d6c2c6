import { describe, expect, it } from 'vitest';
import {
  APPROVE_SCOPES,
  effectiveScopes,
  hasScope,
  KeyOwnerSchema,
  parseNewKeyScopes,
  scopeConflict,
  separationOfDutiesRule,
  ValidationError,
} from '../src/index.js';

describe('separation of duties', () => {
  it('should count every :approve scope and admin as approving', () => {
    expect([...APPROVE_SCOPES].sort()).toEqual(
      ['admin', 'changesets:approve', 'policies:approve', 'tasks:approve', 'triggers:approve'].sort(),
    );
  });

  it('should let admin do everything but write an agent’s events', () => {
    expect(hasScope(['admin'], 'tasks:approve')).toBe(true);
    expect(hasScope(['admin'], 'triggers:approve')).toBe(true);
    expect(hasScope(['admin'], 'events:write')).toBe(false);
    expect(hasScope(['events:write'], 'events:write')).toBe(true);
  });

  it.each([
    [['events:write', 'tasks:approve']],
    [['events:write', 'changesets:approve']],
    [['events:write', 'triggers:approve']],
    [['events:write', 'admin']],
  ] as const)('should name the conflict in %j', (scopes) => {
    const conflict = scopeConflict(scopes);
    for (const scope of scopes) expect(conflict).toContain(`"${scope}"`);
  });

  it('should allow agents and approvers apart', () => {
    expect(scopeConflict(['events:write', 'tasks:read', 'changesets:write'])).toBeUndefined();
    expect(scopeConflict(['tasks:approve', 'changesets:approve', 'tasks:read'])).toBeUndefined();
    expect(scopeConflict(['admin'])).toBeUndefined();
  });
});

describe('parseNewKeyScopes', () => {
  const refusal = (scopes: string[]) => {
    try {
      parseNewKeyScopes(scopes);
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details[0]?.path).toBe('scopes');
      return (error as Error).message;
    }
    throw new Error('not refused');
  };

  it('should drop blanks and duplicates', () => {
    expect(parseNewKeyScopes([' tasks:read', 'tasks:read', ''])).toEqual(['tasks:read']);
  });

  it('should refuse the retired tasks:write, pointing at tasks:approve', () => {
    expect(refusal(['tasks:write'])).toMatch(/"tasks:write" was retired.*"tasks:approve"/);
  });

  it('should refuse unknown, empty and conflicting lists', () => {
    expect(refusal(['events:delete'])).toContain('"events:delete"');
    expect(refusal([' '])).toMatch(/empty/);
    expect(refusal(['events:write', 'tasks:approve'])).toMatch(/separation of duties/);
  });
});

describe('KeyOwnerSchema', () => {
  it('should take a trimmed name and refuse blanks and control characters', () => {
    expect(KeyOwnerSchema.parse('  alice@example.com ')).toBe('alice@example.com');
    expect(KeyOwnerSchema.safeParse('   ').success).toBe(false);
    expect(KeyOwnerSchema.safeParse('a\u0000b').success).toBe(false);
    expect(KeyOwnerSchema.safeParse('a\nb').success).toBe(false);
  });
});

describe('effectiveScopes', () => {
  it('should drop the approving scopes of a stored key that also writes events, and keep the rest', () => {
    expect(effectiveScopes(['events:write', 'tasks:approve', 'tasks:read'])).toEqual([
      'events:write',
      'tasks:read',
    ]);
    expect(effectiveScopes(['events:write', 'admin'])).toEqual(['events:write']);
    expect(effectiveScopes(['events:write', 'changesets:approve', 'triggers:approve'])).toEqual([
      'events:write',
    ]);
  });

  it('should leave a key without a conflict as it is', () => {
    expect(effectiveScopes(['tasks:approve', 'changesets:approve'])).toEqual([
      'tasks:approve',
      'changesets:approve',
    ]);
    expect(effectiveScopes(['admin'])).toEqual(['admin']);
    expect(effectiveScopes(['events:write', 'tasks:read'])).toEqual(['events:write', 'tasks:read']);
  });
});

describe("a tenant's separation-of-duties rule", () => {
  it('should allow writing and approving together only when relaxed', () => {
    const both = ['events:write', 'tasks:approve', 'admin'] as const;
    expect(scopeConflict(both, 'relaxed')).toBeUndefined();
    expect(scopeConflict(both, 'enforced')).toMatch(/separation of duties/);
    expect(effectiveScopes(both, 'relaxed')).toEqual([...both]);
    expect(effectiveScopes(both, 'enforced')).toEqual(['events:write']);
    expect(parseNewKeyScopes([...both], 'relaxed')).toEqual([...both]);
    expect(() => parseNewKeyScopes([...both])).toThrow(/separation of duties/);
  });

  it('should read anything stored but the exact word "relaxed" as enforced', () => {
    expect(separationOfDutiesRule('relaxed')).toBe('relaxed');
    for (const stored of ['enforced', 'RELAXED', ' relaxed', '', null, undefined, 'off'])
      expect(separationOfDutiesRule(stored)).toBe('enforced');
  });
});
