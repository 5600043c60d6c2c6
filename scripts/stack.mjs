#!/usr/bin/env node
// The two commands of the quick start, for a fresh machine with only Node and npm:
//   npm run up    set up, then run all five services in the foreground (Ctrl-C stops them all)
//   npm run up -- --prod    the same from the production build (`npm run build`, node dist/main.js, no tsx)
//   npm test      set up, then the formatting check, typecheck, lint, the import-cycle check and every test
// Set-up: pnpm (installed into .tools/ if missing), dependencies, Redis and Postgres reachable (started from
// installed binaries into .warden/ when nothing answers), the database created and migrated; for `npm test`
// also promtool, for the alert-rule tests (installed with apt-get as root, else named).
// Plain Node on purpose: it runs before any dependency is installed.
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const stateDir = join(root, '.warden');
const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/warden';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const SERVICES = [
  { name: 'api', entry: 'services/api/src/main.ts', portEnv: 'PORT', port: 3000 },
  {
    name: 'supervisor-worker',
    entry: 'services/supervisor-worker/src/main.ts',
    portEnv: 'OPS_PORT',
    port: 9101,
  },
  { name: 'scheduler', entry: 'services/scheduler/src/main.ts', portEnv: 'OPS_PORT', port: 9102 },
  { name: 'lead-miner', entry: 'services/lead-miner/src/main.ts', portEnv: 'OPS_PORT', port: 9103 },
  { name: 'executor', entry: 'services/executor/src/main.ts', portEnv: 'OPS_PORT', port: 9104 },
];

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, text) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
const step = (text) => console.log(paint('1;36', `▸ ${text}`));
const note = (text) => console.log(`  ${text}`);

class SetupError extends Error {}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env, ...options });
  if (result.error) throw new SetupError(`${command} could not be started: ${result.error.message}`);
  return result.status ?? 1;
}

function mustRun(command, args, what, options) {
  const status = run(command, args, options);
  if (status !== 0) throw new SetupError(`${what} failed (exit ${status})`);
}

// ── pnpm ────────────────────────────────────────────────────────────────────────────────────────────
function wantedPnpm() {
  const spec = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager ?? 'pnpm@10';
  return spec.replace(/^pnpm@/, '').split('+')[0];
}

function pnpmVersion(command) {
  const result = spawnSync(command, ['--version'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, COREPACK_ENABLE_STRICT: '0' },
  });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** The pnpm to use: one on PATH with the pinned major, else one installed into .tools/ (no root needed). */
function ensurePnpm() {
  const wanted = wantedPnpm();
  const major = wanted.split('.')[0];
  const onPath = pnpmVersion('pnpm');
  if (onPath && onPath.split('.')[0] === major) return 'pnpm';
  const local = join(root, '.tools', 'node_modules', '.bin', 'pnpm');
  if (existsSync(local) && pnpmVersion(local) === wanted) return local;
  step(`installing pnpm ${wanted} into .tools/`);
  mustRun(
    'npm',
    [
      'install',
      '--prefix',
      join(root, '.tools'),
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `pnpm@${wanted}`,
    ],
    'installing pnpm',
  );
  return local;
}

// ── Redis and Postgres ──────────────────────────────────────────────────────────────────────────────
function reachable(host, port, timeoutMs = 1500) {
  return new Promise((resolvePromise) => {
    const socket = connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolvePromise(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const isLocalHost = (host) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(host, port, seconds) {
  for (let i = 0; i < seconds * 5; i++) {
    if (await reachable(host, port, 500)) return true;
    await sleep(200);
  }
  return false;
}

function findBinary(name, extraDirs = []) {
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...extraDirs]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function postgresBinDirs() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .sort((a, b) => Number(b) - Number(a))
    .map((version) => join(base, version, 'bin'));
}

const INSTALL_HINT = `
  Install them, or point REDIS_URL / DATABASE_URL at running servers:
    Debian/Ubuntu:  sudo apt-get install -y redis-server postgresql
    macOS:          brew install redis postgresql@15
    Docker:         docker compose up -d redis postgres`;

async function ensureRedis(url) {
  const { hostname, port: portText } = new URL(url);
  const port = Number(portText || 6379);
  if (await reachable(hostname, port)) return note(`Redis     ${url} ✓`);
  const server = isLocalHost(hostname) ? findBinary('redis-server') : undefined;
  if (!server)
    throw new SetupError(`nothing answers at ${url} and no redis-server is installed here.${INSTALL_HINT}`);
  const dir = join(stateDir, 'redis');
  mkdirSync(dir, { recursive: true });
  step(`starting a local Redis on port ${port} (data in .warden/redis)`);
  // hz 100: timers (and so cron fires) wake within ~10 ms instead of ~100 ms.
  mustRun(
    server,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--daemonize',
      'yes',
      '--hz',
      '100',
      '--appendonly',
      'yes',
      '--logfile',
      join(dir, 'redis.log'),
    ],
    'starting Redis',
  );
  if (!(await waitFor('127.0.0.1', port, 10)))
    throw new SetupError(`Redis did not come up on port ${port}; see .warden/redis/redis.log`);
  note(`Redis     ${url} ✓ (started; stop it with: redis-cli -p ${port} shutdown)`);
}

async function ensurePostgres(url) {
  const { hostname, port: portText } = new URL(url);
  const port = Number(portText || 5432);
  if (await reachable(hostname, port)) return note(`Postgres  ${hostname}:${port} ✓`);
  const dirs = postgresBinDirs();
  const initdb = isLocalHost(hostname) ? findBinary('initdb', dirs) : undefined;
  const pgCtl = isLocalHost(hostname) ? findBinary('pg_ctl', dirs) : undefined;
  if (!initdb || !pgCtl)
    throw new SetupError(
      `nothing answers at ${hostname}:${port} and no Postgres server binaries (initdb, pg_ctl) are installed here.${INSTALL_HINT}`,
    );
  const dataDir = join(stateDir, 'postgres');
  // Postgres refuses to run as root; as root, run it as the "postgres" system user the packages create.
  const asRoot = process.getuid?.() === 0;
  // runuser lives in an sbin directory, which a user's PATH may not list.
  const runuser =
    ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p)) ?? 'runuser';
  const wrap = (cmd, args) => (asRoot ? [runuser, ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  mkdirSync(dataDir, { recursive: true });
  if (asRoot) mustRun('chown', ['-R', 'postgres', stateDir], 'giving .warden/ to the postgres user');
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    step('initializing a local Postgres cluster in .warden/postgres');
    mustRun(...wrap(initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8']), 'initdb');
  }
  step(`starting the local Postgres on port ${port}`);
  mustRun(
    ...wrap(pgCtl, [
      '-D',
      dataDir,
      '-l',
      join(dataDir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k /tmp`,
      'start',
    ]),
    'starting Postgres',
  );
  note(
    `Postgres  ${hostname}:${port} ✓ (started; stop it with: ${asRoot ? 'runuser -u postgres -- ' : ''}${pgCtl} -D ${dataDir} stop)`,
  );
}

// ── promtool ────────────────────────────────────────────────────────────────────────────────────────
const PROMTOOL_HINT = `
  tests/deploy/alerts.test.ts checks the alert rules with it. Install it:
    Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends prometheus   (provides /usr/bin/promtool)
    macOS:          brew install prometheus
    any system:     the promtool binary from a Prometheus release, on PATH`;

/**
 * Runs apt-get with its output appended to `log`, a file rather than a pipe: a daemon the package starts
 * inherits the descriptors, and would hold a pipe (and so this script's wait for it) open for ever.
 */
function aptGet(args, log) {
  const fd = openSync(log, 'a');
  try {
    writeSync(fd, `$ apt-get ${args.join(' ')}\n`);
    const result = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=120', ...args], {
      cwd: root,
      stdio: ['ignore', fd, fd],
      // Never ask a question, and never wait on a prompt or a lock for ever.
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 5 * 60_000,
    });
    return result.status === 0;
  } finally {
    closeSync(fd);
  }
}

/**
 * promtool checks and unit-tests the Prometheus alert rules in infra/prometheus. As root with apt-get, it
 * comes with Debian's `prometheus` package (refreshing the package lists when the first try fails);
 * otherwise set-up says what to install and goes on, since only that one test needs it.
 */
function ensurePromtool() {
  const found = findBinary('promtool');
  if (found) return note(`promtool  ${found} ✓`);
  if (process.getuid?.() !== 0 || !findBinary('apt-get')) return note(`promtool  not found.${PROMTOOL_HINT}`);
  step('installing promtool (Debian package prometheus)');
  mkdirSync(stateDir, { recursive: true });
  const log = join(stateDir, 'apt-prometheus.log');
  writeFileSync(log, '');
  // No recommends: they would add prometheus-node-exporter, another daemon nobody asked for.
  const install = ['install', '-y', '--no-install-recommends', 'prometheus'];
  const installed = aptGet(install, log) || (aptGet(['update'], log) && aptGet(install, log));
  const promtool = findBinary('promtool');
  if (installed && promtool) return note(`promtool  ${promtool} ✓ (installed)`);
  note(`promtool  could not be installed; see .warden/apt-prometheus.log.${PROMTOOL_HINT}`);
}

const BWRAP_HINT = `
  tests/integration/executor-sandbox.test.ts runs verifications inside it (the executor's sandbox). Install it:
    Debian/Ubuntu:  sudo apt-get install -y --no-install-recommends bubblewrap   (provides /usr/bin/bwrap)`;

/** bubblewrap for the executor's verification sandbox, installed like promtool. */
function ensureBwrap() {
  const found = findBinary('bwrap');
  if (found) return note(`bwrap     ${found} ✓`);
  if (process.getuid?.() !== 0 || !findBinary('apt-get')) return note(`bwrap     not found.${BWRAP_HINT}`);
  step('installing bwrap (Debian package bubblewrap)');
  mkdirSync(stateDir, { recursive: true });
  const log = join(stateDir, 'apt-bubblewrap.log');
  writeFileSync(log, '');
  const install = ['install', '-y', '--no-install-recommends', 'bubblewrap'];
  const installed = aptGet(install, log) || (aptGet(['update'], log) && aptGet(install, log));
  const bwrap = findBinary('bwrap');
  if (installed && bwrap) return note(`bwrap     ${bwrap} ✓ (installed)`);
  note(`bwrap     could not be installed; see .warden/apt-bubblewrap.log.${BWRAP_HINT}`);
}

const CHROMIUM_HINT = `
  tests/e2e/console.test.ts drives the console in it (headless, through playwright-core). Install it:
    Debian/Ubuntu:  sudo apt-get install -y chromium   (or set CHROMIUM_PATH to a Chromium or Chrome binary)`;

/** The system Chromium for the console's browser test (browser downloads are not possible), installed like promtool. */
function ensureChromium() {
  const found = process.env.CHROMIUM_PATH || findBinary('chromium') || findBinary('chromium-browser');
  if (found) return note(`chromium  ${found} ✓`);
  if (process.getuid?.() !== 0 || !findBinary('apt-get')) return note(`chromium  not found.${CHROMIUM_HINT}`);
  step('installing chromium (Debian package chromium)');
  mkdirSync(stateDir, { recursive: true });
  const log = join(stateDir, 'apt-chromium.log');
  writeFileSync(log, '');
  const install = ['install', '-y', 'chromium'];
  const installed = aptGet(install, log) || (aptGet(['update'], log) && aptGet(install, log));
  const chromium = findBinary('chromium');
  if (installed && chromium) return note(`chromium  ${chromium} ✓ (installed)`);
  note(`chromium  could not be installed; see .warden/apt-chromium.log.${CHROMIUM_HINT}`);
}

// ── set-up ──────────────────────────────────────────────────────────────────────────────────────────
async function setup() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 19))
    throw new SetupError(`Node ${process.versions.node} is too old: Warden needs Node 20.19 or newer`);
  process.env.DATABASE_URL ??= DEFAULT_DATABASE_URL;
  process.env.REDIS_URL ??= DEFAULT_REDIS_URL;

  const pnpm = ensurePnpm();
  step('installing dependencies');
  mustRun(
    pnpm,
    ['install', '--frozen-lockfile', '--reporter=append-only', '--loglevel=warn'],
    'pnpm install',
  );

  step('checking Redis and Postgres');
  await ensureRedis(process.env.REDIS_URL);
  await ensurePostgres(process.env.DATABASE_URL);

  // `npm run warden` runs this build while it is current (a command then starts in a fraction of a second).
  step('building the CLI (when older than its sources)');
  mustRun(
    process.execPath,
    [join(root, 'scripts', 'build.mjs'), '--if-stale', 'packages/cli'],
    'the CLI build',
  );

  step('creating and migrating the database');
  mustRun(pnpm, ['--silent', 'warden', 'migrate', '--create-db'], 'migration');
  return pnpm;
}

// ── npm test ────────────────────────────────────────────────────────────────────────────────────────
async function test() {
  const pnpm = await setup();
  // Only the tests need promtool (the alert-rule checks); `npm run up` does not install it.
  ensurePromtool();
  ensureBwrap();
  ensureChromium();
  // Tests make a database of their own per file on the same server, and a queue prefix of their own.
  process.env.TEST_DATABASE_URL ??= process.env.DATABASE_URL;
  process.env.TEST_REDIS_URL ??= process.env.REDIS_URL;
  mkdirSync(stateDir, { recursive: true });
  const report = join(stateDir, 'vitest-report.json');
  const checks = [
    ['formatting', ['format:check']],
    ['typecheck', ['typecheck']],
    ['lint', ['lint']],
    ['import cycles', ['check:cycles']],
    [
      'tests',
      ['exec', 'vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
    ],
  ];
  const failed = [];
  for (const [name, args] of checks) {
    step(name);
    if (run(pnpm, args) !== 0) failed.push(name);
  }
  if (existsSync(report)) {
    const { numPassedTests, numFailedTests, numPendingTests } = JSON.parse(readFileSync(report, 'utf8'));
    // The plain closing line CI reads, whatever the runner.
    console.log(`\ntests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests} skipped`);
  }
  if (failed.length > 0) {
    console.error(paint('1;31', `✗ failed: ${failed.join(', ')}`));
    process.exit(1);
  }
  console.log(paint('1;32', '✓ all checks passed'));
}

// ── npm run up ──────────────────────────────────────────────────────────────────────────────────────
const LEVEL_COLORS = { fatal: '1;31', error: '31', warn: '33', info: '32', debug: '90', trace: '90' };

/** Service logs are JSON; in a terminal show them as one readable line each. */
function prettyLine(service, line) {
  const tag = paint('1;35', `[${service}]`.padEnd(20));
  try {
    const entry = JSON.parse(line);
    if (typeof entry !== 'object' || entry === null || !('msg' in entry)) throw new Error('not a log line');
    const { ts: _ts, level, msg, service: _service, err, error, ...rest } = entry;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined && v !== null && typeof v !== 'object')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    // The error's own words are what a person at the terminal needs; the stack stays in the JSON log.
    const failure = [err, error]
      .filter((e) => e && typeof e === 'object' && typeof e.message === 'string')
      .map((e) => `\n${' '.repeat(27)}${paint('31', `${e.type ?? 'Error'}: ${e.message}`)}`)
      .join('');
    return `${tag} ${paint(LEVEL_COLORS[level] ?? '0', String(level).padEnd(5))} ${msg}${extra ? paint('90', ` ${extra}`) : ''}${failure}`;
  } catch {
    return `${tag} ${line}`;
  }
}

async function httpStatus(url, key) {
  try {
    const response = await fetch(url, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(2000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/**
 * A development key of tenant "dev", kept in .warden/<name>-key and reused while it still works. Two of them,
 * because no key both writes an agent's events and approves (separation of duties): `dev-admin` (a person's:
 * reads, releases, approves) and `dev-agent` (what an agent sends events with); plus `dev-operator`, a platform
 * operator's key (no tenant) for Bull Board.
 */
async function devKey(pnpm, apiUrl, { name, scopes, owner, operator = false, probe }) {
  const file = join(stateDir, `${name}-key`);
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    // A tenant key: 404 for an unknown task means it authenticated; 401 means it is gone (e.g. a new
    // database). An operator key: Bull Board answers 200. `probe` also checks a scope a key of an older
    // checkout may lack (a 403 there makes a new key).
    const works = operator
      ? (await httpStatus(`${apiUrl}/admin/queues/api/queues`, key)) === 200
      : (await httpStatus(`${apiUrl}/v1/tasks/__dev_key_probe__`, key)) === 404 &&
        (!probe || (await httpStatus(`${apiUrl}${probe}`, key)) === 200);
    if (works) return key;
  }
  const create = operator
    ? ['keys', 'create-operator', '--owner', owner, '--name', name, '--json']
    : ['keys', 'create', '--tenant', 'dev', '--scopes', scopes, '--owner', owner, '--name', name, '--json'];
  const result = spawnSync(pnpm, ['--silent', 'warden', ...create], {
    cwd: root,
    encoding: 'utf8',
    env: process.env,
  });
  if (result.status !== 0)
    throw new SetupError(`could not create a development key: ${result.stderr.trim()}`);
  let key;
  try {
    key = JSON.parse(result.stdout).key;
  } catch {
    throw new SetupError(
      `could not read the development key from \`warden keys create --json\`: ${result.stdout.trim().slice(0, 200)}`,
    );
  }
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(file, key + '\n');
  chmodSync(file, 0o600);
  return key;
}

/** How a service starts: from its TypeScript source through tsx, or with `--prod` from its build in dist/. */
function serviceArgs(entry, prod) {
  return prod ? [entry.replace('/src/main.ts', '/dist/main.js')] : ['--import', 'tsx', entry];
}

async function up() {
  const prod = process.argv.slice(3).includes('--prod');
  const pnpm = await setup();
  if (prod) {
    step('building the services (npm run build; unchanged ones are kept)');
    mustRun(process.execPath, [join(root, 'scripts', 'build.mjs'), '--if-stale'], 'the production build');
  }
  // Handlers and health endpoints tried locally run on this machine: allow loopback for the local stack only
  // (production allows named hosts; docs/scheduler.md, "Egress").
  process.env.EGRESS_ALLOWED_HOSTS ??= 'localhost,127.0.0.1,::1';
  process.env.EGRESS_ALLOWED_CIDRS ??= '127.0.0.0/8,::1/128';
  if (process.env.EXECUTOR_WORKSPACES === undefined) {
    // A workspace to try change sets on, so the executor is useful out of the box.
    const workspace = join(stateDir, 'workspaces', 'default');
    mkdirSync(workspace, { recursive: true });
    process.env.EXECUTOR_WORKSPACES = JSON.stringify({ default: workspace });
  }
  for (const service of SERVICES) {
    service.port = Number(
      process.env[`WARDEN_${service.name.toUpperCase().replaceAll('-', '_')}_PORT`] ?? service.port,
    );
    // Something already listening would answer our readiness probes in the service's place.
    if (await reachable('127.0.0.1', service.port, 500)) {
      throw new SetupError(
        `port ${service.port} (${service.name}) is already in use — is Warden already running? Stop it, or move the service with WARDEN_${service.name.toUpperCase().replaceAll('-', '_')}_PORT=<port>`,
      );
    }
  }
  step(`starting the five services${prod ? ' from their build (dist/)' : ''}`);
  const children = new Map();
  let stopping = false;
  const stopAll = (code) => {
    if (stopping) return;
    stopping = true;
    console.log(paint('1;33', '\n▸ stopping all services…'));
    for (const child of children.values()) child.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const child of children.values()) child.kill('SIGKILL');
    }, 30_000);
    force.unref();
    const wait = setInterval(() => {
      if ([...children.values()].every((c) => c.exitCode !== null || c.signalCode !== null)) {
        clearInterval(wait);
        process.exit(code);
      }
    }, 100);
  };
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
  process.on('SIGHUP', () => stopAll(0));
  // However this script ends, it takes the services with it.
  process.on('exit', () => {
    for (const child of children.values())
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  /**
   * Starts one service and, when it dies on its own, starts it again after a pause that doubles per quick
   * death (1 s … 30 s; a run that lasted a minute resets it): one crashing service no longer takes the other
   * four down, and a crash loop does not spin.
   */
  const start = (service, attempt = 0) => {
    const port = service.port;
    const startedAt = Date.now();
    // Their own process group: Ctrl-C reaches only this script, which then stops each service exactly once
    // (a second signal would make a service skip its graceful stop).
    const child = spawn(process.execPath, serviceArgs(service.entry, prod), {
      cwd: root,
      env: { ...process.env, [service.portEnv]: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    children.set(service.name, child);
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) console.log(prettyLine(service.name, line));
      });
    }
    child.on('exit', (code, signal) => {
      if (stopping) return;
      const next = Date.now() - startedAt > 60_000 ? 0 : attempt + 1;
      const delayMs = Math.min(30_000, 1000 * 2 ** Math.max(0, next - 1));
      console.error(
        paint(
          '1;31',
          `✗ ${service.name} exited (${signal ?? `code ${code}`}); restarting it in ${delayMs / 1000} s`,
        ),
      );
      setTimeout(() => {
        if (!stopping) start(service, next);
      }, delayMs);
    });
  };
  for (const service of SERVICES) start(service);

  try {
    await reportWhenReady(pnpm, stopAll, () => stopping);
  } catch (error) {
    // Never leave the services running behind a failed start-up.
    console.error(paint('1;31', `✗ ${error instanceof Error ? error.message : String(error)}`));
    stopAll(1);
  }
}

/** Waits for every service's /readyz, then prints the URLs and the development key. */
async function reportWhenReady(pnpm, stopAll, isStopping) {
  const apiPort = SERVICES[0].port;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  for (const service of SERVICES) {
    let ready = false;
    for (let i = 0; i < 120 && !isStopping() && !ready; i++) {
      ready = (await httpStatus(`http://127.0.0.1:${service.port}/readyz`)) === 200;
      if (!ready) await sleep(250);
    }
    if (isStopping()) return;
    if (!ready) {
      console.error(
        paint('1;31', `✗ ${service.name} did not become ready on port ${service.port} within 30 s`),
      );
      return stopAll(1);
    }
  }
  // The CLI's HTTP commands find this API (and its admin key) from here: `npm run warden -- gates list` just works.
  writeFileSync(join(stateDir, 'api-url'), apiUrl + '\n');
  const key = await devKey(pnpm, apiUrl, {
    name: 'dev-admin',
    scopes: 'admin',
    owner: process.env.USER || 'developer',
  });
  // The agent also proposes change sets (`warden demo` submits one for the admin key to approve).
  const agentKey = await devKey(pnpm, apiUrl, {
    name: 'dev-agent',
    scopes: 'events:write,tasks:read,changesets:write',
    owner: 'dev-agent',
    probe: '/v1/changesets?limit=1',
  });
  // Bull Board shows every tenant's queues: it takes a platform operator's key, not a tenant's admin key.
  const operatorKey = await devKey(pnpm, apiUrl, {
    name: 'dev-operator',
    owner: process.env.USER || 'developer',
    operator: true,
  });
  const banner = [
    '',
    paint('1;32', '✓ Warden is up'),
    `  API           ${apiUrl}   (OpenAPI: ${apiUrl}/openapi.json)`,
    `  Console       ${apiUrl}/console   (sign in with the admin key below)`,
    `  Bull Board    ${apiUrl}/admin/queues   (user: anything, password: the operator key below)`,
    `  Admin key     ${key}   (tenant "dev"; saved in .warden/dev-admin-key)`,
    `  Agent key     ${agentKey}   (events:write, tasks:read, changesets:write; saved in .warden/dev-agent-key)`,
    `  Operator key  ${operatorKey}   (platform:operate, Bull Board; saved in .warden/dev-operator-key)`,
    `  Metrics       ${SERVICES.map((s) => `:${s.port}`).join(' ')}  at /metrics`,
    '',
    '  Send an event:',
    `    curl -s -X POST ${apiUrl}/v1/events -H "authorization: Bearer ${agentKey}" -H 'content-type: application/json' \\`,
    `      -d '{"event_id":"hello-1","task_id":"hello","event_type":"TASK_CREATED","payload":{}}'`,
    '',
    '  Or watch Warden at work:  npm run warden -- demo',
    '',
    '  Ctrl-C stops every service.',
    '',
  ];
  console.log(banner.join('\n'));
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────────
const commands = { up, test, setup: async () => void (await setup()) };
const name = process.argv[2];
if (!commands[name]) {
  console.error(`usage: node scripts/stack.mjs ${Object.keys(commands).join('|')}`);
  process.exit(2);
}
try {
  await commands[name]();
} catch (error) {
  if (error instanceof SetupError) {
    console.error(paint('1;31', `✗ ${error.message}`));
    process.exit(1);
  }
  throw error;
}
