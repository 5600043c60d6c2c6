/**
 * Notification channels and their delivery log (docs/notifications.md). A channel's URL and signing secret
 * are written here and never answered back — a view shows the URL's host only. `notifications:write` (or the
 * tenant's `admin`); every route is scoped to the caller's tenant: another tenant's channel is a 404.
 */
import { z } from 'zod';
import {
  createChannel,
  deleteChannel,
  findChannel,
  listChannels,
  listDeliveries,
  toChannelView,
  updateChannel,
} from '@warden/db';
import {
  DeliveryStatusSchema,
  NewNotificationChannelSchema,
  NotFoundError,
  NotificationChannelPatchSchema,
  NotificationChannelViewSchema,
  NotificationDeliveryViewSchema,
  ValidationError,
} from '@warden/domain';
import { actorOf } from '../auth.js';
import { readCursor } from '../cursors.js';
import { defineRoute, ok, pathParam, reply, requiredBody, type Route } from '../define-route.js';
import { page } from '../schemas.js';

const Channel = NotificationChannelViewSchema.meta({ id: 'NotificationChannel' });
const NewChannel = NewNotificationChannelSchema.meta({ id: 'NewNotificationChannel' });
const Patch = NotificationChannelPatchSchema.meta({ id: 'NotificationChannelPatch' });
const Delivery = NotificationDeliveryViewSchema.meta({ id: 'NotificationDelivery' });

const channelRef = pathParam(z.string().min(1).max(100), 'channel', 'The channel id, or its name');
const DeliveriesQuerySchema = z.object({
  channel: z.string().min(1).max(100).optional().meta({ description: 'Only this channel (id or name)' }),
  status: DeliveryStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
});
const DeliveryCursorSchema = z.object({ outbox_id: z.string().regex(/^\d+$/), delivery_id: z.uuid() });
const noChannel = 'No such channel for this tenant';
const notFound = (ref: string) => new NotFoundError(`notification channel "${ref}" not found`);

export const notificationChannelRoutes: Route[] = [
  defineRoute(
    {
      method: 'get',
      path: '/v1/notification-channels',
      scope: 'notifications:write',
      summary: "The tenant's notification channels (never their URLs or secrets)",
      responses: { 200: { description: 'The channels', schema: z.object({ items: z.array(Channel) }) } },
    },
    async ({ auth, deps }) => ok({ items: await listChannels(deps.db, auth.tenantId) }),
  ),

  defineRoute(
    {
      method: 'post',
      path: '/v1/notification-channels',
      scope: 'notifications:write',
      summary: 'Add a notification channel: a signed webhook or a Slack incoming webhook',
      description:
        'The URL and the signing secret are stored and never shown again (the view has `url_host`). `events` defaults to every event.',
      body: requiredBody(NewChannel),
      responses: {
        201: { description: 'The channel', schema: Channel },
        409: 'The tenant has a channel with this name',
      },
    },
    async ({ body, auth, deps }) =>
      reply(201, await createChannel(deps.db, auth.tenantId, body, actorOf(auth).by)),
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/notification-channels/{channel}',
      scope: 'notifications:write',
      summary: 'A notification channel',
      params: { channel: channelRef },
      responses: { 200: { description: 'The channel', schema: Channel }, 404: noChannel },
    },
    async ({ params, auth, deps }) => {
      const row = await findChannel(deps.db, auth.tenantId, params.channel);
      if (!row) throw notFound(params.channel);
      return ok(toChannelView(row));
    },
  ),

  defineRoute(
    {
      method: 'patch',
      path: '/v1/notification-channels/{channel}',
      scope: 'notifications:write',
      summary: 'Change a channel: its URL, signing secret, events, or enable / disable it',
      params: { channel: channelRef },
      body: requiredBody(Patch),
      responses: { 200: { description: 'The channel', schema: Channel }, 404: noChannel },
    },
    async ({ params, body, auth, deps }) => {
      const row = await findChannel(deps.db, auth.tenantId, params.channel);
      if (!row) throw notFound(params.channel);
      if (row.kind === 'slack' && body.signing_secret !== undefined)
        throw new ValidationError(
          'invalid request body: signing_secret: a Slack channel has no signing secret',
          [{ path: 'signing_secret', message: 'a Slack channel has no signing secret' }],
        );
      return ok(await updateChannel(deps.db, row, body));
    },
  ),

  defineRoute(
    {
      method: 'delete',
      path: '/v1/notification-channels/{channel}',
      scope: 'notifications:write',
      summary: 'Delete a channel and its delivery log',
      params: { channel: channelRef },
      responses: {
        200: {
          description: 'Deleted',
          schema: z.object({ deleted: z.literal(true), channel_id: z.string() }),
        },
        404: noChannel,
      },
    },
    async ({ params, auth, deps }) => {
      const row = await findChannel(deps.db, auth.tenantId, params.channel);
      if (!row) throw notFound(params.channel);
      await deleteChannel(deps.db, row);
      return ok({ deleted: true, channel_id: row.channel_id });
    },
  ),

  defineRoute(
    {
      method: 'get',
      path: '/v1/notification-deliveries',
      scope: 'notifications:write',
      summary: 'The delivery log: every notification sent to every channel, newest first',
      description:
        'Status (`pending` while it is being tried, `delivered`, `failed` after the last attempt, `cancelled` when the channel was disabled), attempts and the last error.',
      query: DeliveriesQuerySchema,
      responses: { 200: { description: 'A page of deliveries', schema: page(Delivery) }, 404: noChannel },
    },
    async ({ query, auth, deps }) => {
      let channelId: string | undefined;
      if (query.channel) {
        const row = await findChannel(deps.db, auth.tenantId, query.channel);
        if (!row) throw notFound(query.channel);
        channelId = row.channel_id;
      }
      const before = readCursor(query.cursor, DeliveryCursorSchema);
      return ok(
        await listDeliveries(deps.db, auth.tenantId, {
          limit: query.limit,
          ...(channelId ? { channelId } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(before ? { before } : {}),
        }),
      );
    },
  ),
];
