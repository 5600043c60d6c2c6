// The pure steps of a scan's report: a finding's result against what is stored, the counters, the order in
// which follow-ups are created, and the conflict warning. The integration suites run them inside real scans.
import { describe, expect, it } from 'vitest';
import { leadScanWindow, parseLeadWindow, planLeadFindingUpsert, type Severity } from '@warden/domain';
import {
  emptyLeadScanReport,
  findingResult,
  followUpConflictWarning,
  followUpsByUrgency,
  settleLeadScanReport,
  tallyFindings,
  type FindingResult,
} from '../src/scan-report.js';
import { leadDraft } from './fixtures.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');

function draft(fingerprint: string, severity: Severity = 'HIGH') {
  return leadDraft(fingerprint, { rule_code: 'blocked_reason_spike', severity });
}

function report() {
  return emptyLeadScanReport({
    tenantId: 'acme',
    scanId: null,
    window: leadScanWindow(parseLeadWindow('24h'), NOW),
    rulesVersion: '1',
    dryRun: false,
    forced: false,
    started: NOW,
    status: 'completed',
  });
}

const fresh = { plan: planLeadFindingUpsert(undefined, NOW), linked_task_id: null };
const linked = {
  plan: planLeadFindingUpsert({ status: 'open', linked_task_id: 'lead-b', silenced_until: null }, NOW),
  linked_task_id: 'lead-b',
};
const reopened = {
  plan: planLeadFindingUpsert({ status: 'resolved', linked_task_id: 'lead-c', silenced_until: null }, NOW),
  linked_task_id: 'lead-c',
};
const silenced = {
  plan: planLeadFindingUpsert(
    { status: 'silenced', linked_task_id: null, silenced_until: new Date(NOW.getTime() + 60_000) },
    NOW,
  ),
  linked_task_id: null,
};

describe('emptyLeadScanReport', () => {
  it('should start every counter at zero, with the window and the start time', () => {
    const empty = report();
    expect(empty).toMatchObject({
      timestamp: NOW.toISOString(),
      window_kind: '24h',
      window: { start: '2026-11-21T10:00:00.000Z', end: NOW.toISOString() },
      findings_count: 0,
      tasks_created: 0,
      tenant_id: 'acme',
      rules_version: '1',
      findings: [],
      stats: {
        started_at: NOW.toISOString(),
        completed_at: null,
        raw_findings: 0,
        error: null,
        warnings: [],
      },
    });
  });
});

describe('findingResult', () => {
  it('should name no task for a new finding of a real scan (the follow-up step fills it in)', () => {
    expect(findingResult(draft('a'), fresh, false)).toMatchObject({
      outcome: 'new',
      needsFollowUp: true,
      result: { task_id: null, task_created: false, would_create_task: false },
    });
  });

  it('should name the follow-up a dry run would create', () => {
    expect(findingResult(draft('a'), fresh, true).result).toMatchObject({
      task_id: 'lead-a',
      would_create_task: true,
    });
  });

  it('should keep the link a stored finding has, and need no follow-up for it', () => {
    expect(findingResult(draft('b'), linked, true)).toMatchObject({
      outcome: 'duplicate',
      needsFollowUp: false,
      result: { task_id: 'lead-b', would_create_task: false },
    });
  });
});

describe('tallyFindings and settleLeadScanReport', () => {
  it('should count new, duplicate, reopened and silenced findings, and the follow-ups not created', () => {
    const results = [
      findingResult(draft('a'), fresh, false),
      findingResult(draft('b'), linked, false),
      findingResult(draft('c'), reopened, false),
      findingResult(draft('d'), silenced, false),
    ];
    const scan = report();
    tallyFindings(scan, results);
    settleLeadScanReport(scan, results, new Date(NOW.getTime() + 1000));
    expect(scan.findings.map((f) => f.fingerprint)).toEqual(['a', 'b', 'c', 'd']);
    expect(scan.stats).toMatchObject({
      new_findings: 1,
      duplicate_findings: 3,
      reopened_findings: 1,
      silenced_findings: 1,
      tasks_created: 0,
      tasks_skipped: 1,
      completed_at: '2026-11-22T10:00:01.000Z',
    });
    expect(scan.findings_count).toBe(1);
  });

  it('should skip none once every needed follow-up was created', () => {
    const results = [findingResult(draft('a'), fresh, false)];
    const scan = report();
    tallyFindings(scan, results);
    scan.stats.tasks_created = 1;
    settleLeadScanReport(scan, results, NOW);
    expect(scan.stats.tasks_skipped).toBe(0);
    expect(scan.tasks_created).toBe(1);
  });
});

describe('followUpsByUrgency', () => {
  it('should put the most severe first, keep the rules order within a severity, and leave out findings needing none', () => {
    const results: FindingResult[] = [
      findingResult(draft('low', 'LOW'), fresh, false),
      findingResult(draft('high-1', 'HIGH'), fresh, false),
      findingResult(draft('linked', 'CRITICAL'), linked, false),
      findingResult(draft('medium', 'MEDIUM'), fresh, false),
      findingResult(draft('critical', 'CRITICAL'), fresh, false),
      findingResult(draft('high-2', 'HIGH'), fresh, false),
    ];
    expect(followUpsByUrgency(results).map((r) => r.fingerprint)).toEqual([
      'critical',
      'high-1',
      'high-2',
      'medium',
      'low',
    ]);
  });
});

describe('followUpConflictWarning', () => {
  it('should name the finding and the task in the way', () => {
    expect(followUpConflictWarning('abc', 'lead-abc')).toEqual({
      code: 'LEAD_FOLLOW_UP_CONFLICT',
      message: expect.stringContaining('finding abc got no follow-up: a task lead-abc exists'),
      details: { fingerprint: 'abc', task_id: 'lead-abc' },
    });
  });
});
