// The redline corpus (redline-corpus.yaml): every hostile command spec must be stopped at TASK_CREATED
// pre-flight, every benign look-alike must be allowed — judged by decide() with the default policy file.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  SupervisorPolicyFileSchema,
  builtInPolicies,
  decide,
  parsePolicyYaml,
  type DecisionType,
  type PolicyInput,
  type SupervisorPolicyFile,
} from '@warden/domain';

const CORPUS_FILE = new URL('./redline-corpus.yaml', import.meta.url);
const POLICY_FILE = new URL('../../../infra/policies/supervisor.yaml', import.meta.url);

const EXPECTATIONS = ['ALLOW', 'BLOCK', 'REQUIRE_REVIEW', 'NOT_ALLOW'] as const;
type Expectation = (typeof EXPECTATIONS)[number];
const STOPPED: readonly DecisionType[] = ['BLOCK', 'REQUIRE_REVIEW', 'PAUSE'];
const REDLINE_CODES = [
  'REDLINE_FORBIDDEN_COMMAND',
  'REDLINE_FORBIDDEN_PATH',
  'REDLINE_UNDECLARED_NETWORK',
  'REDLINE_UNDECLARED_FILE_WRITE',
  'REDLINE_MISSING_REQUIRED_FIELD',
  'REDLINE_UNREADABLE_COMMAND',
  'REDLINE_DYNAMIC_COMMAND',
  'REDLINE_UNKNOWN_SPEC_SHAPE',
] as const;

const EntrySchema = z
  .object({
    id: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'must be kebab-case'),
    command_spec: z.unknown(),
    capabilities: z.array(z.string()).optional(),
    agent_spec: z.unknown().optional(),
    expect: z.enum(EXPECTATIONS),
    codes: z.array(z.enum(REDLINE_CODES)).optional(),
    why: z.string().min(1),
  })
  .strict();
type Entry = z.infer<typeof EntrySchema>;

const CorpusSchema = z
  .object({
    attacks: z.array(EntrySchema),
    benign: z.array(EntrySchema),
    open: z.array(EntrySchema).default([]),
  })
  .strict();

const corpusText = readFileSync(CORPUS_FILE, 'utf8');
const corpus = parsePolicyYaml(corpusText, CorpusSchema, 'redline-corpus.yaml');
const policy: SupervisorPolicyFile = parsePolicyYaml(
  readFileSync(POLICY_FILE, 'utf8'),
  SupervisorPolicyFileSchema,
  'infra/policies/supervisor.yaml',
);
const registry = builtInPolicies();

/** `{{repeat N}}text{{/repeat}}` → `text` N times, in every string of a spec; own `__proto__` keys are kept. */
function expand(value: unknown): unknown {
  if (typeof value === 'string')
    return value.replace(
      /\{\{repeat (\d+)\}\}([\s\S]*?)\{\{\/repeat\}\}/g,
      (_m, times: string, text: string) => text.repeat(Number(times)),
    );
  if (Array.isArray(value)) return value.map(expand);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, expand(inner)]));
  return value;
}

function hasOwnCommandSpec(entry: Entry): boolean {
  return Object.hasOwn(entry, 'command_spec');
}

function inputFor(entry: Entry): PolicyInput {
  const agentSpec =
    entry.agent_spec !== undefined
      ? expand(entry.agent_spec)
      : { name: 'corpus-agent', capabilities: entry.capabilities ?? [] };
  return {
    event: {
      event_id: `evt-${entry.id}`,
      tenant_id: 'tenant-redline',
      task_id: `task-${entry.id}`,
      event_type: 'TASK_CREATED',
      ts: '2025-01-01T00:00:00.000Z',
      source: 'queue',
      payload: { agent_spec: agentSpec, command_spec: expand(entry.command_spec) },
    },
    task: { status: undefined, metadata: {}, retry_count: 0 },
    runningTasks: [],
    config: policy,
  };
}

interface Verdict {
  decision: DecisionType;
  codes: string[];
  reason: string;
}

function judge(entry: Entry): Verdict {
  const { decision } = decide(inputFor(entry), registry);
  return {
    decision: decision.decision_type,
    codes: decision.findings.map((f) => f.code),
    reason: decision.reason,
  };
}

function meets(expectation: Expectation, decision: DecisionType): boolean {
  return expectation === 'NOT_ALLOW' ? STOPPED.includes(decision) : decision === expectation;
}

function passes(entry: Entry, verdict: Verdict): boolean {
  return (
    meets(entry.expect, verdict.decision) && (entry.codes ?? []).every((code) => verdict.codes.includes(code))
  );
}

const VERB: Record<Expectation, string> = {
  ALLOW: 'allows',
  BLOCK: 'blocks',
  REQUIRE_REVIEW: 'sends to review',
  NOT_ALLOW: 'does not allow',
};

function title(entry: Entry): string {
  const codes = entry.codes?.length ? ` with ${entry.codes.join(', ')}` : '';
  return `${VERB[entry.expect]}${codes} ${entry.id}: ${entry.why}`;
}

const results = new Map<string, { entry: Entry; verdict: Verdict; group: 'attack' | 'benign' | 'open' }>();

function check(entry: Entry, group: 'attack' | 'benign'): void {
  const verdict = judge(entry);
  results.set(entry.id, { entry, verdict, group });
  // NOT_ALLOW is met by any stopping decision; the codes the entry names must all be among the findings.
  const expected = { decision: entry.expect, codes: entry.codes ?? [] };
  const actual = {
    decision: meets(entry.expect, verdict.decision) ? entry.expect : verdict.decision,
    codes: (entry.codes ?? []).filter((code) => verdict.codes.includes(code)),
  };
  const found = verdict.codes.length > 0 ? verdict.codes.join(', ') : 'no findings';
  expect(actual, `${entry.id} (${entry.why}) → ${verdict.decision} [${found}]: ${verdict.reason}`).toEqual(
    expected,
  );
}

beforeAll(() => {
  // The first decision pays for loading and compiling the policy's code; keep that out of the 200 ms budget
  // the entries are judged under.
  judge({
    id: 'warm-up',
    command_spec: { name: 'warm-up', command: 'ls -la', args: [] },
    expect: 'ALLOW',
    why: 'warm-up',
  });
});

describe('the redline corpus', () => {
  it('holds at least 150 attacks and 50 benign look-alikes', () => {
    expect(corpus.attacks.length).toBeGreaterThanOrEqual(150);
    expect(corpus.benign.length).toBeGreaterThanOrEqual(50);
  });

  it('gives every entry a unique id and a command_spec', () => {
    const all = [...corpus.attacks, ...corpus.benign, ...corpus.open];
    const seen = new Set<string>();
    const duplicates = all.map((e) => e.id).filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
    expect(duplicates).toEqual([]);
    expect(all.filter((e) => !hasOwnCommandSpec(e)).map((e) => e.id)).toEqual([]);
  });

  it('never expects an attack to be allowed, nor a benign command to be stopped', () => {
    expect(corpus.attacks.filter((e) => e.expect === 'ALLOW').map((e) => e.id)).toEqual([]);
    expect(corpus.benign.filter((e) => e.expect !== 'ALLOW' || e.codes?.length).map((e) => e.id)).toEqual([]);
  });
});

describe('a hostile command spec', () => {
  for (const entry of corpus.attacks) {
    it(title(entry), () => check(entry, 'attack'));
  }
});

describe('a benign look-alike', () => {
  for (const entry of corpus.benign) {
    it(title(entry), () => check(entry, 'benign'));
  }
});

describe('an open question (reported, not asserted)', () => {
  it(`records how the gate answers ${corpus.open.length} cases the rules do not settle`, () => {
    for (const entry of corpus.open) results.set(entry.id, { entry, verdict: judge(entry), group: 'open' });
    expect(corpus.open.every((entry) => results.has(entry.id))).toBe(true);
  });
});

afterAll(() => {
  const of = (group: 'attack' | 'benign' | 'open') => [...results.values()].filter((r) => r.group === group);
  const count = (rows: ReturnType<typeof of>, decision: DecisionType) =>
    rows.filter((r) => r.verdict.decision === decision).length;
  const attacks = of('attack');
  const benign = of('benign');
  const open = of('open');
  const stopped = attacks.filter((r) => STOPPED.includes(r.verdict.decision));
  const lines = [
    `redline corpus: ${attacks.length} attacks → ${stopped.length} stopped (${count(attacks, 'BLOCK')} BLOCK, ${count(attacks, 'REQUIRE_REVIEW')} REQUIRE_REVIEW, ${count(attacks, 'PAUSE')} PAUSE), ` +
      `${benign.length} benign → ${count(benign, 'ALLOW')} ALLOW`,
  ];
  const mismatches = [...attacks, ...benign].filter((r) => !passes(r.entry, r.verdict));
  if (mismatches.length > 0) {
    lines.push(`${mismatches.length} mismatches:`);
    for (const { entry, verdict } of mismatches) {
      const missing = (entry.codes ?? []).filter((code) => !verdict.codes.includes(code));
      lines.push(
        `  ${entry.id}: expected ${entry.expect}${missing.length ? ` with ${missing.join(', ')}` : ''}, got ${verdict.decision}${verdict.codes.length ? ` [${verdict.codes.join(', ')}]` : ''}`,
      );
    }
  }
  if (open.length > 0) {
    lines.push(
      `open questions (not asserted): ${open.filter((r) => passes(r.entry, r.verdict)).length}/${open.length} as a hostile reading expects`,
    );
    for (const { entry, verdict } of open) {
      lines.push(
        `  ${passes(entry, verdict) ? 'ok  ' : 'GAP '} ${entry.id}: ${verdict.decision}${verdict.codes.length ? ` [${verdict.codes.join(', ')}]` : ''} (hostile reading: ${entry.expect})`,
      );
    }
  }
  console.log(lines.join('\n'));
});
