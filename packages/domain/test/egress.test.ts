import { describe, expect, it } from 'vitest';
import {
  EgressAllowedCidrsSchema,
  EgressAllowedHostsSchema,
  checkEgressAddress,
  checkEgressUrl,
  type EgressRules,
} from '../src/egress.js';

const rules = (allowedHosts: string[], allowedCidrs: string[] = []): EgressRules => ({
  allowedHosts,
  allowedCidrs,
});

describe('egress policy', () => {
  it('should refuse every URL when the allow-list is empty (the default), and say which setting to change', () => {
    const verdict = checkEgressUrl(
      rules(EgressAllowedHostsSchema.parse(undefined)),
      'https://example.com/hook',
    );
    expect(verdict).toEqual({ ok: false, reason: expect.stringContaining('EGRESS_ALLOWED_HOSTS is empty') });
  });

  it('should allow exact names, *.suffix patterns and * — and nothing that merely ends alike', () => {
    const list = rules(['handlers.example.com', '*.svc.cluster.local']);
    expect(checkEgressUrl(list, 'https://handlers.example.com/x').ok).toBe(true);
    expect(checkEgressUrl(list, 'https://HANDLERS.example.com./x').ok).toBe(true);
    expect(checkEgressUrl(list, 'http://jobs.ns.svc.cluster.local:8080/run').ok).toBe(true);
    expect(checkEgressUrl(rules(['*']), 'https://anything.example.org').ok).toBe(true);
    for (const url of [
      'https://evilhandlers.example.com/',
      'https://handlers.example.com.evil.net/',
      'https://svc.cluster.local.evil.net/',
      'https://xsvc.cluster.local/',
      'https://.svc.cluster.local/',
    ]) {
      expect(checkEgressUrl(list, url), url).toMatchObject({ ok: false });
    }
  });

  // Every spelling of an internal address an attacker may write in a trigger or health check URL. The
  // allow-list is `*` (the loosest an operator may set): the address check alone must refuse them.
  const internalSpellings = [
    'http://127.0.0.1/',
    'http://127.1/',
    'http://0x7f.0.0.1/',
    'http://2130706433/',
    'http://017700000001/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://0.0.0.0/',
    'http://[::]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/',
    'http://[fd00:ec2::254]/',
    'http://100.100.100.200/',
    'http://169.254.1.1/',
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[64:ff9b::7f00:1]/',
    'http://[2002:7f00:1::]/',
  ];
  it.each(internalSpellings)('should refuse %s even when every host is allowed', (url) => {
    expect(checkEgressUrl(rules(['*']), url)).toMatchObject({ ok: false });
  });

  it('should refuse schemes other than http(s), credentials in the URL, and what does not parse', () => {
    for (const url of [
      'file:///etc/passwd',
      'gopher://example.com/',
      'ftp://example.com/',
      'https://user:pass@example.com/',
      'not a url',
    ]) {
      expect(checkEgressUrl(rules(['*']), url), url).toMatchObject({ ok: false });
    }
  });

  it('should reach loopback only through an explicit CIDR, and metadata addresses never', () => {
    const local = rules(['*'], ['127.0.0.0/8', '::1/128', '169.254.0.0/16']);
    expect(checkEgressUrl(local, 'http://127.0.0.1:8080/').ok).toBe(true);
    expect(checkEgressUrl(local, 'http://[::1]:8080/').ok).toBe(true);
    expect(checkEgressAddress(local, '::ffff:127.0.0.1').ok).toBe(true);
    expect(checkEgressAddress(local, '169.254.169.254')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('metadata'),
    });
    expect(checkEgressAddress(local, '169.254.1.1').ok).toBe(true);
  });

  it('should let resolved public and private addresses through (in-cluster services live on private ones)', () => {
    const any = rules(['*']);
    for (const address of [
      '93.184.216.34',
      '10.0.0.5',
      '192.168.1.10',
      '172.16.0.1',
      'fd12::1',
      '2606:4700::1',
    ])
      expect(checkEgressAddress(any, address), address).toEqual({ ok: true });
    expect(checkEgressAddress(any, 'example.com')).toMatchObject({ ok: false });
  });

  it('should parse its settings and refuse malformed ones', () => {
    expect(EgressAllowedHostsSchema.parse(' a.example.com, *.b.example.com ,,')).toEqual([
      'a.example.com',
      '*.b.example.com',
    ]);
    expect(EgressAllowedCidrsSchema.parse('127.0.0.0/8,::1/128')).toEqual(['127.0.0.0/8', '::1/128']);
    expect(EgressAllowedHostsSchema.safeParse('http://x.example.com').success).toBe(false);
    expect(EgressAllowedCidrsSchema.safeParse('127.0.0.1').success).toBe(false);
    expect(EgressAllowedCidrsSchema.safeParse('10.0.0.0/33').success).toBe(false);
  });
});
