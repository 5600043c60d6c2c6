import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import {
  applyPlan,
  builtInPolicies,
  decideFailClosed,
  inputFor,
  type DecisionPlan,
  type DecisionState,
  type PolicyRegistry,
  type SupervisorPolicyFile,
  type TaskEvent,
} from '@warden/domain';
import type { Logger } from '@warden/observability';
import type { PolicyCall, PolicyWorkerData, PolicyWorkerMessage } from './policy-worker.js';

export interface PolicySandboxOptions {
  policy: SupervisorPolicyFile;
  logger: Logger;
  /**
   * CPU time one event's policy may use before it is stopped and the event fails closed.
   * @defaultValue the policy file's `thresholds.policy_timeout_ms`
   */
  budgetMs?: number;
  /**
   * Wall-clock time one event may take whatever its CPU time: a backstop for a thread that makes no progress
   * without using CPU, and the budget itself where the thread's CPU time cannot be read (no /proc).
   * @defaultValue the larger of 10 s and 20 × `budgetMs`
   */
  wallLimitMs?: number;
  /** Worker threads deciding at once. @defaultValue `1` */
  threads?: number;
  /** Heap a worker thread may grow to; past it the thread dies and its event fails closed. @defaultValue `256` */
  maxHeapMb?: number;
  /** A module (file URL) whose `createPolicyRegistry()` replaces the built-in policies. @defaultValue the built-ins */
  registryModule?: string;
  /** Called once per event stopped for its budget or lost with a crashed thread. */
  onPolicyStopped?: (reason: 'budget' | 'crash') => void;
}

type CallOutcome =
  | { kind: 'decided'; plans: DecisionPlan[] }
  | { kind: 'stopped'; index: number; error: string; cpuMs: number };

interface RunningCall {
  id: number;
  resolve: (outcome: CallOutcome) => void;
  reject: (error: Error) => void;
  /** The event the watchdog saw last, and the thread's CPU and wall time when it first saw it. */
  watch?: { index: number; cpuAtMs: number; wallAtMs: number };
}

const USER_HZ_MS = 10; // Linux reports thread CPU time in clock ticks of 1/100 s

/**
 * Runs the supervisor's policies in worker threads, where a runaway one can be stopped. A watchdog reads the
 * thread's CPU time from /proc while an event is being decided; past the budget the thread is terminated, the
 * event gets REQUIRE_REVIEW with a SUPERVISOR_ERROR audit (fail closed), a fresh thread takes its place, and the
 * other events of the call are decided as usual. CPU time rather than wall-clock time, so a busy machine does
 * not fail ordinary events closed; and the main event loop never runs policy code, so it keeps serving
 * other groups, the poller and health checks while a policy spins.
 */
export class PolicySandbox {
  private readonly budgetMs: number;
  private readonly wallLimitMs: number;
  private readonly threads: PolicyThread[] = [];
  private readonly idle: PolicyThread[] = [];
  private readonly waiting: Array<(thread: PolicyThread) => void> = [];
  private registry: PolicyRegistry = builtInPolicies();
  private watchdog: NodeJS.Timeout | undefined;
  private nextCallId = 1;
  private closed = false;

  constructor(private readonly options: PolicySandboxOptions) {
    this.budgetMs = options.budgetMs ?? options.policy.thresholds.policy_timeout_ms;
    this.wallLimitMs = options.wallLimitMs ?? Math.max(10_000, 20 * this.budgetMs);
  }

  /** Starts the threads; rejects when one cannot start (a bad registry module stops the service here). */
  async start(): Promise<void> {
    if (this.options.registryModule) {
      const module = (await import(this.options.registryModule)) as {
        createPolicyRegistry: () => PolicyRegistry;
      };
      this.registry = module.createPolicyRegistry();
    }
    const count = this.options.threads ?? 1;
    for (let i = 0; i < count; i++) this.threads.push(this.spawn());
    await Promise.all(this.threads.map((thread) => thread.ready));
    for (const thread of this.threads) this.release(thread);
    const tickMs = Math.min(50, Math.max(5, Math.floor(this.budgetMs / 4)));
    this.watchdog = setInterval(() => this.checkBudgets(), tickMs);
    this.watchdog.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /**
   * Decides `events` in order, each seeing the effects of the ones before (as `decideInOrder` in the domain),
   * and carries the plans into `state`. Never yields "no decision" for an event whose policy misbehaves: that
   * event fails closed and the rest go on.
   */
  async decideInOrder(
    events: readonly TaskEvent[],
    state: DecisionState,
    policies?: ReadonlyMap<string, SupervisorPolicyFile>,
  ): Promise<DecisionPlan[]> {
    const plans: DecisionPlan[] = [];
    let rest = events;
    while (rest.length > 0) {
      const outcome = await this.call(rest, state, policies);
      if (outcome.kind === 'decided') {
        outcome.plans.forEach((plan, index) => applyPlan(state, rest[index]!, plan));
        plans.push(...outcome.plans);
        break;
      }
      // The events before the stopped one were decided by the lost thread; their plans went with it.
      if (outcome.index > 0)
        plans.push(...(await this.decideInOrder(rest.slice(0, outcome.index), state, policies)));
      const stopped = rest[outcome.index]!;
      const policy = policies?.get(stopped.tenant_id) ?? this.options.policy;
      const plan = decideFailClosed(inputFor(stopped, state, policy), this.registry, {
        error: outcome.error,
        elapsed_ms: outcome.cpuMs,
      });
      applyPlan(state, stopped, plan);
      plans.push(plan);
      rest = rest.slice(outcome.index + 1);
    }
    return plans;
  }

  private async call(
    events: readonly TaskEvent[],
    state: DecisionState,
    policies: ReadonlyMap<string, SupervisorPolicyFile> | undefined,
  ): Promise<CallOutcome> {
    const thread = await this.acquire();
    const id = this.nextCallId++;
    try {
      return await new Promise<CallOutcome>((resolve, reject) => {
        thread.running = { id, resolve, reject };
        thread.eventTypes.set(
          id,
          events.map((event) => event.event_type),
        );
        // Only the tenants of this call that run on a stored version: most calls carry none.
        const stored = new Map<string, SupervisorPolicyFile>();
        if (policies && policies.size > 0)
          for (const event of events) {
            const policy = policies.get(event.tenant_id);
            if (policy) stored.set(event.tenant_id, policy);
          }
        thread.worker.postMessage({
          id,
          events: [...events],
          state,
          ...(stored.size > 0 ? { policies: stored } : {}),
        } satisfies PolicyCall);
      });
    } finally {
      thread.running = undefined;
      thread.eventTypes.delete(id);
      if (!thread.dead) this.release(thread);
    }
  }

  private acquire(): Promise<PolicyThread> {
    if (this.closed) return Promise.reject(new Error('the policy sandbox is closed'));
    const thread = this.idle.pop();
    return thread ? Promise.resolve(thread) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(thread: PolicyThread): void {
    const waiter = this.waiting.shift();
    if (waiter) waiter(thread);
    else this.idle.push(thread);
  }

  private spawn(): PolicyThread {
    const progress = new SharedArrayBuffer(8);
    const data: PolicyWorkerData = {
      entry: new URL(`./policy-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)
        .href,
      policy: this.options.policy,
      progress,
      ...(this.options.registryModule ? { registryModule: this.options.registryModule } : {}),
    };
    const worker = new Worker(new URL('./policy-worker-boot.mjs', import.meta.url), {
      workerData: data,
      resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb ?? 256 },
      stdout: false,
      stderr: false,
    });
    const thread = new PolicyThread(worker, new Int32Array(progress));
    worker.on('message', (message: PolicyWorkerMessage) => {
      if (message.kind === 'ready') thread.markReady(message.tid);
      else if (thread.running?.id === message.id) {
        if (message.kind === 'decided') thread.running.resolve({ kind: 'decided', plans: message.plans });
        // Whatever failed in the thread, the event it was on fails closed; the rest are decided again.
        else
          thread.running.resolve({
            kind: 'stopped',
            index: thread.currentIndex(message.id),
            error: `the policy worker failed: ${message.error}`,
            cpuMs: 0,
          });
      }
    });
    const lost = (error: Error) => {
      if (thread.dead) return;
      thread.dead = true;
      thread.markFailed(error);
      const idleAt = this.idle.indexOf(thread);
      if (idleAt >= 0) this.idle.splice(idleAt, 1);
      if (this.closed) return;
      const running = thread.running;
      if (running) {
        this.options.onPolicyStopped?.('crash');
        running.resolve({
          kind: 'stopped',
          index: thread.currentIndex(running.id),
          error: `the policy worker died: ${error.message}`,
          cpuMs: 0,
        });
      }
      this.replace(thread);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`exited with code ${code}`)));
    return thread;
  }

  /**
   * A new thread in place of a lost one; it joins the pool once it is ready. A thread that dies before it is
   * ready is replaced after a growing pause (100 ms doubling to 30 s), so a thread that cannot start does not
   * respawn in a tight loop; waiting calls keep waiting until one can.
   */
  private replace(lost: PolicyThread): void {
    const failedBoots = lost.readyOnce ? 0 : lost.failedBoots + 1;
    const delayMs = failedBoots === 0 ? 0 : Math.min(30_000, 100 * 2 ** (failedBoots - 1));
    const respawn = () => {
      if (this.closed) return;
      const index = this.threads.indexOf(lost);
      const fresh = this.spawn();
      fresh.failedBoots = failedBoots;
      if (index >= 0) this.threads[index] = fresh;
      fresh.ready.then(
        () => (this.closed ? undefined : this.release(fresh)),
        (error: unknown) =>
          this.options.logger.error(
            {
              module: 'supervisor',
              action: 'policy_sandbox',
              status: 'error',
              err: error,
              failed_boots: failedBoots + 1,
            },
            'a policy worker could not start',
          ),
      );
    };
    if (delayMs === 0) respawn();
    else setTimeout(respawn, delayMs).unref();
  }

  private checkBudgets(): void {
    const now = performance.now();
    for (const thread of this.threads) {
      const running = thread.running;
      if (!running || thread.dead) continue;
      if (Atomics.load(thread.progress, 0) !== running.id) continue;
      const index = Atomics.load(thread.progress, 1);
      const cpu = thread.cpuTimeMs();
      if (!running.watch || running.watch.index !== index) {
        running.watch = { index, cpuAtMs: cpu ?? now, wallAtMs: now };
        continue;
      }
      const wallMs = now - running.watch.wallAtMs;
      const cpuMs = cpu === undefined ? wallMs : cpu - running.watch.cpuAtMs;
      if (cpuMs <= this.budgetMs && wallMs <= this.wallLimitMs) continue;

      const what =
        cpuMs > this.budgetMs
          ? `${Math.round(cpuMs)} ms of ${cpu === undefined ? 'wall-clock' : 'CPU'} time, over its ${this.budgetMs} ms budget`
          : `${Math.round(wallMs)} ms without finishing, over the ${this.wallLimitMs} ms wall-clock limit`;
      const policy = this.registry.route(runningEventType(thread, running) ?? '').name;
      this.options.logger.error(
        {
          module: 'supervisor',
          action: 'policy_budget',
          status: 'stopped',
          policy,
          cpu_ms: Math.round(cpuMs),
          wall_ms: Math.round(wallMs),
        },
        `a policy ran away: stopped after ${what}`,
      );
      this.options.onPolicyStopped?.('budget');
      thread.dead = true;
      running.resolve({ kind: 'stopped', index, error: `policy ${policy} used ${what}`, cpuMs });
      void thread.worker.terminate();
      this.replace(thread);
    }
  }
}

/** The event type being decided, for the log line (the call's events live only in the thread). */
function runningEventType(thread: PolicyThread, running: RunningCall): string | undefined {
  return thread.eventTypes.get(running.id)?.[Atomics.load(thread.progress, 1)];
}

class PolicyThread {
  running: RunningCall | undefined;
  dead = false;
  tid: number | undefined;
  /** Whether this thread ever reported ready, and how many threads before it in this slot died before ready. */
  readyOnce = false;
  failedBoots = 0;
  readonly ready: Promise<void>;
  /** Event types of the call in flight, by call id (kept for log lines only). */
  readonly eventTypes = new Map<number, string[]>();
  private resolveReady!: () => void;
  private rejectReady!: (error: Error) => void;

  constructor(
    readonly worker: Worker,
    readonly progress: Int32Array,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // A thread that dies before it is ready must not leave an unhandled rejection behind.
    this.ready.catch(() => undefined);
  }

  markReady(tid: number | undefined): void {
    this.tid = tid;
    this.readyOnce = true;
    this.resolveReady();
  }

  markFailed(error: Error): void {
    this.rejectReady(error);
  }

  /** Index of the event the thread was on for this call (0 before it reported any). */
  currentIndex(callId: number): number {
    return Atomics.load(this.progress, 0) === callId ? Math.max(0, Atomics.load(this.progress, 1)) : 0;
  }

  /** CPU time the thread has used, from /proc; undefined where that cannot be read. */
  cpuTimeMs(): number | undefined {
    if (this.tid === undefined) return undefined;
    try {
      const stat = readFileSync(`/proc/self/task/${this.tid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * USER_HZ_MS;
    } catch {
      return undefined;
    }
  }
}
