import { z } from 'zod';

/**
 * What an agent proposes to do next, sent as `payload.action` of a `TASK_ACTION_PROPOSED` event before it
 * acts: a tool call, a command, paths it will write, hosts it will reach — any combination, at least one.
 * See docs/supervisor.md, "Guarded actions".
 */
export const ActionProposalSchema = z
  .object({
    /** The tool the agent calls; must be one of the capabilities the task declared. */
    tool: z.string().min(1).max(200).optional(),
    /** A shell line, an argv (`["git", "status"]`) or a `command_spec` object: judged like pre-flight. */
    command: z
      .union([
        z.string().min(1).max(16_384),
        z.array(z.string().max(4096)).min(1).max(2000),
        z.record(z.string(), z.unknown()),
      ])
      .optional(),
    /** The working directory of `command` and of relative `paths`, when the agent knows it. */
    cwd: z.string().min(1).max(4096).optional(),
    /** Paths the action writes (needs the `file_write` capability; never a forbidden path). */
    paths: z.array(z.string().min(1).max(4096)).min(1).max(100).optional(),
    /** Hosts (or URLs) the action reaches (needs the `network` capability; the task's `allowed_hosts` when declared). */
    hosts: z.array(z.string().min(1).max(2048)).min(1).max(100).optional(),
    /** The tool's input, kept on the trail; not judged. */
    input: z.unknown().optional(),
    /** What the agent says the action is for, shown to a reviewer. */
    description: z.string().max(2000).optional(),
  })
  .strict()
  .refine(
    (action) =>
      action.tool !== undefined ||
      action.command !== undefined ||
      action.paths !== undefined ||
      action.hosts !== undefined,
    'an action names at least one of tool, command, paths, hosts',
  );
export type ActionProposal = z.infer<typeof ActionProposalSchema>;

/** The payload of a `TASK_ACTION_PROPOSED` event. */
export const ActionProposedPayloadSchema = z.object({ action: ActionProposalSchema }).strict();

/**
 * Hosts no action may reach whatever the task declares: instance metadata services, which hand out cloud
 * credentials to whoever asks from inside the machine.
 */
export const FORBIDDEN_ACTION_HOSTS: readonly string[] = [
  '169.254.169.254',
  '169.254.170.2',
  '100.100.100.200',
  '192.0.0.192',
  '[fd00:ec2::254]',
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
];

/** A host as a connection would reach it, or why it cannot be read. */
export type CanonicalHost = { host: string } | { problem: string };

/**
 * Reads a host or URL the way a WHATWG URL client (fetch, undici, browsers) would connect to it, so spellings
 * cannot disagree with the connection: upper case, a trailing dot, IDNA (`ｅxample.com` is `example.com`, a
 * Cyrillic `а` becomes `xn--…`), userinfo (`good.com@evil.com` is `evil.com`), and numeric IPv4 forms
 * (`0xa9fea9fe`, `2852039166`, `0251.0376.0251.0376`) are all resolved; an IPv4-mapped IPv6 address is read as
 * its IPv4 address. Anything the parser refuses is a problem: unreadable is never reachable.
 */
export function canonicalHost(raw: string): CanonicalHost {
  const text = raw.trim();
  // Whitespace or a control character is never part of a name a resolver looks up: refused, not guessed at.
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (text === '' || /[\s\u0000-\u001f\u007f]/.test(text))
    return { problem: 'empty or holds whitespace or control characters' };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { problem: 'not a host name, an IP address or a URL' };
  }
  let host = url.hostname.toLowerCase();
  if (host === '') return { problem: 'names no host' };
  while (host.endsWith('.')) host = host.slice(0, -1);
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
  if (mapped) {
    const high = Number.parseInt(mapped[1]!, 16);
    const low = Number.parseInt(mapped[2]!, 16);
    host = [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  if (host === '') return { problem: 'names no host' };
  return { host };
}

/** `pattern` is an exact host, `*.suffix` (the suffix's subdomains, not the suffix itself) or `*`. */
export function hostMatches(host: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*.')) {
    const suffix = canonicalHost(pattern.slice(2));
    return 'host' in suffix && host.endsWith(`.${suffix.host}`);
  }
  const exact = canonicalHost(pattern);
  return 'host' in exact && exact.host === host;
}
