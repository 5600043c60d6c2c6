import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig as loadApiConfig } from '../../services/api/src/config.js';
import { loadConfig as loadSupervisorConfig } from '../../services/supervisor-worker/src/config.js';
import { loadConfig as loadSchedulerConfig } from '../../services/scheduler/src/config.js';
import { loadConfig as loadLeadMinerConfig } from '../../services/lead-miner/src/config.js';
import { loadConfig as loadExecutorConfig } from '../../services/executor/src/config.js';

/*
 * No Docker engine runs where the tests run, so `docker compose config` and `kubectl kustomize` cannot vouch
 * for the manifests. This suite parses them instead and checks that they agree with each other and with the
 * services' own config code: a port changed in a config.ts, a service added or renamed, or a file left out of
 * kustomization.yaml fails here rather than in a deployment.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const K8S_DIR = join(ROOT, 'infra/k8s');
/** The CLI as the image runs it: the build of packages/cli/src/main.ts (scripts/build.mjs). */
const CLI_ENTRY = 'packages/cli/dist/main.js';
const IMAGE = 'warden:latest';

type Env = Record<string, string | undefined>;
type Json = Record<string, any>;

interface ServiceCase {
  name: string;
  /** The env var naming the port of /healthz, /readyz and /metrics. */
  portVar: 'PORT' | 'OPS_PORT';
  /** The container port's name in Kubernetes. */
  portName: 'http' | 'ops';
  /** Parses an env object the way the service does at start-up; returns the port it would listen on. */
  portFor: (env: Env) => number;
}

const SERVICES: ServiceCase[] = [
  { name: 'api', portVar: 'PORT', portName: 'http', portFor: (env) => loadApiConfig(env).PORT },
  {
    name: 'supervisor-worker',
    portVar: 'OPS_PORT',
    portName: 'ops',
    portFor: (env) => loadSupervisorConfig(env).OPS_PORT,
  },
  {
    name: 'scheduler',
    portVar: 'OPS_PORT',
    portName: 'ops',
    portFor: (env) => loadSchedulerConfig(env).OPS_PORT,
  },
  {
    name: 'lead-miner',
    portVar: 'OPS_PORT',
    portName: 'ops',
    portFor: (env) => loadLeadMinerConfig(env).OPS_PORT,
  },
  {
    name: 'executor',
    portVar: 'OPS_PORT',
    portName: 'ops',
    portFor: (env) => loadExecutorConfig(env).OPS_PORT,
  },
];
const SERVICE_NAMES = SERVICES.map((s) => s.name);
/** For it.each: `%s` prints the name without the quotes `$name` would add. */
const CASES = SERVICES.map((s) => [s.name, s] as const);

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** One YAML document; a syntax error fails the suite with the file's name. */
function parseYaml(path: string): Json {
  // merge: compose files share settings through `<<: *anchor`, which YAML 1.2 only honours when asked.
  return parse(read(path), { merge: true, prettyErrors: true }) as Json;
}

function parseYamlDocuments(path: string): Json[] {
  return parseAllDocuments(read(path), { merge: true, prettyErrors: true }).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS() as Json | null;
    return value ? [value] : [];
  });
}

/** What `docker compose` does to `${VAR:-default}`, `${VAR-default}` and `${VAR}` with nothing set. */
function interpolate(value: string): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g,
    (_m, _name, fallback?: string) => fallback ?? '',
  );
}

/** Compose `environment:` as a map or a `KEY=value` list, interpolated. */
function composeEnv(service: Json): Env {
  const raw = service.environment ?? {};
  const entries: [string, unknown][] = Array.isArray(raw)
    ? (raw as string[]).map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, undefined] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(raw as Json);
  return Object.fromEntries(
    entries.map(([k, v]) => [k, v === undefined || v === null ? undefined : interpolate(String(v))]),
  );
}

/** A command as an argv array (compose also accepts a string). */
function argv(command: unknown): string[] {
  if (Array.isArray(command)) return command.map(String);
  if (typeof command === 'string') return command.trim().split(/\s+/);
  return [];
}

/** The package directories `npm run build` compiles into `<dir>/dist/` (and the image installs). */
const BUILD_TARGETS = execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--list'], {
  encoding: 'utf8',
})
  .trim()
  .split('\n');

/**
 * The file a `node <file>` command runs, or undefined when the command has another shape (a loader such as
 * `--import tsx` included: the image carries no tsx).
 */
function nodeEntry(command: unknown): string | undefined {
  const args = argv(command);
  return args[0] === 'node' && args.length >= 2 && !args[1]!.startsWith('-') ? args[1] : undefined;
}

/**
 * Checks that `entry` is a build output: `<target>/dist/<name>.js` of a build target whose source
 * `<target>/src/<name>.ts` exists. dist/ itself is not in the repository; the image builds it.
 */
function expectBuiltEntry(entry: string | undefined, where: string): void {
  const match = /^(.+)\/dist\/([\w-]+)\.js$/.exec(entry ?? '');
  expect(match, `${where}: runs ${entry}, not a <package>/dist/<name>.js build output`).not.toBeNull();
  const [, dir, name] = match!;
  expect(BUILD_TARGETS, `${where}: ${dir} is not a build target of scripts/build.mjs`).toContain(dir);
  expect(
    existsSync(join(ROOT, dir!, 'src', `${name}.ts`)),
    `${where}: runs ${entry}, built from ${dir}/src/${name}.ts, which does not exist`,
  ).toBe(true);
}

/** The URL in a compose `node -e "fetch('…')…"` healthcheck. */
function healthcheckUrl(healthcheck: Json | undefined): URL | undefined {
  const script = argv(healthcheck?.test).join(' ');
  const match = /fetch\(\s*['"`]([^'"`]+)['"`]/.exec(script);
  return match ? new URL(match[1]!) : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The manifests, parsed once.

const compose = parseYaml('docker-compose.yml');
const composeServices = (compose.services ?? {}) as Record<string, Json>;
const prometheus = parseYaml('infra/prometheus/prometheus.yml');
const kustomization = parseYaml('infra/k8s/kustomization.yaml');
const kustomizeResources = ((kustomization.resources ?? []) as string[]).map(String);

/** Files in infra/k8s that are Kubernetes objects (not kustomize input, not the example secret). */
const k8sObjectFiles = readdirSync(K8S_DIR)
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && f !== 'secret.example.yaml')
  .sort();
const k8sObjects = kustomizeResources
  .filter((f) => existsSync(join(K8S_DIR, f)))
  .flatMap((f) => parseYamlDocuments(`infra/k8s/${f}`).map((obj) => ({ file: f, obj })));

const findK8s = (kind: string, name: string) =>
  k8sObjects.filter(({ obj }) => obj.kind === kind && obj.metadata?.name === name);

const generatedConfigMaps = ((kustomization.configMapGenerator ?? []) as Json[]).map((g) => g);
const secretExample = parseYamlDocuments('infra/k8s/secret.example.yaml')[0] ?? {};

/** `literals: [KEY=value]` of a configMapGenerator entry. */
function generatorLiterals(name: string): Env {
  const generator = generatedConfigMaps.find((g) => g.name === name);
  return Object.fromEntries(
    ((generator?.literals ?? []) as string[]).map((l) => [
      l.slice(0, l.indexOf('=')),
      l.slice(l.indexOf('=') + 1),
    ]),
  );
}

/** The env a container sees: envFrom (ConfigMap literals, the example Secret) and then `env`. */
function containerEnv(container: Json): Env {
  const env: Env = {};
  for (const source of (container.envFrom ?? []) as Json[]) {
    if (source.configMapRef) Object.assign(env, generatorLiterals(source.configMapRef.name));
    if (source.secretRef?.name === secretExample.metadata?.name)
      Object.assign(env, secretExample.stringData ?? {});
  }
  for (const variable of (container.env ?? []) as Json[]) {
    if ('value' in variable) env[variable.name] = String(variable.value);
  }
  return env;
}

function deploymentOf(name: string): { deployment: Json; container: Json; podSpec: Json } {
  const [found] = findK8s('Deployment', name);
  expect(found, `${name}: no Deployment named "${name}" in the files kustomization.yaml lists`).toBeDefined();
  const deployment = found!.obj;
  const podSpec = (deployment.spec?.template?.spec ?? {}) as Json;
  const containers = (podSpec.containers ?? []) as Json[];
  const container = containers.find((c) => c.name === name) ?? containers[0];
  expect(container, `${name}: Deployment has no container`).toBeDefined();
  return { deployment, container: container!, podSpec };
}

/** `kubectl kustomize` when kubectl is installed; the structural checks above run either way. */
function kubectlKustomize(): { output: string } | { error: string } | undefined {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    return undefined;
  }
  try {
    const output = execFileSync('kubectl', ['kustomize', K8S_DIR], {
      encoding: 'utf8',
      timeout: 30_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { output };
  } catch (error) {
    return { error: String((error as { stderr?: unknown }).stderr || error) };
  }
}

/** A probe's or Service's port (a number or a container port name) as a number. */
function resolvePort(port: unknown, container: Json): number | undefined {
  if (typeof port === 'number') return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return Number(port);
  const named = ((container.ports ?? []) as Json[]).find((p) => p.name === port);
  return named?.containerPort as number | undefined;
}

// ---------------------------------------------------------------------------------------------------------

describe('deployment manifests', () => {
  describe('docker compose', () => {
    it.each(CASES)(
      'should define the %s service, running its entry point from the image',
      (_name, { name }) => {
        const service = composeServices[name];
        expect(service, `compose: service "${name}" is missing`).toBeDefined();
        expect(service!.image, `compose ${name}: image`).toBe(IMAGE);
        const entry = nodeEntry(service!.command);
        expect(entry, `compose ${name}: command is not "node services/${name}/dist/main.js"`).toBe(
          `services/${name}/dist/main.js`,
        );
        expectBuiltEntry(entry, `compose ${name}`);
      },
    );

    it.each(CASES)('should probe /readyz on the port the %s listens on', (_name, { name, portFor }) => {
      const url = healthcheckUrl(composeServices[name]?.healthcheck);
      expect(url, `compose ${name}: healthcheck has no fetch('http://…') URL`).toBeDefined();
      expect(url!.pathname, `compose ${name}: healthcheck path`).toBe('/readyz');
      expect(url!.hostname, `compose ${name}: healthcheck host`).toBe('127.0.0.1');
      expect(Number(url!.port), `compose ${name}: healthcheck port`).toBe(portFor({}));
    });

    it.each(CASES)(
      'should start %s only after migrate completed and redis and postgres are healthy',
      (_name, { name }) => {
        const dependsOn = (composeServices[name]?.depends_on ?? {}) as Json;
        expect(
          Array.isArray(dependsOn),
          `compose ${name}: depends_on must use the long form with conditions`,
        ).toBe(false);
        expect(dependsOn.migrate?.condition, `compose ${name}: depends_on.migrate.condition`).toBe(
          'service_completed_successfully',
        );
        expect(dependsOn.postgres?.condition, `compose ${name}: depends_on.postgres.condition`).toBe(
          'service_healthy',
        );
        expect(dependsOn.redis?.condition, `compose ${name}: depends_on.redis.condition`).toBe(
          'service_healthy',
        );
      },
    );

    it.each(CASES)(
      'should give %s an environment its config accepts, pointing at the compose hosts',
      (_name, { name, portVar, portFor }) => {
        const env = composeEnv(composeServices[name] ?? {});
        expect(env.DATABASE_URL, `compose ${name}: environment.DATABASE_URL`).toBeDefined();
        expect(env.REDIS_URL, `compose ${name}: environment.REDIS_URL`).toBeDefined();
        expect(new URL(env.DATABASE_URL!).hostname, `compose ${name}: DATABASE_URL host`).toBe('postgres');
        expect(new URL(env.REDIS_URL!).hostname, `compose ${name}: REDIS_URL host`).toBe('redis');
        // The healthcheck, Prometheus and the published port all assume the default port.
        expect(
          () => portFor(env),
          `compose ${name}: its config rejects the compose environment`,
        ).not.toThrow();
        expect(
          portFor(env),
          `compose ${name}: environment.${portVar} moves it off the port the manifests use`,
        ).toBe(portFor({}));
      },
    );

    it.each(CASES)('should give %s time for its 25 s graceful stop', (_name, { name }) => {
      const grace = String(composeServices[name]?.stop_grace_period ?? '10s');
      expect(grace, `compose ${name}: stop_grace_period`).toMatch(/^(30|[3-9]\d|\d{3,})s$|^\d+m/);
    });

    it('should point the supervisor-worker at a policy file that exists in the image', () => {
      const file = composeEnv(composeServices['supervisor-worker'] ?? {}).SUPERVISOR_POLICY_FILE;
      expect(file, 'compose supervisor-worker: environment.SUPERVISOR_POLICY_FILE').toBeDefined();
      expect(
        existsSync(join(ROOT, file!)),
        `compose supervisor-worker: SUPERVISOR_POLICY_FILE ${file} not found`,
      ).toBe(true);
    });

    it('should publish the api on its port', () => {
      const port = loadApiConfig({}).PORT;
      const published = ((composeServices.api?.ports ?? []) as unknown[]).map(String);
      expect(published, 'compose api: ports must map the api PORT').toContain(`${port}:${port}`);
    });

    it('should run only known services from the Warden image', () => {
      const fromImage = Object.entries(composeServices)
        .filter(([, s]) => s.image === IMAGE || s.build !== undefined)
        .map(([n]) => n)
        .sort();
      expect(fromImage, 'compose: a service runs the Warden image but is not covered by this suite').toEqual(
        [...SERVICE_NAMES, 'migrate'].sort(),
      );
    });

    it('should run redis with --hz 100, append-only persistence and noeviction', () => {
      const redis = composeServices.redis;
      expect(redis, 'compose: service "redis" is missing').toBeDefined();
      expect(String(redis!.image), 'compose redis: image').toMatch(/^redis:7/);
      const args = argv(redis!.command);
      const option = (flag: string) => {
        const at = args.indexOf(flag);
        return at < 0 ? undefined : args[at + 1];
      };
      expect(option('--hz'), 'compose redis: command needs "--hz 100" for precise cron fires').toBe('100');
      expect(option('--appendonly'), 'compose redis: command needs "--appendonly yes"').toBe('yes');
      expect(option('--maxmemory-policy'), 'compose redis: BullMQ needs --maxmemory-policy noeviction').toBe(
        'noeviction',
      );
      expect(redis!.healthcheck, 'compose redis: healthcheck').toBeDefined();
      expect(
        redis!.volumes?.length,
        'compose redis: /data must be a volume for the AOF to outlive the container',
      ).toBe(1);
    });

    it('should run postgres 15 on a named volume with a pg_isready healthcheck', () => {
      const postgres = composeServices.postgres;
      expect(postgres, 'compose: service "postgres" is missing').toBeDefined();
      expect(String(postgres!.image), 'compose postgres: image').toMatch(/^postgres:15/);
      expect(argv(postgres!.healthcheck?.test), 'compose postgres: healthcheck').toContain('pg_isready');
      const volume = String((postgres!.volumes ?? [])[0] ?? '').split(':')[0]!;
      expect(
        Object.keys(compose.volumes ?? {}),
        'compose postgres: data volume must be a named volume',
      ).toContain(volume);
      const env = composeEnv(postgres!);
      expect(
        env.POSTGRES_PASSWORD !== undefined || env.POSTGRES_HOST_AUTH_METHOD === 'trust',
        'compose postgres: needs POSTGRES_PASSWORD or POSTGRES_HOST_AUTH_METHOD=trust',
      ).toBe(true);
      const url = new URL(composeEnv(composeServices.api ?? {}).DATABASE_URL!);
      expect(
        decodeURIComponent(url.password),
        'compose: DATABASE_URL password differs from POSTGRES_PASSWORD',
      ).toBe(env.POSTGRES_PASSWORD ?? '');
    });

    it('should migrate with the CLI entry once postgres is healthy', () => {
      const migrate = composeServices.migrate;
      expect(migrate, 'compose: service "migrate" is missing').toBeDefined();
      expect(migrate!.image, 'compose migrate: image').toBe(IMAGE);
      expect(argv(migrate!.command), 'compose migrate: command').toEqual([
        'node',
        CLI_ENTRY,
        'migrate',
        '--create-db',
      ]);
      expectBuiltEntry(CLI_ENTRY, 'compose migrate');
      expect(migrate!.depends_on?.postgres?.condition, 'compose migrate: depends_on.postgres.condition').toBe(
        'service_healthy',
      );
      expect(
        new URL(composeEnv(migrate!).DATABASE_URL ?? 'x:').hostname,
        'compose migrate: DATABASE_URL host',
      ).toBe('postgres');
      expect(String(migrate!.restart ?? 'no'), 'compose migrate: a one-shot step must not restart').toBe(
        'no',
      );
    });

    it('should run prometheus with the repository scrape config, published on 9090', () => {
      const service = composeServices.prometheus;
      expect(service, 'compose: service "prometheus" is missing').toBeDefined();
      expect(String(service!.image), 'compose prometheus: image').toMatch(/^prom\/prometheus/);
      const mounts = ((service!.volumes ?? []) as unknown[]).map(String);
      expect(mounts, 'compose prometheus: must mount infra/prometheus/prometheus.yml').toContain(
        './infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
      );
      expect(((service!.ports ?? []) as unknown[]).map(String), 'compose prometheus: ports').toContain(
        '9090:9090',
      );
    });
  });

  describe('prometheus', () => {
    const jobs = (prometheus.scrape_configs ?? []) as Json[];

    it.each(CASES)('should scrape /metrics from %s on the port it listens on', (_name, { name, portFor }) => {
      const job = jobs.find((j) => j.job_name === name);
      expect(job, `prometheus: no scrape job "${name}"`).toBeDefined();
      expect(job!.metrics_path ?? '/metrics', `prometheus ${name}: metrics_path`).toBe('/metrics');
      const targets = ((job!.static_configs ?? []) as Json[]).flatMap((c) => (c.targets ?? []) as string[]);
      expect(targets, `prometheus ${name}: targets must be the compose host and port`).toEqual([
        `${name}:${portFor({})}`,
      ]);
    });

    it('should scrape no target that is not a compose service', () => {
      const hosts = jobs
        .flatMap((j) => ((j.static_configs ?? []) as Json[]).flatMap((c) => (c.targets ?? []) as string[]))
        .map((t) => t.split(':')[0]!);
      for (const host of hosts) {
        expect(
          Object.keys(composeServices),
          `prometheus: target host "${host}" is not a compose service`,
        ).toContain(host);
      }
    });
  });

  describe('kubernetes', () => {
    it('should list every manifest in kustomization.yaml, and only files that exist', () => {
      for (const file of kustomizeResources) {
        expect(
          existsSync(join(K8S_DIR, file)),
          `kustomization.yaml lists ${file}, which does not exist`,
        ).toBe(true);
      }
      for (const file of k8sObjectFiles) {
        expect(
          kustomizeResources,
          `infra/k8s/${file} is not listed in kustomization.yaml resources`,
        ).toContain(file);
      }
      expect(kustomizeResources, 'kustomization.yaml must not apply secret.example.yaml').not.toContain(
        'secret.example.yaml',
      );
      expect(kustomization.namespace, 'kustomization.yaml: namespace').toBe('warden');
      expect(findK8s('Namespace', 'warden'), 'k8s: a Namespace "warden" is missing').toHaveLength(1);
    });

    it('should hold the common env in the warden-config ConfigMap', () => {
      const env = generatorLiterals('warden-config');
      expect(Object.keys(env), 'kustomization warden-config: literals').toEqual(
        expect.arrayContaining(['QUEUE_PREFIX', 'LOG_LEVEL']),
      );
      expect(
        env.DATABASE_URL,
        'kustomization warden-config: DATABASE_URL belongs in warden-secrets',
      ).toBeUndefined();
      expect(
        env.REDIS_URL,
        'kustomization warden-config: REDIS_URL belongs in warden-secrets',
      ).toBeUndefined();
    });

    it.each(['supervisor.yaml', 'writegate.yaml', 'lead-rules.yaml'])(
      'should ship the same %s as infra/policies/',
      (key) => {
        const files = generatedConfigMaps.flatMap((g) =>
          ((g.files ?? []) as string[]).map((f) => ({ g: g.name, f })),
        );
        const policy = files.find(({ f }) => f.split('=')[0] === key);
        expect(policy, `kustomization: no configMapGenerator file with key ${key}`).toBeDefined();
        const source = policy!.f.includes('=') ? policy!.f.split('=')[1]! : policy!.f;
        expect(
          read(`infra/k8s/${source}`),
          `infra/k8s/${source} differs from infra/policies/${key} (kustomize cannot read outside infra/k8s)`,
        ).toBe(read(`infra/policies/${key}`));
      },
    );

    it('should keep the example Secret out of the build and give it DATABASE_URL and REDIS_URL', () => {
      expect(secretExample.kind, 'secret.example.yaml: kind').toBe('Secret');
      expect(secretExample.metadata?.name, 'secret.example.yaml: name').toBe('warden-secrets');
      expect(
        Object.keys(secretExample.stringData ?? {}).sort(),
        'secret.example.yaml: stringData keys',
      ).toEqual(['DATABASE_URL', 'REDIS_URL']);
    });

    it('should reference only ConfigMaps kustomize generates and the warden-secrets Secret', () => {
      const configMaps = new Set(generatedConfigMaps.map((g) => String(g.name)));
      for (const { file, obj } of k8sObjects) {
        const podSpec = obj.spec?.template?.spec as Json | undefined;
        if (!podSpec) continue;
        const where = `infra/k8s/${file} ${obj.kind}/${obj.metadata?.name}`;
        for (const container of (podSpec.containers ?? []) as Json[]) {
          for (const source of (container.envFrom ?? []) as Json[]) {
            if (source.configMapRef) {
              expect(
                configMaps.has(source.configMapRef.name),
                `${where}: envFrom ConfigMap ${source.configMapRef.name}`,
              ).toBe(true);
            }
            if (source.secretRef)
              expect(source.secretRef.name, `${where}: envFrom Secret`).toBe('warden-secrets');
          }
        }
        for (const volume of (podSpec.volumes ?? []) as Json[]) {
          if (volume.configMap) {
            expect(
              configMaps.has(volume.configMap.name),
              `${where}: volume ConfigMap ${volume.configMap.name}`,
            ).toBe(true);
          }
        }
      }
    });

    it.each(CASES)('should run %s as a Deployment with its entry point', (_name, { name }) => {
      const { deployment, container, podSpec } = deploymentOf(name);
      expect(container.image, `k8s ${name}: image`).toBe(IMAGE);
      const entry = nodeEntry(container.command);
      expect(entry, `k8s ${name}: command is not "node services/${name}/dist/main.js"`).toBe(
        `services/${name}/dist/main.js`,
      );
      expectBuiltEntry(entry, `k8s ${name}`);
      expect(podSpec.terminationGracePeriodSeconds, `k8s ${name}: terminationGracePeriodSeconds`).toBe(30);
      const selector = (deployment.spec?.selector?.matchLabels ?? {}) as Json;
      const labels = (deployment.spec?.template?.metadata?.labels ?? {}) as Json;
      expect(Object.keys(selector).length, `k8s ${name}: Deployment selector is empty`).toBeGreaterThan(0);
      expect(labels, `k8s ${name}: pod labels do not match the Deployment selector`).toMatchObject(selector);
    });

    it.each(CASES)('should declare the container port of %s at the port it listens on', (_name, svc) => {
      const { container } = deploymentOf(svc.name);
      const port = ((container.ports ?? []) as Json[]).find((p) => p.name === svc.portName);
      expect(port, `k8s ${svc.name}: no container port named "${svc.portName}"`).toBeDefined();
      expect(port!.containerPort, `k8s ${svc.name}: containerPort "${svc.portName}"`).toBe(svc.portFor({}));
    });

    it.each(CASES)(
      'should probe /healthz for liveness and /readyz for readiness of %s',
      (_name, { name, portFor }) => {
        const { container } = deploymentOf(name);
        const expected = portFor({});
        const probes: [string, string][] = [
          ['livenessProbe', '/healthz'],
          ['readinessProbe', '/readyz'],
        ];
        for (const [probe, path] of probes) {
          const get = container[probe]?.httpGet as Json | undefined;
          expect(get, `k8s ${name}: ${probe}.httpGet is missing`).toBeDefined();
          expect(get!.path, `k8s ${name}: ${probe}.httpGet.path`).toBe(path);
          expect(resolvePort(get!.port, container), `k8s ${name}: ${probe}.httpGet.port`).toBe(expected);
        }
        const startup = container.startupProbe?.httpGet as Json | undefined;
        if (startup) {
          expect(resolvePort(startup.port, container), `k8s ${name}: startupProbe.httpGet.port`).toBe(
            expected,
          );
        }
      },
    );

    it.each(CASES)('should set resource requests and limits for %s', (_name, { name }) => {
      const { container } = deploymentOf(name);
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory'] as const) {
          expect(
            container.resources?.[kind]?.[resource],
            `k8s ${name}: resources.${kind}.${resource}`,
          ).toBeDefined();
        }
      }
    });

    it.each(CASES)('should announce the metrics port of %s to Prometheus', (_name, { name, portFor }) => {
      const annotations = (deploymentOf(name).deployment.spec?.template?.metadata?.annotations ?? {}) as Json;
      expect(annotations['prometheus.io/scrape'], `k8s ${name}: pod annotation prometheus.io/scrape`).toBe(
        'true',
      );
      expect(annotations['prometheus.io/port'], `k8s ${name}: pod annotation prometheus.io/port`).toBe(
        String(portFor({})),
      );
      expect(
        annotations['prometheus.io/path'] ?? '/metrics',
        `k8s ${name}: pod annotation prometheus.io/path`,
      ).toBe('/metrics');
    });

    it.each(CASES)(
      'should give %s an environment its config accepts from warden-config and warden-secrets',
      (_name, { name, portVar, portFor }) => {
        const { container } = deploymentOf(name);
        const sources = ((container.envFrom ?? []) as Json[]).map(
          (s) => s.configMapRef?.name ?? s.secretRef?.name,
        );
        expect(sources, `k8s ${name}: envFrom`).toEqual(
          expect.arrayContaining(['warden-config', 'warden-secrets']),
        );
        const env = containerEnv(container);
        expect(
          () => portFor(env),
          `k8s ${name}: its config rejects the ConfigMap + example Secret env`,
        ).not.toThrow();
        expect(portFor(env), `k8s ${name}: env ${portVar} moves it off the port the probes use`).toBe(
          portFor({}),
        );
      },
    );

    it.each(CASES)('should expose %s through a Service targeting its port', (_name, { name, portFor }) => {
      const { deployment, container } = deploymentOf(name);
      const [found] = findK8s('Service', name);
      expect(found, `k8s ${name}: no Service named "${name}"`).toBeDefined();
      const service = found!.obj;
      expect(service.spec?.selector, `k8s ${name}: Service selector does not match the Deployment`).toEqual(
        deployment.spec?.selector?.matchLabels,
      );
      const ports = (service.spec?.ports ?? []) as Json[];
      expect(ports.length, `k8s ${name}: Service has no ports`).toBeGreaterThan(0);
      for (const port of ports) {
        expect(resolvePort(port.targetPort ?? port.port, container), `k8s ${name}: Service targetPort`).toBe(
          portFor({}),
        );
      }
    });

    it.each([
      ['supervisor-worker', 'SUPERVISOR_POLICY_FILE'],
      ['api', 'WRITEGATE_POLICY_FILE'],
      ['executor', 'WRITEGATE_POLICY_FILE'],
      ['lead-miner', 'LEAD_RULES_FILE'],
    ])('should mount the policy file of %s where %s points', (name, variable) => {
      const { container, podSpec } = deploymentOf(name);
      const file = containerEnv(container)[variable];
      expect(file, `k8s ${name}: env ${variable}`).toBeDefined();
      const mount = ((container.volumeMounts ?? []) as Json[]).find((m) =>
        file!.startsWith(`${m.mountPath}/`),
      );
      expect(mount, `k8s ${name}: no volumeMount contains ${file}`).toBeDefined();
      const volume = ((podSpec.volumes ?? []) as Json[]).find((v) => v.name === mount!.name);
      const generator = generatedConfigMaps.find((g) => g.name === volume?.configMap?.name);
      const keys = ((generator?.files ?? []) as string[]).map((f) => f.split('=')[0]);
      expect(keys, `k8s ${name}: ${file} is not a key of the mounted ConfigMap`).toContain(
        file!.slice(String(mount!.mountPath).length + 1),
      );
    });

    it('should give the executor its workspaces on a persistent volume, replaced rather than rolled', () => {
      const { deployment, container, podSpec } = deploymentOf('executor');
      const workspaces = loadExecutorConfig({
        ...containerEnv(container),
        DATABASE_URL: 'postgres://x/y',
        REDIS_URL: 'redis://x:6379',
      }).EXECUTOR_WORKSPACES;
      const roots = Object.values(workspaces).map((w) => (typeof w === 'string' ? w : w.root));
      expect(roots.length, 'k8s executor: EXECUTOR_WORKSPACES names no workspace').toBeGreaterThan(0);
      for (const root of roots) {
        const mount = ((container.volumeMounts ?? []) as Json[]).find((m) =>
          root.startsWith(`${m.mountPath}/`),
        );
        expect(mount, `k8s executor: workspace ${root} is on no volumeMount`).toBeDefined();
        expect(mount!.readOnly, `k8s executor: the mount of ${root} is read-only`).not.toBe(true);
        const volume = ((podSpec.volumes ?? []) as Json[]).find((v) => v.name === mount!.name);
        const claim = volume?.persistentVolumeClaim?.claimName as string | undefined;
        expect(claim, `k8s executor: the volume of ${root} is not a PersistentVolumeClaim`).toBeDefined();
        expect(findK8s('PersistentVolumeClaim', claim!), `k8s: PersistentVolumeClaim ${claim}`).toHaveLength(
          1,
        );
      }
      expect(deployment.spec?.strategy?.type, 'k8s executor: a ReadWriteOnce volume needs Recreate').toBe(
        'Recreate',
      );
      expect(podSpec.securityContext?.fsGroup, 'k8s executor: fsGroup lets the node user write').toBe(
        podSpec.securityContext?.runAsGroup,
      );
    });

    it.each(CASES)('should limit evictions of %s with a PodDisruptionBudget', (_name, { name }) => {
      const [budget] = findK8s('PodDisruptionBudget', name);
      expect(budget, `k8s: no PodDisruptionBudget ${name}`).toBeDefined();
      const { deployment } = deploymentOf(name);
      expect(budget!.obj.spec?.selector?.matchLabels).toEqual(deployment.spec?.selector?.matchLabels);
      // maxUnavailable, not minAvailable: a one-replica service must not block every node drain.
      expect(budget!.obj.spec?.maxUnavailable).toBe(1);
    });

    const built = kubectlKustomize();
    it.skipIf(built === undefined)('should build with kubectl kustomize, every reference resolved', () => {
      expect(
        built && 'error' in built ? built.error : undefined,
        'kubectl kustomize infra/k8s failed',
      ).toBeUndefined();
      const objects = parseAllDocuments((built as { output: string }).output).map(
        (doc) => doc.toJS() as Json,
      );
      const named = (kind: string) =>
        new Set(objects.filter((o) => o.kind === kind).map((o) => String(o.metadata?.name)));
      const configMaps = named('ConfigMap');
      for (const obj of objects) {
        const where = `kustomize output ${obj.kind}/${obj.metadata?.name}`;
        if (obj.kind !== 'Namespace') expect(obj.metadata?.namespace, `${where}: namespace`).toBe('warden');
        const podSpec = obj.spec?.template?.spec as Json | undefined;
        if (!podSpec) continue;
        const refs = [
          ...((podSpec.containers ?? []) as Json[]).flatMap((c) =>
            ((c.envFrom ?? []) as Json[]).flatMap((e) => (e.configMapRef ? [e.configMapRef.name] : [])),
          ),
          ...((podSpec.volumes ?? []) as Json[]).flatMap((v) => (v.configMap ? [v.configMap.name] : [])),
        ];
        for (const ref of refs)
          expect(configMaps.has(ref), `${where}: ConfigMap ${ref} is not generated`).toBe(true);
      }
      expect([...named('Deployment')].sort(), 'kustomize output: Deployments').toEqual(
        [...SERVICE_NAMES].sort(),
      );
      expect([...named('Service')].sort(), 'kustomize output: Services').toEqual([...SERVICE_NAMES].sort());
    });

    it('should migrate in a Job with the CLI entry and three retries', () => {
      const jobs = k8sObjects.filter(({ obj }) => obj.kind === 'Job');
      expect(jobs, 'k8s: exactly one migration Job').toHaveLength(1);
      const job = jobs[0]!.obj;
      expect(job.spec?.backoffLimit, 'k8s migrate Job: backoffLimit').toBe(3);
      const podSpec = (job.spec?.template?.spec ?? {}) as Json;
      expect(podSpec.restartPolicy, 'k8s migrate Job: restartPolicy').toMatch(/^(Never|OnFailure)$/);
      const container = ((podSpec.containers ?? []) as Json[])[0] ?? {};
      expect(container.image, 'k8s migrate Job: image').toBe(IMAGE);
      expect(argv(container.command), 'k8s migrate Job: command').toEqual([
        'node',
        CLI_ENTRY,
        'migrate',
        '--create-db',
      ]);
      const sources = ((container.envFrom ?? []) as Json[]).map(
        (s) => s.configMapRef?.name ?? s.secretRef?.name,
      );
      expect(sources, 'k8s migrate Job: envFrom').toEqual(
        expect.arrayContaining(['warden-config', 'warden-secrets']),
      );
    });
  });

  describe('image', () => {
    const dockerfile = read('Dockerfile');

    it('should build on Node 22 with the pnpm the repository pins, from the frozen lockfile', () => {
      const pinned = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager;
      expect(dockerfile, 'Dockerfile: base image').toMatch(/node:22-bookworm-slim/);
      expect(dockerfile, `Dockerfile: must install ${pinned} (root package.json packageManager)`).toContain(
        `npm i -g ${pinned}`,
      );
      expect(dockerfile, 'Dockerfile: pnpm install must use --frozen-lockfile').toMatch(
        /pnpm install[^\n]*--frozen-lockfile/,
      );
    });

    it('should run as the node user in production mode, defaulting to the api', () => {
      const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
      expect(lastStage, 'Dockerfile: final stage must set NODE_ENV=production').toMatch(
        /^ENV NODE_ENV=production$/m,
      );
      expect(lastStage, 'Dockerfile: final stage must run as USER node').toMatch(/^USER node$/m);
      expect(lastStage, 'Dockerfile: default CMD').toContain('CMD ["node", "services/api/dist/main.js"]');
    });

    it('should cap V8\'s young generation for every process (idle memory; README, "Production build")', () => {
      const lastStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
      expect(lastStage, 'Dockerfile: final stage must set NODE_OPTIONS=--max-semi-space-size=<MB>').toMatch(
        /^ENV NODE_OPTIONS=.*--max-semi-space-size=\d+/m,
      );
    });

    describe('when it is built in stages', () => {
      const stages = dockerfile.split(/\n(?=FROM )/).filter((stage) => stage.startsWith('FROM '));
      const buildStage = stages[0] ?? '';
      const runtimeStage = stages.at(-1) ?? '';

      it('should compile with pnpm build, then install production dependencies only', () => {
        expect(stages.length, 'Dockerfile: a build stage and a runtime stage').toBeGreaterThanOrEqual(2);
        const build = buildStage.indexOf('pnpm build');
        expect(build, 'Dockerfile: the build stage must run `pnpm build`').toBeGreaterThan(0);
        const prodInstall = /pnpm install[^\n]*--frozen-lockfile[^\n]*--prod/.exec(buildStage);
        expect(
          prodInstall,
          'Dockerfile: a frozen-lockfile `pnpm install --prod` after the build',
        ).not.toBeNull();
        expect(prodInstall!.index, 'Dockerfile: the --prod install comes after `pnpm build`').toBeGreaterThan(
          build,
        );
        expect(
          buildStage.slice(build, prodInstall!.index),
          'Dockerfile: the dev install is removed before the --prod install',
        ).toMatch(/rm -rf node_modules/);
      });

      it('should copy only the assembled production tree into the runtime stage, never the workspace', () => {
        const copies = runtimeStage.split('\n').filter((line) => line.startsWith('COPY'));
        expect(
          copies,
          'Dockerfile: the runtime stage copies /out from the build stage, nothing else',
        ).toEqual(['COPY --from=build /out /app']);
        expect(
          buildStage,
          "Dockerfile: the runtime tree takes every build target's dist/ from scripts/build.mjs --list",
        ).toMatch(/for pkg in \$\(node scripts\/build\.mjs --list\)[^]*"\$pkg\/dist"/);
        expect(buildStage, 'Dockerfile: the policy files are part of the runtime tree').toContain(
          'cp -a infra/policies /out/infra/',
        );
      });

      it('should run no TypeScript loader at run time', () => {
        expect(runtimeStage, 'Dockerfile: the runtime stage must not mention tsx').not.toMatch(/\btsx\b/);
        expect(runtimeStage, 'Dockerfile: the runtime stage runs no pnpm install').not.toMatch(
          /pnpm install/,
        );
      });
    });

    it("should keep tsx out of every built package's production dependencies", () => {
      for (const dir of [...BUILD_TARGETS, '.']) {
        const manifest = JSON.parse(read(join(dir, 'package.json'))) as {
          dependencies?: Record<string, string>;
        };
        expect(Object.keys(manifest.dependencies ?? {}), `${dir}/package.json: dependencies`).not.toContain(
          'tsx',
        );
      }
    });

    it('should keep host installs and local state out of the build context', () => {
      const ignored = read('.dockerignore')
        .split('\n')
        .map((l) => l.trim());
      for (const entry of ['**/node_modules', '**/dist', '.tools', '.warden', '.git', 'coverage']) {
        expect(ignored, `.dockerignore: ${entry}`).toContain(entry);
      }
    });
  });
});
