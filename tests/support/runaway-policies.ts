// Policies that misbehave, for the supervisor's sandbox tests: loaded into the policy worker threads through
// the service's `policyRegistryModule` option, so they run exactly where production policies run.
import { builtInPolicies, type Policy, type PolicyOutcome, type PolicyRegistry } from '@warden/domain';

const allow = (reason: string): PolicyOutcome => ({
  decision_type: 'ALLOW',
  reason,
  findings: [],
  actions: [],
});

/** Never returns: what a catastrophic regex or an endless loop in a policy looks like from outside. */
const spins: Policy = {
  name: 'spinning_test_policy',
  version: '1',
  evaluate(): PolicyOutcome {
    for (;;) {
      // burn CPU for ever
    }
  },
};

/** A backtracking regex on a long input, written into a policy: exponential in the input's length. */
const backtracks: Policy = {
  name: 'backtracking_test_policy',
  version: '1',
  evaluate({ event }): PolicyOutcome {
    const command = typeof event.payload.command === 'string' ? event.payload.command : '';
    return /^(a+)+$/.test(command) ? allow('matched') : allow('did not match');
  },
};

/** Waits 600 ms of wall-clock time without using CPU: not over a CPU budget, however long it takes. */
const sleeps: Policy = {
  name: 'sleeping_test_policy',
  version: '1',
  evaluate(): PolicyOutcome {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600);
    return allow('slept, then allowed');
  },
};

/** Takes its worker thread down with it. */
const exits: Policy = {
  name: 'exiting_test_policy',
  version: '1',
  evaluate(): PolicyOutcome {
    process.exit(3);
  },
};

export function createPolicyRegistry(): PolicyRegistry {
  return builtInPolicies()
    .register('TEST_SPINS', spins)
    .register('TEST_BACKTRACKS', backtracks)
    .register('TEST_SLEEPS', sleeps)
    .register('TEST_EXITS', exits);
}
