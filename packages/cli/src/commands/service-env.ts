/**
 * The `env <service>` checks of `warden preflight`: the environment parsed with each service's own schema
 * (from `@warden/config`), so a value a service would refuse at start-up (`LOG_LEVEL=loud`) fails preflight
 * instead of passing it.
 */
import { SERVICE_CONFIGS, SERVICE_NAMES, type ServiceName } from '@warden/config';
import { describeIssues } from '@warden/domain';
import { UsageError } from '../errors.js';
import { plural } from '../output.js';

/** One variable a service would refuse, with its schema's message. */
export interface EnvIssue {
  service: ServiceName;
  /** The variable (`LOG_LEVEL`), or a path inside it for structured values (`EXECUTOR_WORKSPACES.app`). */
  variable: string;
  message: string;
}

export interface ServiceEnvCheck {
  /** `env <service>`. */
  name: string;
  status: 'ok' | 'fail';
  reason: string;
  /** Each refused variable; empty when the service would start with this environment. */
  issues: EnvIssue[];
}

/** The `--service` value checked against the known names; a wrong one is a usage error naming them. */
export function parseServiceName(value: string): ServiceName {
  if ((SERVICE_NAMES as string[]).includes(value)) return value as ServiceName;
  throw new UsageError(`--service "${value}" is not a service: expected one of ${SERVICE_NAMES.join(', ')}`);
}

/** Parses `env` with the schema of each of `services` (every service by default); never throws. */
export function checkServiceEnvironments(
  env: NodeJS.ProcessEnv,
  services: readonly ServiceName[] = SERVICE_NAMES,
): ServiceEnvCheck[] {
  return services.map((service) => {
    const name = `env ${service}`;
    const issues = environmentIssues(service, env);
    if (issues.length === 0) return { name, status: 'ok', reason: `the ${service} would accept it`, issues };
    const reason = issues.map((issue) => `${issue.variable}: ${issue.message}`).join('; ');
    return {
      name,
      status: 'fail',
      reason: `${plural(issues.length, 'variable')} refused: ${reason}`,
      issues,
    };
  });
}

function environmentIssues(service: ServiceName, env: NodeJS.ProcessEnv): EnvIssue[] {
  let result;
  try {
    result = SERVICE_CONFIGS[service].safeParse(env);
  } catch (error) {
    // A transform that throws on input it did not expect is still a refused environment: fail closed.
    const message = `could not be read: ${error instanceof Error ? error.message : String(error)}`;
    return [{ service, variable: '(environment)', message }];
  }
  if (result.success) return [];
  return describeIssues(result.error.issues).map(({ path, message }) => ({
    service,
    variable: path,
    message,
  }));
}
