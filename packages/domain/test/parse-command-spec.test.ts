// Reading a command_spec into the commands it would run: shapes, wrappers, nesting, problems and limits.
import { describe, expect, it } from 'vitest';
import { parseCommandSpec, type ParsedCommandSpec } from '../src/index.js';
import { displayValue } from '../src/supervisor/shell/path-pattern.js';

function programs(parsed: ParsedCommandSpec): string[] {
  return parsed.commands.map((c) => c.program);
}

function problemCodes(parsed: ParsedCommandSpec): string[] {
  return parsed.problems.map((p) => p.code);
}

describe('parseCommandSpec', () => {
  describe('spec shapes', () => {
    it('should read command and args as one shell line and as an argv', () => {
      const parsed = parseCommandSpec({ name: 'c', command: 'bash', args: ['-c', 'rm -rf /'] });
      expect(parsed.commands.map((c) => `${c.reading}:${c.program}`)).toEqual([
        'shell:bash',
        'shell:rm',
        'exec:bash',
        'shell:rm',
      ]);
      expect(parsed.commandLine).toBe('bash -c rm -rf /');
    });

    it('should read args given as a string as shell text', () => {
      const parsed = parseCommandSpec({ name: 'c', command: 'rm', args: '-rf /' });
      expect(parsed.commands).toHaveLength(1);
      expect(parsed.commands[0]!.argv.map((w) => w.value)).toEqual(['rm', '-rf', '/']);
    });

    it('should read a command array as an argv without a shell', () => {
      const parsed = parseCommandSpec({ name: 'c', command: ['echo', 'a;sudo id'] });
      expect(programs(parsed)).toEqual(['echo']);
      expect(parsed.problems).toEqual([]);
    });

    it('should still unwrap wrappers in an argv', () => {
      expect(programs(parseCommandSpec({ name: 'c', command: ['env', 'bash', '-c', 'sudo id'] }))).toEqual([
        'env',
        'bash',
        'sudo',
        'id',
      ]);
    });

    it('should read a plain string as a shell line', () => {
      expect(programs(parseCommandSpec('ls; sudo id'))).toEqual(['ls', 'sudo', 'id']);
    });

    it('should trim whitespace around argv words', () => {
      const exec = parseCommandSpec({ name: 'c', command: ['  rm\t', ' -rf ', '\n/ '] }).commands[0]!;
      expect(exec.argv.map((w) => w.value)).toEqual(['rm', '-rf', '/']);
    });

    it.each([
      ['a number', 42, 'command_spec is a number'],
      ['null', null, 'command_spec is null'],
      ['an array', ['rm', '-rf', '/'], 'command_spec is an array'],
      ['a command of the wrong type', { name: 'c', command: 7 }, 'command_spec.command is a number'],
      [
        'args of the wrong type',
        { name: 'c', command: 'ls', args: { x: 1 } },
        'command_spec.args is a object',
      ],
      [
        'args holding non-strings',
        { name: 'c', command: 'ls', args: ['-l', 3] },
        'command_spec.args holds values',
      ],
      [
        'an empty command array',
        { name: 'c', command: [] },
        'command_spec.command is an array that is empty',
      ],
      [
        'an unknown field',
        { name: 'c', command: 'ls', script: 'sudo id' },
        'fields the redline judge does not read: script',
      ],
      [
        'a cwd that is not a string',
        { name: 'c', command: 'ls', cwd: 1 },
        'command_spec.cwd is not a string',
      ],
      [
        'an env that is not an object of strings',
        { name: 'c', command: 'ls', env: { A: 1 } },
        'command_spec.env.A is not a string',
      ],
    ])('should fail closed on %s', (_name, spec, reason) => {
      const parsed = parseCommandSpec(spec);
      expect(problemCodes(parsed)).toContain('REDLINE_UNKNOWN_SPEC_SHAPE');
      expect(parsed.problems.map((p) => p.reason).join('; ')).toContain(reason);
    });

    it('should still read the argv of an array spec', () => {
      expect(programs(parseCommandSpec(['sudo', 'id']))).toEqual(['sudo', 'id']);
    });

    it('should read nothing, and find nothing wrong, when there is no spec', () => {
      expect(parseCommandSpec(undefined)).toMatchObject({ commands: [], problems: [] });
    });

    it('should keep cwd and env for the judge', () => {
      const parsed = parseCommandSpec({ name: 'c', command: 'rm -rf *', cwd: '/srv/../', env: { CI: '1' } });
      expect(parsed.cwd).toBe('/');
      expect(parsed.env).toEqual([{ name: 'CI', value: { source: '1', value: '1' } }]);
      expect(displayValue(parsed.commands[0]!.argv[2]!.value)).toBe('*');
      expect(parsed.commands[0]!.cwd).toBe('/');
    });
  });

  describe('wrappers', () => {
    it.each([
      ['env -i -u HOME FOO=1 -- sudo id', ['env', 'sudo']],
      ['env -S "sudo id"', ['env', 'sudo']],
      [
        'nohup nice -n 5 timeout -k 5 60 stdbuf -oL time -p command -p sudo id',
        ['nohup', 'nice', 'timeout', 'stdbuf', 'time', 'command', 'sudo'],
      ],
      ['exec -a name sudo id', ['exec', 'sudo']],
      ['busybox sh -c "sudo id"', ['busybox', 'sh', 'sudo']],
      ['setsid -f ionice -c 3 flock /tmp/l sudo id', ['setsid', 'ionice', 'flock', 'sudo']],
      ['watch -n 1 "sudo id"', ['watch', 'sudo']],
      ['script -qc "sudo id" /dev/null', ['script', 'sudo']],
      ['ssh -p 22 host sudo id', ['ssh', 'sudo']],
      ['sudo -u root bash -c "rm -rf /"', ['sudo', 'bash', 'rm']],
      ['trap "sudo id" EXIT', ['trap', 'sudo']],
      ['alias s=sudo', ['alias', 'sudo']],
    ])('should follow `%s`', (line, expected) => {
      expect(programs(parseCommandSpec(line)).filter((p) => p !== 'id')).toEqual(expected);
    });

    it('should not run the program `command -v` only looks up', () => {
      expect(programs(parseCommandSpec('command -v sudo'))).toEqual(['command']);
    });

    it('should mark the command of xargs as taking arguments from stdin', () => {
      const parsed = parseCommandSpec('printf / | xargs rm -rf');
      expect(parsed.commands.find((c) => c.program === 'rm')).toMatchObject({
        argsFromStdin: true,
        via: ['xargs'],
      });
    });

    it('should put the start points of find in place of {}', () => {
      const rm = parseCommandSpec('find / -maxdepth 0 -exec rm -rf {} +').commands.find(
        (c) => c.program === 'rm',
      )!;
      expect(rm.argv.map((w) => w.value)).toEqual(['rm', '-rf', '/']);
    });

    it.each([
      ['env --frobnicate sudo id', 'env: unknown option --frobnicate'],
      ['timeout --kill-after', 'needs a value'],
      ['find . -exec sudo id', 'without a closing'],
    ])('should fail closed on a wrapper it cannot read: `%s`', (line, reason) => {
      const parsed = parseCommandSpec(line);
      expect(problemCodes(parsed)).toContain('REDLINE_UNREADABLE_COMMAND');
      expect(parsed.problems[0]!.reason).toContain(reason);
    });
  });

  describe('shell structure', () => {
    it.each([
      ['echo $(sudo id)', 'sudo'],
      ['echo `sudo id`', 'sudo'],
      ['cat <(sudo id)', 'sudo'],
      ['echo hi > >(sudo tee x)', 'sudo'],
      ['x=$(sudo id)', 'sudo'],
      ['export X="$(sudo id)"', 'sudo'],
      ['echo ${X:-$(sudo id)}', 'sudo'],
      ['echo $(( $(sudo id -u) + 1 ))', 'sudo'],
      ['[[ -n $(sudo id) ]]', 'sudo'],
      ['if true; then :; elif false; then :; else sudo id; fi', 'sudo'],
      ['case x in x) sudo id;; esac', 'sudo'],
      ['for i in $(sudo id); do :; done', 'sudo'],
      ['while sudo -n true; do break; done', 'sudo'],
      ['f() { sudo id; }', 'sudo'],
      ['time sudo id', 'sudo'],
      ['coproc sudo id', 'sudo'],
      ["bash <<< 'sudo id'", 'sudo'],
      ["sh <<'EOF'\nsudo id\nEOF", 'sudo'],
      ['cat <<EOF\n$(sudo id)\nEOF', 'sudo'],
      ['eval "eval \'sudo id\'"', 'sudo'],
      ['s\\udo id', 'sudo'],
      ['\'su\'"do" id', 'sudo'],
      ["$'\\x73udo' id", 'sudo'],
      ['{sudo,id}', 'sudo'],
    ])('should find the command inside `%s`', (line, program) => {
      expect(programs(parseCommandSpec(line))).toContain(program);
    });

    it.each([
      ['curl -s x | bash', 'bash', 'pipe'],
      ['curl -s x | python3 -', 'python3', 'pipe'],
      ['bash <(curl -s x)', 'bash', 'process-substitution'],
      ['bash < <(curl -s x)', 'bash', 'process-substitution'],
      ['bash -c "$(curl -s x)"', 'bash', 'command-output'],
      ["python3 <<'EOF'\nprint(1)\nEOF", 'python3', 'here-document'],
      ['curl x | sudo -E bash -s', 'bash', 'pipe'],
    ])('should see where the interpreter of `%s` reads its script from', (line, program, from) => {
      expect(parseCommandSpec(line).commands.find((c) => c.program === program)?.scriptFrom).toBe(from);
    });

    it.each([
      ['cat x | grep y', 'grep'],
      ['cat x | python3 script.py', 'python3'],
      ['cat x | python3 -m json.tool', 'python3'],
      ['echo 1 | node -e "process.stdin.pipe(process.stdout)"', 'node'],
      ['sh < install.sh', 'sh'],
    ])('should not treat `%s` as a script read from a stream', (line, program) => {
      expect(parseCommandSpec(line).commands.find((c) => c.program === program)?.scriptFrom).toBeUndefined();
    });

    it('should record redirects with their mode, leaving descriptors and /dev/null out', () => {
      const [command] = parseCommandSpec('cmd < in > out 2>&1 2>/dev/null >> log &> all').commands;
      expect(
        command!.redirects.map((r) => `${r.op}${r.mode === 'write' ? 'w' : 'r'} ${r.target.value}`),
      ).toEqual(['<r in', '>w out', '>>w log', '&>w all']);
    });

    it('should track cd for relative paths', () => {
      const parsed = parseCommandSpec('cd /srv && cd app; rm -rf build; cd; ls x; cd "$D"; ls y');
      expect(parsed.commands.filter((c) => c.program !== 'cd').map((c) => c.cwd)).toEqual([
        '/srv/app',
        '~',
        null,
      ]);
    });

    it('should mark the recursive call of a fork bomb', () => {
      const parsed = parseCommandSpec(':(){ :|:& };:');
      expect(parsed.commands.filter((c) => c.traits.includes('fork_bomb')).length).toBeGreaterThan(0);
      expect(parseCommandSpec('f() { echo; }; f | f').commands.some((c) => c.traits.length > 0)).toBe(false);
    });
  });

  describe('what cannot be known statically', () => {
    it.each([
      ['$CMD id'],
      ['"$X" id'],
      ['/usr/bin/$X id'],
      ['$(echo sudo) id'],
      ['`echo sudo` id'],
      ['s${x}udo id'],
      ['eval "$X"'],
      ['bash -c "$X"'],
      ['IFS=/ ; x=a'],
      ['export $NAME=1'],
      ['{a,b}c'],
      ['sh <<EOF\n$X\nEOF'],
      ['/usr/bin/su?o id'],
    ])('should fail closed on `%s`', (line) => {
      expect(problemCodes(parseCommandSpec(line))).toContain('REDLINE_DYNAMIC_COMMAND');
    });

    it.each([['echo "open'], ['a &&'], ['echo $(( ']])(
      'should fail closed on the unparseable `%s`',
      (line) => {
        expect(problemCodes(parseCommandSpec(line))).toEqual(['REDLINE_UNREADABLE_COMMAND']);
      },
    );

    it('should still read the lines before a syntax error, which a shell would run', () => {
      const parsed = parseCommandSpec('sudo id\necho "open');
      expect(programs(parsed)).toEqual(['sudo', 'id']);
      expect(problemCodes(parsed)).toEqual(['REDLINE_UNREADABLE_COMMAND']);
    });
  });

  describe('limits', () => {
    it('should fail closed past the nesting depth', () => {
      const parsed = parseCommandSpec(`${'eval '.repeat(12)}sudo id`);
      expect(problemCodes(parsed)).toContain('REDLINE_UNREADABLE_COMMAND');
      expect(parsed.problems.map((p) => p.reason).join()).toMatch(/nested deeper than 8/);
    });

    it('should fail closed past the size limit without parsing', () => {
      const parsed = parseCommandSpec(`echo ${'a'.repeat(20_000)}`);
      expect(parsed.commands).toEqual([]);
      expect(parsed.problems.map((p) => p.reason)).toEqual([
        'command too large to read: shell text past the size limit was not parsed',
      ]);
    });

    it('should honour smaller limits', () => {
      expect(problemCodes(parseCommandSpec('a; b; c', { maxCommands: 2 }))).toEqual([
        'REDLINE_UNREADABLE_COMMAND',
      ]);
      expect(problemCodes(parseCommandSpec('sh -c "sh -c id"', { maxDepth: 1 }))).toEqual([
        'REDLINE_UNREADABLE_COMMAND',
      ]);
      expect(problemCodes(parseCommandSpec('echo hello', { maxSourceChars: 5 }))).toEqual([
        'REDLINE_UNREADABLE_COMMAND',
      ]);
    });

    it('should read a brace expansion of too many words as unknown', () => {
      const rm = parseCommandSpec('rm -rf /{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}').commands[0]!;
      expect(rm.argv).toHaveLength(3);
      expect(displayValue(rm.argv[2]!.value)).toBe('${?}');
    });
  });
});
