import { describe, expect, it } from 'vitest';
import {
  SupervisorPolicyFileSchema,
  ValidationError,
  WriteGatePolicySchema,
  approvalDeadline,
  gateDeadline,
  isPastDeadline,
  parsePolicyYaml,
  transitionTask,
} from '../src/index.js';
import supervisorYaml from '../../../infra/policies/supervisor.yaml?raw';
import writeGateYaml from '../../../infra/policies/writegate.yaml?raw';

const opened = new Date('2026-12-04T10:00:00.000Z');

describe('gateDeadline', () => {
  it('should wait 24 hours by default', () => {
    const policy = SupervisorPolicyFileSchema.parse({});
    expect(gateDeadline(policy, 'open_plan', opened).toISOString()).toBe('2026-12-05T10:00:00.000Z');
  });

  it("should use the checkpoint's own wait, and the default for others", () => {
    const policy = SupervisorPolicyFileSchema.parse({
      gates: { expire_after_minutes: 60, checkpoints: { deploy: { expire_after_minutes: 15 } } },
    });
    expect(gateDeadline(policy, 'deploy', opened).toISOString()).toBe('2026-12-04T10:15:00.000Z');
    expect(gateDeadline(policy, 'open_plan', opened).toISOString()).toBe('2026-12-04T11:00:00.000Z');
    // A look-alike of a listed checkpoint is not it.
    expect(gateDeadline(policy, 'Deploy', opened).toISOString()).toBe('2026-12-04T11:00:00.000Z');
  });

  it.each([
    [{ gates: { expire_after_minutes: 0 } }, 'gates.expire_after_minutes'],
    [{ gates: { expire_after_minutes: -5 } }, 'gates.expire_after_minutes'],
    [{ gates: { expire_after_minutes: 1.5 } }, 'gates.expire_after_minutes'],
    [{ gates: { expire_after_minutes: 'forever' } }, 'gates.expire_after_minutes'],
    [{ gates: { expire_after_minutes: 10_000_000 } }, 'gates.expire_after_minutes'],
    [{ gates: { checkpoints: { deploy: {} } } }, 'gates.checkpoints.deploy.expire_after_minutes'],
    [{ gates: { never: true } }, 'gates'],
  ])('should refuse a wait that is not a sane number of minutes (%j), naming the field', (input, path) => {
    expect(() =>
      parsePolicyYaml(JSON.stringify(input), SupervisorPolicyFileSchema, 'supervisor.yaml'),
    ).toThrow(ValidationError);
    expect(() =>
      parsePolicyYaml(JSON.stringify(input), SupervisorPolicyFileSchema, 'supervisor.yaml'),
    ).toThrow(path);
  });

  it("should read the repository's policy file", () => {
    const policy = parsePolicyYaml(supervisorYaml, SupervisorPolicyFileSchema, 'supervisor.yaml');
    expect(policy.gates.expire_after_minutes).toBe(1440);
  });
});

describe('approvalDeadline', () => {
  it('should wait 24 hours by default and follow the risk level when the policy says', () => {
    expect(approvalDeadline(WriteGatePolicySchema.parse({}), 'CRITICAL', opened).toISOString()).toBe(
      '2026-12-05T10:00:00.000Z',
    );
    const policy = WriteGatePolicySchema.parse({
      approval: { expire_after_minutes: 120, expire_after_minutes_by_risk: { CRITICAL: 30 } },
    });
    expect(approvalDeadline(policy, 'CRITICAL', opened).toISOString()).toBe('2026-12-04T10:30:00.000Z');
    expect(approvalDeadline(policy, 'HIGH', opened).toISOString()).toBe('2026-12-04T12:00:00.000Z');
  });

  it('should refuse an unknown risk level or a zero wait', () => {
    expect(() =>
      WriteGatePolicySchema.parse({ approval: { expire_after_minutes_by_risk: { SEVERE: 30 } } }),
    ).toThrow();
    expect(() => WriteGatePolicySchema.parse({ approval: { expire_after_minutes: 0 } })).toThrow();
  });

  it("should read the repository's policy file", () => {
    const policy = parsePolicyYaml(writeGateYaml, WriteGatePolicySchema, 'writegate.yaml');
    expect(policy.approval.expire_after_minutes).toBe(1440);
  });
});

describe('isPastDeadline', () => {
  it('should count the deadline itself as past', () => {
    expect(isPastDeadline(opened, new Date(opened.getTime() - 1))).toBe(false);
    expect(isPastDeadline(opened, opened)).toBe(true);
  });
});

describe('the gate_expired transition', () => {
  it('should block a paused task and never loosen a held or finished one', () => {
    expect(transitionTask('paused', 'blocked', 'gate_expired')).toEqual({ allowed: true, status: 'blocked' });
    expect(transitionTask('blocked', 'running', 'gate_expired').allowed).toBe(false);
    expect(transitionTask('completed', 'blocked', 'gate_expired').allowed).toBe(false);
    expect(transitionTask('paused', 'running', 'gate_expired')).toMatchObject({
      allowed: false,
      reason: 'a task that is paused cannot be expired to running',
    });
  });
});
