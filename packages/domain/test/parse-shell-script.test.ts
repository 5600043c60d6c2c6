// The mvdan-sh wrapper: operator codes pinned to what they parse, and every failure a ShellSyntaxError.
import { describe, expect, it } from 'vitest';
import {
  SHELL_OP,
  ShellSyntaxError,
  goSlice,
  goString,
  goType,
  isNil,
  parseShellScript,
  walkNodes,
  type GoNode,
} from '../src/supervisor/shell/parse-shell-script.js';

const first = (source: string): GoNode => goSlice(parseShellScript(source).Stmts)[0];
const args = (stmt: GoNode): GoNode[] => goSlice(stmt.Cmd.Args);

describe('parseShellScript', () => {
  it.each([
    ['and', 'a && b'],
    ['or', 'a || b'],
    ['pipe', 'a | b'],
    ['pipeAll', 'a |& b'],
  ] as const)('should give %s the code of its operator', (name, source) => {
    expect(first(source).Cmd.Op).toBe(SHELL_OP[name]);
  });

  it.each([
    ['redirOut', 'a > b'],
    ['appendOut', 'a >> b'],
    ['redirIn', 'a < b'],
    ['redirInOut', 'a <> b'],
    ['dupIn', 'a <& 3'],
    ['dupOut', 'a >& 2'],
    ['clobberOut', 'a >| b'],
    ['hereString', 'a <<< b'],
    ['redirAll', 'a &> b'],
    ['appendAll', 'a &>> b'],
    ['heredoc', 'a <<EOF\nx\nEOF\n'],
    ['dashHeredoc', 'a <<-EOF\nx\nEOF\n'],
  ] as const)('should give the redirect %s the code of its operator', (name, source) => {
    expect(goSlice(first(source).Redirs)[0].Op).toBe(SHELL_OP[name]);
  });

  it.each([
    ['procIn', 'a <(b)'],
    ['procOut', 'a >(b)'],
  ] as const)('should give the process substitution %s its code', (name, source) => {
    expect(goSlice(args(first(source))[1].Parts)[0].Op).toBe(SHELL_OP[name]);
  });

  it.each([
    ['an unclosed quote', 'echo "open'],
    ['a dangling operator', 'a &&'],
    ['an unclosed substitution', 'echo $(('],
  ])('should throw a ShellSyntaxError with the parser message for %s', (_name, source) => {
    expect(() => parseShellScript(source)).toThrowError(ShellSyntaxError);
    expect(() => parseShellScript(source)).toThrowError(/^command:\d+:/);
  });

  it('should return the Go File node, typed by goType', () => {
    const file = parseShellScript('a | b; c');
    expect(goType(file)).toBe('File');
    expect(goSlice(file.Stmts).map((stmt) => goType(stmt.Cmd))).toEqual(['BinaryCmd', 'CallExpr']);
  });

  it('should tell nil pointers and nil interfaces from nodes', () => {
    const redirect = goSlice(first('> out').Redirs)[0];
    expect(isNil(first('> out').Cmd)).toBe(true);
    expect(isNil(redirect.N)).toBe(true);
    expect(isNil(redirect.Word)).toBe(false);
    expect(goType(redirect.N)).toBe('nil');
  });

  it('should decode Go strings from UTF-8', () => {
    const [program, quoted] = args(first('ѕudo "é"'));
    expect(goString(goSlice(program.Parts)[0].Value)).toBe('ѕudo');
    expect(goString(goSlice(goSlice(quoted.Parts)[0].Parts)[0].Value)).toBe('é');
  });

  it('should walk every node by reflection, nested substitutions included', () => {
    const seen: string[] = [];
    walkNodes(parseShellScript('echo ${x:-$(sudo id)} $(( $(b) ))'), (_node, type) => {
      seen.push(type);
      return true;
    });
    expect(seen.filter((type) => type === 'CallExpr')).toHaveLength(3);
  });

  it('should turn a stack overflow on deep nesting into a ShellSyntaxError', () => {
    const deep = '$('.repeat(5000) + ')'.repeat(5000);
    expect(() => parseShellScript(deep)).toThrowError(ShellSyntaxError);
  });
});
