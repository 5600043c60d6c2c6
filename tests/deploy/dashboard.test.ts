import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createMetricsRegistry, Registry } from '@warden/observability';

/*
 * The Grafana dashboards (infra/grafana) and the alert rules (infra/prometheus/alerts.yml) against the code:
 * every metric a panel or a rule queries must be one a service exports, so a renamed metric fails here instead
 * of leaving a panel empty and an alert silent. The exported names come from the code itself: the
 * `create…Metrics` factories of services/ and packages/ (wherever they live) and the process metrics every
 * registry gets (createMetricsRegistry in packages/observability), registered on registries of this test's
 * own; a histogram `x` is scraped as `x_bucket`, `x_sum` and `x_count`, and no prefix is added. Also: the
 * dashboards cover what operators watch, their PromQL parses (promtool), and compose provisions them with
 * the datasource they name.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = 'infra/prometheus/alerts.yml';
const DASHBOARDS_DIR = 'infra/grafana/dashboards';
const DATASOURCES_DIR = 'infra/grafana/provisioning/datasources';
const PROVIDERS_DIR = 'infra/grafana/provisioning/dashboards';
/** Series Prometheus makes itself for every target, not exported by any service. */
const PROMETHEUS_SERIES = new Set(['up']);

type Json = Record<string, any>;

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const parseYaml = (path: string) => parse(read(path), { merge: true, prettyErrors: true }) as Json;
const yamlFiles = (dir: string) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => `${dir}/${f}`);

// ---------------------------------------------------------------------------------------------------------
// What the code exports.

/** The names a metric is scraped under (prom-client's `type` is the string Prometheus's `# TYPE` line shows). */
function seriesNames(metric: { name: string; type: unknown }): string[] {
  switch (String(metric.type)) {
    case 'histogram':
      return [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`];
    case 'summary':
      return [metric.name, `${metric.name}_sum`, `${metric.name}_count`];
    default:
      return [metric.name];
  }
}

function registeredSeries(registry: Registry): string[] {
  return registry
    .getMetricsAsArray()
    .flatMap((metric) => seriesNames(metric as { name: string; type: unknown }));
}

/** Every `.ts` file under `dir`, recursively. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const METRIC_CONSTRUCTOR = /new (Counter|Gauge|Histogram|Summary)\b/;

/**
 * Series name → who exports it. Wherever a service or package constructs prom-client metrics, its exported
 * `create…Metrics` factories run on a registry of their own, as in the service (a database handle is only
 * read when Prometheus scrapes, which this never does, so a stand-in serves). Metrics constructed outside
 * such a factory are read from the source: `new Counter({ name: '…'`.
 */
async function exportedSeries(): Promise<Map<string, string>> {
  const exported = new Map<string, string>();
  for (const name of registeredSeries(createMetricsRegistry('dashboard-test'))) {
    exported.set(name, 'packages/observability (process metrics)');
  }
  const notAQueryableDatabase = {};
  const files = ['services', 'packages']
    .flatMap((top) => readdirSync(join(ROOT, top)).map((name) => join(ROOT, top, name, 'src')))
    .filter((dir) => existsSync(dir))
    .flatMap(sourceFiles)
    .sort();
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    if (!METRIC_CONSTRUCTOR.test(source)) continue;
    const where = file.slice(ROOT.length + 1);
    if (/export (async )?function create\w*Metrics\b/.test(source)) {
      const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const [factoryName, factory] of Object.entries(module)) {
        if (!/^create\w*Metrics$/.test(factoryName) || typeof factory !== 'function') continue;
        const registry = new Registry();
        (factory as (...args: unknown[]) => unknown)(registry, notAQueryableDatabase);
        for (const name of registeredSeries(registry)) exported.set(name, `${where} (${factoryName})`);
      }
    } else {
      for (const match of source.matchAll(
        /new (Counter|Gauge|Histogram|Summary)\(\{\s*name:\s*['"`]([\w:]+)['"`]/g,
      )) {
        for (const name of seriesNames({ name: match[2]!, type: match[1]!.toLowerCase() }))
          exported.set(name, where);
      }
    }
  }
  return exported;
}

// ---------------------------------------------------------------------------------------------------------
// What the dashboards and rules query.

/** PromQL words that look like metric names but are not. */
const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
  'atan2',
]);

/**
 * The metric names a PromQL expression reads. Strips what can hold other identifiers — strings, label
 * matchers, ranges, Grafana variables, `by (…)`-style label lists — then takes each remaining identifier
 * that is not a keyword and not a function call.
 */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, ' ');
  const names = new Set<string>();
  for (const match of bare.matchAll(/(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()/g)) {
    if (!PROMQL_KEYWORDS.has(match[1]!.toLowerCase())) names.add(match[1]!);
  }
  return [...names];
}

interface Query {
  /** Where it is, for messages: `<file> panel "<title>" <refId>` or `<file> alert <name>`. */
  where: string;
  expr: string;
}

interface Panel extends Json {
  id: number;
  type: string;
  title: string;
}

/** Every panel of a dashboard, rows' own panels included. */
function panelsOf(dashboard: Json): Panel[] {
  return ((dashboard.panels ?? []) as Panel[]).flatMap((panel) => [
    panel,
    ...((panel.panels ?? []) as Panel[]),
  ]);
}

const dashboardFiles = readdirSync(join(ROOT, DASHBOARDS_DIR))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => `${DASHBOARDS_DIR}/${f}`);
const dashboards = dashboardFiles.map((file) => ({ file, dashboard: JSON.parse(read(file)) as Json }));

const panelQueries: Query[] = dashboards.flatMap(({ file, dashboard }) =>
  panelsOf(dashboard).flatMap((panel) =>
    ((panel.targets ?? []) as Json[]).map((target) => ({
      where: `${file} panel "${panel.title}" ${target.refId}`,
      expr: String(target.expr ?? ''),
    })),
  ),
);

const ruleQueries: Query[] = ((parseYaml(RULES).groups ?? []) as Json[]).flatMap((group) =>
  ((group.rules ?? []) as Json[]).map((rule) => ({
    where: `${RULES} ${rule.alert ? `alert ${rule.alert}` : `record ${rule.record}`}`,
    expr: String(rule.expr),
  })),
);

/** Metric names queried anywhere in `queries`. */
const queriedNames = (queries: Query[]) => new Set(queries.flatMap((q) => metricNamesIn(q.expr)));

// ---------------------------------------------------------------------------------------------------------

describe('metric names', () => {
  let exported: Map<string, string>;

  beforeAll(async () => {
    exported = await exportedSeries();
  });

  it('should read metric names out of PromQL, and nothing else', () => {
    expect(
      metricNamesIn(
        'sum by (le, route) (rate(http_request_duration_seconds_bucket{status=~"5..", route!="x"}[$__rate_interval])) / 1e3',
      ),
    ).toEqual(['http_request_duration_seconds_bucket']);
    expect(
      metricNamesIn('a_total unless a_total offset 15m or on (job) group_left (x) time() - b > 26 * 3600'),
    ).toEqual(['a_total', 'b']);
    expect(metricNamesIn('max by (tenant_id, event_name) (cron_circuit_breaker_open) == 1')).toEqual([
      'cron_circuit_breaker_open',
    ]);
  });

  it('should find the metrics of every service among those the code exports', () => {
    // A guard on the collection itself: an empty or partial map would let everything below pass.
    for (const name of [
      'http_request_duration_seconds_bucket',
      'supervisor_inbox_pending',
      'cron_trigger_delay_seconds_count',
      'lead_findings_total',
      'executor_changesets_total',
      'process_resident_memory_bytes',
    ]) {
      expect(exported.has(name), `${name} is not among the exported series`).toBe(true);
    }
  });

  it('should query only metrics the code exports, in every alert rule', () => {
    expect(ruleQueries.length, `${RULES}: no rules`).toBeGreaterThan(0);
    for (const query of ruleQueries) {
      const names = metricNamesIn(query.expr);
      expect(names.length, `${query.where}: queries no metric`).toBeGreaterThan(0);
      for (const name of names) {
        expect(
          exported.has(name) || PROMETHEUS_SERIES.has(name),
          `${query.where}: "${name}" is not exported by any service`,
        ).toBe(true);
      }
    }
  });

  it('should query only metrics the code exports, in every dashboard panel', () => {
    expect(panelQueries.length, `${DASHBOARDS_DIR}: no panel queries`).toBeGreaterThan(0);
    for (const query of panelQueries) {
      const names = metricNamesIn(query.expr);
      expect(names.length, `${query.where}: queries no metric`).toBeGreaterThan(0);
      for (const name of names) {
        expect(
          exported.has(name) || PROMETHEUS_SERIES.has(name),
          `${query.where}: "${name}" is not exported by any service`,
        ).toBe(true);
      }
    }
  });
});

describe('dashboards', () => {
  it('should have at least one dashboard, each with a unique uid and unique panel ids', () => {
    expect(dashboardFiles.length, `${DASHBOARDS_DIR}: no dashboards`).toBeGreaterThan(0);
    const uids = dashboards.map(({ dashboard }) => dashboard.uid);
    expect(new Set(uids).size, `${DASHBOARDS_DIR}: dashboard uids`).toBe(dashboards.length);
    for (const { file, dashboard } of dashboards) {
      expect(String(dashboard.uid ?? ''), `${file}: uid`).not.toBe('');
      expect(String(dashboard.title ?? ''), `${file}: title`).not.toBe('');
      const ids = panelsOf(dashboard).map((p) => p.id);
      expect(new Set(ids).size, `${file}: panel ids must be unique`).toBe(ids.length);
    }
  });

  it('should lay panels out on the 24-column grid without overlaps', () => {
    for (const { file, dashboard } of dashboards) {
      const boxes = panelsOf(dashboard).map((p) => {
        const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
        return { title: p.title, x, y, w, h };
      });
      for (const box of boxes) {
        expect(box.x + box.w, `${file} panel "${box.title}": wider than the grid`).toBeLessThanOrEqual(24);
      }
      for (const [i, a] of boxes.entries()) {
        for (const b of boxes.slice(i + 1)) {
          const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
          expect(overlap, `${file}: panels "${a.title}" and "${b.title}" overlap`).toBe(false);
        }
      }
    }
  });

  it('should give every panel but rows a query', () => {
    for (const { file, dashboard } of dashboards) {
      for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row' && p.type !== 'text')) {
        const exprs = ((panel.targets ?? []) as Json[]).map((t) => String(t.expr ?? '').trim());
        expect(
          exprs.length > 0 && exprs.every(Boolean),
          `${file} panel "${panel.title}": a target without expr`,
        ).toBe(true);
      }
    }
  });

  it('should show what operators watch: supervisor, scheduler, lead miner, executor, queues', () => {
    const names = queriedNames(panelQueries);
    const exprs = panelQueries.map((q) => q.expr);
    const wanted: [string, string[]][] = [
      ['supervisor backlog', ['supervisor_inbox_pending']],
      ['supervisor lag', ['supervisor_processing_lag_seconds']],
      ['supervisor decisions', ['supervisor_events_processed_total']],
      ['scheduler fires', ['cron_executions_total']],
      ['scheduler delays', ['cron_trigger_delay_seconds_bucket']],
      ['scheduler costs', ['cron_execution_cost_usd_sum', 'cron_execution_cost_usd_bucket']],
      ['scheduler breakers', ['cron_circuit_breaker_open']],
      ['lead miner findings', ['lead_findings_total']],
      ['executor outcomes', ['executor_changesets_total']],
      [
        'queues',
        ['events_ingested_total', 'api_enqueue_failures_total', 'supervisor_poller_reenqueued_total'],
      ],
    ];
    for (const [what, metrics] of wanted) {
      for (const metric of metrics)
        expect(names.has(metric), `no panel shows ${what} (${metric})`).toBe(true);
    }
    expect(
      exprs.some((e) => /supervisor_events_processed_total/.test(e) && /by \(decision_type\)/.test(e)),
      'no panel shows decisions by type (by (decision_type))',
    ).toBe(true);
  });

  it('should hold only PromQL that Prometheus parses', () => {
    // promtool parses rule files, so each query becomes a recording rule of a scratch file. Grafana's own
    // variables are not PromQL; they become the ranges Grafana would put in their place.
    const rules = panelQueries.map((query, i) => ({
      record: `dashboard_query_${i}`,
      expr: query.expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m'),
    }));
    const dir = mkdtempSync(join(tmpdir(), 'warden-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
      if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
        throw new Error(
          'promtool is not installed: run `npm run setup` as root, or install Prometheus (see tests/deploy/alerts.test.ts)',
        );
      }
      const output = `${result.stdout}${result.stderr}`;
      const failing = [...output.matchAll(/dashboard_query_(\d+)/g)].map(
        (m) => panelQueries[Number(m[1])]?.where,
      );
      expect(result.status, `promtool rejects dashboard queries: ${failing.join('; ')}\n${output}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('grafana provisioning', () => {
  const compose = parseYaml('docker-compose.yml');
  const services = (compose.services ?? {}) as Record<string, Json>;
  const grafana = services.grafana;
  const mounts = ((grafana?.volumes ?? []) as unknown[]).map(String);
  const datasources = yamlFiles(DATASOURCES_DIR).flatMap((f) => (parseYaml(f).datasources ?? []) as Json[]);
  const providers = yamlFiles(PROVIDERS_DIR).flatMap((f) => (parseYaml(f).providers ?? []) as Json[]);

  it('should run grafana in compose with the provisioning directory mounted', () => {
    expect(grafana, 'compose: service "grafana" is missing').toBeDefined();
    expect(String(grafana!.image), 'compose grafana: image').toMatch(/^grafana\/grafana:\d/);
    expect(mounts, 'compose grafana: must mount infra/grafana/provisioning').toContain(
      './infra/grafana/provisioning:/etc/grafana/provisioning:ro',
    );
    const published = ((grafana!.ports ?? []) as unknown[]).map(String);
    const apiPorts = ((services.api?.ports ?? []) as unknown[]).map((p) => String(p).split(':')[0]);
    for (const port of published) {
      expect(apiPorts, `compose grafana: host port ${port} is the api's`).not.toContain(port.split(':')[0]);
    }
  });

  it('should load the dashboards directory where the provider reads it', () => {
    const fileProviders = providers.filter((p) => (p.type ?? 'file') === 'file');
    expect(fileProviders.length, `${PROVIDERS_DIR}: no file provider`).toBeGreaterThan(0);
    for (const provider of fileProviders) {
      const path = String(provider.options?.path ?? '');
      expect(
        mounts,
        `compose grafana: provider "${provider.name}" reads ${path}, which is not mounted from ${DASHBOARDS_DIR}`,
      ).toContain(`./${DASHBOARDS_DIR}:${path}:ro`);
    }
  });

  it('should point the datasource at the compose Prometheus', () => {
    const prometheus = datasources.filter((d) => d.type === 'prometheus');
    expect(prometheus.length, `${DATASOURCES_DIR}: no prometheus datasource`).toBe(1);
    const url = new URL(String(prometheus[0]!.url));
    expect(Object.keys(services), `datasource url host ${url.hostname} is not a compose service`).toContain(
      url.hostname,
    );
    const published = ((services[url.hostname]?.ports ?? []) as unknown[]).map((p) =>
      String(p).split(':').pop(),
    );
    expect(published, `datasource url port ${url.port} is not the port ${url.hostname} listens on`).toContain(
      url.port,
    );
  });

  it('should name the provisioned datasource in every panel and query', () => {
    const uids = new Set(datasources.map((d) => String(d.uid)));
    for (const { file, dashboard } of dashboards) {
      for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
        expect(
          uids.has(String(panel.datasource?.uid)),
          `${file} panel "${panel.title}": datasource uid`,
        ).toBe(true);
        for (const target of (panel.targets ?? []) as Json[]) {
          expect(
            uids.has(String(target.datasource?.uid ?? panel.datasource?.uid)),
            `${file} panel "${panel.title}" ${target.refId}: datasource uid`,
          ).toBe(true);
        }
      }
    }
  });
});
