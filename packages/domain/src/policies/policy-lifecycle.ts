/**
 * Who may activate which stored policy version, and to which one a rollback may go. Pure rules: the API
 * asks them inside the transaction that holds the tenant's policy lock, and answers 403 or 409 with the
 * reason given here.
 */
import type { PolicyVersionStatus } from './policy-versions.js';

export interface StoredVersionFacts {
  version: number;
  status: PolicyVersionStatus;
  base_version: number | null;
  pushed_by: string;
  pushed_by_owner: string;
  activated_at: Date | null;
}

export interface Actor {
  /** `api_key:<id>` */
  by: string;
  owner: string;
}

export type Refusal = { kind: 'forbidden' | 'conflict'; message: string };

/**
 * Why `actor` may not activate `target` while `active` is the active version, or undefined when it may.
 * Separation of duties: neither the key that pushed it nor another key of the same owner approves it — one
 * person must not write and approve a policy change alone. A draft pushed against a version that is no longer
 * active would silently undo what was activated since: it must be pushed again (and reviewed against what
 * is active now).
 */
export function activationRefusal(
  target: StoredVersionFacts,
  active: { version: number } | undefined,
  actor: Actor,
): Refusal | undefined {
  if (target.status !== 'draft')
    return {
      kind: 'conflict',
      message:
        target.status === 'active'
          ? `version ${target.version} is already active`
          : `version ${target.version} is ${target.status}; only a draft can be activated (to go back to an earlier version, roll back)`,
    };
  if (target.pushed_by === actor.by)
    return {
      kind: 'forbidden',
      message: `separation of duties: version ${target.version} was pushed with this key; another person's key with "policies:approve" must activate it`,
    };
  if (target.pushed_by_owner === actor.owner)
    return {
      kind: 'forbidden',
      message: `separation of duties: version ${target.version} was pushed by "${target.pushed_by_owner}", the owner of this key; another person must activate it`,
    };
  if ((target.base_version ?? undefined) !== active?.version)
    return {
      kind: 'conflict',
      message: `version ${target.version} was pushed against ${target.base_version === null ? 'no stored version' : `version ${target.base_version}`}, but ${active ? `version ${active.version}` : 'no version'} is active now; push it again so its diff shows what would change`,
    };
  return undefined;
}

/**
 * Why the active version may not be rolled back to `target`, or undefined when it may. Only a version that
 * was active once (approved by a second person then) can become active again without a new approval; that
 * includes going forward again to a version rolled back from.
 */
export function rollbackRefusal(target: StoredVersionFacts): Refusal | undefined {
  if (target.status === 'active')
    return { kind: 'conflict', message: `version ${target.version} is the active version already` };
  if (target.activated_at === null)
    return {
      kind: 'conflict',
      message: `version ${target.version} was never active; a draft must be activated (by a second person), not rolled back to`,
    };
  return undefined;
}
