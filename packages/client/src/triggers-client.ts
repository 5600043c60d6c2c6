/**
 * Manages cron triggers over Warden's HTTP API (`/v1/triggers`, scopes `triggers:read` / `triggers:write`):
 * register, read, change, pause and resume, run now, and read status and history.
 */
import { randomUUID } from 'node:crypto';
import type {
  ExecutionStatus,
  ExecutionView,
  Page,
  TriggerDefinitionInput,
  TriggerPatch,
  TriggerStatusView,
  TriggerView,
} from '@warden/domain';
import { WardenApiError, WardenConnectionError } from './errors.js';
import { requestJson, type HttpSettings } from './http.js';
import { sleep } from './retry.js';

export interface TriggersClientOptions {
  /** Where the API is, e.g. `http://warden-api:3000`. */
  baseUrl: string;
  /** An API key with `triggers:read` (reads) and `triggers:write` (changes). */
  apiKey: string;
  /** Time limit of one attempt. @defaultValue `10000` */
  timeoutMs?: number;
  /** Further attempts after a network error, a timeout, a 429 or a 5xx (never after another 4xx). @defaultValue `3` */
  retries?: number;
  /** Delay before the first retry; doubles each retry, with jitter. @defaultValue `100` */
  retryDelayMs?: number;
  /** @defaultValue `globalThis.fetch` */
  fetch?: typeof globalThis.fetch;
}

export interface RegisteredTrigger {
  trigger: TriggerView;
  /** True when the trigger did not exist before. */
  created: boolean;
  /** False when the definition was already exactly this. */
  changed: boolean;
}

export interface ManualRun {
  execution_id: string;
  scheduled_for: string;
  /** False when the same `requestId` had already started this run. */
  created: boolean;
}

export class TriggersClient {
  private readonly http: HttpSettings;

  constructor(options: TriggersClientOptions) {
    this.http = {
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      authorization: `Bearer ${options.apiKey}`,
      timeoutMs: options.timeoutMs ?? 10_000,
      retries: options.retries ?? 3,
      retryDelayMs: options.retryDelayMs ?? 100,
      maxRetryDelayMs: 5000,
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    };
  }

  /**
   * Creates or updates (by event name) a trigger. Registering the same definition again changes nothing.
   * Raising `migration_weight` needs proven shadow consistency; `force` overrides that (audited).
   */
  async register(
    definition: TriggerDefinitionInput,
    options: { force?: boolean } = {},
  ): Promise<RegisteredTrigger> {
    return (await this.request(
      'POST',
      `/v1/triggers${options.force ? '?force=true' : ''}`,
      definition,
    )) as RegisteredTrigger;
  }

  async list(
    options: { tag?: string; enabled?: boolean; limit?: number; cursor?: string } = {},
  ): Promise<Page<TriggerView>> {
    return (await this.request('GET', `/v1/triggers${query(options)}`)) as Page<TriggerView>;
  }

  async get(eventName: string): Promise<TriggerView> {
    return (await this.request('GET', `/v1/triggers/${encodeURIComponent(eventName)}`)) as TriggerView;
  }

  /** Changes some fields; nested objects (`circuit_breaker`, `migration`) merge. */
  async update(
    eventName: string,
    patch: TriggerPatch,
    options: { force?: boolean } = {},
  ): Promise<{ trigger: TriggerView; changed: boolean }> {
    return (await this.request(
      'PATCH',
      `/v1/triggers/${encodeURIComponent(eventName)}${options.force ? '?force=true' : ''}`,
      patch,
    )) as { trigger: TriggerView; changed: boolean };
  }

  async delete(eventName: string): Promise<void> {
    await this.request('DELETE', `/v1/triggers/${encodeURIComponent(eventName)}`);
  }

  /** Pauses with a note; fires while paused are recorded as skipped (`paused`). */
  async pause(
    eventName: string,
    options: { note?: string } = {},
  ): Promise<{ trigger: TriggerView; changed: boolean }> {
    return (await this.request('POST', `/v1/triggers/${encodeURIComponent(eventName)}/pause`, options)) as {
      trigger: TriggerView;
      changed: boolean;
    };
  }

  /** Resumes; the fires skipped while paused run only with `backfill` (up to 100, oldest first). */
  async resume(
    eventName: string,
    options: { note?: string; backfill?: boolean } = {},
  ): Promise<{
    trigger: TriggerView;
    changed: boolean;
    backfilled: Array<{ execution_id: string; scheduled_for: string }>;
  }> {
    return (await this.request('POST', `/v1/triggers/${encodeURIComponent(eventName)}/resume`, options)) as {
      trigger: TriggerView;
      changed: boolean;
      backfilled: Array<{ execution_id: string; scheduled_for: string }>;
    };
  }

  /**
   * Runs the trigger now (`manual`), through governance; it counts toward the daily caps. `overrideOverlap`
   * runs it even while another run is in flight. Retrying this call cannot start two runs: a request id is
   * fixed before the first attempt (pass your own to dedupe across processes).
   */
  async run(
    eventName: string,
    options: { params?: Record<string, unknown>; overrideOverlap?: boolean; requestId?: string } = {},
  ): Promise<ManualRun> {
    return (await this.request('POST', `/v1/triggers/${encodeURIComponent(eventName)}/run`, {
      params: options.params ?? {},
      override_overlap: options.overrideOverlap ?? false,
      request_id: options.requestId ?? randomUUID(),
    })) as ManualRun;
  }

  /** Configuration, next fires, last runs, success rate, skips by reason, breaker and migration state. */
  async status(
    eventName: string,
    options: { fires?: number; windowHours?: number } = {},
  ): Promise<TriggerStatusView> {
    return (await this.request(
      'GET',
      `/v1/triggers/${encodeURIComponent(eventName)}/status${query({ fires: options.fires, window_hours: options.windowHours })}`,
    )) as TriggerStatusView;
  }

  /** Executions, newest first; pass `next_cursor` back as `cursor` for the next page. */
  async history(
    eventName: string,
    options: { limit?: number; cursor?: string; status?: ExecutionStatus } = {},
  ): Promise<Page<ExecutionView>> {
    return (await this.request(
      'GET',
      `/v1/triggers/${encodeURIComponent(eventName)}/executions${query(options)}`,
    )) as Page<ExecutionView>;
  }

  /** One execution, with its output. */
  async execution(eventName: string, executionId: string): Promise<ExecutionView> {
    return (await this.request(
      'GET',
      `/v1/triggers/${encodeURIComponent(eventName)}/executions/${encodeURIComponent(executionId)}`,
    )) as ExecutionView;
  }

  /** Polls an execution until it is finished (not pending or running) or `timeoutMs` passes. */
  async waitForExecution(
    eventName: string,
    executionId: string,
    options: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<ExecutionView> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const execution = await this.execution(eventName, executionId).catch((error: unknown) => {
        if (error instanceof WardenApiError && error.status === 404) return undefined;
        throw error;
      });
      if (execution && execution.status !== 'pending' && execution.status !== 'running') return execution;
      if (Date.now() > deadline)
        throw new WardenConnectionError(
          `execution ${executionId} did not finish within ${options.timeoutMs ?? 60_000} ms`,
          { cause: undefined, timedOut: true, attempts: 1 },
        );
      await sleep(options.intervalMs ?? 250);
    }
  }

  private request(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
  ): Promise<unknown> {
    return requestJson(this.http, method, path, body);
  }
}

function query(values: Record<string, string | number | boolean | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}
