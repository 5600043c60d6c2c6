/**
 * A stand-in executor for the sandbox suite: a process of its own, started with secrets in its real environment
 * (so they are in /proc/<pid>/environ, as the executor's are), that runs one verification in the sandbox and
 * prints the result as JSON. Input: one JSON argument `{ mode, runAs?, verification, workspaceRoot, path }`.
 */
import { VerificationSchema } from '@warden/domain';
import { VerificationSandbox } from '../../services/executor/src/sandbox/index.js';

interface HostInput {
  mode: 'auto' | 'bwrap' | 'none';
  runAs?: string;
  /** Parsed by the policy schema unless `raw` (a verification the schema would refuse, to test the last line). */
  verification: unknown;
  raw?: boolean;
  workspaceRoot: string;
  path: string;
}

const input = JSON.parse(process.argv[2]!) as HostInput;
const sandbox = VerificationSandbox.create({
  mode: input.mode,
  path: input.path,
  readOnly: ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/etc', '/opt'],
  ...(input.runAs ? { runAs: input.runAs } : {}),
  limits: { cpuSeconds: 60, memoryBytes: 4096 * 1024 * 1024, processes: 256, fileBytes: 64 * 1024 * 1024 },
  commonEnv: ['LANG'],
  source: process.env,
  maxTimeoutMs: 30_000,
  outputLimitBytes: 64 * 1024,
});
const verification = input.raw
  ? (input.verification as ReturnType<typeof VerificationSchema.parse>)
  : VerificationSchema.parse(input.verification);
const result = await sandbox.run(verification, {
  changesetId: 'cs-sandbox',
  workspaceName: 'app',
  workspaceRoot: input.workspaceRoot,
});
process.stdout.write(
  JSON.stringify({ result, capabilities: sandbox.capabilities, describe: sandbox.describe() }),
);
