import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SupervisorPolicyFileSchema,
  TASK_TRANSITIONS,
  TaskStatusSchema,
  builtInPolicies,
  decideInOrder,
  heldBy,
  taskStateKey,
  transitionTask,
  type DecisionState,
  type TaskEvent,
  type TaskStatus,
} from '../src/index.js';

const policy = SupervisorPolicyFileSchema.parse({});
const registry = builtInPolicies();
const STATUSES = TaskStatusSchema.options;

describe('task lifecycle', () => {
  describe('the transition table', () => {
    it('should let no decision take a task out of blocked or a finished state', () => {
      for (const from of ['blocked', 'completed', 'failed', 'cancelled'] as const) {
        for (const to of STATUSES) {
          if (to === from) continue;
          expect(transitionTask(from, to, 'decision'), `${from} → ${to}`).toMatchObject({
            allowed: false,
            status: from,
          });
        }
      }
    });

    it('should let a decision take a paused task only to blocked', () => {
      const allowed = STATUSES.filter(
        (to) => to !== 'paused' && transitionTask('paused', to, 'decision').allowed,
      );
      expect(allowed).toEqual(['blocked']);
    });

    it('should let a person release a paused task and unblock a blocked one, to running only', () => {
      expect(transitionTask('paused', 'running', 'gate_released')).toEqual({
        allowed: true,
        status: 'running',
      });
      expect(transitionTask('blocked', 'running', 'unblocked')).toEqual({ allowed: true, status: 'running' });
      expect(transitionTask('blocked', 'running', 'gate_released').allowed).toBe(false);
      expect(transitionTask('paused', 'running', 'unblocked').allowed).toBe(false);
      expect(transitionTask('completed', 'running', 'unblocked').allowed).toBe(false);
    });

    it('should treat a task seen for the first time as pending', () => {
      expect(transitionTask(undefined, 'verifying', 'decision')).toEqual({
        allowed: true,
        status: 'verifying',
      });
    });

    it('should name every status in the decision table', () => {
      expect(Object.keys(TASK_TRANSITIONS.decision).sort()).toEqual([...STATUSES].sort());
    });
  });

  // Random agent event sequences, interleaved with a person's releases and unblocks.
  describe('over random event sequences', () => {
    const text = fc.oneof(
      fc.constantFrom('connection refused', 'permission denied', 'timeout', 'ok', ''),
      fc.string({ maxLength: 20 }),
    );
    const number = fc.oneof(
      fc.double({ noNaN: false }),
      fc.integer({ min: -5, max: 10 }),
      fc.constantFrom(2.5, 3e9, -1),
    );
    const anyValue = fc.oneof(
      text,
      number,
      fc.boolean(),
      fc.constant(null),
      fc.array(text, { maxLength: 3 }),
      fc.dictionary(fc.constantFrom('message', 'type', 'code', 'status'), text),
    );
    const agentEvent = fc.oneof(
      fc.record({
        event_type: fc.constant('TASK_CREATED'),
        payload: fc.record(
          {
            run_mode: fc.constantFrom('manual', 'assisted', 'autonomous', 'weird'),
            agent_spec: fc.record({
              name: fc.constant('a'),
              capabilities: fc.subarray(['network', 'file_write', 'search']),
            }),
            command_spec: fc.record({
              name: fc.constant('c'),
              command: fc.constantFrom('ls', 'echo hi', 'sudo id', 'rm -rf /', 'git status'),
            }),
            exclusive_resources: fc.subarray(['db', 'queue']),
            max_retries: number,
          },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        event_type: fc.constant('TASK_STEP_COMPLETED'),
        payload: fc.record(
          {
            step: fc.record(
              {
                mode: fc.constantFrom('manual', 'assisted', 'autonomous', 'unknown'),
                tool: fc.constantFrom('search', 'shell'),
              },
              { requiredKeys: [] },
            ),
            risk_indicators: fc.record(
              { error_rate: number, resource_usage: number, security_score: number },
              { requiredKeys: [] },
            ),
            result: fc.record({ warnings: fc.array(text, { maxLength: 2 }) }, { requiredKeys: [] }),
          },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        event_type: fc.constant('TASK_FAILED'),
        payload: fc.record(
          {
            error: anyValue,
            error_type: anyValue,
            error_message: anyValue,
            message: anyValue,
            retry_count: anyValue,
          },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        event_type: fc.constant('TASK_STATE_CHANGED'),
        payload: fc.record(
          { status: fc.oneof(fc.constantFrom(...STATUSES), text), state: text, to: text },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        event_type: fc.constantFrom('SOMETHING_ELSE', 'TASK_ACTION'),
        payload: fc.dictionary(fc.string({ maxLength: 8 }), anyValue, { maxKeys: 3 }),
      }),
    );
    const step = fc.oneof(
      { weight: 6, arbitrary: agentEvent.map((e) => ({ kind: 'agent' as const, ...e })) },
      { weight: 1, arbitrary: fc.constantFrom({ kind: 'release' as const }, { kind: 'unblock' as const }) },
    );
    const initial = fc.constantFrom<TaskStatus | undefined>(undefined, ...STATUSES);

    it('should never let an agent event take a task out of blocked, paused or a finished state, nor allow it there', () => {
      fc.assert(
        fc.property(initial, fc.array(step, { minLength: 1, maxLength: 30 }), (start, steps) => {
          const key = taskStateKey({ tenant_id: 't', task_id: 'task' });
          const state: DecisionState = {
            tasks: new Map([[key, { status: start, metadata: {}, retry_count: 0 }]]),
            holders: new Map(),
          };
          let n = 0;
          for (const s of steps) {
            const task = state.tasks.get(key)!;
            const before = task.status;
            if (s.kind === 'release' || s.kind === 'unblock') {
              // A person's act: the only way out of paused (release) and blocked (unblock).
              const transition = transitionTask(
                before,
                'running',
                s.kind === 'release' ? 'gate_released' : 'unblocked',
              );
              const expectedOut =
                (s.kind === 'release' && before === 'paused') ||
                (s.kind === 'unblock' && before === 'blocked');
              // (A task already running "moves" to running: allowed, and a no-op.)
              if (before !== 'running') expect(transition.allowed).toBe(expectedOut);
              if (transition.allowed) task.status = transition.status;
              continue;
            }
            const event: TaskEvent = {
              event_id: `e${n++}`,
              tenant_id: 't',
              task_id: 'task',
              event_type: s.event_type,
              ts: '2026-12-03T00:00:00Z',
              source: 'queue',
              payload: s.payload as Record<string, unknown>,
            };
            const metadataBefore = JSON.stringify(task.metadata);
            const retriesBefore = task.retry_count;
            const [plan] = decideInOrder([event], state, policy, registry);
            const after = state.tasks.get(key)!.status;
            const hold = heldBy(before);
            if (hold === 'blocked' || hold === 'finished') {
              expect(after).toBe(before);
              expect(plan!.decision.decision_type).toBe('BLOCK');
            }
            if (hold === 'paused') {
              expect(['paused', 'blocked']).toContain(after);
              expect(['PAUSE', 'BLOCK', 'REQUIRE_REVIEW']).toContain(plan!.decision.decision_type);
            }
            if (hold !== undefined) {
              expect(JSON.stringify(state.tasks.get(key)!.metadata)).toBe(metadataBefore);
              expect(state.tasks.get(key)!.retry_count).toBe(retriesBefore);
              expect(plan!.gate === undefined || plan!.decision.decision_type !== 'ALLOW').toBe(true);
            }
            // Whatever the payload, the recorded retry count stays a small whole number (it is stored as int).
            expect(Number.isSafeInteger(state.tasks.get(key)!.retry_count)).toBe(true);
            expect(state.tasks.get(key)!.retry_count).toBeGreaterThanOrEqual(0);
            expect(state.tasks.get(key)!.retry_count).toBeLessThanOrEqual(1001);
          }
        }),
        { numRuns: 500, seed: 20261203 },
      );
    });

    it('should never ALLOW an action of a task no TASK_CREATED declared, whatever events came before', () => {
      const undeclared = agentEvent.filter((e) => e.event_type !== 'TASK_CREATED');
      fc.assert(
        fc.property(fc.array(undeclared, { maxLength: 12 }), (events) => {
          const key = taskStateKey({ tenant_id: 't', task_id: 'task' });
          // Never seen before the sequence: the first event creates the task, as the supervisor does.
          const state: DecisionState = {
            tasks: new Map([[key, { status: undefined, metadata: {}, retry_count: 0 }]]),
            holders: new Map(),
          };
          // A harmless command that needs no capability: only the missing declaration may stop it.
          const action = { event_type: 'TASK_ACTION_PROPOSED', payload: { action: { command: 'ls -la' } } };
          const sequence = [...events, action].map((e, n): TaskEvent => ({
            event_id: `e${n}`,
            tenant_id: 't',
            task_id: 'task',
            event_type: e.event_type,
            ts: '2026-12-03T00:00:00Z',
            source: 'queue',
            payload: e.payload as Record<string, unknown>,
          }));
          const plans = decideInOrder(sequence, state, policy, registry);
          expect(plans.at(-1)!.decision.decision_type).not.toBe('ALLOW');
          // Blocked by the action, or already finished (which holds it just as well).
          expect(['blocked', 'finished']).toContain(heldBy(state.tasks.get(key)!.status));
        }),
        { numRuns: 300, seed: 20261205 },
      );
    });
  });
});
