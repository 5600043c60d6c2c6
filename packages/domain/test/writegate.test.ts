// The WriteGate (docs/executor.md): every rule, the order of the rules, the lexical path-safety corpus and the checksum.
import { describe, expect, it } from 'vitest';
import {
  ChangePlanSchema,
  ChangeSetSubmissionSchema,
  FileChangeSchema,
  GATE_STEPS,
  WriteGatePolicySchema,
  canonicalJson,
  changeSetIdempotencyKey,
  checkPathSafety,
  computeChangeSetChecksum,
  contentSha256,
  countChangedLines,
  evaluateWriteGate,
  parsePolicyYaml,
  sha256Hex,
  writeGatePolicyHash,
  type ChangePlan,
  type FileChange,
  type PathFact,
  type WriteGateResult,
} from '../src/index.js';

type PlanInput = Parameters<typeof ChangePlanSchema.parse>[0];
type PolicyInput = Parameters<typeof WriteGatePolicySchema.parse>[0];

const lines = (n: number, tag = 'line') =>
  Array.from({ length: n }, (_, i) => `${tag} ${i}`).join('\n') + '\n';

function planWith(overrides: Partial<PlanInput> = {}): ChangePlan {
  return ChangePlanSchema.parse({
    plan_id: 'plan-1',
    intent: 'document the release',
    risk_level_proposed: 'LOW',
    rollback_plan: 'restore the previous files',
    verification_plan: { description: 'render the docs' },
    created_by: 'agent-7',
    confidence: 0.8,
    ...overrides,
  });
}

const create = (path: string, content = 'hello\n'): FileChange => ({
  operation: 'create',
  path,
  new_content: content,
});
const update = (path: string, before = 'a\n', after = 'b\n'): FileChange => ({
  operation: 'update',
  path,
  old_content: before,
  new_content: after,
});
const remove = (path: string, before = 'gone\n'): FileChange => ({
  operation: 'delete',
  path,
  old_content: before,
});

function gate(
  changes: FileChange[],
  options: { plan?: Partial<PlanInput>; policy?: PolicyInput; facts?: Record<string, PathFact[]> } = {},
): WriteGateResult {
  const policy = WriteGatePolicySchema.parse(options.policy ?? {});
  return evaluateWriteGate({
    plan: planWith(options.plan),
    changeset: { changes },
    policy,
    policyHash: writeGatePolicyHash(policy),
    ...(options.facts ? { pathFacts: new Map(Object.entries(options.facts)) } : {}),
  });
}

const outcomes = (result: WriteGateResult) => result.reasons.map((r) => `${r.step}:${r.outcome}:${r.code}`);
const codesOf = (result: WriteGateResult, outcome: string) =>
  result.reasons.filter((r) => r.outcome === outcome).map((r) => r.code);

describe('checksum', () => {
  it('should be the SHA-256 of the canonical JSON of the changes, whatever the key order', () => {
    const a: FileChange[] = [{ operation: 'create', path: 'docs/a.md', new_content: 'x' }];
    const b = [JSON.parse('{"new_content":"x","path":"docs/a.md","operation":"create"}') as FileChange];
    expect(computeChangeSetChecksum(a)).toBe(computeChangeSetChecksum(b));
    expect(computeChangeSetChecksum(a)).toBe(
      sha256Hex('[{"new_content":"x","operation":"create","path":"docs/a.md"}]'),
    );
    expect(canonicalJson(b)).toBe('[{"new_content":"x","operation":"create","path":"docs/a.md"}]');
  });

  it('should change when any byte of any change changes', () => {
    const base = computeChangeSetChecksum([create('docs/a.md', 'x')]);
    expect(computeChangeSetChecksum([create('docs/a.md', 'y')])).not.toBe(base);
    expect(computeChangeSetChecksum([create('docs/b.md', 'x')])).not.toBe(base);
    expect(computeChangeSetChecksum([create('docs/a.md', 'x'), create('docs/b.md', 'x')])).not.toBe(base);
  });

  it('should key idempotency on plan id and checksum', () => {
    expect(changeSetIdempotencyKey('p', 'c')).toBe(sha256Hex('p:c'));
  });
});

describe('file change schema', () => {
  it.each([
    [
      'a create with old content',
      { operation: 'create', path: 'a', new_content: 'x', old_hash: contentSha256('y') },
      'old_hash',
    ],
    [
      'an update without a compare-and-swap guard',
      { operation: 'update', path: 'a', new_content: 'x' },
      'old_hash',
    ],
    [
      'a delete with new content',
      { operation: 'delete', path: 'a', old_hash: contentSha256('y'), new_content: 'x' },
      'new_content',
    ],
    [
      'a new_hash that does not match',
      { operation: 'create', path: 'a', new_content: 'x', new_hash: contentSha256('y') },
      'new_hash',
    ],
    [
      'an old_hash that does not match old_content',
      { operation: 'update', path: 'a', new_content: 'x', old_content: 'y', old_hash: contentSha256('z') },
      'old_hash',
    ],
    ['an unknown field', { operation: 'create', path: 'a', new_content: 'x', mode: 511 }, ''],
  ])('should refuse %s, naming the field', (_name, input, field) => {
    const result = FileChangeSchema.safeParse(input);
    expect(result.success).toBe(false);
    if (field) expect(result.error!.issues.map((i) => i.path.join('.'))).toContain(field);
  });

  it('should refuse NUL in free text, which Postgres could not store', () => {
    expect(ChangePlanSchema.safeParse({ ...planWith(), intent: 'a\u0000b' }).success).toBe(false);
    expect(
      ChangePlanSchema.safeParse({
        ...planWith(),
        health_checks: [{ type: 'http', name: 'x\u0000', url: 'http://127.0.0.1:9/healthz' }],
      }).success,
    ).toBe(false);
  });

  it("should refuse a change set whose plan_id is not the plan's", () => {
    const result = ChangeSetSubmissionSchema.safeParse({
      plan: planWith(),
      changeset: {
        changeset_id: 'cs',
        plan_id: 'other',
        workspace: 'app',
        changes: [create('docs/a.md')],
        checksum: '0'.repeat(64),
        generated_by: 'x',
      },
    });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.path).toEqual(['changeset', 'plan_id']);
  });
});

describe('path safety (lexical)', () => {
  it.each([
    ['../etc/passwd', 'PATH_TRAVERSAL'],
    ['docs/../../etc/passwd', 'PATH_TRAVERSAL'],
    ['docs/..', 'PATH_TRAVERSAL'],
    ['..\\..\\windows\\win.ini', 'PATH_BACKSLASH'],
    ['docs\\..\\.env', 'PATH_BACKSLASH'],
    ['/etc/passwd', 'PATH_ABSOLUTE'],
    ['C:/Windows/win.ini', 'PATH_ABSOLUTE'],
    ['~/.ssh/authorized_keys', 'PATH_HOME'],
    ['%2e%2e/%2e%2e/etc/passwd', 'PATH_ENCODED'],
    ['docs/%2F..%2Fsecret', 'PATH_ENCODED'],
    ['\uff0e\uff0e/\uff0e\uff0e/etc/passwd', 'PATH_UNICODE_LOOKALIKE'],
    ['docs\u2215..\u2215.env', 'PATH_UNICODE_LOOKALIKE'],
    ['docs/\u2024\u2024/x', 'PATH_UNICODE_LOOKALIKE'],
    ['cafe\u0301.md', 'PATH_UNICODE_NOT_NFC'],
    ['docs/a\u0000.md', 'PATH_NUL'],
    ['docs/a.md\u0000/../../x', 'PATH_NUL'],
    ['docs/\u202egpj.exe', 'PATH_INVISIBLE_CHAR'],
    ['docs/a\u200b.md', 'PATH_INVISIBLE_CHAR'],
    ['docs/a\n.md', 'PATH_CONTROL_CHAR'],
    ['docs//a.md', 'PATH_NOT_NORMALIZED'],
    ['./docs/a.md', 'PATH_NOT_NORMALIZED'],
    ['docs/a.md/', 'PATH_NOT_NORMALIZED'],
    ['', 'PATH_EMPTY'],
    ['.env.', 'PATH_TRAILING_DOT_OR_SPACE'],
    ['docs/a.md ', 'PATH_TRAILING_DOT_OR_SPACE'],
    ['docs/file.txt::$DATA', 'PATH_COLON'],
    ['docs/CON.txt', 'PATH_RESERVED_NAME'],
    ['a/'.repeat(600) + 'x', 'PATH_TOO_LONG'],
  ])('should refuse %j (%s)', (path, code) => {
    expect(checkPathSafety(path).map((i) => i.code)).toContain(code);
  });

  it.each([
    'docs/a.md',
    'src/app.ts',
    '.github/CODEOWNERS',
    'docs/über.md',
    'docs/a..b.md',
    'docs/.hidden',
    'a/b/c/d/e.txt',
  ])('should accept %j', (path) => {
    expect(checkPathSafety(path)).toEqual([]);
  });
});

describe('WriteGate rules', () => {
  describe('step 1: path safety', () => {
    it('should deny an unsafe path, skip every later step and set the risk to CRITICAL', () => {
      const result = gate([create('../outside.md')]);
      expect(result.verdict).toBe('DENY');
      expect(result.risk_effective).toBe('CRITICAL');
      expect(outcomes(result)).toEqual([
        'path_safety:deny:PATH_TRAVERSAL',
        'forbidden_paths:skipped:SKIPPED',
        'allowed_paths:skipped:SKIPPED',
        'constraints:skipped:SKIPPED',
        'risk:skipped:SKIPPED',
        'gating:skipped:SKIPPED',
      ]);
      expect(result.reasons[0]!.paths).toEqual(['"../outside.md"']);
    });

    it('should deny a path the executor found to be a symlink', () => {
      const result = gate([update('docs/link.md')], {
        facts: { 'docs/link.md': [{ code: 'PATH_SYMLINK', message: 'is a symbolic link' }] },
      });
      expect(result.verdict).toBe('DENY');
      expect(codesOf(result, 'deny')).toEqual(['PATH_SYMLINK']);
    });

    it('should deny the same path twice and paths that differ only by case', () => {
      expect(codesOf(gate([create('docs/a.md'), update('docs/a.md')]), 'deny')).toEqual(['PATH_DUPLICATE']);
      expect(codesOf(gate([create('docs/Readme.md'), create('docs/README.md')]), 'deny')).toEqual([
        'PATH_CASE_COLLISION',
      ]);
    });

    it('should escape control characters in reasons, so a NUL never reaches storage raw', () => {
      const result = gate([create('docs/a\u0000b.md')]);
      expect(result.reasons[0]!.paths).toEqual(['"docs/a\\u0000b.md"']);
      expect(JSON.stringify(result)).not.toContain('\u0000');
    });
  });

  describe('step 2: forbidden paths', () => {
    it.each([
      '.env',
      '.ENV',
      'config/.env',
      '.env.production',
      'keys/server.pem',
      'deploy/id_rsa',
      'tls/site.key',
      // `.git/config` and `vendor/.git/HEAD` are denied one step earlier, as git metadata (writegate-hardening.test.ts).
      'node_modules/x/index.js',
      'pnpm-lock.yaml',
      'app/credentials.json',
      'infra/policies/writegate.yaml',
      'docs/.wd-1-0.warden-tmp',
    ])('should deny %j with a "forbidden" reason and risk CRITICAL', (path) => {
      const result = gate([create(path)]);
      expect(result.verdict).toBe('DENY');
      expect(result.risk_effective).toBe('CRITICAL');
      const reason = result.reasons.find((r) => r.step === 'forbidden_paths')!;
      expect(reason.outcome).toBe('deny');
      expect(reason.message).toContain('forbidden');
    });
  });

  describe('step 3: allowed paths', () => {
    it('should deny a path outside allowed_paths', () => {
      const result = gate([create('docs/a.md'), create('etc/motd')], {
        policy: { allowed_paths: ['docs/**'] },
      });
      expect(result.verdict).toBe('DENY');
      const reason = result.reasons.find((r) => r.code === 'PATH_NOT_ALLOWED')!;
      expect(reason.paths).toEqual(['"etc/motd"']);
    });
  });

  describe('step 4: constraints', () => {
    it('should deny more files than max_files_touched', () => {
      const changes = Array.from({ length: 51 }, (_, i) => create(`docs/f${i}.md`));
      expect(codesOf(gate(changes), 'deny')).toEqual(['TOO_MANY_FILES']);
      expect(gate(changes.slice(0, 50)).verdict).not.toBe('DENY');
    });

    it('should deny more changed lines than max_patch_lines', () => {
      expect(codesOf(gate([create('docs/big.md', lines(5001))]), 'deny')).toEqual(['TOO_MANY_LINES']);
    });

    it('should deny a file over max_file_bytes', () => {
      expect(
        codesOf(
          gate([create('docs/big.md', 'x'.repeat(2048))], {
            policy: { constraints: { max_file_bytes: 1024 } },
          }),
          'deny',
        ),
      ).toEqual(['FILE_TOO_LARGE']);
    });
  });

  describe('step 5: risk escalation', () => {
    it.each([
      ['source code', [create('src/app.ts', 'export {}\n')], 'RISK_SOURCE_CODE', 'MEDIUM'],
      ['a delete', [remove('docs/old.md')], 'RISK_DELETE', 'MEDIUM'],
      ['over 500 changed lines', [create('docs/long.md', lines(501))], 'RISK_LARGE_CHANGE', 'HIGH'],
      [
        'a migration',
        [create('db/migrations/0007_add.sql', 'alter table x add y int;\n')],
        'RISK_SCHEMA_CHANGE',
        'HIGH',
      ],
    ] as const)('should raise the risk for %s', (_name, changes, code, floor) => {
      const result = gate([...changes], {
        plan: { health_checks: [{ type: 'http', name: 'ok', url: 'http://127.0.0.1:9/healthz' }] },
      });
      expect(result.reasons.find((r) => r.code === code)).toMatchObject({
        step: 'risk',
        outcome: 'escalate',
        risk: floor,
      });
      expect(result.risk_effective).toBe(floor);
    });

    it('should never go below the risk the plan proposed', () => {
      expect(gate([create('docs/a.md')], { plan: { risk_level_proposed: 'HIGH' } }).risk_effective).toBe(
        'HIGH',
      );
    });

    it('should count changed lines as a diff does', () => {
      expect(countChangedLines(update('a', 'a\nb\nc\n', 'a\nB\nc\n'))).toBe(2);
      expect(countChangedLines(create('a', 'x\ny\n'))).toBe(2);
      expect(countChangedLines(remove('a', 'x\n'))).toBe(1);
    });
  });

  describe('step 6: gating', () => {
    const healthy = {
      health_checks: [{ type: 'http' as const, name: 'api', url: 'http://127.0.0.1:9/healthz' }],
    };

    it('should allow a low-risk docs change with rollback and verification plans', () => {
      const result = gate([create('docs/a.md')]);
      expect(result.verdict).toBe('ALLOW');
      expect(outcomes(result)).toEqual([
        'path_safety:pass:PATHS_SAFE',
        'forbidden_paths:pass:NO_FORBIDDEN_PATHS',
        'allowed_paths:pass:PATHS_ALLOWED',
        'constraints:pass:WITHIN_CONSTRAINTS',
        'risk:pass:RISK_AS_PROPOSED',
        'gating:pass:ALLOWED',
      ]);
    });

    it.each([
      ['no rollback plan', { rollback_plan: '  ' }, 'MISSING_ROLLBACK_PLAN'],
      ['no verification plan', { verification_plan: undefined }, 'MISSING_VERIFICATION_PLAN'],
      [
        'an empty verification plan',
        { verification_plan: { description: '', verifications: [] } },
        'MISSING_VERIFICATION_PLAN',
      ],
      ['risk HIGH proposed', { risk_level_proposed: 'HIGH', ...healthy }, 'RISK_NEEDS_APPROVAL'],
    ] as const)('should ask for approval with %s', (_name, plan, code) => {
      const result = gate([create('docs/a.md')], { plan: plan as Partial<PlanInput> });
      expect(result.verdict).toBe('NEED_APPROVAL');
      expect(codesOf(result, 'need_approval')).toContain(code);
    });

    it('should ask for approval at MEDIUM risk without health checks, and allow it with them', () => {
      expect(codesOf(gate([create('src/app.ts')]), 'need_approval')).toEqual(['MISSING_HEALTH_CHECKS']);
      expect(gate([create('src/app.ts')], { plan: healthy }).verdict).toBe('ALLOW');
    });

    it('should always ask for approval for always_review paths', () => {
      for (const path of [
        'docs/schema.json',
        'services/executor/README.md',
        'src/security/tokens.ts',
        'infra/k8s/api.yaml',
      ]) {
        const result = gate([create(path)], { plan: healthy });
        expect(codesOf(result, 'need_approval'), path).toContain('ALWAYS_REVIEW');
      }
    });

    it('should not gate a denied change set', () => {
      const result = gate([create('.env')], { plan: { rollback_plan: '' } });
      expect(result.reasons.at(-1)).toMatchObject({ step: 'gating', outcome: 'skipped' });
    });
  });

  describe('the order of the rules', () => {
    it('should report path safety alone when a path is both unsafe and forbidden', () => {
      const result = gate([create('../.env')]);
      expect(codesOf(result, 'deny')).toEqual(['PATH_TRAVERSAL']);
    });

    it('should report every denying step after path safety, in order, then the risk, and skip gating', () => {
      const changes = [
        create('.env'),
        create('etc/x.md'),
        ...Array.from({ length: 50 }, (_, i) => create(`docs/f${i}.md`)),
      ];
      const result = gate(changes, { policy: { allowed_paths: ['docs/**', '.env'] } });
      expect(result.reasons.map((r) => r.step)).toEqual([
        'path_safety',
        'forbidden_paths',
        'allowed_paths',
        'constraints',
        'risk',
        'gating',
      ]);
      expect(codesOf(result, 'deny')).toEqual(['FORBIDDEN_PATH', 'PATH_NOT_ALLOWED', 'TOO_MANY_FILES']);
      expect(result.risk_effective).toBe('CRITICAL');
    });

    it('should list the steps in GATE_STEPS order for any verdict', () => {
      for (const result of [
        gate([create('docs/a.md')]),
        gate([create('src/a.ts')]),
        gate([create('.env')]),
      ]) {
        const steps = [...new Set(result.reasons.map((r) => r.step))];
        expect(steps).toEqual([...GATE_STEPS]);
      }
    });
  });
});

describe('the WriteGate policy file', () => {
  it('should accept an empty file with the documented defaults', () => {
    const policy = parsePolicyYaml('', WriteGatePolicySchema, 'writegate.yaml');
    expect(policy.constraints).toEqual({
      max_files_touched: 50,
      max_patch_lines: 5000,
      max_file_bytes: 1048576,
    });
    expect(policy.forbidden_paths).toContain('.env');
    expect(policy.approval.risk_threshold).toBe('HIGH');
  });

  it('should refuse an unknown field, naming it', () => {
    expect(() =>
      parsePolicyYaml('constraints:\n  max_files: 3\n', WriteGatePolicySchema, 'writegate.yaml'),
    ).toThrow(/writegate\.yaml: constraints: Unrecognized key.*max_files/);
  });

  it('should hash two spellings of the same policy alike', () => {
    const a = WriteGatePolicySchema.parse({});
    const b = WriteGatePolicySchema.parse({ constraints: { max_files_touched: 50 } });
    expect(writeGatePolicyHash(a)).toBe(writeGatePolicyHash(b));
    expect(
      writeGatePolicyHash(WriteGatePolicySchema.parse({ constraints: { max_files_touched: 5 } })),
    ).not.toBe(writeGatePolicyHash(a));
  });
});
