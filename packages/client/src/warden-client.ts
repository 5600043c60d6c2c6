/**
 * The HTTP client producers use to talk to Warden's API: send task events (with retries that cannot create
 * duplicates) and read tasks and their audit trail.
 */
import {
  IngestResultSchema,
  MAX_EVENTS_PER_BATCH,
  type AuditView,
  type IncomingEventSchema,
  type IngestResult,
  type Page,
  type Gate,
  type TaskView,
} from '@warden/domain';
import { deriveEventId, newEventId } from './event-ids.js';
import { WardenApiError, WardenConnectionError } from './errors.js';
import { requestJson, type HttpSettings } from './http.js';
import { sleep } from './retry.js';

/**
 * An event as `POST /v1/events` accepts it (`z.input<typeof IncomingEventSchema>`; written through `_zod`
 * because this package reaches zod only through `@warden/domain`), except that `event_id` may be left out:
 * the client then assigns one, see {@link assignEventId}.
 */
export type EventToSend = Omit<(typeof IncomingEventSchema)['_zod']['input'], 'event_id'> & {
  /** The producer's unique id for this event (≤ 200 chars); the dedupe key. @defaultValue assigned by {@link assignEventId} */
  event_id?: string;
};

/** An event whose id is fixed, ready to be sent (and re-sent) as it is. */
export type EventWithId = EventToSend & { event_id: string };

/** What `sendEvents` answers: the summed counts of every batch and the id each event was sent with. */
export interface SendEventsResult extends IngestResult {
  /** The id of each event, in input order — keep them to re-send the same events safely later. */
  event_ids: string[];
}

/** What `sendEvent` answers: the counts (1 accepted, or 1 duplicate) and the id the event was sent with. */
export interface SendEventResult extends IngestResult {
  event_id: string;
}

export interface ListTaskAuditsOptions {
  /** Page size, 1–100. @defaultValue `50` (the server's default) */
  limit?: number;
  /** `next_cursor` of the previous page. @defaultValue the first page */
  cursor?: string;
}

export interface WardenClientOptions {
  /** Where the API is, e.g. `http://warden-api:3000`; a trailing slash is ignored. */
  baseUrl: string;
  /** An API key (`wdn_…`) sent as `Authorization: Bearer`; `sendEvent(s)` needs the `events:write` scope. */
  apiKey: string;
  /** Time limit of one attempt, response body included; a timed-out attempt is retried. @defaultValue `10000` */
  timeoutMs?: number;
  /** Further attempts after a network error, a timeout, a 429 or a 5xx. Other 4xx are never retried. @defaultValue `3` */
  retries?: number;
  /** Delay before the first retry; each further retry doubles it, with jitter. @defaultValue `100` */
  retryDelayMs?: number;
  /** Longest wait between two attempts, also the cap on a server's `Retry-After`. @defaultValue `5000` */
  maxRetryDelayMs?: number;
  /**
   * The fetch implementation, for instrumentation or tests. Node's global fetch keeps connections alive,
   * so one client reused for many calls does not reconnect each time.
   * @defaultValue `globalThis.fetch`
   */
  fetch?: typeof globalThis.fetch;
}

/**
 * Gives an event its id before it is sent the first time, so every retry — by this client or by the caller
 * re-sending the returned event — carries the same id and Warden stores the event once:
 * - an `event_id` the caller set is kept;
 * - with a `ts`, the id is derived from the content ({@link deriveEventId}): the same task, type, ts, payload
 *   and trace id always give the same id, even from another process after a restart. Two events identical
 *   in all of these are therefore one event; set `event_id` to send them as two;
 * - without a `ts`, the id is random ({@link newEventId}), fixed for this call's retries only. To re-send
 *   such an event yourself after a failure, assign its id first (call this function) and re-send the result.
 */
export function assignEventId(event: EventToSend): EventWithId {
  if (event.event_id !== undefined) return event as EventWithId;
  const event_id = event.ts === undefined ? newEventId() : deriveEventId({ ...event, ts: event.ts });
  return { ...event, event_id };
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 3;
const DEFAULT_RETRY_DELAY_MS = 100;
const DEFAULT_MAX_RETRY_DELAY_MS = 5_000;

/**
 * A client of Warden's HTTP API for producer services.
 *
 * Every call retries network errors, timeouts, 429 and 5xx with exponential backoff (see
 * {@link WardenClientOptions}); a 4xx is thrown at once as {@link WardenApiError}, and a call that never got an
 * answer throws {@link WardenConnectionError}. Retrying an ingest is safe because each event's id is fixed
 * before the first attempt ({@link assignEventId}): a request whose response was lost is answered the second
 * time with `duplicates`, not stored twice.
 *
 * @example
 * ```ts
 * const warden = new WardenClient({ baseUrl: 'http://warden-api:3000', apiKey: process.env.WARDEN_API_KEY! });
 * await warden.sendEvent({ task_id: 'task-42', event_type: 'TASK_CREATED', payload: { agent_spec: { name: 'etl' } } });
 * const task = await warden.getTask('task-42');
 * ```
 */
export interface WaitForDecisionOptions {
  /** Give up after this long. @defaultValue `30000` */
  timeoutMs?: number;
  /** Time between polls. @defaultValue `100` */
  pollIntervalMs?: number;
}

/** A decision as `GET /v1/tasks/:id/decisions` returns it. */
export interface DecisionView {
  decision_id: string;
  event_id: string;
  decision_type: 'ALLOW' | 'PAUSE' | 'BLOCK' | 'RETRY' | 'REQUIRE_REVIEW';
  reason: string;
  findings: Array<{
    finding_id: string;
    code: string;
    kind: string;
    severity: string;
    description: string;
    evidence: unknown[];
  }>;
  actions: Array<{ action_type: string; target: string; params: Record<string, unknown> }>;
  policy: string;
  policy_version: string;
  would_have: string | null;
  created_at: string;
}

export class WardenClient {
  private readonly http: HttpSettings;

  constructor(options: WardenClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new TypeError(`WardenClient: baseUrl "${options.baseUrl}" is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError(`WardenClient: baseUrl must be http(s), got "${url.protocol}"`);
    if (!options.apiKey) throw new TypeError('WardenClient: apiKey is required');
    this.http = {
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      authorization: `Bearer ${options.apiKey}`,
      timeoutMs: positive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      retries: nonNegativeInteger('retries', options.retries ?? DEFAULT_RETRIES),
      retryDelayMs: positive('retryDelayMs', options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS),
      maxRetryDelayMs: positive('maxRetryDelayMs', options.maxRetryDelayMs ?? DEFAULT_MAX_RETRY_DELAY_MS),
      // Looked up per call rather than captured, so instrumentation installed after construction still applies.
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    };
  }

  /** Sends one event; resolves once Warden has stored it durably (or recognised it as a duplicate). */
  async sendEvent(event: EventToSend): Promise<SendEventResult> {
    const prepared = assignEventId(event);
    const body = await this.request('POST', '/v1/events', prepared);
    return { ...readIngestResult(body), event_id: prepared.event_id };
  }

  /**
   * Sends events in order, in batches of at most 500 (the API's limit), one batch after another, and sums
   * the counts. Ids are assigned to all events before the first batch goes out. If a batch fails, the
   * batches before it are stored; re-sending the whole list with the same ids is safe. Error paths such as
   * `events.612.event_type` index into the list given here, not into the batch.
   */
  async sendEvents(events: readonly EventToSend[]): Promise<SendEventsResult> {
    const prepared = events.map(assignEventId);
    const total: SendEventsResult = {
      accepted: 0,
      duplicates: 0,
      event_ids: prepared.map((event) => event.event_id),
    };
    for (let offset = 0; offset < prepared.length; offset += MAX_EVENTS_PER_BATCH) {
      const batch = prepared.slice(offset, offset + MAX_EVENTS_PER_BATCH);
      let body: unknown;
      try {
        body = await this.request('POST', '/v1/events', { events: batch });
      } catch (error) {
        throw offset > 0 && error instanceof WardenApiError ? shiftEventPaths(error, offset) : error;
      }
      const result = readIngestResult(body);
      total.accepted += result.accepted;
      total.duplicates += result.duplicates;
    }
    return total;
  }

  /** The task with its status, metadata and open gates; a 404 `WardenApiError` if it is unknown to the key's tenant. */
  async getTask(taskId: string): Promise<TaskView> {
    return (await this.request('GET', `/v1/tasks/${encodeURIComponent(taskId)}`)) as TaskView;
  }

  /** One page of the task's audit trail, oldest first; pass `next_cursor` back as `cursor` for the next page. */
  async listTaskAudits(taskId: string, options: ListTaskAuditsOptions = {}): Promise<Page<AuditView>> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.cursor !== undefined) query.set('cursor', options.cursor);
    const search = query.toString() === '' ? '' : `?${query.toString()}`;
    return (await this.request(
      'GET',
      `/v1/tasks/${encodeURIComponent(taskId)}/audits${search}`,
    )) as Page<AuditView>;
  }

  /**
   * Waits until the supervisor has decided on an event and returns the decision. Polls
   * `GET /v1/tasks/:id/decisions?event_id=` — a task the supervisor has not seen yet is a 404, which here
   * just means "not yet". Throws a `WardenConnectionError` with `timedOut: true` after `timeoutMs`.
   *
   * @example
   * const { event_ids } = await warden.sendEvents([{ task_id: 't-1', event_type: 'TASK_CREATED', payload }]);
   * const decision = await warden.waitForDecision('t-1', event_ids[0]!);
   * if (decision.decision_type !== 'ALLOW') await pauseAgent(decision.reason);
   */
  async waitForDecision(
    taskId: string,
    eventId: string,
    options: WaitForDecisionOptions = {},
  ): Promise<DecisionView> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const pollMs = options.pollIntervalMs ?? 100;
    const deadline = Date.now() + timeoutMs;
    const path = `/v1/tasks/${encodeURIComponent(taskId)}/decisions?event_id=${encodeURIComponent(eventId)}`;
    for (let polls = 1; ; polls++) {
      try {
        const page = (await this.request('GET', path)) as { items: DecisionView[] };
        if (page.items[0]) return page.items[0];
      } catch (error) {
        if (!(error instanceof WardenApiError && error.status === 404)) throw error;
      }
      if (Date.now() + pollMs > deadline) {
        throw new WardenConnectionError(
          `no decision for event ${eventId} of task ${taskId} within ${timeoutMs} ms`,
          { cause: undefined, timedOut: true, attempts: polls },
        );
      }
      await sleep(pollMs);
    }
  }

  /**
   * A person releases a paused task's gate, by gate id or by the checkpoint of its open gate (needs
   * `tasks:approve`; an agent's key never holds it). Resolves with the released gate; a 409 `WardenApiError`
   * when it was released, denied or expired already.
   */
  async releaseGate(taskId: string, gate: string, options: { note?: string } = {}): Promise<Gate> {
    return (await this.request(
      'POST',
      `/v1/tasks/${encodeURIComponent(taskId)}/gates/${encodeURIComponent(gate)}/release`,
      options.note === undefined ? {} : { note: options.note },
    )) as Gate;
  }

  /** A person denies a gate with a reason: the gate closes as `denied` and the task is blocked. */
  async denyGate(taskId: string, gate: string, reason: string): Promise<Gate> {
    return (await this.request(
      'POST',
      `/v1/tasks/${encodeURIComponent(taskId)}/gates/${encodeURIComponent(gate)}/deny`,
      { reason },
    )) as Gate;
  }

  /** A person unblocks a blocked task with a reason (back to `running`, or `paused` while a gate is open). */
  async unblockTask(taskId: string, reason: string): Promise<unknown> {
    return this.request('POST', `/v1/tasks/${encodeURIComponent(taskId)}/unblock`, { reason });
  }

  /** One API call with retries; resolves with the parsed JSON body of a 2xx. */
  private request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    return requestJson(this.http, method, path, body);
  }
}

function readIngestResult(body: unknown): IngestResult {
  const parsed = IngestResultSchema.safeParse(body);
  if (!parsed.success)
    throw new WardenApiError(
      202,
      'invalid_response',
      'POST /v1/events answered without { accepted, duplicates }',
    );
  return parsed.data;
}

/** Reads Warden's `{ error: { code, message, details } }`; anything else (a proxy's page) gets a generic code. */

/** The server numbers events within the batch it saw; the caller thinks in positions of the whole list. */
function shiftEventPaths(error: WardenApiError, offset: number): WardenApiError {
  const shift = (text: string) =>
    text.replace(/\bevents\.(\d+)/g, (_match, index: string) => `events.${Number(index) + offset}`);
  const details = error.details.map((detail) => ({
    path: shift(detail.path),
    message: shift(detail.message),
  }));
  return new WardenApiError(error.status, error.code, shift(error.message), details);
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`WardenClient: ${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`WardenClient: ${name} must be a whole number ≥ 0, got ${value}`);
  return value;
}
