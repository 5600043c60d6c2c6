/**
 * Change sets through the SDK: `WardenClient` gains methods to submit a plan and its change set, read it (verdict,
 * status, steps), approve or reject it, read its audit trail and wait for it to finish. Every call is safe to
 * retry: a re-sent submission is answered with the stored change set, a re-sent approval with the approval.
 */
import {
  computeChangeSetChecksum,
  contentSha256,
  isChangeSetFinished,
  type ApprovalState,
  type AuditView,
  type ChangeSetStatus,
  type ChangeSetSubmissionInput,
  type ChangeSetView,
  type FileChange,
  type Page,
} from '@warden/domain';
import { WardenClient } from './warden-client.js';

export interface ApproveChangeSetOptions {
  /**
   * The checksum you reviewed; the approval is refused (400 `checksum_mismatch`) when the change set's differs.
   * @defaultValue the stored checksum (the approval binds to it either way)
   */
  checksum?: string;
  /** Shown in the change set's steps and audit trail. @defaultValue none */
  note?: string;
}

export interface RejectChangeSetOptions {
  /** Why; shown in the steps and the audit trail. @defaultValue none */
  reason?: string;
}

export interface WaitForChangeSetOptions {
  /** Give up (rejecting) after this long. @defaultValue `120000` */
  timeoutMs?: number;
  /** Time between two reads. @defaultValue `500` */
  intervalMs?: number;
}

/** One change set in a list: what it is and where it stands, without its changes and steps. */
export interface ChangeSetSummaryView {
  changeset_id: string;
  plan_id: string;
  workspace: string;
  status: ChangeSetStatus;
  verdict: string;
  risk_effective: string;
  approval_state: ApprovalState;
  /** When a pending approval lapses (the change set is then rejected); null when none was set. */
  approval_expires_at: string | null;
  submitted_by: string;
  submitted_at: string;
  updated_at: string;
}

export interface ListChangeSetsOptions {
  /** Only change sets with this status. @defaultValue any */
  status?: ChangeSetStatus;
  /** Only change sets in this approval state; `pending` lists those waiting for a person. @defaultValue any */
  approval?: ApprovalState;
  /** Page size, 1–100. @defaultValue `50` */
  limit?: number;
  /** `next_cursor` of the previous page. @defaultValue the first page */
  cursor?: string;
}

export interface ListChangeSetAuditsOptions {
  /** Page size, 1–100. @defaultValue `50` */
  limit?: number;
  /** `next_cursor` of the previous page. @defaultValue the first page */
  cursor?: string;
}

declare module './warden-client.js' {
  interface WardenClient {
    /**
     * Submits a plan and its change set (scope `changesets:write`). Resolves with the stored change set: its WriteGate
     * verdict with every reason, and `status` `pending` (queued, or waiting for approval) or `denied`. A checksum that
     * does not match the changes is a 400 `checksum_mismatch`; seal with {@link sealChangeSet}.
     */
    submitChangeSet(submission: ChangeSetSubmissionInput): Promise<ChangeSetView>;
    /** One page of the tenant's change sets, newest first (scope `changesets:write` or `changesets:approve`). */
    listChangeSets(options?: ListChangeSetsOptions): Promise<Page<ChangeSetSummaryView>>;
    /** The change set with verdict, approval, status and every step; a 404 `WardenApiError` if unknown to the key's tenant. */
    getChangeSet(changesetId: string): Promise<ChangeSetView>;
    /** Approves a change set waiting for approval (scope `changesets:approve`, not the submitter's key). */
    approveChangeSet(changesetId: string, options?: ApproveChangeSetOptions): Promise<ChangeSetView>;
    /** Rejects a change set waiting for approval; final (scope `changesets:approve`). */
    rejectChangeSet(changesetId: string, options?: RejectChangeSetOptions): Promise<ChangeSetView>;
    /** One page of the change set's audit trail, oldest first. */
    listChangeSetAudits(changesetId: string, options?: ListChangeSetAuditsOptions): Promise<Page<AuditView>>;
    /** Reads the change set until it reaches a final status (completed, failed, rolled_back, rollback_failed, rejected, denied). */
    waitForChangeSet(changesetId: string, options?: WaitForChangeSetOptions): Promise<ChangeSetView>;
  }
}

/** The private request method of WardenClient, reached here so these methods share its retries and errors. */
interface RequestCapable {
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown>;
}
const requestOf = (client: WardenClient) => client as unknown as RequestCapable;
const changesetPath = (id: string) => `/v1/changesets/${encodeURIComponent(id)}`;

WardenClient.prototype.submitChangeSet = async function (
  this: WardenClient,
  submission: ChangeSetSubmissionInput,
) {
  return (await requestOf(this).request('POST', '/v1/changesets', submission)) as ChangeSetView;
};

WardenClient.prototype.listChangeSets = async function (
  this: WardenClient,
  options: ListChangeSetsOptions = {},
) {
  const query = new URLSearchParams();
  if (options.status !== undefined) query.set('status', options.status);
  if (options.approval !== undefined) query.set('approval', options.approval);
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  const search = query.toString() === '' ? '' : `?${query.toString()}`;
  return (await requestOf(this).request('GET', `/v1/changesets${search}`)) as Page<ChangeSetSummaryView>;
};

WardenClient.prototype.getChangeSet = async function (this: WardenClient, changesetId: string) {
  return (await requestOf(this).request('GET', changesetPath(changesetId))) as ChangeSetView;
};

WardenClient.prototype.approveChangeSet = async function (
  this: WardenClient,
  changesetId: string,
  options: ApproveChangeSetOptions = {},
) {
  const body = {
    ...(options.checksum ? { checksum: options.checksum } : {}),
    ...(options.note ? { note: options.note } : {}),
  };
  return (await requestOf(this).request(
    'POST',
    `${changesetPath(changesetId)}/approve`,
    body,
  )) as ChangeSetView;
};

WardenClient.prototype.rejectChangeSet = async function (
  this: WardenClient,
  changesetId: string,
  options: RejectChangeSetOptions = {},
) {
  return (await requestOf(this).request(
    'POST',
    `${changesetPath(changesetId)}/reject`,
    options.reason ? { reason: options.reason } : {},
  )) as ChangeSetView;
};

WardenClient.prototype.listChangeSetAudits = async function (
  this: WardenClient,
  changesetId: string,
  options: ListChangeSetAuditsOptions = {},
) {
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  const search = query.toString() === '' ? '' : `?${query.toString()}`;
  return (await requestOf(this).request(
    'GET',
    `${changesetPath(changesetId)}/audits${search}`,
  )) as Page<AuditView>;
};

WardenClient.prototype.waitForChangeSet = async function (
  this: WardenClient,
  changesetId: string,
  options: WaitForChangeSetOptions = {},
) {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const view = await this.getChangeSet(changesetId);
    if (isChangeSetFinished(view.status, view.execution.finished_at)) return view;
    if (Date.now() >= deadline)
      throw new Error(
        `change set "${changesetId}" is still ${view.status} after ${options.timeoutMs ?? 120_000} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
  }
};

/**
 * Fills in what a change set's author must compute: each change's `old_hash`/`new_hash` from its content (when
 * missing) and the `checksum` over the changes. Returns a new submission; the input is not modified.
 *
 * @example
 * const submission = sealChangeSet({ plan, changeset: { changeset_id: 'cs-1', plan_id: plan.plan_id, workspace: 'app', generated_by: 'agent', changes } });
 * await warden.submitChangeSet(submission);
 */
export function sealChangeSet(
  submission: Omit<ChangeSetSubmissionInput, 'changeset'> & {
    changeset: Omit<ChangeSetSubmissionInput['changeset'], 'checksum'> & { checksum?: string };
  },
): ChangeSetSubmissionInput {
  const changes: FileChange[] = submission.changeset.changes.map((change) => ({
    ...change,
    ...(change.old_content !== undefined && change.old_hash === undefined
      ? { old_hash: contentSha256(change.old_content) }
      : {}),
    ...(change.new_content !== undefined && change.new_hash === undefined
      ? { new_hash: contentSha256(change.new_content) }
      : {}),
  }));
  return {
    ...submission,
    changeset: { ...submission.changeset, changes, checksum: computeChangeSetChecksum(changes) },
  };
}

export type { ChangeSetSubmissionInput, ChangeSetView };
