/**
 * The `wait` preference of RFC 7240 (`Prefer: wait=5`): how many seconds a client will wait for the outcome.
 * As the RFC asks, a preference the server cannot honour is ignored, not refused: a malformed value
 * (`wait=abc`, `wait=-1`, `wait=1.5`) means "no wait" and the reply carries no `Preference-Applied`. Only the
 * first `wait` counts (RFC 7240 §2); other preferences (`respond-async`, `return=…`) are ignored.
 */

/** The longest wait a request gets, whatever it asks for. */
export const MAX_PREFER_WAIT_SECONDS = 10;

/** The wait to apply, in seconds (capped at {@link MAX_PREFER_WAIT_SECONDS}), or `undefined` for none. */
export function preferredWaitSeconds(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const values = Array.isArray(header) ? header : [header];
  for (const value of values) {
    for (const preference of value.split(',')) {
      const [token = ''] = preference.split(';');
      const equals = token.indexOf('=');
      const name = (equals < 0 ? token : token.slice(0, equals)).trim().toLowerCase();
      if (name !== 'wait') continue;
      const raw =
        equals < 0
          ? ''
          : token
              .slice(equals + 1)
              .trim()
              .replace(/^"(.*)"$/, '$1');
      // delta-seconds is 1*DIGIT; anything else is a preference we cannot honour. Long digit strings are capped.
      if (!/^\d{1,12}$/.test(raw)) return undefined;
      return Math.min(Number(raw), MAX_PREFER_WAIT_SECONDS);
    }
  }
  return undefined;
}
