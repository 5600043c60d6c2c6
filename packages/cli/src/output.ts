/** Where commands write, so the program can be driven in-process as well as from a terminal. */
export interface CliIo {
  /** Results: what a script would capture. @defaultValue `process.stdout` */
  out: (text: string) => void;
  /** Errors and notes. @defaultValue `process.stderr` */
  err: (text: string) => void;
  /** Whether `out` is a terminal (`--watch` then redraws instead of appending). @defaultValue `false` */
  isTty?: boolean;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTty: process.stdout.isTTY === true,
};

/** Writes `value` as indented JSON followed by a newline. */
export function writeJson(io: CliIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + '\n');
}

/** `1 migration`, `3 migrations`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/**
 * A connection string fit to print: scheme, host, port and path, never the user name or password
 * (`postgres://postgres:secret@db:5432/warden` → `postgres://db:5432/warden`).
 */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    // A Redis Cluster URL lists several hosts, which a URL cannot hold: shown without its credentials.
    const cluster = /^([a-z+]+:\/\/)(?:[^@/]*@)?([^/?#]+)/i.exec(url);
    if (cluster && url.toLowerCase().includes('+cluster://')) return `${cluster[1]}${cluster[2]}`;
    return '(unparseable URL)';
  }
}

/** Rows as left-aligned columns two spaces apart (the first row is the header), one line each. */
export function formatColumns(rows: ReadonlyArray<readonly string[]>): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}
