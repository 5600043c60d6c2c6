/**
 * `warden notifications channels list | add | update | remove` and `warden notifications deliveries`: a
 * tenant's notification channels and their delivery log through the HTTP API, as the API key given (`--key` or
 * `WARDEN_API_KEY`, scope `notifications:write`). Secrets — a webhook's signing secret, a Slack webhook URL —
 * are read from the environment, never from the command line (where `ps` and shell history would keep them).
 */
import type { Command } from 'commander';
import { NotificationsClient, type NewChannelInput } from '@warden/client';
import {
  DeliveryStatusSchema,
  NOTIFICATION_EVENT_TYPES,
  NotificationEventTypeSchema,
  ValidationError,
  parseOrThrow,
  type NotificationChannelView,
  type NotificationDeliveryView,
  type NotificationEventType,
} from '@warden/domain';
import type { CliEnvironment } from '../config.js';
import { writeJson, type CliIo } from '../output.js';
import { apiTarget } from '../api-target.js';
import { callApi } from './changesets.js';

/** Where `add` and `update` read a channel's secrets from. */
export const CHANNEL_URL_ENV = 'WARDEN_CHANNEL_URL';
export const CHANNEL_SECRET_ENV = 'WARDEN_CHANNEL_SIGNING_SECRET';

interface ApiFlags {
  url?: string;
  key?: string;
  json?: boolean;
}

function clientFor(environment: CliEnvironment, flags: ApiFlags) {
  const { url, key } = apiTarget(environment, flags);
  return { client: new NotificationsClient({ baseUrl: url, apiKey: key, timeoutMs: 30_000 }), url };
}

function parseEvents(text: string): NotificationEventType[] {
  return text
    .split(',')
    .map((event) => event.trim())
    .filter((event) => event !== '')
    .map((event) => parseOrThrow(NotificationEventTypeSchema, event, '--events'));
}

export function formatChannels(channels: readonly NotificationChannelView[]): string {
  if (channels.length === 0) return 'no notification channels\n';
  const rows = channels.map(
    (c) =>
      `${c.name.padEnd(20)}  ${c.kind.padEnd(7)}  ${(c.enabled ? 'on' : 'off').padEnd(3)}  ${c.url_host.padEnd(28)}  ${c.events.length === NOTIFICATION_EVENT_TYPES.length ? 'all events' : c.events.join(',')}`,
  );
  return (
    [`${'name'.padEnd(20)}  kind     on   host                          events`, ...rows].join('\n') + '\n'
  );
}

export function formatDeliveries(deliveries: readonly NotificationDeliveryView[]): string {
  if (deliveries.length === 0) return 'no deliveries\n';
  return (
    deliveries
      .map(
        (d) =>
          `${d.created_at.slice(0, 19)}  ${d.status.padEnd(9)}  ${String(d.attempts).padStart(2)} attempt(s)  ${d.event_type.padEnd(30)}  channel ${d.channel_id}${d.last_error ? `  last error: ${d.last_error}` : ''}`,
      )
      .join('\n') + '\n'
  );
}

const withApiOptions = (command: Command) =>
  command
    .option('--url <url>', 'the Warden API (default: $WARDEN_API_URL or http://127.0.0.1:3000)')
    .option('--key <key>', 'the API key to act as (default: $WARDEN_API_KEY)')
    .option('--json', 'print the answer as JSON');

export function registerNotificationsCommand(program: Command, environment: CliEnvironment, io: CliIo): void {
  const notifications = program
    .command('notifications')
    .description("a tenant's notification channels (webhook, Slack) and their delivery log");
  const channels = notifications.command('channels').description('list, add, update and remove channels');

  withApiOptions(channels.command('list').description('the channels (never their URLs or secrets)')).action(
    async (flags: ApiFlags) => {
      const { client, url } = clientFor(environment, flags);
      const list = await callApi(url, () => client.listChannels());
      if (flags.json) writeJson(io, list);
      else io.out(formatChannels(list));
    },
  );

  withApiOptions(
    channels
      .command('add')
      .description(
        `add a channel; its URL comes from $${CHANNEL_URL_ENV} and a webhook's signing secret from $${CHANNEL_SECRET_ENV}`,
      )
      .argument('<NAME>', 'the channel name (lowercase letters, digits, ".", "_", "-")')
      .requiredOption('--kind <kind>', 'webhook or slack')
      .option(
        '--events <events>',
        `comma-separated events (default: all): ${NOTIFICATION_EVENT_TYPES.join(', ')}`,
      )
      .option('--disabled', 'create it disabled'),
  ).action(async (name: string, flags: ApiFlags & { kind: string; events?: string; disabled?: boolean }) => {
    const channelUrl = environment.env[CHANNEL_URL_ENV];
    if (!channelUrl) throw new ValidationError(`set ${CHANNEL_URL_ENV} to the channel's URL`);
    if (flags.kind !== 'webhook' && flags.kind !== 'slack')
      throw new ValidationError(`invalid --kind "${flags.kind}": webhook or slack`);
    const common = {
      name,
      url: channelUrl,
      ...(flags.events ? { events: parseEvents(flags.events) } : {}),
      ...(flags.disabled ? { enabled: false } : {}),
    };
    let input: NewChannelInput;
    if (flags.kind === 'webhook') {
      const secret = environment.env[CHANNEL_SECRET_ENV];
      if (!secret)
        throw new ValidationError(
          `set ${CHANNEL_SECRET_ENV} to the webhook's signing secret (at least 32 characters; the receiver keeps the same)`,
        );
      input = { ...common, kind: 'webhook', signing_secret: secret };
    } else input = { ...common, kind: 'slack' };
    const { client, url } = clientFor(environment, flags);
    const created = await callApi(url, () => client.createChannel(input));
    if (flags.json) writeJson(io, created);
    else
      io.out(
        `added ${created.kind} channel ${created.name} (${created.channel_id}) to ${created.url_host}\n`,
      );
  });

  withApiOptions(
    channels
      .command('update')
      .description(
        `change a channel: --enable / --disable, --events; a new URL or secret from $${CHANNEL_URL_ENV} / $${CHANNEL_SECRET_ENV} with --rotate`,
      )
      .argument('<CHANNEL>', 'the channel name or id')
      .option('--enable', 'deliver to it again')
      .option('--disable', 'stop delivering to it')
      .option('--events <events>', 'comma-separated events')
      .option('--rotate', `replace its URL and/or signing secret with the ones in the environment`),
  ).action(
    async (
      channel: string,
      flags: ApiFlags & { enable?: boolean; disable?: boolean; events?: string; rotate?: boolean },
    ) => {
      if (flags.enable && flags.disable)
        throw new ValidationError('--enable and --disable exclude each other');
      const patch = {
        ...(flags.enable ? { enabled: true } : {}),
        ...(flags.disable ? { enabled: false } : {}),
        ...(flags.events ? { events: parseEvents(flags.events) } : {}),
        ...(flags.rotate && environment.env[CHANNEL_URL_ENV]
          ? { url: environment.env[CHANNEL_URL_ENV] }
          : {}),
        ...(flags.rotate && environment.env[CHANNEL_SECRET_ENV]
          ? { signing_secret: environment.env[CHANNEL_SECRET_ENV] }
          : {}),
      };
      if (Object.keys(patch).length === 0)
        throw new ValidationError('nothing to change: pass --enable, --disable, --events or --rotate');
      const { client, url } = clientFor(environment, flags);
      const updated = await callApi(url, () => client.updateChannel(channel, patch));
      if (flags.json) writeJson(io, updated);
      else io.out(formatChannels([updated]));
    },
  );

  withApiOptions(
    channels
      .command('remove')
      .description('delete a channel and its delivery log')
      .argument('<CHANNEL>', 'name or id'),
  ).action(async (channel: string, flags: ApiFlags) => {
    const { client, url } = clientFor(environment, flags);
    await callApi(url, () => client.deleteChannel(channel));
    if (flags.json) writeJson(io, { deleted: true, channel });
    else io.out(`removed channel ${channel}\n`);
  });

  withApiOptions(
    notifications
      .command('deliveries')
      .description('the delivery log, newest first: status, attempts, last error')
      .option('--channel <channel>', 'only this channel (name or id)')
      .option('--status <status>', 'pending, delivered, failed or cancelled')
      .option('--limit <n>', 'at most this many (1-200, default 50)'),
  ).action(async (flags: ApiFlags & { channel?: string; status?: string; limit?: string }) => {
    const status = flags.status ? parseOrThrow(DeliveryStatusSchema, flags.status, '--status') : undefined;
    const limit = flags.limit === undefined ? undefined : Number(flags.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 200))
      throw new ValidationError(`invalid --limit "${flags.limit}": a whole number from 1 to 200`);
    const { client, url } = clientFor(environment, flags);
    const page = await callApi(url, () =>
      client.listDeliveries({
        ...(flags.channel ? { channel: flags.channel } : {}),
        ...(status ? { status } : {}),
        ...(limit ? { limit } : {}),
      }),
    );
    if (flags.json) writeJson(io, page);
    else io.out(formatDeliveries(page.items));
  });
}
