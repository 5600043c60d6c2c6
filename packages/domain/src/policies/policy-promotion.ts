/**
 * Promoting an event type from monitor to enforce with evidence (`warden policy promote`, docs/supervisor.md
 * "Promoting monitor to enforce"): what enforcement would have done to the decisions recorded in monitor
 * mode, whether that is within the threshold, and the policy source with the event type switched to
 * `enforce`. Pure: the API reads the decisions and stores the draft.
 */
import { isMap, isScalar, parseDocument, type Document, type Node, type YAMLMap } from 'yaml';
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { ConflictError, ValidationError } from '../errors.js';
import { DecisionTypeSchema, type DecisionType } from '../decisions.js';
import { EventTypeSchema, KNOWN_EVENT_TYPES } from '../events.js';
import type { EnforcementMode, SupervisorPolicyFile } from '../policy-file.js';
import { MAX_LEAD_WINDOW_HOURS, MIN_LEAD_WINDOW_HOURS, parseLeadWindow } from '../lead/lead-window.js';
import { TenantIdSchema } from '../scopes.js';
import { unstorableTextProblem } from '../validation.js';
import { parsePolicySource } from './policy-kinds.js';
import type { PolicyVersionView } from './policy-versions.js';

/** What enforcement would have decided that stops an agent: these count against the threshold. */
export const STOPPING_DECISIONS: readonly DecisionType[] = ['BLOCK', 'PAUSE'];

/** The window looked at when none is given. */
export const DEFAULT_PROMOTION_WINDOW = '7d';
/** The largest share of stopping would-have decisions a promotion passes with when none is given. */
export const DEFAULT_PROMOTION_MAX_RATE = '1%';

/** One decision recorded in monitor mode, as its audit row holds it. */
export interface MonitoredDecision {
  task_id: string;
  event_id: string;
  decision_id: string;
  /** What was recorded: ALLOW where the policy was softened, else what was enforced anyway. */
  decision_type: string;
  /** What enforcement would have decided instead; null when it would have decided the same. */
  would_have: string | null;
  /** The codes of the decision's findings. */
  finding_codes: readonly string[];
}

export interface PromotionSample {
  task_id: string;
  event_id: string;
  decision_id: string;
  would_have: DecisionType;
}

/** What enforcement would have done to the monitor-mode decisions of one event type over a window. */
export interface WouldHaveSummary {
  /** Decisions of the event type recorded in monitor mode. */
  decisions: number;
  /** What enforcement would have decided, each decision counted once (`would_have`, else as recorded). */
  would_have: Record<DecisionType, number>;
  /** Decisions enforcement would have decided differently (those with `would_have`). */
  changed: number;
  /** Of those, the ones that would have stopped the agent (BLOCK or PAUSE). */
  stopped: number;
  /** `stopped / decisions`; 0 without decisions. */
  stop_rate: number;
  /** The commonest finding codes of the changed decisions, most frequent first. */
  top_findings: Array<{ code: string; count: number }>;
  /** A few changed decisions to inspect, stopping ones first, oldest first. */
  samples: PromotionSample[];
}

export interface WouldHaveSummaryOptions {
  /** How many finding codes to keep. @defaultValue `10` */
  topFindings?: number;
  /** How many sample decisions to keep. @defaultValue `5` */
  samples?: number;
}

const zeroCounts = (): Record<DecisionType, number> =>
  Object.fromEntries(DecisionTypeSchema.options.map((type) => [type, 0])) as Record<DecisionType, number>;

/**
 * Summarises monitor-mode decisions one at a time (memory holds counts and a few samples, whatever the
 * window's size). A decision whose recorded or would-have type is not a decision type counts as
 * REQUIRE_REVIEW: an unreadable record is never taken for an ALLOW.
 */
export class WouldHaveSummarizer {
  private readonly counts = zeroCounts();
  private readonly findings = new Map<string, number>();
  private readonly stopping: PromotionSample[] = [];
  private readonly others: PromotionSample[] = [];
  private decisions = 0;
  private changed = 0;
  private stopped = 0;
  private readonly topFindings: number;
  private readonly sampleSize: number;

  constructor(options: WouldHaveSummaryOptions = {}) {
    this.topFindings = options.topFindings ?? 10;
    this.sampleSize = options.samples ?? 5;
  }

  add(decision: MonitoredDecision): void {
    this.decisions++;
    const recorded = asDecisionType(decision.would_have ?? decision.decision_type);
    this.counts[recorded]++;
    if (decision.would_have === null) return;
    this.changed++;
    for (const code of new Set(decision.finding_codes))
      this.findings.set(code, (this.findings.get(code) ?? 0) + 1);
    const stops = STOPPING_DECISIONS.includes(recorded);
    if (stops) this.stopped++;
    const bucket = stops ? this.stopping : this.others;
    if (bucket.length < this.sampleSize)
      bucket.push({
        task_id: decision.task_id,
        event_id: decision.event_id,
        decision_id: decision.decision_id,
        would_have: recorded,
      });
  }

  summary(): WouldHaveSummary {
    return {
      decisions: this.decisions,
      would_have: { ...this.counts },
      changed: this.changed,
      stopped: this.stopped,
      stop_rate: this.decisions === 0 ? 0 : this.stopped / this.decisions,
      top_findings: [...this.findings]
        .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
        .slice(0, this.topFindings)
        .map(([code, count]) => ({ code, count })),
      samples: [...this.stopping, ...this.others].slice(0, this.sampleSize),
    };
  }
}

function asDecisionType(value: string): DecisionType {
  const parsed = DecisionTypeSchema.safeParse(value);
  return parsed.success ? parsed.data : 'REQUIRE_REVIEW';
}

/** Whether a promotion may go ahead on its evidence alone, and why (shown to the person and stored). */
export interface PromotionVerdict {
  passes: boolean;
  reason: string;
}

/** `0.0125` → `1.25%`. */
export function formatRate(rate: number): string {
  return `${Number((rate * 100).toFixed(2))}%`;
}

/**
 * The threshold check: passes when the share of decisions enforcement would have stopped is at most
 * `maxRate`. No decisions at all is no evidence, and does not pass: promoting blind takes `--accept`.
 */
export function promotionVerdict(
  summary: WouldHaveSummary,
  input: { eventType: string; since: string; maxRate: number },
): PromotionVerdict {
  if (summary.decisions === 0)
    return {
      passes: false,
      reason: `no ${input.eventType} decisions were recorded in monitor mode in the last ${input.since}: there is no evidence to promote on`,
    };
  const measured = `${summary.stopped} of ${summary.decisions} ${input.eventType} decisions in monitor mode over the last ${input.since} (${formatRate(summary.stop_rate)}) would have been ${STOPPING_DECISIONS.join(' or ')}`;
  return summary.stop_rate <= input.maxRate
    ? { passes: true, reason: `${measured}: within the ${formatRate(input.maxRate)} threshold` }
    : { passes: false, reason: `${measured}: above the ${formatRate(input.maxRate)} threshold` };
}

const RATE = /^(\d{1,3}(?:\.\d{1,4})?)%$/;

/**
 * A percentage as typed (`1%`, `0.5%`, `0%`…`100%`) as a fraction, or a {@link ValidationError} naming
 * `path`. The `%` is required: a bare `1` could mean 1 % or 100 %.
 */
export function parseRatePercent(input: unknown, path = 'max_rate'): number {
  const match = typeof input === 'string' ? RATE.exec(input.trim()) : null;
  const percent = match ? Number(match[1]) : Number.NaN;
  if (!(percent >= 0 && percent <= 100)) {
    const message = `must be a percentage between 0% and 100%, e.g. 1% or 0.5%; got ${JSON.stringify(input)}`;
    throw new ValidationError(`invalid ${path}: ${message}`, [{ path, message }]);
  }
  return percent / 100;
}

/** The inputs of a promotion, as the API and the CLI take them (validated: 400 / exit 2 naming the field). */
export const PromotionQuerySchema = z
  .object({
    event_type: EventTypeSchema.meta({ description: 'The event type to promote, e.g. TASK_CREATED' }),
    since: z
      .string()
      .max(16)
      .default(DEFAULT_PROMOTION_WINDOW)
      .meta({
        description: `The window of evidence: Nh or Nd, ${MIN_LEAD_WINDOW_HOURS}h to ${MAX_LEAD_WINDOW_HOURS / 24}d (default ${DEFAULT_PROMOTION_WINDOW})`,
      }),
    max_rate: z
      .string()
      .max(16)
      .default(DEFAULT_PROMOTION_MAX_RATE)
      .meta({
        description: `The largest share of decisions enforcement would have blocked or paused, e.g. 1% (default ${DEFAULT_PROMOTION_MAX_RATE})`,
      }),
    tenant_id: TenantIdSchema.optional().meta({
      description: "Must be the key's own tenant when given: a guard against acting with the wrong key",
    }),
  })
  .strict();

export const PromotionRequestSchema = PromotionQuerySchema.extend({
  accept: z.boolean().default(false).meta({
    description: 'Store the draft even above the threshold (or without evidence); the report is its reason',
  }),
  // Stored in the draft's note and its audit row: text Postgres cannot store is a 400, never a 500.
  note: z
    .string()
    .max(500)
    .superRefine((value, ctx) => {
      const problem = unstorableTextProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional()
    .meta({ description: 'Why, added to the stored reason' }),
}).strict();

/** Window and threshold of a promotion, parsed; a bad one is a ValidationError naming the field. */
export function parsePromotionInputs(input: { since: string; max_rate: string }): {
  since: string;
  windowMs: number;
  maxRate: number;
} {
  const window = parseLeadWindow(input.since, 'since');
  return { since: window.kind, windowMs: window.ms, maxRate: parseRatePercent(input.max_rate, 'max_rate') };
}

/**
 * Refuses (ValidationError naming `path`) an event type Warden knows nothing of: no built-in policy and no
 * decision of it recorded in monitor mode in the window. Catches a typo (`TASK_CRATED`) that would
 * otherwise push a draft enforcing nothing; a type a custom policy registry decides has decisions to show.
 */
export function assertKnownEventType(
  eventType: string,
  monitoredDecisions: number,
  path = 'event_type',
): void {
  if ((KNOWN_EVENT_TYPES as readonly string[]).includes(eventType) || monitoredDecisions > 0) return;
  const message = `unknown event type ${JSON.stringify(eventType)}: it has no built-in policy (${KNOWN_EVENT_TYPES.join(', ')}) and no decisions recorded in monitor mode in the window`;
  throw new ValidationError(`invalid ${path}: ${message}`, [{ path, message }]);
}

/** The mode `enforcementFor` gives (tenant, then event type, then default) and which setting decides it. */
export function enforcementOf(
  policy: Pick<SupervisorPolicyFile, 'enforcement'>,
  tenantId: string,
  eventType: string,
): { mode: EnforcementMode; by: 'tenant' | 'event_type' | 'default' } {
  const { enforcement } = policy;
  if (Object.hasOwn(enforcement.tenants, tenantId))
    return { mode: enforcement.tenants[tenantId]!, by: 'tenant' };
  if (Object.hasOwn(enforcement.event_types, eventType))
    return { mode: enforcement.event_types[eventType]!, by: 'event_type' };
  return { mode: enforcement.default, by: 'default' };
}

/**
 * `source` (a supervisor policy) with `enforcement.event_types.<eventType>` set to `enforce`, every other
 * line as it was, so the diff an approver reads is that one line. Refused (ConflictError) when the event
 * type is enforced for the tenant already, or when the tenant itself is set to monitor (the tenant setting
 * wins over the event type's, so switching the event type would change nothing).
 */
export function enforceEventType(source: string, input: { tenantId: string; eventType: string }): string {
  const before = parsePolicySource('supervisor', source, 'the active supervisor policy');
  const current = enforcementOf(before, input.tenantId, input.eventType);
  if (current.by === 'tenant' && current.mode === 'monitor')
    throw new ConflictError(
      `the active policy sets tenant ${input.tenantId} to monitor for every event type (enforcement.tenants); ` +
        `switching ${input.eventType} alone would change nothing: edit enforcement.tenants and push the file`,
    );
  if (current.mode === 'enforce')
    throw new ConflictError(
      `${input.eventType} is enforced for tenant ${input.tenantId} already (by enforcement.${current.by === 'default' ? 'default' : current.by === 'tenant' ? 'tenants' : 'event_types'})`,
    );
  const expected = structuredClone(before);
  expected.enforcement.event_types[input.eventType] = 'enforce';
  // The one-line edit where the file's layout allows it; otherwise the document re-serialised. Either way
  // the result must parse to exactly the expected policy, or nothing is stored.
  for (const candidate of [editInPlace(source, input.eventType), reserialised(source, input.eventType)]) {
    if (candidate === undefined) continue;
    let after: SupervisorPolicyFile;
    try {
      after = parsePolicySource('supervisor', candidate, 'the promoted policy');
    } catch {
      continue;
    }
    if (canonicalJson(after) === canonicalJson(expected)) return candidate;
  }
  throw new Error(`could not switch ${input.eventType} to enforce in the policy source`);
}

function lineStart(source: string, offset: number): number {
  return source.lastIndexOf('\n', offset - 1) + 1;
}

/** Inserts `text` (whole lines) before the first entry of a block map, at that entry's indentation. */
function beforeFirstEntry(
  source: string,
  map: YAMLMap,
  lines: (indent: string) => string,
): string | undefined {
  const first = map.items[0]?.key as Node | undefined;
  if (map.flow || !first?.range) return undefined;
  const start = lineStart(source, first.range[0]);
  const indent = source.slice(start, first.range[0]);
  if (!/^ *$/.test(indent)) return undefined;
  return source.slice(0, start) + lines(indent) + source.slice(start);
}

function editInPlace(source: string, eventType: string): string | undefined {
  const document: Document = parseDocument(source);
  if (document.errors.length > 0) return undefined;
  const enforcement = document.get('enforcement', true);
  const entry = `${eventType}: enforce`;
  if (enforcement === undefined || (isScalar(enforcement) && enforcement.value === null)) {
    if (document.has('enforcement')) return undefined;
    const body = source.endsWith('\n') || source === '' ? source : `${source}\n`;
    return `${body}enforcement:\n  event_types:\n    ${entry}\n`;
  }
  if (!isMap(enforcement)) return undefined;
  const eventTypes = enforcement.get('event_types', true);
  if (eventTypes === undefined)
    return beforeFirstEntry(source, enforcement, (indent) => `${indent}event_types:\n${indent}  ${entry}\n`);
  if (!isMap(eventTypes)) return undefined;
  const existing = eventTypes.get(eventType, true);
  if (isScalar(existing) && existing.range) {
    const [start, end] = existing.range;
    return source.slice(0, start) + 'enforce' + source.slice(end);
  }
  if (existing !== undefined) return undefined;
  if (eventTypes.flow && eventTypes.items.length === 0 && eventTypes.range) {
    const [start, end] = eventTypes.range;
    return source.slice(0, start) + `{ ${entry} }` + source.slice(end);
  }
  return beforeFirstEntry(source, eventTypes, (indent) => `${indent}${entry}\n`);
}

function reserialised(source: string, eventType: string): string {
  const document = parseDocument(source);
  document.setIn(['enforcement', 'event_types', eventType], 'enforce');
  return document.toString();
}

/** What a promotion is judged on, as the API answers it (`GET /v1/policies/supervisor/promotions/evidence`). */
export interface PromotionEvidence {
  tenant_id: string;
  event_type: string;
  /** The window as given, canonical (`7d`). */
  since: string;
  window_start: string;
  /** The threshold as a fraction (`0.01` for 1%). */
  max_rate: number;
  /** The active version the draft is derived from; null while the bootstrap file is in force. */
  active_version: number | null;
  /** The event type's mode for this tenant under the active policy, and the setting that decides it. */
  enforcement: { mode: EnforcementMode; by: 'tenant' | 'event_type' | 'default' };
  summary: WouldHaveSummary;
  verdict: PromotionVerdict;
  /** The change the draft makes to the active policy (a unified diff). */
  diff: string;
}

/** A promotion's answer (`POST /v1/policies/supervisor/promotions`). */
export interface PromotionOutcome extends PromotionEvidence {
  /** Stored although the verdict did not pass, because the person accepted the evidence. */
  accepted: boolean;
  /** The stored draft; null when the verdict refused it and it was not accepted. */
  draft: PolicyVersionView | null;
}
