/**
 * The digests that bind a change set together: its checksum (anyone can recompute it), the plan hash, the
 * idempotency key and the submission fingerprint that tells a true duplicate from a reused key.
 */
import { canonicalJson, sha256Hex } from '../canonical-json.js';
import type { ChangePlan, FileChange } from './change-set.js';

/**
 * SHA-256 over the canonical JSON (keys sorted at every depth, no whitespace) of the changes list: anyone can
 * recompute it, so it seals the list as the agent made it. Takes the list as parsed JSON too (the executor
 * recomputes it over exactly the stored text, before schema defaults).
 */
export function computeChangeSetChecksum(changes: readonly FileChange[] | readonly unknown[]): string {
  return sha256Hex(canonicalJson(changes));
}

/** SHA-256 of text as UTF-8 bytes: what `old_hash`/`new_hash` hold. */
export function contentSha256(content: string): string {
  return sha256Hex(content);
}

/** SHA-256 over the canonical JSON of the plan; an approval binds to it as well as to the checksum. */
export function computePlanHash(plan: ChangePlan): string {
  return sha256Hex(canonicalJson(plan));
}

/** The executor's idempotency key: SHA-256(`plan_id:checksum`) (the executor's first step, `idempotency`). */
export function changeSetIdempotencyKey(planId: string, checksum: string): string {
  return sha256Hex(`${planId}:${checksum}`);
}

/**
 * What must be equal for two submissions under one idempotency key to be the same request: the workspace,
 * the plan and the changes (through the checksum). Same key, other fingerprint → refused.
 */
export function submissionFingerprint(input: {
  workspace: string;
  planHash: string;
  checksum: string;
}): string {
  return sha256Hex(
    canonicalJson({ workspace: input.workspace, plan_hash: input.planHash, checksum: input.checksum }),
  );
}

/** The expected hash of a change's old and new content, from the hash when given, else from the content. */
export function expectedHashes(change: FileChange): {
  oldHash: string | undefined;
  newHash: string | undefined;
} {
  return {
    oldHash:
      change.old_hash ?? (change.old_content === undefined ? undefined : contentSha256(change.old_content)),
    newHash:
      change.new_hash ?? (change.new_content === undefined ? undefined : contentSha256(change.new_content)),
  };
}
