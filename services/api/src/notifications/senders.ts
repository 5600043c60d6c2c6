/**
 * Sends one notification to one channel: a signed JSON webhook, or a Slack incoming webhook through
 * `@slack/webhook`. Never retries itself (the queue does, with backoff) and never follows a redirect. What it
 * reports — and so what the delivery log and the logs show — never contains the channel's URL or secret.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { IncomingWebhook, IncomingWebhookHTTPError, IncomingWebhookRequestError } from '@slack/webhook';
import type { EgressGuard } from '@warden/runtime';
import type { NotificationChannelRow } from '@warden/db';
import {
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  signWebhookBody,
  slackMessage,
  type NotificationEvent,
} from '@warden/domain';
import { EgressDeniedError, assertEgressAllowed, guardedFetch, isEgressRefusal } from './egress.js';

export type SendResult =
  | { ok: true; statusCode: number }
  /** `retryable`: a later attempt may succeed (timeouts, connection errors, 408, 429, 5xx). */
  | { ok: false; statusCode: number | null; error: string; retryable: boolean };

export interface SendOptions {
  /** Give up on a request after this long (a retryable failure). */
  timeoutMs: number;
  /** Where console links point (`https://warden.example.com`). */
  consoleBaseUrl: string;
  /** The clock of the signature's timestamp. @defaultValue the current time */
  now?: () => Date;
  /** The egress policy every request obeys (the allow-list, and the address checked at connect time). */
  egress: EgressGuard;
}

export async function sendToChannel(
  channel: NotificationChannelRow,
  event: NotificationEvent,
  options: SendOptions,
): Promise<SendResult> {
  try {
    assertEgressAllowed(options.egress, channel.url);
    return channel.kind === 'slack'
      ? await sendSlack(channel, event, options)
      : await sendWebhook(channel, event, options);
  } catch (error) {
    if (error instanceof EgressDeniedError || isEgressRefusal(error))
      return {
        ok: false,
        statusCode: null,
        error: redact((error as Error).message, channel),
        retryable: false,
      };
    return { ok: false, statusCode: null, error: redact(describe(error), channel), retryable: true };
  }
}

function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

async function sendWebhook(
  channel: NotificationChannelRow,
  event: NotificationEvent,
  options: SendOptions,
): Promise<SendResult> {
  if (!channel.signing_secret)
    return { ok: false, statusCode: null, error: 'the channel has no signing secret', retryable: false };
  const body = JSON.stringify(event);
  const timestamp = Math.floor((options.now?.() ?? new Date()).getTime() / 1000);
  const response = await postJson(channel.url, options, body, {
    'user-agent': 'Warden-Notifier/1',
    [WEBHOOK_SIGNATURE_HEADER]: signWebhookBody(channel.signing_secret, timestamp, body),
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_EVENT_HEADER]: event.event_type,
  });
  if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status };
  if (response.status >= 300 && response.status < 400)
    return {
      ok: false,
      statusCode: response.status,
      error: `the receiver answered ${response.status} (a redirect); redirects are never followed`,
      retryable: false,
    };
  return {
    ok: false,
    statusCode: response.status,
    error: `the receiver answered ${response.status}`,
    retryable: retryableStatus(response.status),
  };
}

async function sendSlack(
  channel: NotificationChannelRow,
  event: NotificationEvent,
  options: SendOptions,
): Promise<SendResult> {
  const webhook = new IncomingWebhook(channel.url, {
    timeout: options.timeoutMs,
    fetch: guardedFetch(options.egress),
  });
  try {
    await webhook.send(slackMessage(event, options.consoleBaseUrl));
    return { ok: true, statusCode: 200 };
  } catch (error) {
    if (error instanceof IncomingWebhookHTTPError)
      return {
        ok: false,
        statusCode: error.statusCode,
        // Slack's answer body is a short code such as `invalid_token` or `no_service`.
        error: redact(`Slack answered ${error.statusCode}: ${error.body.slice(0, 200)}`, channel),
        retryable: retryableStatus(error.statusCode),
      };
    if (error instanceof IncomingWebhookRequestError && isEgressRefusal(error.original))
      return {
        ok: false,
        statusCode: null,
        error: redact(describe(error.original), channel),
        retryable: false,
      };
    if (error instanceof IncomingWebhookRequestError)
      return {
        ok: false,
        statusCode: null,
        error: redact(describe(error.original), channel),
        retryable: true,
      };
    throw error;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'the request timed out';
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ? `${error.message} (${cause.code})` : error.message;
}

/** Takes the channel's URL (a secret for Slack) and signing secret out of a message before it is stored or logged. */
export function redact(
  message: string,
  channel: Pick<NotificationChannelRow, 'url' | 'signing_secret'>,
): string {
  let text = message;
  const host = (() => {
    try {
      return new URL(channel.url).host;
    } catch {
      return 'the channel';
    }
  })();
  for (const secret of [channel.url, channel.signing_secret]) {
    if (secret) text = text.split(secret).join(secret === channel.url ? `${host}/…` : '[secret]');
  }
  // A URL path can appear on its own (e.g. in an error about the request line).
  const path = (() => {
    try {
      return new URL(channel.url).pathname;
    } catch {
      return '';
    }
  })();
  if (path.length > 1) text = text.split(path).join('/…');
  return text;
}

/**
 * One JSON POST whose answer is only its status: the host resolves through the egress guard (the socket connects
 * to a checked address), redirects are not followed, the body is drained and dropped.
 */
function postJson(
  url: string,
  options: SendOptions,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number }> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      target,
      {
        method: 'POST',
        lookup: options.egress.lookup,
        signal: AbortSignal.timeout(options.timeoutMs),
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0 }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
