/**
 * The executor as deployed (`node --import tsx services/executor/src/main.ts`, configured through env), in a
 * child process a test can SIGKILL mid-write — the only faithful crash: no finally block, no catch runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './supervisor.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** One executor process, started as deployed; its last 300 log lines kept for failure messages. */
export class ExecutorProcess {
  private readonly output: string[] = [];
  readonly exited: Promise<number | string | null>;
  private status: number | string | null | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
    void this.exited.then((status) => (this.status = status));
    const keep = (chunk: Buffer) => {
      this.output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.output.length > 300) this.output.splice(0, this.output.length - 300);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(env: Record<string, string>): Promise<ExecutorProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/executor/src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, OPS_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ExecutorProcess(child, port);
  }

  get running(): boolean {
    return this.status === undefined;
  }

  get log(): string {
    return this.output.join('\n');
  }

  /** Resolves once /readyz answers 200 — which the executor only does after recovering what was in flight. */
  async ready(deadlineMs = 60_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      if (!this.running)
        throw new Error(`the executor exited (${String(this.status)}) before it was ready:\n${this.log}`);
      const ok = await fetch(`http://127.0.0.1:${this.port}/readyz`, {
        signal: AbortSignal.timeout(1000),
      }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline)
        throw new Error(`the executor was not ready within ${deadlineMs} ms:\n${this.log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}
