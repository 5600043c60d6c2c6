/**
 * The Warden console in a real browser: headless Chromium (the system's, driven by playwright-core) against the
 * real API, supervisor-worker and executor over Postgres and Redis. A person signs in; a PAUSE produced through
 * the API appears in the inbox without a reload; releasing it with a reason lets the task run and is audited with
 * the key's owner; a change set's diff is rendered and its approval executes it; an agent's key cannot sign in.
 * Agent-supplied text (task ids, reasons, file contents, finding titles) carries XSS payloads throughout.
 * Screenshots of each page land in tests/e2e/output/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeApiKey, findActiveApiKeyByHash } from '@warden/db';
import { hashApiKey } from '@warden/domain';
import { call, startTestApi, type TestApi } from '../support/api.js';
import {
  change,
  sha,
  startTestExecutor,
  submission,
  tempWorkspace,
  waitForChangeSet,
  type TempWorkspace,
  type TestExecutor,
} from '../support/executor.js';
import { startTestSupervisor, type TestSupervisor } from '../support/supervisor.js';

const OUTPUT = fileURLToPath(new URL('./output/', import.meta.url));
const TENANT = 'console-e2e';
const OWNER = 'Alice Reviewer';
/** Hostile text an agent controls: were it ever interpreted as HTML, the page would set `window.__xss`. */
const XSS = `<img src=x onerror="window.__xss='img'">`;
const SCRIPT = `</pre><script>window.__xss='script'</script>`;
const TASK_ID = `pay-${XSS}`;

/** The system Chromium (Debian's `chromium`); `npm test` installs it when missing (scripts/stack.mjs). */
function chromiumPath(): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
  ];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  try {
    return execFileSync('which', ['chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('no Chromium found: apt-get install -y chromium (or set CHROMIUM_PATH)');
  }
}

let api: TestApi;
let supervisor: TestSupervisor;
let executor: TestExecutor;
let ws: TempWorkspace;
let browser: Browser;
let person: string;
let agent: string;
let submitter: string;
let sequence = 0;

beforeAll(async () => {
  await mkdir(OUTPUT, { recursive: true });
  api = await startTestApi();
  ws = await tempWorkspace({ 'docs/readme.md': 'readme\n' });
  supervisor = await startTestSupervisor({ databaseUrl: api.database.url, prefix: api.prefix });
  executor = await startTestExecutor({
    databaseUrl: api.database.url,
    prefix: api.prefix,
    workspaces: { app: ws.root },
  });
  person = await api.createKey(
    TENANT,
    [
      'tasks:read',
      'tasks:approve',
      'changesets:approve',
      'lead:read',
      'lead:run',
      'triggers:read',
      'triggers:write',
    ],
    OWNER,
  );
  agent = await api.createKey(TENANT, ['events:write', 'tasks:read'], 'agent-bot');
  submitter = await api.createKey(TENANT, ['changesets:write'], 'agent-bot');
  browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox; the pages are our own.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await executor?.stop();
  await supervisor?.stop();
  await api?.stop();
  await ws?.remove();
});

/** A fresh browser context; any dialog (an `alert` an XSS payload could raise) fails the test. */
async function newPage(): Promise<{ context: BrowserContext; page: Page; dialogs: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return { context, page, dialogs };
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${api.url}/console`);
  await expect.poll(() => page.url()).toContain('/console/sign-in');
  // Keyboard only: the field has focus on arrival, Enter submits. Typing starts once it has (on a loaded
  // machine the page may still be settling), and Enter only once every character landed.
  const focused = () =>
    page.evaluate(
      () =>
        (globalThis as unknown as { document: { activeElement: { id?: string } | null } }).document
          .activeElement?.id ?? null,
    );
  await expect.poll(focused).toBe('api_key');
  await page.keyboard.type(key);
  await expect.poll(() => page.locator('#api_key').inputValue()).toBe(key);
  await page.keyboard.press('Enter');
  await page.waitForLoadState('domcontentloaded');
}

const noXss = (page: Page) => page.evaluate(() => (globalThis as unknown as { __xss?: string }).__xss);

async function sendEvent(taskId: string, eventType: string, payload: Record<string, unknown>) {
  const res = await call(`${api.url}/v1/events`, {
    key: agent,
    body: { event_id: `e2e-${++sequence}`, task_id: taskId, event_type: eventType, payload },
  });
  expect(res.status).toBe(202);
}

describe('the console in a browser', () => {
  it('should sign a person in, show a PAUSE live, and release it with an audited reason', async () => {
    const { context, page, dialogs } = await newPage();
    await signIn(page, person);
    await expect.poll(() => page.url()).toContain('/console/inbox');
    await expect.poll(() => page.locator('#inbox').getAttribute('data-live')).toBe('connected');
    // A marker that a reload would wipe: the item must arrive while it stays.
    await page.evaluate(() => ((globalThis as unknown as { __marker: number }).__marker = 42));

    await sendEvent(TASK_ID, 'TASK_CREATED', { agent_spec: { name: XSS, capabilities: [] } });
    await sendEvent(TASK_ID, 'TASK_STEP_COMPLETED', {
      risk_indicators: { error_rate: 0.9, resource_usage: 0.95 },
      result: { note: SCRIPT },
    });
    const item = page.locator('li[data-kind="gate"]', { hasText: TASK_ID });
    await item.waitFor({ timeout: 20_000 });
    expect(await page.evaluate(() => (globalThis as unknown as { __marker?: number }).__marker)).toBe(42);
    await page.screenshot({ path: `${OUTPUT}inbox.png`, fullPage: true });

    await item.getByRole('link', { name: TASK_ID }).click();
    await page.waitForURL(/\/console\/tasks\//);
    await expect.poll(() => page.locator('#task-status').textContent()).toBe('paused');
    expect(await page.locator('.chain.ok').count()).toBe(1);
    await page.screenshot({ path: `${OUTPUT}gate.png`, fullPage: true });

    // A reason is required: the browser will not send the form without one.
    await page.getByRole('button', { name: 'Release' }).click();
    expect(page.url()).toMatch(/\/console\/tasks\//);
    // Keyboard only: the labelled field, then Tab to the button and Enter.
    await page.getByLabel('Why may the task go on? (required)').focus();
    await page.keyboard.type(`checked the step ${XSS}`);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#task-status').textContent()).toBe('running');

    const task = await call(`${api.url}/v1/tasks/${encodeURIComponent(TASK_ID)}`, { key: person });
    expect(task.body.status).toBe('running');
    const audits = await call(`${api.url}/v1/tasks/${encodeURIComponent(TASK_ID)}/audits`, { key: person });
    const release = audits.body.items.find((a: { event_type: string }) => a.event_type === 'GATE_RELEASED');
    expect(release.payload).toMatchObject({ released_by_owner: OWNER, note: `checked the step ${XSS}` });
    // The audited reason is shown as text on the page.
    await expect
      .poll(() => page.locator('td pre', { hasText: 'checked the step <img src=x onerror=' }).count())
      .toBeGreaterThan(0);

    expect(await noXss(page)).toBeUndefined();
    expect(dialogs).toEqual([]);
    await context.close();
  });

  it('should render a change set diff and execute it once approved', async () => {
    const id = 'cs-console-1';
    const hostile = `{"title": "${SCRIPT}"}\n`;
    const body = submission({
      changesetId: id,
      workspace: 'app',
      changes: [
        change.create(`docs/${id}.schema.json`, hostile),
        {
          operation: 'update',
          path: 'docs/readme.md',
          old_content: 'readme\n',
          old_hash: sha('readme\n'),
          new_content: `readme\n${XSS}\n`,
          new_hash: sha(`readme\n${XSS}\n`),
        },
      ],
    });
    const submitted = await call(`${api.url}/v1/changesets`, { key: submitter, body });
    expect(submitted.status).toBe(201);
    expect(submitted.body.verdict.verdict).toBe('NEED_APPROVAL');

    const { context, page, dialogs } = await newPage();
    await signIn(page, person);
    await page.locator('li[data-kind="changeset"]', { hasText: id }).waitFor();
    await page.getByRole('link', { name: id }).click();
    await page.waitForURL(/\/console\/changesets\//);
    // diff2html drew both files; the hostile content is text, not markup.
    expect(await page.locator('.d2h-file-wrapper').count()).toBe(2);
    await expect.poll(() => page.locator('.d2h-code-line-ctn', { hasText: 'window.__xss' }).count()).toBe(2);
    expect(await page.locator('#checksum').textContent()).toBe(submitted.body.checksum);
    await page.screenshot({ path: `${OUTPUT}changeset.png`, fullPage: true });

    await page.getByLabel(/Why may it be applied\?/).fill(`diff read ${XSS}`);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/\/console\/changesets\//);
    const row = await waitForChangeSet(api.db, TENANT, id, ['completed']);
    expect(row.approval_state).toBe('approved');
    expect(await ws.read(`docs/${id}.schema.json`)).toBe(hostile);
    const view = await call(`${api.url}/v1/changesets/${id}`, { key: person });
    expect(view.body).toMatchObject({ status: 'completed', approval: { checksum: submitted.body.checksum } });

    expect(await noXss(page)).toBeUndefined();
    expect(dialogs).toEqual([]);
    await context.close();
  });

  it('should show the findings and triggers pages, escaping finding text', async () => {
    await api.db
      .insertInto('lead_findings')
      .values({
        tenant_id: TENANT,
        fingerprint: 'f00dfacef00dface',
        code: 'E2E_FINDING',
        severity: 'HIGH',
        title: `finding ${XSS}`,
        description: SCRIPT,
        window_kind: '24h',
        dimensions: JSON.stringify({}),
        first_seen_at: new Date(),
        last_seen_at: new Date(),
        evidence: JSON.stringify({}),
      })
      .execute();
    const trigger = await call(`${api.url}/v1/triggers`, {
      key: await api.createKey(TENANT, ['triggers:write'], 'ops'),
      body: {
        event_name: 'nightly-report',
        expression: '0 3 * * *',
        timezone: 'UTC',
        agent: { queue: 'report-agent' },
      },
    });
    expect(trigger.status).toBe(201);

    const { context, page, dialogs } = await newPage();
    await signIn(page, person);
    await page.locator('li[data-kind="finding"]', { hasText: `finding ${XSS}` }).waitFor();
    await page.getByRole('link', { name: 'Findings' }).click();
    await page.waitForURL(/\/console\/findings/);
    await page.screenshot({ path: `${OUTPUT}findings.png`, fullPage: true });
    await page.getByRole('button', { name: `Resolve finding ${XSS}` }).click();
    await page.waitForURL(/\/console\/findings/);
    const finding = await call(`${api.url}/v1/lead/findings/f00dfacef00dface`, { key: person });
    expect(finding.body.status).toBe('resolved');

    await page.getByRole('link', { name: 'Triggers' }).click();
    await page.waitForURL(/\/console\/triggers/);
    await page.screenshot({ path: `${OUTPUT}triggers.png`, fullPage: true });
    await page.getByRole('button', { name: 'Pause nightly-report' }).click();
    await page.getByRole('button', { name: 'Resume nightly-report' }).waitFor();
    const status = await call(`${api.url}/v1/triggers/nightly-report`, { key: person });
    expect(status.body.paused ?? status.body.status?.paused).toBeTruthy();

    expect(await noXss(page)).toBeUndefined();
    expect(dialogs).toEqual([]);
    await context.close();
  });

  it("should refuse to sign in an agent's key (events:write)", async () => {
    const { context, page } = await newPage();
    await signIn(page, agent);
    expect(page.url()).toContain('/console/sign-in');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('agent keys cannot sign in');
    await page.screenshot({ path: `${OUTPUT}sign-in-refused.png`, fullPage: true });
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'warden_console')).toBeUndefined();
    // Nothing behind the sign-in answers without a session.
    const inbox = await page.request.get(`${api.url}/console/inbox/items`, {
      headers: { accept: 'application/json' },
    });
    expect(inbox.status()).toBe(401);
    await context.close();
  });

  it('should refuse a state change without the CSRF token, and end the session of a revoked key', async () => {
    const second = await api.createKey(TENANT, ['tasks:read', 'tasks:approve'], 'Bob Reviewer');
    const { context, page } = await newPage();
    await signIn(page, second);
    await expect.poll(() => page.url()).toContain('/console/inbox');
    const cookie = (await context.cookies()).find((c) => c.name === 'warden_console');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });

    // Same cookie, no token (what a forged cross-site form would send): 403, and nothing changes.
    const forged = await page.request.post(`${api.url}/console/tasks/t/unblock`, {
      form: { reason: 'forged' },
      headers: { accept: 'application/json' },
    });
    expect(forged.status()).toBe(403);
    const wrong = await page.request.post(`${api.url}/console/tasks/t/unblock`, {
      form: { reason: 'forged', _csrf: 'x'.repeat(43) },
      headers: { accept: 'application/json' },
    });
    expect(wrong.status()).toBe(403);

    const record = await findActiveApiKeyByHash(api.db, hashApiKey(second));
    await revokeApiKey(api.db, record!.keyId);
    await page.goto(`${api.url}/console/inbox`);
    expect(page.url()).toContain('/console/sign-in');
    await context.close();
  });
});
