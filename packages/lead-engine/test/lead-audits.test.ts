// The audit rows of the lead miner: which sightings are audited, on which task, with what payload.
import { describe, expect, it } from 'vitest';
import { planLeadFindingUpsert } from '@warden/domain';
import { findingChangedAudit, findingSeenAgainAudit, followUpLinkedAudit } from '../src/lead-audits.js';
import { leadDraft } from './fixtures.js';

const NOW = new Date('2026-11-22T10:00:00.000Z');

const draft = leadDraft('f1', {
  title: 'Task t-1 was paused repeatedly, then blocked',
  dimensions: { task_id: 't-1' },
});

const leadFields = { decision_id: null, event_id: null, source_event_ts: null };

describe('findingSeenAgainAudit', () => {
  it('should audit a reopened finding as a warning on the task it is linked to', () => {
    const plan = planLeadFindingUpsert(
      { status: 'resolved', linked_task_id: 'lead-f1', silenced_until: null },
      NOW,
    );
    expect(findingSeenAgainAudit('acme', { draft, plan, linked_task_id: 'lead-f1' }, 'scan-1')).toEqual({
      tenant_id: 'acme',
      task_id: 'lead-f1',
      event_type: 'LEAD_FINDING_REOPENED',
      level: 'warn',
      ...leadFields,
      payload: {
        fingerprint: 'f1',
        code: 'pause_block_churn',
        severity: 'MEDIUM',
        title: draft.title,
        window_kind: '24h',
        reason: 'a resolved finding was seen again (regression)',
        scan_id: 'scan-1',
      },
    });
  });

  it('should audit a silence that ran out on the follow-up the finding will get', () => {
    const plan = planLeadFindingUpsert(
      { status: 'silenced', linked_task_id: null, silenced_until: NOW },
      NOW,
    );
    expect(findingSeenAgainAudit('acme', { draft, plan, linked_task_id: null }, 'scan-1')).toMatchObject({
      task_id: 'lead-f1',
      event_type: 'LEAD_FINDING_SILENCE_EXPIRED',
      level: 'info',
      payload: { reason: 'the silence ran out and the finding was seen again' },
    });
  });

  it('should audit nothing for a new finding, a plain duplicate or a running silence', () => {
    const states = [
      undefined,
      { status: 'open' as const, linked_task_id: 'lead-f1', silenced_until: null },
      { status: 'silenced' as const, linked_task_id: null, silenced_until: new Date(NOW.getTime() + 1) },
    ];
    for (const state of states) {
      const plan = planLeadFindingUpsert(state, NOW);
      expect(findingSeenAgainAudit('acme', { draft, plan, linked_task_id: null }, null)).toBeUndefined();
    }
  });
});

describe('followUpLinkedAudit', () => {
  it('should record the task it opened, its priority and status', () => {
    expect(
      followUpLinkedAudit(
        'acme',
        { fingerprint: 'f1', code: 'pause_block_churn', severity: 'MEDIUM', window_kind: '24h' },
        { task_id: 'lead-f1', title: '[LEAD][24h] pause_block_churn - t', priority: 3, status: 'draft' },
        'scan-1',
      ),
    ).toEqual({
      tenant_id: 'acme',
      task_id: 'lead-f1',
      event_type: 'LEAD_FINDING_LINKED',
      level: 'info',
      ...leadFields,
      payload: {
        fingerprint: 'f1',
        code: 'pause_block_churn',
        severity: 'MEDIUM',
        title: '[LEAD][24h] pause_block_churn - t',
        priority: 3,
        task_status: 'draft',
        window_kind: '24h',
        scan_id: 'scan-1',
      },
    });
  });
});

describe('findingChangedAudit', () => {
  const before = { fingerprint: 'f1', code: 'pause_block_churn', status: 'open', linked_task_id: null };

  it('should record who resolved it and the status before, on the follow-up id', () => {
    expect(findingChangedAudit('acme', 'LEAD_FINDING_RESOLVED', before, { by: 'api_key:k1' })).toEqual({
      tenant_id: 'acme',
      task_id: 'lead-f1',
      event_type: 'LEAD_FINDING_RESOLVED',
      level: 'info',
      ...leadFields,
      payload: {
        fingerprint: 'f1',
        code: 'pause_block_churn',
        by: 'api_key:k1',
        note: null,
        previous_status: 'open',
      },
    });
  });

  it('should record until when a finding is silenced, with the note', () => {
    const until = new Date(NOW.getTime() + 3_600_000);
    expect(
      findingChangedAudit(
        'acme',
        'LEAD_FINDING_SILENCED',
        { ...before, linked_task_id: 'lead-f1' },
        {
          by: 'test',
          note: 'known',
          silencedUntil: until,
        },
      ).payload,
    ).toEqual({
      fingerprint: 'f1',
      code: 'pause_block_churn',
      by: 'test',
      note: 'known',
      previous_status: 'open',
      silenced_until: until.toISOString(),
    });
  });
});
