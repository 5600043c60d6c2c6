import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/*
 * The Prometheus alert rules (infra/prometheus/alerts.yml), checked by promtool itself: the rule file and the
 * config that loads it are valid, and the unit tests in alerts.test.yml pass — each alert fires on a synthetic
 * series above its threshold and stays quiet below. Also that every alert has such a case, points at its
 * section of docs/runbook.md, and that compose mounts the rules where Prometheus looks for them.
 * tests/deploy/dashboard.test.ts checks that the metrics the rules query are ones the code exports.
 *
 * promtool comes with Prometheus; `npm run setup` installs it (Debian's `prometheus` package) when it runs as
 * root with apt-get, and otherwise says what to install. Without it these tests fail rather than pass unseen.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = 'infra/prometheus/alerts.yml';
const RULE_TESTS = 'infra/prometheus/alerts.test.yml';
const CONFIG = 'infra/prometheus/prometheus.yml';
const RUNBOOK = 'docs/runbook.md';
const SEVERITIES = ['warning', 'critical'];

type Json = Record<string, any>;

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const parseYaml = (path: string) => parse(read(path), { merge: true, prettyErrors: true }) as Json;

interface PromtoolRun {
  code: number | null;
  output: string;
}

/** `promtool …` from the repository root; a missing promtool fails with what to install. */
function promtool(...args: string[]): PromtoolRun {
  const result = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(
      "promtool is not installed: run `npm run setup` as root (it installs Debian's prometheus package), or install Prometheus so that promtool is on PATH",
    );
  }
  if (result.error) throw result.error;
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

const rules = parseYaml(RULES);
const alerts = ((rules.groups ?? []) as Json[]).flatMap((group) =>
  ((group.rules ?? []) as Json[]).filter((rule) => rule.alert !== undefined),
);
const alertNames = alerts.map((rule) => String(rule.alert));
const ALERT_CASES = alerts.map((rule) => [String(rule.alert), rule] as const);

const ruleTests = parseYaml(RULE_TESTS);
const alertChecks = ((ruleTests.tests ?? []) as Json[]).flatMap((test) =>
  ((test.alert_rule_test ?? []) as Json[]).map((check) => ({
    test: String(test.name),
    alertname: String(check.alertname),
    fires: ((check.exp_alerts ?? []) as Json[]).length > 0,
  })),
);

const runbook = read(RUNBOOK);
/** The `#### Name` headings of the runbook's Alerts section. */
const runbookAlerts = (() => {
  const start = runbook.indexOf('\n## Alerts\n');
  const end = runbook.indexOf('\n## ', start + 1);
  const section = start < 0 ? '' : runbook.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^#### (\S+)\s*$/gm)].map((m) => m[1]!);
})();

describe('alert rules', () => {
  describe('promtool', () => {
    it('should accept the rule file', () => {
      const run = promtool('check', 'rules', RULES);
      expect(run.output, `promtool check rules ${RULES}`).toContain(`SUCCESS: ${alerts.length} rules found`);
      expect(run.code, run.output).toBe(0);
    });

    it('should accept the Prometheus config together with the rule files it loads', () => {
      const run = promtool('check', 'config', CONFIG);
      expect(run.code, run.output).toBe(0);
      expect(run.output, `promtool check config ${CONFIG} must load ${RULES}`).toContain(`Checking ${RULES}`);
    });

    it('should pass the unit tests of every alert', () => {
      const run = promtool('test', 'rules', RULE_TESTS);
      expect(run.code, run.output).toBe(0);
      expect(run.output).toContain('SUCCESS');
    });
  });

  describe('rules', () => {
    it('should define alerts with unique names', () => {
      expect(alertNames.length, `${RULES}: no alerts`).toBeGreaterThan(0);
      expect(new Set(alertNames).size, `${RULES}: an alert name is used twice`).toBe(alertNames.length);
    });

    it.each(ALERT_CASES)('should give %s a severity, a summary and its runbook section', (name, rule) => {
      expect(SEVERITIES, `${name}: labels.severity`).toContain(rule.labels?.severity);
      expect(String(rule.annotations?.summary ?? ''), `${name}: annotations.summary`).not.toBe('');
      expect(rule.annotations?.runbook, `${name}: annotations.runbook`).toBe(
        `${RUNBOOK}#${name.toLowerCase()}`,
      );
      expect(runbookAlerts, `${RUNBOOK}: no "#### ${name}" heading under "## Alerts"`).toContain(name);
    });

    it.each(ALERT_CASES)('should unit-test %s both firing and quiet', (name) => {
      const checks = alertChecks.filter((check) => check.alertname === name);
      expect(
        checks.some((check) => check.fires),
        `${RULE_TESTS}: no alert_rule_test where ${name} fires`,
      ).toBe(true);
      expect(
        checks.some((check) => !check.fires),
        `${RULE_TESTS}: no alert_rule_test where ${name} stays quiet (exp_alerts: [])`,
      ).toBe(true);
    });

    it('should unit-test only alerts that exist, and document only alerts that exist', () => {
      for (const check of alertChecks) {
        expect(alertNames, `${RULE_TESTS} "${check.test}": unknown alert`).toContain(check.alertname);
      }
      for (const name of runbookAlerts) {
        expect(alertNames, `${RUNBOOK} documents ${name}, which ${RULES} does not define`).toContain(name);
      }
    });
  });

  describe('deployment', () => {
    it('should load the rule file from the Prometheus config, and compose should mount it there', () => {
      const config = parseYaml(CONFIG);
      const ruleFiles = ((config.rule_files ?? []) as string[]).map(String);
      expect(ruleFiles, `${CONFIG}: rule_files`).toContain('alerts.yml');
      const prometheus = (parseYaml('docker-compose.yml').services ?? {}).prometheus as Json | undefined;
      expect(prometheus, 'compose: service "prometheus" is missing').toBeDefined();
      const mounts = ((prometheus!.volumes ?? []) as unknown[]).map(String);
      const configMount = mounts.find((m) => m.startsWith(`./${CONFIG}:`));
      expect(configMount, `compose prometheus: must mount ${CONFIG}`).toBeDefined();
      // rule_files resolve against the config file's directory inside the container.
      const configInContainer = configMount!.split(':')[1]!;
      const rulesInContainer = posix.join(posix.dirname(configInContainer), 'alerts.yml');
      expect(mounts, `compose prometheus: must mount ${RULES} at ${rulesInContainer}`).toContain(
        `./${RULES}:${rulesInContainer}:ro`,
      );
    });
  });
});
