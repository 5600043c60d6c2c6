/**
 * An example agent loop that asks Warden before every tool call. The "model" is a scripted plan so the
 * example runs without an LLM; swap `plan` for your model's tool calls. Each call is proposed with
 * `warden.guard()` (a `TASK_ACTION_PROPOSED` event answered inline) and runs only when allowed: a blocked call
 * is reported back to the model instead of run, a paused one waits for a person (or is skipped).
 *
 * In your own agent, import from `@warden/client`; this example imports the SDK by path because `examples/`
 * is not a workspace package.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  WardenBlockedError,
  WardenGuardTimeoutError,
  type GuardAction,
  type WardenClient,
} from '../../packages/client/src/index.js';

/** One tool call the model asked for. */
export interface ToolCall {
  tool: string;
  input: Record<string, string>;
}

interface AgentTool {
  /** What the call does, for Warden to judge beyond the tool's name: its command, paths, hosts. */
  describe(input: Record<string, string>): Omit<GuardAction, 'tool' | 'input'>;
  run(input: Record<string, string>): Promise<string>;
}

/** The agent's tools. None of them really reaches out: `shell` and `fetch_url` only say what they would do. */
export const TOOLS: Record<string, AgentTool> = {
  search: {
    describe: () => ({}),
    run: async ({ q }) => `3 results for "${q}"`,
  },
  shell: {
    describe: ({ cmd }) => ({ command: cmd!, cwd: '/work/app' }),
    run: async ({ cmd }) => `(would run) ${cmd}`,
  },
  write_file: {
    describe: ({ path }) => ({ paths: [path!] }),
    run: async ({ path, text }) => {
      await mkdir(dirname(path!), { recursive: true });
      await writeFile(path!, text ?? '');
      return `wrote ${path}`;
    },
  },
  fetch_url: {
    describe: ({ url }) => ({ hosts: [url!] }),
    run: async ({ url }) => `(would fetch) ${url}`,
  },
};

/** The capabilities to declare at TASK_CREATED for these tools. */
export const CAPABILITIES = [...Object.keys(TOOLS), 'network', 'file_write'];

export type StepOutcome =
  | { call: ToolCall; outcome: 'ran'; result: string }
  | { call: ToolCall; outcome: 'blocked' | 'paused' | 'timed_out'; reason: string };

export interface RunAgentOptions {
  warden: WardenClient;
  taskId: string;
  plan: readonly ToolCall[];
  /** On a paused call: wait for a person to release it, or skip it. @defaultValue `'skip'` */
  onPause?: 'wait' | 'skip';
  /** Seconds to wait for each decision. @defaultValue `10` */
  waitSeconds?: number;
}

/**
 * Declares the task, then runs the plan one tool call at a time, each behind `warden.guard`. Stops at the
 * first blocked call: once Warden blocks an action the task is blocked, and every later call would be too.
 */
export async function runAgent(options: RunAgentOptions): Promise<StepOutcome[]> {
  const { warden, taskId } = options;
  const created = await warden.sendEvent({
    task_id: taskId,
    event_type: 'TASK_CREATED',
    payload: { agent_spec: { name: 'guarded-agent', capabilities: CAPABILITIES } },
  });
  await warden.waitForDecision(taskId, created.event_id);

  const outcomes: StepOutcome[] = [];
  for (const call of options.plan) {
    const tool = TOOLS[call.tool];
    if (!tool) throw new Error(`the model asked for an unknown tool: ${call.tool}`);
    try {
      const verdict = await warden.guard(
        taskId,
        { ...tool.describe(call.input), tool: call.tool, input: call.input },
        { waitSeconds: options.waitSeconds ?? 10 },
      );
      if (verdict.status === 'paused') {
        if ((options.onPause ?? 'skip') === 'skip') {
          outcomes.push({ call, outcome: 'paused', reason: verdict.decision.reason });
          continue;
        }
        await verdict.waitForRelease();
      }
      outcomes.push({ call, outcome: 'ran', result: await tool.run(call.input) });
    } catch (error) {
      if (error instanceof WardenBlockedError) {
        outcomes.push({ call, outcome: 'blocked', reason: error.message });
        break;
      }
      if (error instanceof WardenGuardTimeoutError) {
        // No decision is not a yes: the call does not run. Re-proposing later is safe.
        outcomes.push({ call, outcome: 'timed_out', reason: error.message });
        continue;
      }
      throw error;
    }
  }
  return outcomes;
}
