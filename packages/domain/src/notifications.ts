/**
 * Notifications (docs/notifications.md): what Warden tells a tenant's channels when something waits for a
 * person or went wrong, the shape of a channel, how a webhook body is signed and how a receiver verifies it,
 * and the Slack message. Pure: the outbox, the queue and the HTTP calls live in `@warden/db` and the api.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/** Every event a channel can subscribe to. */
export const NOTIFICATION_EVENT_TYPES = [
  'gate.opened',
  'gate.expiring',
  'gate.expired',
  'changeset.awaiting_approval',
  'changeset.approval_expiring',
  'changeset.approval_expired',
  'trigger.breaker_opened',
  'trigger.migration_rolled_back',
  'finding.opened',
  'finding.regressed',
  'inbox.event_dead',
] as const;
export const NotificationEventTypeSchema = z.enum(NOTIFICATION_EVENT_TYPES);
export type NotificationEventType = z.infer<typeof NotificationEventTypeSchema>;

/** What a notification is about; it decides the console page the message links to. */
export const NotificationSubjectSchema = z.object({
  kind: z.enum(['task', 'changeset', 'trigger', 'finding', 'inbox_event']),
  id: z.string(),
});
export type NotificationSubject = z.infer<typeof NotificationSubjectSchema>;

/**
 * One notification as a webhook receives it (the JSON body) and as the outbox stores it. `event_id` is the same
 * on every retry, so a receiver dedupes on it.
 */
export const NotificationEventSchema = z.object({
  event_id: z.string(),
  event_type: NotificationEventTypeSchema,
  tenant_id: z.string(),
  occurred_at: z.string(),
  subject: NotificationSubjectSchema,
  /** One line a person reads first. */
  summary: z.string(),
  /** The console page of the subject, relative to the console's base URL (`/console/tasks/t-1`). */
  console_path: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type NotificationEvent = z.infer<typeof NotificationEventSchema>;

/** The console page a person opens to act on `subject` (see services/api/src/console/router.ts). */
export function consolePathOf(subject: NotificationSubject): string {
  const id = encodeURIComponent(subject.id);
  switch (subject.kind) {
    case 'task':
      return `/console/tasks/${id}`;
    case 'changeset':
      return `/console/changesets/${id}`;
    case 'trigger':
      return '/console/triggers';
    case 'finding':
      return '/console/findings';
    case 'inbox_event':
      return '/console/inbox';
  }
}

export const NotificationChannelKindSchema = z.enum(['webhook', 'slack']);
export type NotificationChannelKind = z.infer<typeof NotificationChannelKindSchema>;

const ChannelNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, ".", "_" or "-", at most 63');
const ChannelUrlSchema = z
  .string()
  .max(2000)
  .refine((value) => URL.canParse(value), 'an absolute URL')
  .refine((value) => /^https?:$/.test(new URL(value).protocol), 'an http or https URL')
  .refine((value) => !new URL(value).username && !new URL(value).password, 'no user or password in the URL');
/** At least 32 characters: the receiver's key for `X-Warden-Signature`. */
const SigningSecretSchema = z.string().min(32, 'at least 32 characters').max(512);
const SubscribedEventsSchema = z
  .array(NotificationEventTypeSchema)
  .min(1, 'name at least one event')
  .max(NOTIFICATION_EVENT_TYPES.length)
  .transform((events) => [...new Set(events)]);

/**
 * A new channel. The URL (a Slack incoming-webhook URL is itself a secret) and the signing secret are stored and
 * never answered back: the API shows only the URL's host.
 */
export const NewNotificationChannelSchema = z.discriminatedUnion('kind', [
  z
    .object({
      name: ChannelNameSchema,
      kind: z.literal('webhook'),
      url: ChannelUrlSchema,
      /** HMAC-SHA256 key of `X-Warden-Signature`; the receiver holds the same. */
      signing_secret: SigningSecretSchema,
      /** @defaultValue every event */
      events: SubscribedEventsSchema.default([...NOTIFICATION_EVENT_TYPES]),
      /** @defaultValue `true` */
      enabled: z.boolean().default(true),
    })
    .strict(),
  z
    .object({
      name: ChannelNameSchema,
      kind: z.literal('slack'),
      /** The incoming-webhook URL Slack gave (`https://hooks.slack.com/services/…`). */
      url: ChannelUrlSchema,
      /** @defaultValue every event */
      events: SubscribedEventsSchema.default([...NOTIFICATION_EVENT_TYPES]),
      /** @defaultValue `true` */
      enabled: z.boolean().default(true),
    })
    .strict(),
]);
export type NewNotificationChannel = z.output<typeof NewNotificationChannelSchema>;

/** A change to a channel: any of these; a new URL or secret replaces the stored one. */
export const NotificationChannelPatchSchema = z
  .object({
    url: ChannelUrlSchema.optional(),
    signing_secret: SigningSecretSchema.optional(),
    events: SubscribedEventsSchema.optional(),
    enabled: z.boolean().optional(),
  })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, 'name at least one field to change');
export type NotificationChannelPatch = z.output<typeof NotificationChannelPatchSchema>;

/** A channel as the API shows it: never its URL or secret. */
export const NotificationChannelViewSchema = z.object({
  channel_id: z.string(),
  name: z.string(),
  kind: NotificationChannelKindSchema,
  /** The host the channel posts to (the rest of the URL may be a secret). */
  url_host: z.string(),
  events: z.array(NotificationEventTypeSchema),
  enabled: z.boolean(),
  created_by: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type NotificationChannelView = z.infer<typeof NotificationChannelViewSchema>;

export const DeliveryStatusSchema = z.enum(['pending', 'delivered', 'failed', 'cancelled']);
export type DeliveryStatus = z.infer<typeof DeliveryStatusSchema>;

/** One row of the delivery log. */
export const NotificationDeliveryViewSchema = z.object({
  delivery_id: z.string(),
  channel_id: z.string(),
  event_id: z.string(),
  event_type: NotificationEventTypeSchema,
  /** `failed`: it gave up after its last attempt (or on an answer that retrying cannot change). */
  status: DeliveryStatusSchema,
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  delivered_at: z.string().nullable(),
});
export type NotificationDeliveryView = z.infer<typeof NotificationDeliveryViewSchema>;

/** Headers of a signed webhook request. */
export const WEBHOOK_SIGNATURE_HEADER = 'X-Warden-Signature';
export const WEBHOOK_TIMESTAMP_HEADER = 'X-Warden-Timestamp';
export const WEBHOOK_EVENT_HEADER = 'X-Warden-Event';
/** How far a receiver should accept a timestamp from its own clock, either way. @defaultValue 300 s */
export const WEBHOOK_REPLAY_WINDOW_SECONDS = 300;

/**
 * The value of `X-Warden-Signature`: `v1=` + hex HMAC-SHA256, keyed with the channel's signing secret, over
 * `timestamp + "." + body` — the timestamp (Unix seconds, the `X-Warden-Timestamp` header) bound in, so a
 * captured request cannot be replayed later with a fresh timestamp.
 */
export function signWebhookBody(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type WebhookVerification =
  { valid: true } | { valid: false; reason: 'missing_headers' | 'stale_timestamp' | 'bad_signature' };

/**
 * What a receiver does with a request (docs/notifications.md shows the same in a few lines): the timestamp
 * within `toleranceSeconds` of `now`, then the signature compared in constant time over the raw body bytes
 * as received (not a re-serialization).
 */
export function verifyWebhookSignature(input: {
  secret: string;
  body: string;
  signature: string | undefined;
  timestamp: string | undefined;
  /** @defaultValue the current time */
  now?: Date;
  /** @defaultValue {@link WEBHOOK_REPLAY_WINDOW_SECONDS} */
  toleranceSeconds?: number;
}): WebhookVerification {
  if (!input.signature || !input.timestamp || !/^\d{1,12}$/.test(input.timestamp))
    return { valid: false, reason: 'missing_headers' };
  const timestamp = Number(input.timestamp);
  const nowSeconds = Math.floor((input.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - timestamp) > (input.toleranceSeconds ?? WEBHOOK_REPLAY_WINDOW_SECONDS))
    return { valid: false, reason: 'stale_timestamp' };
  const expected = Buffer.from(signWebhookBody(input.secret, timestamp, input.body));
  const given = Buffer.from(input.signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { valid: false, reason: 'bad_signature' };
  return { valid: true };
}

const EVENT_TITLES: Record<NotificationEventType, string> = {
  'gate.opened': 'A task waits for a person',
  'gate.expiring': 'A paused task will be blocked soon',
  'gate.expired': 'A gate expired: the task is blocked',
  'changeset.awaiting_approval': 'A change set waits for approval',
  'changeset.approval_expiring': "A change set's approval expires soon",
  'changeset.approval_expired': 'A change set was rejected: its approval expired',
  'trigger.breaker_opened': "A trigger's circuit breaker opened",
  'trigger.migration_rolled_back': "A trigger's migration was rolled back",
  'finding.opened': 'A finding was opened',
  'finding.regressed': 'A finding came back',
  'inbox.event_dead': 'An event could not be decided',
};

/** Escapes the three characters Slack's mrkdwn treats as control characters. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The Slack message for an event (Block Kit, with a plain `text` fallback for notifications): a title, the
 * summary, the tenant, and a button linking to the console page of the subject at `consoleBaseUrl`.
 */
export function slackMessage(event: NotificationEvent, consoleBaseUrl: string) {
  const title = EVENT_TITLES[event.event_type];
  const link = `${consoleBaseUrl.replace(/\/+$/, '')}${event.console_path}`;
  const summary = slackEscape(event.summary);
  return {
    text: `${title}: ${summary}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: summary.slice(0, 2900) } },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `tenant \`${slackEscape(event.tenant_id)}\` · ${event.event_type} · ${event.occurred_at}`,
          },
        ],
      },
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            text: { type: 'plain_text', text: 'Open in the Warden console' },
            url: link,
          },
        ],
      },
    ],
  };
}
