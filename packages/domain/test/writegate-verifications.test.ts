// Verifications (docs/executor.md, "Verifications"): agents name the policy's commands, never write their own, and
// a change to what a verification executes always needs a person.
import { describe, expect, it } from 'vitest';
import {
  ChangePlanSchema,
  WriteGatePolicySchema,
  evaluateWriteGate,
  writeGatePolicyHash,
  type FileChange,
  type WriteGateResult,
} from '../src/index.js';

type PlanInput = Parameters<typeof ChangePlanSchema.parse>[0];
type PolicyInput = Parameters<typeof WriteGatePolicySchema.parse>[0];

const VERIFICATIONS = {
  unit: { command: ['npm', 'test'], inputs: ['tests/**'] },
  docs: { command: ['npm', 'run', 'docs'] },
};
const POLICY: PolicyInput = { verifications: VERIFICATIONS };

const basePlan = {
  plan_id: 'plan-1',
  intent: 'document the release',
  risk_level_proposed: 'LOW',
  rollback_plan: 'restore the previous files',
  verification_plan: { description: 'render the docs', verifications: ['docs'] },
  created_by: 'agent-7',
  confidence: 0.8,
} as const;

const create = (path: string, content = 'hello\n'): FileChange => ({
  operation: 'create',
  path,
  new_content: content,
});

function gate(
  paths: string[],
  plan: Partial<PlanInput> = {},
  policyInput: PolicyInput = POLICY,
): WriteGateResult {
  const policy = WriteGatePolicySchema.parse(policyInput);
  return evaluateWriteGate({
    plan: ChangePlanSchema.parse({ ...basePlan, ...plan }),
    changeset: { changes: paths.map((p) => create(p)) },
    policy,
    policyHash: writeGatePolicyHash(policy),
  });
}

const codes = (result: WriteGateResult, outcome: string) =>
  result.reasons.filter((r) => r.outcome === outcome).map((r) => r.code);

describe('agent-written commands', () => {
  it('should refuse a plan carrying a command of its own, naming the field', () => {
    const attack = ChangePlanSchema.safeParse({
      ...basePlan,
      verification_plan: {
        commands: [{ command: 'node', args: ['-e', 'require("fs").readFileSync("/proc/1/environ")'] }],
      },
    });
    expect(attack.success).toBe(false);
    expect(attack.error!.issues[0]).toMatchObject({
      path: ['verification_plan', 'commands'],
      message: expect.stringContaining('agent-written commands are not run'),
    });
  });

  it('should refuse a command health check, naming its type', () => {
    const attack = ChangePlanSchema.safeParse({
      ...basePlan,
      health_checks: [{ type: 'command', name: 'x', command: 'node', args: ['-e', '1'] }],
    });
    expect(attack.success).toBe(false);
    expect(attack.error!.issues[0]).toMatchObject({
      path: ['health_checks', 0, 'type'],
      message: expect.stringContaining('agent-written commands are not run'),
    });
  });

  it('should still accept an empty commands list from older producers, and drop it', () => {
    const plan = ChangePlanSchema.parse({
      ...basePlan,
      verification_plan: { description: 'x', commands: [] },
    });
    expect(plan.verification_plan).toEqual({ description: 'x', verifications: [] });
  });
});

describe('named verifications', () => {
  it('should allow a low-risk docs change naming a verification of the policy', () => {
    const result = gate(['docs/a.md'], {
      health_checks: [{ type: 'verification', name: 'unit again', verification: 'unit' }],
    });
    expect(result.verdict).toBe('ALLOW');
  });

  it('should deny a plan naming a verification the policy does not declare', () => {
    for (const plan of [
      { verification_plan: { verifications: ['docs', 'curl-evil'] } },
      { health_checks: [{ type: 'verification' as const, name: 'h', verification: 'constructor' }] },
    ]) {
      const result = gate(['docs/a.md'], plan);
      expect(result.verdict, JSON.stringify(plan)).toBe('DENY');
      expect(codes(result, 'deny')).toEqual(['UNKNOWN_VERIFICATION']);
    }
  });

  it('should deny every name when the policy declares no verification', () => {
    expect(gate(['docs/a.md'], {}, {}).verdict).toBe('DENY');
  });
});

describe('changes to what a verification executes', () => {
  it.each([
    ['the package.json scripts', 'package.json'],
    ['a nested package.json', 'packages/web/package.json'],
    ['the Makefile', 'Makefile'],
    ['a makefile in another case', 'sub/makefile'],
    ['a test runner config', 'vitest.config.ts'],
    ['the TypeScript config', 'tsconfig.build.json'],
    ['a declared input', 'tests/setup.ts'],
  ])('should need approval at risk HIGH for %s', (_name, path) => {
    // LOW proposed and a risk threshold of CRITICAL: the rule stands on its own.
    const result = gate(
      [path],
      {},
      { verifications: VERIFICATIONS, approval: { risk_threshold: 'CRITICAL' } },
    );
    expect(result.verdict).toBe('NEED_APPROVAL');
    expect(result.risk_effective === 'HIGH' || result.risk_effective === 'CRITICAL').toBe(true);
    expect(result.reasons.find((r) => r.code === 'RISK_VERIFICATION_INPUT')).toMatchObject({
      step: 'risk',
      outcome: 'escalate',
      risk: 'HIGH',
    });
    expect(codes(result, 'need_approval')).toContain('VERIFICATION_INPUT_CHANGED');
  });

  it('should count inputs of verifications the plan does not name: a later change set could name them', () => {
    const result = gate(['tests/setup.ts'], { verification_plan: { verifications: ['docs'] } });
    expect(codes(result, 'need_approval')).toContain('VERIFICATION_INPUT_CHANGED');
    expect(result.reasons.find((r) => r.code === 'RISK_VERIFICATION_INPUT')?.message).toContain('unit');
  });

  it('should leave a docs change alone', () => {
    expect(gate(['docs/Makefile.md']).verdict).toBe('ALLOW');
  });
});

describe('the verifications section of the policy', () => {
  it('should refuse the removed commands.allowed with a message saying what replaced it', () => {
    const result = WriteGatePolicySchema.safeParse({ commands: { allowed: ['node'] } });
    expect(result.success).toBe(false);
    expect(result.error!.issues[0]!.message).toContain('declare named commands under `verifications`');
  });

  it.each(['DATABASE_URL', 'REDIS_URL', 'WARDEN_AUDIT_KEY', 'PATH', 'EXECUTOR_WORKSPACES'])(
    'should refuse to pass the executor variable %s to a verification',
    (name) => {
      const result = WriteGatePolicySchema.safeParse({
        verifications: { unit: { command: ['npm', 'test'], env: [name] } },
      });
      expect(result.success).toBe(false);
      expect(result.error!.issues[0]).toMatchObject({ path: ['verifications', 'unit', 'env', 0] });
    },
  );

  it('should default to no network and no extra environment', () => {
    const policy = WriteGatePolicySchema.parse({ verifications: { unit: { command: ['npm', 'test'] } } });
    expect(policy.verifications.unit).toMatchObject({
      network: false,
      env: [],
      inputs: [],
      timeout_ms: 60_000,
    });
  });
});
