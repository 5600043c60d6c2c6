/**
 * Notification channels and their delivery log over Warden's HTTP API (`/v1/notification-channels`,
 * `/v1/notification-deliveries`; scope `notifications:write`). The API never answers a channel's URL or
 * signing secret: what is sent here is write-only.
 */
import type {
  DeliveryStatus,
  NotificationChannelView,
  NotificationDeliveryView,
  NotificationEventType,
} from '@warden/domain';
import { requestJson, type HttpSettings } from './http.js';

export interface NotificationsClientOptions {
  /** Where the API is, e.g. `http://warden-api:3000`. */
  baseUrl: string;
  apiKey: string;
  /** Time limit of one attempt. @defaultValue `10000` */
  timeoutMs?: number;
  /** Further attempts of a read after a network error, a timeout, a 429 or a 5xx; writes are never retried. @defaultValue `3` */
  retries?: number;
  /** @defaultValue `globalThis.fetch` */
  fetch?: typeof globalThis.fetch;
}

export type NewChannelInput =
  | {
      name: string;
      kind: 'webhook';
      url: string;
      signing_secret: string;
      events?: NotificationEventType[];
      enabled?: boolean;
    }
  | { name: string; kind: 'slack'; url: string; events?: NotificationEventType[]; enabled?: boolean };

export class NotificationsClient {
  private readonly read: HttpSettings;
  private readonly write: HttpSettings;

  constructor(options: NotificationsClientOptions) {
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

  async listChannels(): Promise<NotificationChannelView[]> {
    const page = (await requestJson(this.read, 'GET', '/v1/notification-channels')) as {
      items: NotificationChannelView[];
    };
    return page.items;
  }

  async createChannel(input: NewChannelInput): Promise<NotificationChannelView> {
    return (await requestJson(
      this.write,
      'POST',
      '/v1/notification-channels',
      input,
    )) as NotificationChannelView;
  }

  /** `channel` is the channel's id or name. */
  async updateChannel(
    channel: string,
    patch: { url?: string; signing_secret?: string; events?: NotificationEventType[]; enabled?: boolean },
  ): Promise<NotificationChannelView> {
    return (await requestJson(
      this.write,
      'PATCH',
      `/v1/notification-channels/${encodeURIComponent(channel)}`,
      patch,
    )) as NotificationChannelView;
  }

  async deleteChannel(channel: string): Promise<void> {
    await requestJson(this.write, 'DELETE', `/v1/notification-channels/${encodeURIComponent(channel)}`);
  }

  /** The delivery log, newest first: one page. */
  async listDeliveries(
    options: { channel?: string; status?: DeliveryStatus; limit?: number; cursor?: string } = {},
  ): Promise<{ items: NotificationDeliveryView[]; next_cursor: string | null }> {
    const query = new URLSearchParams();
    if (options.channel) query.set('channel', options.channel);
    if (options.status) query.set('status', options.status);
    if (options.limit) query.set('limit', String(options.limit));
    if (options.cursor) query.set('cursor', options.cursor);
    const suffix = query.size > 0 ? `?${query}` : '';
    return (await requestJson(this.read, 'GET', `/v1/notification-deliveries${suffix}`)) as {
      items: NotificationDeliveryView[];
      next_cursor: string | null;
    };
  }
}
