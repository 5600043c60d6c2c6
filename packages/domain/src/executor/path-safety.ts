/**
 * Lexical path safety, the WriteGate's first step: a change-set path must be relative, normalized, inside the
 * workspace and free of the tricks that make one string mean another place (`..`, `..\`, `%2e%2e`, fullwidth
 * dots, NUL, trailing dots, NTFS streams). What only the filesystem can tell — symlinks, a directory swapped
 * for a link — the executor checks on disk and feeds back as {@link PathFact}s.
 */

export const PATH_SAFETY_CODES = [
  'PATH_EMPTY',
  'PATH_TOO_LONG',
  'PATH_NUL',
  'PATH_CONTROL_CHAR',
  'PATH_INVISIBLE_CHAR',
  'PATH_BACKSLASH',
  'PATH_ABSOLUTE',
  'PATH_HOME',
  'PATH_COLON',
  'PATH_ENCODED',
  'PATH_UNICODE_NOT_NFC',
  'PATH_UNICODE_LOOKALIKE',
  'PATH_NOT_NORMALIZED',
  'PATH_TRAVERSAL',
  'PATH_TRAILING_DOT_OR_SPACE',
  'PATH_RESERVED_NAME',
  'PATH_DUPLICATE',
  'PATH_CASE_COLLISION',
  'PATH_GIT_METADATA',
  // Found on disk by the executor.
  'PATH_SYMLINK',
  'PATH_NOT_REGULAR_FILE',
  'PATH_PARENT_NOT_DIRECTORY',
  'PATH_ESCAPES_WORKSPACE',
  'PATH_FILE_TOO_LARGE',
  'PATH_HARD_LINK',
] as const;
export type PathSafetyCode = (typeof PATH_SAFETY_CODES)[number];

export interface PathSafetyIssue {
  code: PathSafetyCode;
  message: string;
}

/** Something the executor found on disk about a path; the WriteGate turns each into a DENY reason. */
export type PathFact = PathSafetyIssue;

/** Longest accepted path, in characters. */
export const MAX_PATH_LENGTH = 1024;
/** Longest accepted segment, in UTF-8 bytes (the common filesystem limit). */
const MAX_SEGMENT_BYTES = 255;

// Characters that render like `.`, `/` or `\` but are not, and that NFKC does not fold (it folds the fullwidth ones).
const LOOKALIKES =
  /[\u2024\u2025\u2026\u2044\u2215\u2216\u2571\u2572\u29f5\u29f8\u29f9\u3002\ufe52\uff0e\uff0f\uff3c\uff61]/u;
const CONTROL = /\p{Cc}/u;
// Zero-width and bidirectional controls (Unicode "format" characters) hide what a path really says.
const INVISIBLE = /\p{Cf}/u;
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
// `.git` as any segment — the directory, or a `.git` *file* (`gitdir: …`) that makes its directory a repository
// pointing anywhere — and its 8.3 short name on Windows filesystems (`GIT~1`).
const GIT_METADATA = /^(\.git|git~\d+)$/i;

/**
 * Every lexical problem with `path` (empty when it is safe). Pure: it never touches a filesystem.
 *
 * @example
 * checkPathSafety('src/app.ts'); // []
 * checkPathSafety('src/../../etc/passwd').map((i) => i.code); // ['PATH_TRAVERSAL']
 */
export function checkPathSafety(path: string): PathSafetyIssue[] {
  const issues: PathSafetyIssue[] = [];
  const add = (code: PathSafetyCode, message: string) => {
    if (!issues.some((i) => i.code === code)) issues.push({ code, message });
  };
  if (path.length === 0) return [{ code: 'PATH_EMPTY', message: 'the path is empty' }];
  if (path.length > MAX_PATH_LENGTH)
    add('PATH_TOO_LONG', `the path is longer than ${MAX_PATH_LENGTH} characters`);
  if (path.includes('\u0000')) add('PATH_NUL', 'the path contains a NUL character');
  // NUL has its own code above; any other C0/C1 control character is reported here.
  if (CONTROL.test(path.replaceAll('\u0000', '')))
    add('PATH_CONTROL_CHAR', 'the path contains a control character');
  if (INVISIBLE.test(path))
    add('PATH_INVISIBLE_CHAR', 'the path contains an invisible (zero-width or bidirectional) character');
  if (path.includes('\\'))
    add('PATH_BACKSLASH', 'the path contains a backslash; use "/" as the only separator');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path))
    add('PATH_ABSOLUTE', 'the path is absolute; it must be relative to the workspace');
  if (path === '~' || path.startsWith('~/') || /^~[^/]*\//.test(path))
    add('PATH_HOME', 'the path starts with "~"');
  if (path.includes(':'))
    add('PATH_COLON', 'the path contains ":" (drive letters and NTFS streams are refused)');
  if (/%[0-9A-Fa-f]{2}/.test(path))
    add('PATH_ENCODED', 'the path contains percent-encoding; send it decoded');
  if (path.normalize('NFC') !== path) add('PATH_UNICODE_NOT_NFC', 'the path is not in Unicode normal form C');
  if (LOOKALIKES.test(path) || path.normalize('NFKC') !== path.normalize('NFC')) {
    add(
      'PATH_UNICODE_LOOKALIKE',
      'the path contains characters that look like or fold into others (fullwidth dots or slashes, compatibility forms)',
    );
  }
  const segments = path.split('/');
  const interior = path.startsWith('/') ? segments.slice(1) : segments;
  for (const segment of interior) {
    if (segment === '..') add('PATH_TRAVERSAL', 'the path contains a ".." segment');
    else if (segment === '' || segment === '.')
      add('PATH_NOT_NORMALIZED', 'the path is not normalized (empty or "." segment, or a trailing "/")');
    else {
      if (/[. ]$/.test(segment) || /^ /.test(segment))
        add(
          'PATH_TRAILING_DOT_OR_SPACE',
          `segment ${JSON.stringify(segment)} starts or ends with a space or ends with "."`,
        );
      if (GIT_METADATA.test(segment))
        add(
          'PATH_GIT_METADATA',
          `segment ${JSON.stringify(segment)} is git metadata (a .git directory or file); change sets never touch it`,
        );
      if (WINDOWS_RESERVED.test(segment))
        add('PATH_RESERVED_NAME', `segment ${JSON.stringify(segment)} is a reserved device name`);
      if (new TextEncoder().encode(segment).length > MAX_SEGMENT_BYTES)
        add('PATH_TOO_LONG', `a segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return issues;
}

/** A path fit for messages, audit rows and logs: quoted, control characters escaped, long ones cut. */
export function displayPath(path: string): string {
  const quoted = JSON.stringify(path).replace(
    /[\u007f-\u009f\u2028\u2029\p{Cf}]/gu,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return quoted.length > 300 ? `${quoted.slice(0, 297)}…"` : quoted;
}

/** The key two paths share when a case-insensitive filesystem would see them as one file. */
export function caseFoldKey(path: string): string {
  return path.normalize('NFKC').toLowerCase();
}
