import { findDecisionsForEvents, type EventDecisionView } from '@warden/db';
import type { IngestResult } from '@warden/domain';
import { reply, type ApiDeps, type Reply } from './define-route.js';
import type { DecisionWaiter, DecisionWatch } from './decision-waiter.js';

/**
 * A request waiting (`Prefer: wait`) for the decisions on its events. It registers with the decision stream's
 * reader *before* its events are written, so a decision on an event it inserts can only be published after
 * the registration. When the reader already had its position then (the usual case under load), a request
 * whose events were all new skips the first Postgres read: nothing can be decided before it listened.
 * Otherwise Postgres is read once the reader has its position (a decision committed earlier is found there).
 * Then it reads once more each time the stream says every remaining event was decided, and once at the
 * deadline (Redis away: the stream never wakes it). Never a polling loop.
 */
export class DecisionWait {
  private readonly deadline: number;
  private readonly watch: DecisionWatch;
  private readonly timeUp: Promise<'timeout'>;
  private timer: NodeJS.Timeout | undefined;
  private readonly listenedFromTheStart: boolean;

  constructor(
    private readonly deps: ApiDeps,
    waiter: DecisionWaiter,
    private readonly tenantId: string,
    private readonly eventIds: readonly string[],
    readonly seconds: number,
  ) {
    this.deadline = performance.now() + seconds * 1000;
    this.watch = waiter.watch(tenantId, eventIds);
    this.listenedFromTheStart = this.watch.positioned;
    this.timeUp = new Promise((resolve) => {
      this.timer = setTimeout(() => resolve('timeout'), seconds * 1000);
    });
  }

  /** The decisions, and the events still pending when the wait ran out. Closes the watch. */
  async decisions(allNew: boolean): Promise<{ decisions: EventDecisionView[]; pending: string[] }> {
    try {
      let read = !(allNew && this.listenedFromTheStart);
      if (read) await Promise.race([this.watch.ready, this.timeUp]);
      for (;;) {
        if (read) {
          const decisions = await findDecisionsForEvents(this.deps.db, this.tenantId, this.eventIds);
          const decided = new Set(decisions.map((d) => d.event_id));
          const pending = this.eventIds.filter((id) => !decided.has(id));
          if (pending.length === 0 || performance.now() >= this.deadline) return { decisions, pending };
          this.watch.settle(decided);
        }
        await Promise.race([this.watch.allPublished(), this.timeUp]);
        read = true;
      }
    } finally {
      this.close();
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.watch.close();
  }
}

/** The wait a request asked for and this API can give (a waiter is configured), started now; or none. */
export function startWait(
  deps: ApiDeps,
  tenantId: string,
  eventIds: readonly string[],
  seconds: number | undefined,
): DecisionWait | undefined {
  if (seconds === undefined || !deps.decisionWaiter) return undefined;
  return new DecisionWait(deps, deps.decisionWaiter, tenantId, eventIds, seconds);
}

/** `Prefer: wait=<s>`: 200 with every decision once committed, 202 with what there is when the wait runs out. */
export async function replyAfterWait(wait: DecisionWait, result: IngestResult): Promise<Reply> {
  const { decisions, pending } = await wait.decisions(result.duplicates === 0);
  return reply(
    pending.length === 0 ? 200 : 202,
    { ...result, decisions, pending },
    { 'Preference-Applied': `wait=${wait.seconds}`, Vary: 'Prefer' },
  );
}
