/** The bootstrap supervisor policy with one more forbidden command, `echo`: a policy change tests can observe. */
export function withEchoForbidden(source: string): string {
  const changed = source.replace(
    '  forbidden_commands:\n',
    '  forbidden_commands:\n    - description: echo is forbidden (test)\n      programs: [echo]\n',
  );
  if (changed === source) throw new Error('the bootstrap policy has no forbidden_commands list to extend');
  return changed;
}
