import { z } from 'zod';
import { SeveritySchema } from '../decisions.js';
import { LeadFindingStatusSchema } from './lead-finding.js';
import { LeadWindowKindSchema } from './lead-window.js';

/** `POST /v1/lead/scans`: which window, whether to write anything, whether to skip the lock. */
export const LeadScanRequestSchema = z
  .object({
    /** @defaultValue `24h` */
    window: LeadWindowKindSchema.default('24h'),
    /** Report what the scan would create and write nothing else. @defaultValue `false` */
    dry_run: z.boolean().default(false),
    /** Run even if another scan of the tenant and window holds the lock. @defaultValue `false` */
    force: z.boolean().default(false),
  })
  .strict();
export type LeadScanRequest = z.infer<typeof LeadScanRequestSchema>;

const booleanQuery = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

/** `GET /v1/lead/findings?severity=&status=&unlinked=&limit=&cursor=` */
export const LeadFindingsQuerySchema = z.object({
  severity: SeveritySchema.optional(),
  status: LeadFindingStatusSchema.optional(),
  /** `true`: only findings without a follow-up task; `false`: only linked ones. */
  unlinked: booleanQuery.optional(),
  /** Only findings of this rule. */
  code: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});
export type LeadFindingsQuery = z.infer<typeof LeadFindingsQuerySchema>;

/** `GET /v1/lead/scans?status=&window=&limit=&cursor=` */
export const LeadScansQuerySchema = z.object({
  status: z.enum(['queued', 'running', 'completed', 'failed', 'skipped']).optional(),
  window: LeadWindowKindSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(200).optional(),
});

/** A fingerprint: 16 lower-case hex digits. */
export const LeadFingerprintSchema = z.string().regex(/^[0-9a-f]{16}$/, 'must be 16 lower-case hex digits');

/** `POST /v1/lead/findings/:fingerprint/resolve` */
export const LeadResolveRequestSchema = z.object({ note: z.string().max(2000).optional() }).strict();

const MAX_SILENCE_MS = 365 * 24 * 3_600_000;

/**
 * `POST /v1/lead/findings/:fingerprint/silence`: silence until `until`, or for `for` (`Nh`/`Nd`, as a
 * window), 7 days by default, at most a year — a silence always ends, so nothing is muted and forgotten.
 */
export const LeadSilenceRequestSchema = z
  .object({
    until: z.iso.datetime({ offset: true }).optional(),
    for: z
      .string()
      .trim()
      .toLowerCase()
      .regex(/^[1-9][0-9]{0,4}[hd]$/, 'must be "Nh" or "Nd", e.g. 12h or 30d')
      .optional(),
    note: z.string().max(2000).optional(),
  })
  .strict()
  .refine((body) => !(body.until && body.for), { message: 'give "until" or "for", not both', path: ['for'] });
export type LeadSilenceRequest = z.infer<typeof LeadSilenceRequestSchema>;

/** When a silence requested at `now` ends, or a message saying why it cannot be accepted. */
export function silenceEnd(
  request: LeadSilenceRequest,
  now: Date,
): { until: Date } | { error: { path: string; message: string } } {
  let until: Date;
  if (request.until) {
    until = new Date(request.until);
  } else {
    const text = request.for ?? '7d';
    const amount = Number(text.slice(0, -1));
    until = new Date(now.getTime() + amount * (text.endsWith('d') ? 24 : 1) * 3_600_000);
  }
  const path = request.until ? 'until' : 'for';
  if (until.getTime() <= now.getTime())
    return { error: { path, message: 'the silence must end in the future' } };
  if (until.getTime() - now.getTime() > MAX_SILENCE_MS)
    return { error: { path, message: `a silence lasts at most ${MAX_SILENCE_MS / 86_400_000} days` } };
  return { until };
}
