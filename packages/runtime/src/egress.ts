/**
 * The egress policy applied to real connections. A URL is checked before the request (scheme, host on the
 * allow-list, an IP literal's range), and the host name is resolved by {@link EgressGuard.lookup}, which Node's
 * `http.request` calls when it opens a socket: every resolved address is checked, and the socket connects to
 * the address that was checked — a DNS answer that changes between a check and the connect (DNS rebinding)
 * cannot slip a refused address through. Redirects are not followed by the callers.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { checkEgressAddress, checkEgressUrl, type EgressRules } from '@warden/domain';

/** An outbound call the egress policy refused; `message` says which rule and how to allow it. */
export class EgressRefusedError extends Error {
  readonly code = 'EGRESS_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'EgressRefusedError';
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** Resolves names like `dns.lookup` with `all: true`; replaceable in tests. */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  );

export class EgressGuard {
  constructor(
    readonly rules: EgressRules,
    private readonly resolve: Resolver = systemResolver,
  ) {}

  /** Throws {@link EgressRefusedError} when `url` may not be called at all (checked before any socket). */
  assertUrlAllowed(url: string): void {
    const verdict = checkEgressUrl(this.rules, url);
    if (!verdict.ok) throw new EgressRefusedError(`egress refused: ${verdict.reason}`);
  }

  /**
   * A `lookup` for `http.request` / `net.connect` options: resolves the name, refuses the connection when any
   * address it resolves to is refused (a name that also points somewhere forbidden is not trusted for the
   * rest), and hands Node only checked addresses.
   */
  readonly lookup = (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    this.resolve(hostname).then(
      (addresses) => {
        for (const { address } of addresses) {
          const verdict = checkEgressAddress(this.rules, address);
          if (!verdict.ok) {
            callback(
              new EgressRefusedError(`egress refused: "${hostname}" resolves to ${verdict.reason}`),
              '',
            );
            return;
          }
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
        const usable = wanted ? addresses.filter((a) => a.family === wanted) : addresses;
        if (usable.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`"${hostname}" has no address`);
          error.code = 'ENOTFOUND';
          callback(error, '');
        } else if (options.all) callback(null, usable);
        else callback(null, usable[0]!.address, usable[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}

/** The guard for a service's parsed config. */
export function egressGuardFromConfig(config: {
  EGRESS_ALLOWED_HOSTS: readonly string[];
  EGRESS_ALLOWED_CIDRS: readonly string[];
}): EgressGuard {
  return new EgressGuard({
    allowedHosts: config.EGRESS_ALLOWED_HOSTS,
    allowedCidrs: config.EGRESS_ALLOWED_CIDRS,
  });
}
