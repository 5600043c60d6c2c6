/**
 * The egress policy: where Warden's own outbound calls (scheduler HTTP targets, the executor's HTTP health
 * checks, notification webhooks) may go. An agent or a trigger author chooses those URLs, so every call is a
 * possible server-side request forgery; the rules are:
 *
 * 1. The host must be on the allow-list. The list is empty by default: a deployment names what it calls.
 * 2. Every address the host resolves to is checked (by the caller, after DNS, on the address actually
 *    connected to): loopback, link-local, unspecified, multicast, broadcast and reserved addresses are refused
 *    unless an operator allowed their range explicitly (local development allows `127.0.0.0/8`). Cloud
 *    metadata endpoints are refused always.
 * 3. Redirects are never followed: a 3xx is an answer, not a new request.
 *
 * Pure: name resolution and connecting are the caller's (see `EgressGuard` in `@warden/runtime`).
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/** The ranges a host name may never lead to, whatever the allow-lists say: instance metadata services. */
const METADATA_ADDRESSES = [
  '169.254.169.254', // AWS, GCP, Azure, OpenStack
  '169.254.170.2', // AWS ECS task metadata
  '100.100.100.200', // Alibaba Cloud
  '192.0.0.192', // Oracle Cloud
  'fd00:ec2::254', // AWS over IPv6
] as const;

/**
 * ipaddr.js range names an outbound call may reach without an explicit CIDR: public unicast and the private
 * ranges in-cluster services live on. Every other range (loopback, link-local, multicast, unspecified,
 * reserved, and IPv6 ranges that embed an IPv4 address such as NAT64 or 6to4) is refused unless an allowed
 * CIDR covers it: an allow-list, so a range ipaddr.js names in a later version is refused until reviewed.
 */
const REACHABLE_RANGES = new Set(['unicast', 'private', 'uniqueLocal', 'carrierGradeNat']);

/** A host pattern of the allow-list: `*`, an exact name or IP literal, or `*.suffix`. */
const HostPatternSchema = z
  .string()
  .regex(
    /^(\*|(\*\.)?[A-Za-z0-9.-]+|\[?[0-9A-Fa-f:.]+\]?)$/,
    'a host name, an IP address, "*" or "*.suffix"',
  );

/** A range an operator lets Warden reach although it is refused by default, e.g. `127.0.0.0/8`. */
const CidrSchema = z.string().refine((value) => {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return false;
  }
}, 'a CIDR range such as 127.0.0.0/8 or ::1/128');

/** Splits a comma-separated setting, dropping blanks. */
const commaList = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** `EGRESS_ALLOWED_HOSTS`, comma-separated. @defaultValue empty: every outbound call is refused */
export const EgressAllowedHostsSchema = z
  .string()
  .default('')
  .transform(commaList)
  .pipe(z.array(HostPatternSchema));

/** `EGRESS_ALLOWED_CIDRS`, comma-separated. @defaultValue empty: no refused range is reachable */
export const EgressAllowedCidrsSchema = z.string().default('').transform(commaList).pipe(z.array(CidrSchema));

/** The environment fields of every service that calls out: spread into its config schema. */
export const egressEnvShape = {
  /**
   * Hosts Warden's outbound calls may name, comma-separated: exact names, IP addresses, `*.example.com`, or
   * `*`. @defaultValue empty — every outbound call is refused until a deployment names its hosts
   */
  EGRESS_ALLOWED_HOSTS: EgressAllowedHostsSchema,
  /**
   * Address ranges refused by default (loopback, link-local, …) that outbound calls may reach anyway,
   * comma-separated CIDRs; local development sets `127.0.0.0/8,::1/128`. Cloud metadata addresses stay refused.
   * @defaultValue empty
   */
  EGRESS_ALLOWED_CIDRS: EgressAllowedCidrsSchema,
};

export interface EgressRules {
  /** Hosts outbound calls may name. Empty refuses every call. */
  allowedHosts: readonly string[];
  /** Refused ranges made reachable on purpose (metadata addresses stay refused). */
  allowedCidrs: readonly string[];
}

export type EgressVerdict = { ok: true } | { ok: false; reason: string };

const ALLOWED: EgressVerdict = { ok: true };

/** Strips the brackets of an IPv6 literal as `URL.hostname` spells it. */
function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** Whether a URL may be called at all: its scheme, its credentials, its host against the allow-list. */
export function checkEgressUrl(rules: EgressRules, url: string): EgressVerdict {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return { ok: false, reason: `scheme "${parsed.protocol}" is not http or https` };
  if (parsed.username !== '' || parsed.password !== '')
    return { ok: false, reason: 'URLs with credentials in them are refused (send a header instead)' };
  // URL lower-cases names and turns every IPv4 spelling (0x7f.1, 2130706433, 127.1) into dotted decimal.
  const host = bareHost(parsed.hostname).replace(/\.$/, '');
  if (!hostAllowed(rules.allowedHosts, host)) {
    return {
      ok: false,
      reason:
        rules.allowedHosts.length === 0
          ? `host "${host}" is refused: EGRESS_ALLOWED_HOSTS is empty, so no outbound call is allowed`
          : `host "${host}" is not in EGRESS_ALLOWED_HOSTS`,
    };
  }
  if (ipaddr.isValid(host)) return checkEgressAddress(rules, host);
  return ALLOWED;
}

/** Whether an address (a literal in the URL, or what the host name resolved to) may be connected to. */
export function checkEgressAddress(rules: EgressRules, address: string): EgressVerdict {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process() turns an IPv4-mapped IPv6 address (::ffff:127.0.0.1) into the IPv4 it stands for.
    parsed = ipaddr.process(bareHost(address));
  } catch {
    return { ok: false, reason: `"${address}" is not an IP address` };
  }
  const normalized = parsed.toString();
  if (METADATA_ADDRESSES.some((meta) => ipaddr.process(meta).toString() === normalized))
    return { ok: false, reason: `${normalized} is a cloud metadata address; Warden never calls it` };
  const range = parsed.range();
  if (REACHABLE_RANGES.has(range)) return ALLOWED;
  const covered = rules.allowedCidrs.some((cidr) => {
    const [network, bits] = ipaddr.parseCIDR(cidr);
    return network.kind() === parsed.kind() && parsed.match([network, bits] as never);
  });
  return covered
    ? ALLOWED
    : {
        ok: false,
        reason: `${normalized} is a ${range} address; allow its range in EGRESS_ALLOWED_CIDRS to reach it`,
      };
}

function hostAllowed(patterns: readonly string[], host: string): boolean {
  const lower = host.toLowerCase();
  return patterns.some((raw) => {
    const pattern = bareHost(raw.toLowerCase()).replace(/\.$/, '');
    if (pattern === '*') return true;
    if (pattern.startsWith('*.'))
      return lower.endsWith(pattern.slice(1)) && lower.length > pattern.length - 1;
    if (ipaddr.isValid(pattern) && ipaddr.isValid(lower))
      return ipaddr.process(pattern).toString() === ipaddr.process(lower).toString();
    return pattern === lower;
  });
}
