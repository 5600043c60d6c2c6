/**
 * Guards a Vercel AI SDK tool (`tool()` from the `ai` package) with Warden: every call asks
 * `warden.guard()` before the tool's own `execute` runs. Imported as `@warden/client/ai-sdk`; `ai` is an
 * optional peer dependency, used here for its types only.
 *
 * @example
 * ```ts
 * import { tool } from 'ai';
 * import { guardedTool } from '@warden/client/ai-sdk';
 *
 * const shell = guardedTool(
 *   tool({ description: 'Run a shell command', inputSchema: z.object({ cmd: z.string() }), execute: runShell }),
 *   { warden, taskId: 'task-42', name: 'shell', describe: ({ cmd }) => ({ command: cmd }) },
 * );
 * await generateText({ model, tools: { shell }, prompt });
 * ```
 */
import type { Tool, ToolExecutionOptions } from 'ai';
import type { GuardAction, GuardOptions, WaitForReleaseOptions } from './guard.js';
import { WardenBlockedError } from './errors.js';
import type { WardenClient } from './warden-client.js';

export interface GuardedToolOptions<INPUT> {
  warden: WardenClient;
  /** The task the agent runs as (declared with TASK_CREATED, `name` among its capabilities). */
  taskId: string;
  /** The tool's name as the task declared it in `agent_spec.capabilities`. */
  name: string;
  /**
   * What a call does beyond calling the tool — its command, the paths it writes, the hosts it reaches — so
   * Warden judges those too. @defaultValue nothing beyond the tool and its input
   */
  describe?: (input: INPUT) => Omit<GuardAction, 'tool' | 'input'>;
  /**
   * A paused call: `'wait'` until a person releases it, `'throw'` a {@link WardenBlockedError} at once.
   * @defaultValue `'wait'`
   */
  onPause?: 'wait' | 'throw';
  /** Passed to `warden.guard`. @defaultValue its defaults (10 s wait, a timeout is not allowed) */
  guard?: GuardOptions;
  /** Passed to `waitForRelease`; the call's abort signal is added. @defaultValue its defaults */
  release?: WaitForReleaseOptions;
}

/**
 * The same tool, whose `execute` runs only once Warden allowed the call. A refused call throws
 * (`WardenBlockedError`, `WardenGuardTimeoutError`): the AI SDK reports it to the model as a tool error and
 * the tool's own code never runs. A tool without `execute` is returned as it is: nothing runs to guard.
 */
export function guardedTool<INPUT, OUTPUT>(
  original: Tool<INPUT, OUTPUT>,
  options: GuardedToolOptions<INPUT>,
): Tool<INPUT, OUTPUT> {
  const execute = original.execute as
    | ((input: INPUT, call: ToolExecutionOptions) => AsyncIterable<OUTPUT> | PromiseLike<OUTPUT> | OUTPUT)
    | undefined;
  if (!execute) return original;

  const allow = async (input: INPUT, call: ToolExecutionOptions): Promise<void> => {
    const action: GuardAction = { ...options.describe?.(input), tool: options.name, input };
    const verdict = await options.warden.guard(options.taskId, action, options.guard);
    if (verdict.status === 'allowed') return;
    if (options.onPause === 'throw')
      throw new WardenBlockedError(`tool ${options.name} is paused for review: ${verdict.decision.reason}`, {
        taskId: options.taskId,
        decision: verdict.decision,
      });
    await verdict.waitForRelease({
      ...options.release,
      ...(call.abortSignal ? { signal: call.abortSignal } : {}),
    });
  };

  // A streaming tool (an async generator) stays one: the guard runs before its first step.
  const streaming = execute.constructor.name === 'AsyncGeneratorFunction';
  const guarded = streaming
    ? async function* (input: INPUT, call: ToolExecutionOptions) {
        await allow(input, call);
        yield* execute(input, call) as AsyncIterable<OUTPUT>;
      }
    : async (input: INPUT, call: ToolExecutionOptions) => {
        await allow(input, call);
        return (await execute(input, call)) as OUTPUT;
      };
  return { ...original, execute: guarded } as Tool<INPUT, OUTPUT>;
}
