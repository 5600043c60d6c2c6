import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/command-catalog.js';
import { catalogProgram, createProgramFor } from '../src/lazy-program.js';
import type { CliIo } from '../src/output.js';
import { createProgram } from '../src/program.js';

const io: CliIo = { out: () => {}, err: () => {} };
const environment = { env: {}, cwd: process.cwd() };
const commandNames = (program: Command) => program.commands.map((command) => command.name());

// The `warden` process loads commands from the catalog; in-process use registers them all (program.ts).
describe('the command catalog', () => {
  it('should name every command program.ts registers, in the same order', () => {
    expect(COMMANDS.map((entry) => entry.name)).toEqual(commandNames(createProgram({ environment, io })));
  });

  it("should give the same top-level help as the whole program, without loading a command's module", () => {
    expect(catalogProgram(io).helpInformation()).toBe(createProgram({ environment, io }).helpInformation());
  });

  it.each(COMMANDS.map((entry) => [entry.name, entry] as const))(
    'should load the module that registers %s, and only that command',
    async (name, entry) => {
      const program = await createProgramFor(['node', 'warden', name, '--help'], environment, io);
      expect(commandNames(program)).toEqual([name]);
      expect(program.commands[0]!.description()).toBe(entry.description);
    },
  );

  it('should use the whole program for a name it does not know', async () => {
    const whole = commandNames(createProgram({ environment, io }));
    for (const argv of [['help', 'keys'], ['frobnicate'], ['--help', 'keys']]) {
      const program = await createProgramFor(['node', 'warden', ...argv], environment, io);
      expect(commandNames(program)).toEqual(whole);
    }
  });
});
