/**
 * The console's pages: plain server-rendered HTML (semantic elements, labelled controls, keyboard-reachable),
 * every value escaped by {@link html}. Data comes in already read; nothing here does I/O.
 */
import type { ChangeSetView, TaskView } from '@warden/domain';
import type { WaitingItems } from '@warden/db';
import { html, segment, type SafeHtml } from './html.js';
import type { RenderedFileDiff } from './diff.js';

export interface PageContext {
  title: string;
  /** Signed-in person: the key's owner and tenant; absent on the sign-in page. */
  who?: { owner: string; tenantId: string };
  csrf?: string;
  /** Which nav entry is current. */
  current?: 'inbox' | 'findings' | 'triggers' | 'notifications';
  /** A message shown above the content (the outcome of the last act). */
  flash?: { kind: 'ok' | 'error'; text: string };
}

const base = '/console';

export function layout(ctx: PageContext, content: SafeHtml): SafeHtml {
  const nav = (id: NonNullable<PageContext['current']>, label: string) =>
    html`<li>
      <a href="${base}/${id}" ${ctx.current === id ? html` aria-current="page"` : ''}>${label}</a>
    </li>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${ctx.title} · Warden console</title>
        <link rel="stylesheet" href="${base}/assets/diff2html.min.css" />
        <link rel="stylesheet" href="${base}/assets/console.css" />
        ${ctx.csrf ? html`<meta name="csrf-token" content="${ctx.csrf}" />` : ''}
        <script src="${base}/assets/console.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <span class="brand">Warden console</span>
          ${
            ctx.who
              ? html`<nav aria-label="Main">
                    <ul>
                      ${nav('inbox', 'Inbox')}${nav('findings', 'Findings')}${nav('triggers', 'Triggers')}${nav('notifications', 'Notifications')}
                    </ul>
                  </nav>
                  <form method="post" action="${base}/sign-out" class="signout">
                    <input type="hidden" name="_csrf" value="${ctx.csrf}" />
                    <span>${ctx.who.owner} · tenant ${ctx.who.tenantId}</span>
                    <button type="submit">Sign out</button>
                  </form>`
              : ''
          }
        </header>
        <main id="main">
          ${ctx.flash ? html`<p class="flash ${ctx.flash.kind}" role="${ctx.flash.kind === 'error' ? 'alert' : 'status'}">${ctx.flash.text}</p>` : ''}
          ${content}
        </main>
      </body>
    </html>`;
}

export function signInPage(token: string, error?: string): SafeHtml {
  return layout(
    { title: 'Sign in', ...(error ? { flash: { kind: 'error' as const, text: error } } : {}) },
    html`<h1>Sign in</h1>
      <p>Sign in with your own API key (a person's key: agent keys, which write events, cannot sign in).</p>
      <form method="post" action="${base}/sign-in" class="card">
        <input type="hidden" name="_csrf" value="${token}" />
        <label for="api_key">API key</label>
        <input id="api_key" name="api_key" type="password" autocomplete="off" required autofocus />
        <button type="submit">Sign in</button>
      </form>`,
  );
}

export function errorPage(ctx: PageContext, status: number, message: string): SafeHtml {
  return layout(
    { ...ctx, title: `Error ${status}` },
    html`<h1>Error ${status}</h1>
      <p role="alert">${message}</p>
      <p><a href="${base}/inbox">Back to the inbox</a></p>`,
  );
}

/** "23h 5m left" (or "overdue") before a deadline, as of `now`; a gate or approval past it is expired by its sweeper. */
export function timeLeft(deadline: string | null | undefined, now = Date.now()): SafeHtml {
  const ms = deadline ? Date.parse(deadline) - now : NaN;
  if (!Number.isFinite(ms)) return html`<span class="expiry">no deadline</span>`;
  if (ms <= 0) return html`<span class="expiry overdue">overdue: expires now</span>`;
  const minutes = Math.floor(ms / 60_000);
  const text =
    minutes >= 1440
      ? `${Math.floor(minutes / 1440)}d ${Math.floor((minutes % 1440) / 60)}h left`
      : minutes >= 60
        ? `${Math.floor(minutes / 60)}h ${minutes % 60}m left`
        : `${minutes}m left`;
  return html`<span class="expiry${ms < 3600_000 ? ' soon' : ''}" title="expires ${deadline}">${text}</span>`;
}

const when = (iso: string | null | undefined) =>
  iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>` : html`—`;

function findingList(findings: unknown[]): SafeHtml {
  if (findings.length === 0) return html``;
  return html`<ul class="findings">
    ${findings.map((f) => {
      const finding = (f ?? {}) as { code?: unknown; severity?: unknown; message?: unknown };
      return html`<li>
        <span class="sev sev-${String(finding.severity ?? '').toLowerCase()}"
          >${String(finding.severity ?? '')}</span
        >
        <code>${String(finding.code ?? '')}</code> ${String(finding.message ?? '')}
      </li>`;
    })}
  </ul>`;
}

/** The inbox's items, newest first in each section: also served alone, for the live refresh. */
export function inboxItems(items: WaitingItems): SafeHtml {
  const total = items.gates.length + items.changesets.length + items.findings.length + items.triggers.length;
  return html`<p class="count" id="inbox-count">${total} waiting</p>
    <section aria-labelledby="h-gates">
      <h2 id="h-gates">Open gates (${items.gates.length})</h2>
      ${
        items.gates.length === 0
          ? html`<p>No task waits at a gate.</p>`
          : html`<ul class="items">
              ${items.gates.map(
                (g) =>
                  html`<li class="item" data-kind="gate">
                    <a href="${base}/tasks/${segment(g.task_id)}"><strong>${g.task_id}</strong></a> paused at
                    <code>${g.checkpoint}</code> — ${g.reason}
                    <div class="meta">
                      opened ${when(g.opened_at)} · by event <code>${g.event_id ?? '—'}</code> ·
                      ${timeLeft(g.expires_at)}
                    </div>
                    ${findingList(g.findings)}
                  </li>`,
              )}
            </ul>`
      }
    </section>
    <section aria-labelledby="h-changesets">
      <h2 id="h-changesets">Change sets awaiting approval (${items.changesets.length})</h2>
      ${
        items.changesets.length === 0
          ? html`<p>No change set waits for approval.</p>`
          : html`<ul class="items">
              ${items.changesets.map(
                (c) =>
                  html`<li class="item" data-kind="changeset">
                    <a href="${base}/changesets/${segment(c.changeset_id)}"
                      ><strong>${c.changeset_id}</strong></a
                    >
                    in <code>${c.workspace}</code>, risk
                    <span class="risk risk-${c.risk_effective.toLowerCase()}">${c.risk_effective}</span>
                    <div class="meta">
                      submitted ${when(c.submitted_at)} by ${c.submitted_by} · plan
                      <code>${c.plan_id}</code> · ${timeLeft(c.expires_at)}
                    </div>
                  </li>`,
              )}
            </ul>`
      }
    </section>
    <section aria-labelledby="h-findings">
      <h2 id="h-findings">Critical and high findings (${items.findings.length})</h2>
      ${
        items.findings.length === 0
          ? html`<p>No open critical or high finding.</p>`
          : html`<ul class="items">
              ${items.findings.map(
                (f) =>
                  html`<li class="item" data-kind="finding">
                    <span class="sev sev-${f.severity.toLowerCase()}">${f.severity}</span>
                    <a href="${base}/findings#f-${f.fingerprint}">${f.title}</a>
                    <div class="meta">
                      <code>${f.code}</code> · seen ${f.count}× · last ${when(f.last_seen_at)}
                    </div>
                  </li>`,
              )}
            </ul>`
      }
    </section>
    <section aria-labelledby="h-triggers">
      <h2 id="h-triggers">Triggers needing attention (${items.triggers.length})</h2>
      ${
        items.triggers.length === 0
          ? html`<p>No breaker open, no migration rolled back.</p>`
          : html`<ul class="items">
              ${items.triggers.map(
                (t) =>
                  html`<li class="item" data-kind="trigger">
                    <a href="${base}/triggers#t-${t.event_name}"><strong>${t.event_name}</strong></a>
                    ${t.breaker_state === 'open' ? html`breaker open since ${when(t.breaker_opened_at)}: ${t.breaker_reason ?? ''}` : ''}
                    ${t.rolled_back_red_line ? html`migration rolled back ${when(t.rolled_back_at)} (red line <code>${t.rolled_back_red_line}</code>)` : ''}
                  </li>`,
              )}
            </ul>`
      }
    </section>`;
}

export function inboxPage(ctx: PageContext, items: WaitingItems): SafeHtml {
  return layout(
    { ...ctx, title: 'Inbox', current: 'inbox' },
    html`<h1>Inbox</h1>
      <p class="live" aria-live="polite" id="live-status">Live: updates as the supervisor decides.</p>
      <div id="inbox" data-live-src="${base}/inbox/items" data-live-events="${base}/events">
        ${inboxItems(items)}
      </div>`,
  );
}

export interface AuditRowView {
  chain_seq?: string | number;
  event_type: string;
  level?: string;
  created_at?: string;
  payload?: unknown;
}

export interface ChainStatus {
  ok: boolean;
  rows: number;
  problems: string[];
  /** When the chain was walked (the result is reused for a short while). */
  checkedAt: string;
}

function chainBadge(chain: ChainStatus): SafeHtml {
  return chain.ok
    ? html`<p class="chain ok">
        The tenant's audit chain verifies: ${chain.rows} rows, unbroken (checked ${when(chain.checkedAt)}).
      </p>`
    : html`<div class="chain broken" role="alert">
        <p>The tenant's audit chain is BROKEN (checked ${when(chain.checkedAt)}):</p>
        <ul>
          ${chain.problems.map((p) => html`<li>${p}</li>`)}
        </ul>
      </div>`;
}

function auditTable(rows: AuditRowView[]): SafeHtml {
  return html`<table>
    <caption>
      Audit trail (oldest first)
    </caption>
    <thead>
      <tr>
        <th scope="col">#</th>
        <th scope="col">When</th>
        <th scope="col">Event</th>
        <th scope="col">Details</th>
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (a, i) =>
          html`<tr>
            <td>${i + 1}</td>
            <td>${when(a.created_at)}</td>
            <td><code>${a.event_type}</code></td>
            <td><pre>${JSON.stringify(a.payload ?? {}, null, 1)}</pre></td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function reasonForm(
  action: string,
  csrf: string,
  label: string,
  button: string,
  id: string,
  extra?: SafeHtml,
  /** A refusal (reject, deny): drawn in red. @defaultValue `false` */
  refusal = false,
): SafeHtml {
  return html`<form method="post" action="${action}" class="card act">
    <input type="hidden" name="_csrf" value="${csrf}" />
    ${extra ?? ''}
    <label for="${id}">${label}</label>
    <textarea id="${id}" name="reason" required maxlength="2000" rows="2"></textarea>
    <button type="submit" ${refusal ? html` class="refusal"` : ''}>${button}</button>
  </form>`;
}

export interface DecisionRowView {
  event_id: string;
  decision_type: string;
  reason: string;
  findings: unknown[];
  policy: string;
  created_at: string;
}

export function gatePage(
  ctx: PageContext & { csrf: string },
  task: TaskView,
  decisions: DecisionRowView[],
  audits: AuditRowView[],
  chain: ChainStatus,
): SafeHtml {
  const taskPath = `${base}/tasks/${segment(task.task_id)}`;
  const gates = task.open_gates ?? [];
  return layout(
    { ...ctx, title: `Task ${task.task_id}` },
    html`<h1>Task <code>${task.task_id}</code></h1>
      <p>Status: <strong class="status status-${task.status}" id="task-status">${task.status}</strong></p>
      ${chainBadge(chain)}
      <section aria-labelledby="h-gates">
        <h2 id="h-gates">Open gates</h2>
        ${
          gates.length === 0
            ? html`<p>No open gate.</p>`
            : gates.map(
                (g) =>
                  html`<article class="card gate">
                    <h3>Gate <code>${g.gate_id}</code> at <code>${g.checkpoint}</code></h3>
                    <p>${g.reason}</p>
                    <p class="meta">opened ${when(g.opened_at)} · ${timeLeft(g.expires_at)}</p>
                    ${reasonForm(`${taskPath}/gates/${segment(g.gate_id)}/release`, ctx.csrf, 'Why may the task go on? (required)', 'Release', `release-${g.gate_id}`)}
                    ${reasonForm(`${taskPath}/gates/${segment(g.gate_id)}/deny`, ctx.csrf, 'Why may it not? Denying blocks the task (required)', 'Deny', `deny-${g.gate_id}`, undefined, true)}
                  </article>`,
              )
        }
      </section>
      ${
        task.status === 'blocked'
          ? html`<section aria-labelledby="h-unblock">
              <h2 id="h-unblock">Blocked</h2>
              ${reasonForm(`${taskPath}/unblock`, ctx.csrf, 'Why may the blocked task go on? (required)', 'Unblock', 'unblock-reason')}
            </section>`
          : ''
      }
      <section aria-labelledby="h-decisions">
        <h2 id="h-decisions">Decisions</h2>
        <table>
          <caption>
            Supervisor decisions, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Event</th>
              <th scope="col">Decision</th>
              <th scope="col">Reason and findings</th>
            </tr>
          </thead>
          <tbody>
            ${decisions.map(
              (d) =>
                html`<tr>
                  <td>${when(d.created_at)}</td>
                  <td><code>${d.event_id}</code></td>
                  <td><strong>${d.decision_type}</strong> <span class="meta">${d.policy}</span></td>
                  <td>${d.reason}${findingList(d.findings)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="h-audit">
        <h2 id="h-audit">Audit trail</h2>
        ${auditTable(audits)}
      </section>`,
  );
}

export function changeSetPage(
  ctx: PageContext & { csrf: string },
  view: ChangeSetView,
  diffs: RenderedFileDiff[] | { error: string },
  audits: AuditRowView[],
): SafeHtml {
  const path = `${base}/changesets/${segment(view.changeset_id)}`;
  const waiting =
    view.status === 'pending' &&
    view.approval.state === 'pending' &&
    view.verdict.verdict === 'NEED_APPROVAL';
  const plan = view.plan as unknown as Record<string, unknown>;
  const planField = (key: string, label: string) =>
    plan[key] === undefined
      ? ''
      : html`<dt>${label}</dt>
          <dd>
            <pre>
${typeof plan[key] === 'string' ? (plan[key] as string) : JSON.stringify(plan[key], null, 1)}</pre>
          </dd>`;
  return layout(
    { ...ctx, title: `Change set ${view.changeset_id}` },
    html`<h1>Change set <code>${view.changeset_id}</code></h1>
      <p>
        Status: <strong class="status" id="changeset-status">${view.status}</strong> · approval
        ${view.approval.state}${waiting ? html` (${timeLeft(view.approval.expires_at)})` : ''} · workspace
        <code>${view.workspace}</code> · submitted ${when(view.submitted_at)} by ${view.submitted_by}
      </p>
      <p>Checksum <code id="checksum">${view.checksum}</code></p>
      <section aria-labelledby="h-verdict">
        <h2 id="h-verdict">WriteGate verdict: ${view.verdict.verdict}</h2>
        <p>
          Effective risk:
          <span class="risk risk-${String(view.verdict.risk_effective).toLowerCase()}"
            >${view.verdict.risk_effective}</span
          >
        </p>
        <ul>
          ${view.verdict.reasons.map((r) => html`<li><code>${r.code}</code> ${r.message}</li>`)}
        </ul>
      </section>
      <section aria-labelledby="h-plan">
        <h2 id="h-plan">Plan</h2>
        <dl>
          ${planField('intent', 'Intent')}${planField('rationale', 'Rationale')}${planField('rollback_plan', 'Rollback plan')}${planField('verification_plan', 'Verification plan')}
        </dl>
      </section>
      <section aria-labelledby="h-files">
        <h2 id="h-files">Files (${view.changes.length})</h2>
        ${
          'error' in diffs
            ? html`<p class="flash error" role="alert">${diffs.error}</p>`
            : diffs.map(
                (d) =>
                  html`<article class="file">
                    <h3><span class="op">${d.operation}</span> <code>${d.path}</code></h3>
                    ${d.body}
                  </article>`,
              )
        }
      </section>
      ${
        waiting && !('error' in diffs)
          ? html`<section aria-labelledby="h-decide">
              <h2 id="h-decide">Decide</h2>
              <form method="post" action="${path}/approve" class="card act">
                <input type="hidden" name="_csrf" value="${ctx.csrf}" />
                <input type="hidden" name="checksum" value="${view.checksum}" />
                <label for="approve-reason"
                  >Why may it be applied? (required; the approval is bound to checksum
                  <code>${view.checksum.slice(0, 16)}…</code>)</label
                >
                <textarea id="approve-reason" name="reason" required maxlength="2000" rows="2"></textarea>
                <button type="submit">Approve</button>
              </form>
              ${reasonForm(`${path}/reject`, ctx.csrf, 'Why is it rejected? (required)', 'Reject', 'reject-reason', undefined, true)}
            </section>`
          : ''
      }
      <section aria-labelledby="h-audit">
        <h2 id="h-audit">Audit trail</h2>
        ${auditTable(audits)}
      </section>`,
  );
}

export interface FindingRowView {
  fingerprint: string;
  code: string;
  severity: string;
  title: string;
  description: string;
  status: string;
  count: number;
  last_seen_at: string;
}

export function findingsPage(ctx: PageContext & { csrf: string }, findings: FindingRowView[]): SafeHtml {
  return layout(
    { ...ctx, title: 'Findings', current: 'findings' },
    html`<h1>Findings</h1>
      <table>
        <caption>
          Lead findings, most recently seen first
        </caption>
        <thead>
          <tr>
            <th scope="col">Severity</th>
            <th scope="col">Finding</th>
            <th scope="col">Status</th>
            <th scope="col">Seen</th>
            <th scope="col">Act</th>
          </tr>
        </thead>
        <tbody>
          ${findings.map(
            (f) =>
              html`<tr id="f-${f.fingerprint}">
                <td><span class="sev sev-${f.severity.toLowerCase()}">${f.severity}</span></td>
                <td><strong>${f.title}</strong><br /><code>${f.code}</code> ${f.description}</td>
                <td>${f.status}</td>
                <td>${f.count}× · ${when(f.last_seen_at)}</td>
                <td>
                  ${
                    f.status === 'open'
                      ? html`<form method="post" action="${base}/findings/${segment(f.fingerprint)}/resolve">
                            <input type="hidden" name="_csrf" value="${ctx.csrf}" /><button
                              type="submit"
                              aria-label="Resolve ${f.title}"
                            >
                              Resolve
                            </button>
                          </form>
                          <form method="post" action="${base}/findings/${segment(f.fingerprint)}/silence">
                            <input type="hidden" name="_csrf" value="${ctx.csrf}" />
                            <label for="for-${f.fingerprint}">Silence for</label>
                            <input
                              id="for-${f.fingerprint}"
                              name="for"
                              value="7d"
                              size="4"
                              pattern="[1-9][0-9]{0,4}[hd]"
                            />
                            <button type="submit">Silence</button>
                          </form>`
                      : ''
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}

export interface TriggerStatusRow {
  name: string;
  paused: boolean;
  enabled: boolean;
  breaker: string;
  next_fires: string[];
  last_runs: Array<{ status?: string; scheduled_for?: string }>;
}

export function triggersPage(ctx: PageContext & { csrf: string }, triggers: TriggerStatusRow[]): SafeHtml {
  return layout(
    { ...ctx, title: 'Triggers', current: 'triggers' },
    html`<h1>Triggers</h1>
      <table>
        <caption>
          Cron triggers by name
        </caption>
        <thead>
          <tr>
            <th scope="col">Trigger</th>
            <th scope="col">Status</th>
            <th scope="col">Next fires</th>
            <th scope="col">Last runs</th>
            <th scope="col">Act</th>
          </tr>
        </thead>
        <tbody>
          ${triggers.map(
            (t) =>
              html`<tr id="t-${t.name}">
                <td><strong>${t.name}</strong></td>
                <td>${t.paused ? 'paused' : t.enabled ? 'active' : 'disabled'} · breaker ${t.breaker}</td>
                <td>
                  <ul>
                    ${t.next_fires.map((n) => html`<li>${when(n)}</li>`)}
                  </ul>
                </td>
                <td>
                  <ul>
                    ${t.last_runs.slice(0, 5).map((r) => html`<li>${r.status ?? ''} ${when(r.scheduled_for)}</li>`)}
                  </ul>
                </td>
                <td>
                  <form
                    method="post"
                    action="${base}/triggers/${segment(t.name)}/${t.paused ? 'resume' : 'pause'}"
                  >
                    <input type="hidden" name="_csrf" value="${ctx.csrf}" />
                    <button type="submit" aria-label="${t.paused ? 'Resume' : 'Pause'} ${t.name}">
                      ${t.paused ? 'Resume' : 'Pause'}
                    </button>
                  </form>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`,
  );
}

export interface ChannelRowView {
  channel_id: string;
  name: string;
  kind: string;
  url_host: string;
  events: string[];
  enabled: boolean;
}

export interface DeliveryRowView {
  delivery_id: string;
  channel_id: string;
  event_type: string;
  status: string;
  attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  created_at: string;
}

/**
 * The tenant's notification channels (never a URL beyond its host, never a secret) with enable / disable, and
 * the delivery log, newest first: where a person checks that a gate opened reached them, and why it did not.
 */
export function notificationsPage(
  ctx: PageContext & { csrf: string },
  channels: ChannelRowView[],
  deliveries: DeliveryRowView[],
): SafeHtml {
  const nameOf = new Map(channels.map((c) => [c.channel_id, c.name]));
  return layout(
    { ...ctx, title: 'Notifications', current: 'notifications' },
    html`<h1>Notifications</h1>
      <table>
        <caption>
          Channels (add or change them with
          <code>warden notifications channels</code>
          or the API)
        </caption>
        <thead>
          <tr>
            <th scope="col">Channel</th>
            <th scope="col">Kind</th>
            <th scope="col">Posts to</th>
            <th scope="col">Events</th>
            <th scope="col">State</th>
            <th scope="col">Act</th>
          </tr>
        </thead>
        <tbody>
          ${
            channels.length === 0
              ? html`<tr>
                  <td colspan="6">No channel: nothing is sent.</td>
                </tr>`
              : channels.map(
                  (c) =>
                    html`<tr id="c-${c.channel_id}">
                      <td><strong>${c.name}</strong></td>
                      <td>${c.kind}</td>
                      <td><code>${c.url_host}</code></td>
                      <td>${c.events.length === 0 ? 'all' : c.events.join(', ')}</td>
                      <td>${c.enabled ? 'enabled' : 'disabled'}</td>
                      <td>
                        <form
                          method="post"
                          action="${base}/notifications/channels/${segment(c.channel_id)}/${c.enabled ? 'disable' : 'enable'}"
                        >
                          <input type="hidden" name="_csrf" value="${ctx.csrf}" />
                          <button type="submit" ${c.enabled ? html` class="refusal"` : ''}>
                            ${c.enabled ? 'Disable' : 'Enable'}
                          </button>
                        </form>
                      </td>
                    </tr>`,
                )
          }
        </tbody>
      </table>
      <table>
        <caption>
          Delivery log, newest first
        </caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Channel</th>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last error</th>
          </tr>
        </thead>
        <tbody>
          ${
            deliveries.length === 0
              ? html`<tr>
                  <td colspan="6">Nothing sent yet.</td>
                </tr>`
              : deliveries.map(
                  (d) =>
                    html`<tr>
                      <td>${when(d.created_at)}</td>
                      <td>${nameOf.get(d.channel_id) ?? d.channel_id}</td>
                      <td><code>${d.event_type}</code></td>
                      <td>
                        ${d.status}${d.last_status_code === null ? '' : ` (HTTP ${d.last_status_code})`}
                      </td>
                      <td>${d.attempts}</td>
                      <td>${d.last_error ?? ''}</td>
                    </tr>`,
                )
          }
        </tbody>
      </table>`,
  );
}
