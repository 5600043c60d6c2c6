/**
 * Stored policy versions over Warden's HTTP API (`/v1/policies`): push a draft (`policies:write`), read
 * versions (`policies:read`), activate a draft or roll back (`policies:approve`, a different person's key
 * from the one that pushed); promote an event type from monitor to enforce on the evidence of its
 * monitor-mode decisions (`policies:write`, its evidence alone `policies:read`).
 */
import type { PolicyKind, PolicyVersionView, PromotionEvidence, PromotionOutcome } from '@warden/domain';
import { requestJson, type HttpSettings } from './http.js';

export interface PoliciesClientOptions {
  /** Where the API is, e.g. `http://warden-api:3000`. */
  baseUrl: string;
  apiKey: string;
  /** Time limit of one attempt. @defaultValue `10000` */
  timeoutMs?: number;
  /**
   * Further attempts of a read after a network error, a timeout, a 429 or a 5xx. Pushes, activations and
   * rollbacks are never retried: a lost answer could otherwise store a second draft. @defaultValue `3`
   */
  retries?: number;
  /** @defaultValue `globalThis.fetch` */
  fetch?: typeof globalThis.fetch;
}

/** Which event type to promote, over which window, against which threshold (the API's defaults: 7d, 1%). */
export interface PromotionRequest {
  event_type: string;
  /** `24h`, `7d`… @defaultValue `7d` */
  since?: string;
  /** `1%`, `0.5%`… @defaultValue `1%` */
  max_rate?: string;
  /** A guard: refused unless it is the key's own tenant. @defaultValue the key's tenant */
  tenant_id?: string;
}

export class PoliciesClient {
  private readonly read: HttpSettings;
  private readonly write: HttpSettings;

  constructor(options: PoliciesClientOptions) {
    this.read = {
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      authorization: `Bearer ${options.apiKey}`,
      timeoutMs: options.timeoutMs ?? 10_000,
      retries: options.retries ?? 3,
      retryDelayMs: 100,
      maxRetryDelayMs: 5000,
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    };
    this.write = { ...this.read, retries: 0 };
  }

  /** Stores `source` as a draft of `kind`; the answer carries its diff against the active version. */
  async push(input: { kind: PolicyKind; source: string; note?: string }): Promise<PolicyVersionView> {
    return (await requestJson(this.write, 'POST', '/v1/policies', input)) as PolicyVersionView;
  }

  async list(kind: PolicyKind, options: { limit?: number } = {}): Promise<PolicyVersionView[]> {
    const query = options.limit ? `?limit=${options.limit}` : '';
    const page = (await requestJson(this.read, 'GET', `/v1/policies/${kind}/versions${query}`)) as {
      items: PolicyVersionView[];
    };
    return page.items;
  }

  /** One version with its source and diff. */
  async get(kind: PolicyKind, version: number): Promise<PolicyVersionView> {
    return (await requestJson(
      this.read,
      'GET',
      `/v1/policies/${kind}/versions/${version}`,
    )) as PolicyVersionView;
  }

  async activate(
    kind: PolicyKind,
    version: number,
    options: { note?: string } = {},
  ): Promise<PolicyVersionView> {
    return (await requestJson(
      this.write,
      'POST',
      `/v1/policies/${kind}/versions/${version}/activate`,
      options,
    )) as PolicyVersionView;
  }

  /** What enforcing `event_type` would have done to its monitor-mode decisions; stores nothing. */
  async promotionEvidence(input: PromotionRequest): Promise<PromotionEvidence> {
    const query = new URLSearchParams(
      Object.entries(input).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
    );
    return (await requestJson(
      this.read,
      'GET',
      `/v1/policies/supervisor/promotions/evidence?${query.toString()}`,
    )) as PromotionEvidence;
  }

  /**
   * Pushes the active supervisor policy with `event_type` switched to enforce as a draft, when the evidence
   * is within `max_rate` or with `accept`; otherwise the answer's `draft` is null and nothing is stored.
   */
  async promote(input: PromotionRequest & { accept?: boolean; note?: string }): Promise<PromotionOutcome> {
    return (await requestJson(
      this.write,
      'POST',
      '/v1/policies/supervisor/promotions',
      input,
    )) as PromotionOutcome;
  }

  async rollback(kind: PolicyKind, toVersion: number, reason: string): Promise<PolicyVersionView> {
    return (await requestJson(this.write, 'POST', `/v1/policies/${kind}/rollback`, {
      to_version: toVersion,
      reason,
    })) as PolicyVersionView;
  }
}
