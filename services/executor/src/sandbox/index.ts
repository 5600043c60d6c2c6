export {
  VerificationSandbox,
  type SandboxContext,
  type SandboxSettings,
  type SandboxedResult,
} from './sandbox.js';
export { buildSandboxEnv } from './environment.js';
export { redactCommandOutput } from './output.js';
export { createVerificationSandbox } from './create.js';
