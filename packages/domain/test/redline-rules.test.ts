// The redline rule language: its schema, its defaults, and that the shipped policy file says the same.
import { describe, expect, it } from 'vitest';
import shippedPolicy from '../../../infra/policies/supervisor.yaml?raw';
import k8sPolicy from '../../../infra/k8s/policies/supervisor.yaml?raw';
import {
  DEFAULT_CAPABILITY_RULES,
  DEFAULT_FORBIDDEN_COMMANDS,
  SupervisorPolicyFileSchema,
  ValidationError,
  compileRedlineRules,
  parsePolicyYaml,
} from '../src/index.js';

const defaults = SupervisorPolicyFileSchema.parse({});

function redlinesYaml(body: string): () => unknown {
  return () => parsePolicyYaml(`redlines:\n${body}`, SupervisorPolicyFileSchema, 'p.yaml');
}

describe('the shipped policy file', () => {
  it.each([
    ['infra/policies/supervisor.yaml', shippedPolicy],
    ['infra/k8s/policies/supervisor.yaml', k8sPolicy],
  ])('should equal the built-in defaults in %s (apart from the tests it carries)', (name, text) => {
    const { tests, ...policy } = parsePolicyYaml(text, SupervisorPolicyFileSchema, name);
    expect(tests.length).toBeGreaterThan(0);
    expect({ ...policy, tests: [] }).toEqual(defaults);
  });

  it('should give every default rule a description and a condition', () => {
    for (const rule of [...defaults.redlines.forbidden_commands, ...defaults.redlines.capability_rules]) {
      expect(rule.description.length).toBeGreaterThan(0);
    }
    expect(defaults.redlines.forbidden_commands).toHaveLength(DEFAULT_FORBIDDEN_COMMANDS.length);
    expect(defaults.redlines.capability_rules).toHaveLength(DEFAULT_CAPABILITY_RULES.length);
  });

  it('should default forbidden rules to HIGH severity', () => {
    expect(new Set(defaults.redlines.forbidden_commands.map((r) => r.severity))).toEqual(new Set(['HIGH']));
  });
});

describe('validating redline rules', () => {
  it.each([
    [
      'an unknown condition',
      '  forbidden_commands:\n    - description: d\n      program: [sudo]\n',
      /forbidden_commands\.0: Unrecognized key: "program"/,
    ],
    [
      'a rule without any condition',
      '  forbidden_commands:\n    - description: d\n',
      /forbidden_commands\.0: a rule needs at least one condition/,
    ],
    [
      'a rule without a description',
      '  forbidden_commands:\n    - programs: [sudo]\n',
      /forbidden_commands\.0\.description: /,
    ],
    [
      'an empty program list',
      '  forbidden_commands:\n    - description: d\n      programs: []\n',
      /forbidden_commands\.0\.programs: must list at least one item/,
    ],
    [
      'a flag that is not an option',
      '  forbidden_commands:\n    - description: d\n      programs: [rm]\n      flags_any: [r]\n',
      /forbidden_commands\.0\.flags_any\.0: must be an option/,
    ],
    [
      'an unknown trait',
      '  forbidden_commands:\n    - description: d\n      traits_any: [rootkit]\n',
      /forbidden_commands\.0\.traits_any\.0: /,
    ],
    [
      'a severity that would not block',
      '  forbidden_commands:\n    - description: d\n      programs: [x]\n      severity: LOW\n',
      /forbidden_commands\.0\.severity: /,
    ],
    [
      'an invalid RE2 expression',
      "  capability_rules:\n    - capability: network\n      description: d\n      args_match: ['a(']\n",
      /capability_rules\.0\.args_match\.0: not a valid RE2 regular expression/,
    ],
    [
      'a backreference, which RE2 does not run',
      "  capability_rules:\n    - capability: network\n      description: d\n      args_match: ['(a)\\1']\n",
      /capability_rules\.0\.args_match\.0: not a valid RE2/,
    ],
    [
      'a capability name that is not a name',
      '  capability_rules:\n    - capability: Net Work\n      description: d\n      programs: [curl]\n',
      /capability_rules\.0\.capability: must be a lower-case name/,
    ],
    [
      'the old regex format',
      "  forbidden_commands:\n    - pattern: '\\bsudo\\b'\n      description: d\n",
      /forbidden_commands\.0\.pattern: regex rules over the joined command line are no longer read/,
    ],
  ])('should reject %s, naming the field', (_name, body, message) => {
    expect(redlinesYaml(body)).toThrowError(ValidationError);
    expect(redlinesYaml(body)).toThrowError(message);
  });

  it('should accept a minimal rule of each kind', () => {
    const policy = parsePolicyYaml(
      'redlines:\n  forbidden_commands:\n    - description: no terraform destroy\n      programs: [terraform]\n      subcommands: [destroy]\n  capability_rules:\n    - capability: cloud\n      description: cloud CLIs\n      programs: [aws, gcloud]\n',
      SupervisorPolicyFileSchema,
      'p.yaml',
    );
    expect(policy.redlines.forbidden_commands).toEqual([
      {
        description: 'no terraform destroy',
        severity: 'HIGH',
        programs: ['terraform'],
        subcommands: ['destroy'],
      },
    ]);
    expect(policy.redlines.capability_rules).toEqual([
      { capability: 'cloud', description: 'cloud CLIs', programs: ['aws', 'gcloud'] },
    ]);
  });

  it('should compile once per parsed policy', () => {
    expect(compileRedlineRules(defaults.redlines)).toBe(compileRedlineRules(defaults.redlines));
  });
});
