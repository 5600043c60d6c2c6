/**
 * File operations confined to one workspace root, safe against symlinks and against a directory being swapped
 * for a symlink between check and write.
 *
 * Every directory on a path is opened with `O_NOFOLLOW | O_DIRECTORY`, one component at a time, each relative to
 * the already-open parent through `/proc/self/fd/<fd>/` (Linux's `openat` as Node can reach it). A symlink anywhere
 * on the path fails the open; and once a directory is open, creates, renames and unlinks happen in that very
 * directory even if its name is pointed elsewhere afterwards. Without `/proc` (not Linux) it falls back to checking
 * each component with `lstat` just before use, which narrows the race but cannot close it.
 */
import { createHash } from 'node:crypto';
import fs, { constants, existsSync, promises as fsp, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { promisify } from 'node:util';
import { CompareAndSwapError, ForbiddenPathError, displayPath, type PathFact } from '@warden/domain';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const PINNED_DIRECTORIES = existsSync('/proc/self/fd');

export type FileState = { exists: false } | { exists: true; content: Buffer; hash: string; mode: number };

export interface PathInspection {
  /** Problems on disk (symlinks, special files, a file where a directory should be); empty when none. */
  facts: PathFact[];
  state: FileState;
  /** Parent directories that do not exist yet, parents first (relative to the root). */
  missingDirs: string[];
}

export function sha256OfBytes(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface OpenDir {
  /** Prefix for entries of this directory: `/proc/self/fd/<fd>` or, without /proc, the absolute path. */
  prefix: string;
  handle?: fsp.FileHandle;
}

/**
 * Internal control flow, not a WardenError: "this directory is not there (yet)", which callers in this file turn
 * into an absent file, a directory to create or nothing to remove. One that escapes (a directory removed from
 * under an apply) is an I/O failure like any other: the apply fails (`apply_failed`) and is rolled back.
 */
class MissingDirectoryError extends Error {
  constructor(readonly relDir: string) {
    super(`directory ${displayPath(relDir)} does not exist`);
  }
}

export interface WorkspaceFsOptions {
  /**
   * Largest existing file read (to hash it and back it up); a larger one is refused rather than read into memory.
   * @defaultValue `Infinity`
   */
  maxFileBytes?: number;
}

export interface StageOptions {
  /** Mode of the written file (exact: the umask does not narrow it). */
  mode: number;
  /** Name of the temp file in the target's directory (derived from the journal entry, see workspace-restorer). */
  tempName: string;
  /** A create: the target must not exist when the file is committed. */
  exclusive: boolean;
}

/** A temp file written and fsynced next to its target, not yet in place. */
export interface StagedFile {
  relPath: string;
  /** The target's directory, relative to the root. */
  dir: string;
  temp: string;
  target: string;
  exclusive: boolean;
}

/** The workspace root a session works under. */
export class WorkspaceFs {
  constructor(
    readonly root: string,
    private readonly options: WorkspaceFsOptions = {},
  ) {}

  /** A session keeps the directories it opened pinned until `close()`; open one per phase (check, apply, rollback). */
  session(): FsSession {
    return new FsSession(this.root, this.options.maxFileBytes ?? Number.POSITIVE_INFINITY);
  }
}

export class FsSession {
  private readonly dirs = new Map<string, Promise<OpenDir>>();
  private readonly touched = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly maxFileBytes: number,
  ) {}

  /** What is at `relPath` now, and what stands in the way of writing it. Never throws for a problem on the path. */
  async inspect(relPath: string): Promise<PathInspection> {
    const segments = relPath.split('/');
    const missingDirs: string[] = [];
    let parent = '';
    for (const segment of segments.slice(0, -1)) {
      const relDir = parent === '' ? segment : `${parent}/${segment}`;
      if (missingDirs.length > 0) {
        missingDirs.push(relDir);
        parent = relDir;
        continue;
      }
      try {
        await this.openDir(relDir);
      } catch (error) {
        if (error instanceof MissingDirectoryError) missingDirs.push(relDir);
        else if (error instanceof ForbiddenPathError)
          return { facts: factsOf(error), state: { exists: false }, missingDirs: [] };
        else throw error;
      }
      parent = relDir;
    }
    if (missingDirs.length > 0) return { facts: [], state: { exists: false }, missingDirs };
    try {
      return { facts: [], state: await this.readState(relPath), missingDirs };
    } catch (error) {
      if (error instanceof ForbiddenPathError)
        return { facts: factsOf(error), state: { exists: false }, missingDirs };
      throw error;
    }
  }

  /** The file at `relPath`: absent, or its bytes, hash and mode. Throws ForbiddenPathError for a symlink or special file. */
  async readState(relPath: string): Promise<FileState> {
    const { dir, name } = split(relPath);
    let at: OpenDir;
    try {
      at = await this.openDir(dir);
    } catch (error) {
      if (error instanceof MissingDirectoryError) return { exists: false };
      throw error;
    }
    const target = `${at.prefix}/${name}`;
    // Synchronous calls, on purpose: every file a change set replaces or deletes is read twice (validation, then
    // the compare-and-swap before its write), and on a file in the page cache each call takes a few microseconds,
    // several times less than an asynchronous call's round trip through libuv's thread pool — those round trips
    // were most of the validation's time. The event loop waits at most one file's handful of calls, and a file
    // larger than SYNC_READ_MAX_BYTES is read asynchronously.
    const stats = fs.lstatSync(target, { throwIfNoEntry: false });
    if (!stats) return { exists: false };
    assertRegularFile(stats, relPath);
    let fd: number;
    try {
      // O_NONBLOCK: should the file be swapped for a FIFO after the lstat, opening it must not hang.
      fd = fs.openSync(target, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (error) {
      throw (error as NodeJS.ErrnoException).code === 'ELOOP' ? symlinkError(relPath) : error;
    }
    try {
      const opened = fs.fstatSync(fd);
      assertRegularFile(opened, relPath);
      // Another name for the same bytes (perhaps outside the workspace): its backup would copy that file, and
      // replacing or deleting this name would silently part the two. Refused rather than guessed at.
      if (opened.nlink > 1) {
        throw new ForbiddenPathError(
          `${displayPath(relPath)} is a hard link (${opened.nlink} names for one file); the executor never changes a hard-linked file`,
          [{ path: relPath, message: 'PATH_HARD_LINK' }],
        );
      }
      if (opened.size > this.maxFileBytes) {
        throw new ForbiddenPathError(
          `${displayPath(relPath)} is ${opened.size} bytes, over max_file_bytes (${this.maxFileBytes}); it cannot be backed up`,
          [{ path: relPath, message: 'PATH_FILE_TOO_LARGE' }],
        );
      }
      const content = await readOpenedFile(fd, opened.size);
      return { exists: true, content, hash: sha256OfBytes(content), mode: opened.mode & 0o7777 };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Creates a directory whose parent exists (a no-op when it exists already as a real directory). */
  async ensureDir(relDir: string, mode = 0o755): Promise<void> {
    const { dir, name } = split(relDir);
    const parent = await this.openDir(dir);
    try {
      await fsp.mkdir(`${parent.prefix}/${name}`, { mode });
      this.touched.add(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    await this.openDir(relDir);
  }

  /**
   * Writes `content` to `relPath` through a temp file in the same directory (written, fsynced, then renamed over
   * the target, so a reader sees the old or the new file, never a mix). `exclusive` fails with
   * CompareAndSwapError when the target exists (a create must not clobber a file that appeared meanwhile).
   * The same as {@link stageFile} then {@link commitStaged}; a batch stages all its files before committing any.
   */
  async writeFile(relPath: string, content: Buffer, options: StageOptions): Promise<void> {
    await this.commitStaged(await this.stageFile(relPath, content, options));
  }

  /**
   * Writes `content` to a temp file next to `relPath` and fsyncs it; the target is not touched until
   * {@link commitStaged}. A crash in between leaves only the temp file, which a restore or recovery removes.
   *
   * The temp file is created with `O_EXCL | O_NOFOLLOW`: its name is predictable, so anything already there — a
   * planted file, a hard link to a file elsewhere, a symlink — makes the open fail instead of being written
   * through. Whoever cleans stale temp files (a restore, crash recovery) unlinks them first.
   */
  async stageFile(relPath: string, content: Buffer, options: StageOptions): Promise<StagedFile> {
    const { dir, name } = split(relPath);
    const at = await this.openDir(dir);
    const temp = `${at.prefix}/${options.tempName}`;
    const handle = await fsp
      .open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, options.mode)
      .catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'EEXIST'
          ? new ForbiddenPathError(
              `temp file ${displayPath(options.tempName)} next to ${displayPath(relPath)} exists already; nothing is written through it`,
              [{ path: relPath, message: 'PATH_TEMP_EXISTS' }],
            )
          : error;
      });
    try {
      await handle.writeFile(content);
      // The umask may have narrowed the mode at creation; a restored file must get its exact mode back.
      await handle.chmod(options.mode);
      await handle.datasync();
    } catch (error) {
      await handle.close().catch(() => {});
      await fsp.unlink(temp).catch(() => {});
      throw error;
    }
    await handle.close();
    return { relPath, dir, temp, target: `${at.prefix}/${name}`, exclusive: options.exclusive };
  }

  /**
   * Puts a staged file in place: a create links it (never overwriting a file that appeared meanwhile:
   * CompareAndSwapError), anything else renames it over the target. The directory entry is durable once
   * {@link syncDirectories} ran.
   */
  async commitStaged(staged: StagedFile): Promise<void> {
    const { temp, target, relPath } = staged;
    if (staged.exclusive) {
      try {
        await fsp.link(temp, target);
      } catch (error) {
        await fsp.unlink(temp).catch(() => {});
        if ((error as NodeJS.ErrnoException).code === 'EEXIST')
          throw new CompareAndSwapError(
            `${displayPath(relPath)} appeared after the check: a create never overwrites a file`,
          );
        throw error;
      }
      await fsp.unlink(temp);
    } else {
      // Synchronous, as in readState: a metadata read, microseconds, where the thread pool's round trip is not.
      const existing = fs.lstatSync(target, { throwIfNoEntry: false });
      if (existing) assertRegularFile(existing, relPath);
      await fsp.rename(temp, target);
    }
    this.touched.add(staged.dir);
  }

  /** Removes a staged file that will not be committed (its batch stopped). */
  async discardStaged(staged: StagedFile): Promise<void> {
    await fsp.unlink(staged.temp).catch(() => {});
  }

  /** Deletes the regular file at `relPath`; false when there was none. */
  async removeFile(relPath: string): Promise<boolean> {
    const { dir, name } = split(relPath);
    let at: OpenDir;
    try {
      at = await this.openDir(dir);
    } catch (error) {
      if (error instanceof MissingDirectoryError) return false;
      throw error;
    }
    const target = `${at.prefix}/${name}`;
    // Synchronous, as in readState: a metadata read, microseconds, where the thread pool's round trip is not.
    const stats = fs.lstatSync(target, { throwIfNoEntry: false });
    if (!stats) return false;
    assertRegularFile(stats, relPath);
    await fsp.unlink(target);
    this.touched.add(dir);
    return true;
  }

  /** Removes a temp file this executor may have left in `relDir` (crash mid-write). */
  async removeTemp(relDir: string, tempName: string): Promise<void> {
    try {
      const at = await this.openDir(relDir);
      await fsp.unlink(`${at.prefix}/${tempName}`);
      this.touched.add(relDir);
    } catch {
      // Absent temp or directory: nothing to clean.
    }
  }

  /** Removes `relDir` when it is empty; leaves it (and says so) when something is inside. */
  async removeDirIfEmpty(relDir: string): Promise<'removed' | 'absent' | 'not_empty'> {
    const { dir, name } = split(relDir);
    let parent: OpenDir;
    try {
      parent = await this.openDir(dir);
    } catch (error) {
      if (error instanceof MissingDirectoryError) return 'absent';
      throw error;
    }
    await this.forget(relDir);
    try {
      await fsp.rmdir(`${parent.prefix}/${name}`);
      this.touched.add(dir);
      return 'removed';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'absent';
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'not_empty';
      throw error;
    }
  }

  /** True when `relDir` exists as a real directory. */
  async dirExists(relDir: string): Promise<boolean> {
    try {
      await this.openDir(relDir);
      return true;
    } catch (error) {
      if (error instanceof MissingDirectoryError) return false;
      throw error;
    }
  }

  /** fsyncs every directory whose entries this session changed, so the renames and unlinks survive a power cut. */
  async syncDirectories(): Promise<void> {
    await Promise.all(
      [...this.touched].map(async (relDir) => {
        try {
          const at = await this.openDir(relDir);
          if (at.handle) await at.handle.sync();
          else {
            const handle = await fsp.open(at.prefix, O_RDONLY | O_DIRECTORY);
            await handle.sync().finally(() => handle.close());
          }
        } catch (error) {
          if (!(error instanceof MissingDirectoryError)) throw error;
        }
      }),
    );
    this.touched.clear();
  }

  async close(): Promise<void> {
    const opened = [...this.dirs.values()];
    this.dirs.clear();
    await Promise.all(opened.map((p) => p.then((d) => d.handle?.close()).catch(() => {})));
  }

  private async forget(relDir: string): Promise<void> {
    for (const key of [...this.dirs.keys()]) {
      if (key === relDir || key.startsWith(`${relDir}/`)) {
        const opened = this.dirs.get(key)!;
        this.dirs.delete(key);
        await opened.then((d) => d.handle?.close()).catch(() => {});
      }
    }
  }

  private openDir(relDir: string): Promise<OpenDir> {
    let opened = this.dirs.get(relDir);
    if (!opened) {
      opened = this.open(relDir);
      this.dirs.set(relDir, opened);
      // A failed open is not remembered: the directory may be created next.
      opened.catch(() => this.dirs.delete(relDir));
    }
    return opened;
  }

  private async open(relDir: string): Promise<OpenDir> {
    if (!PINNED_DIRECTORIES) return this.openByPath(relDir);
    if (relDir === '') {
      const handle = await fsp.open(this.root, O_RDONLY | O_DIRECTORY);
      return { prefix: `/proc/self/fd/${handle.fd}`, handle };
    }
    const { dir, name } = split(relDir);
    const parent = await this.openDir(dir);
    const path = `${parent.prefix}/${name}`;
    try {
      const handle = await fsp.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      return { prefix: `/proc/self/fd/${handle.fd}`, handle };
    } catch (error) {
      throw await describeOpenFailure(error as NodeJS.ErrnoException, path, relDir);
    }
  }

  private async openByPath(relDir: string): Promise<OpenDir> {
    let current = this.root;
    let rel = '';
    for (const segment of relDir === '' ? [] : relDir.split('/')) {
      current = join(current, segment);
      rel = rel === '' ? segment : `${rel}/${segment}`;
      const stats = await lstatOrUndefined(current);
      if (!stats) throw new MissingDirectoryError(rel);
      if (stats.isSymbolicLink()) throw symlinkError(rel);
      if (!stats.isDirectory())
        throw new ForbiddenPathError(`${displayPath(rel)} is not a directory`, [
          { path: rel, message: 'PATH_PARENT_NOT_DIRECTORY' },
        ]);
    }
    return { prefix: current };
  }
}

/** Files up to this size are read with synchronous calls (see `readState`). */
const SYNC_READ_MAX_BYTES = 64 * 1024;

const readAsync = promisify(fs.read);
const readFileAsync = promisify(fs.readFile);

/**
 * The bytes of an open regular file whose size `fstat` just gave: up to that size, as `readFile` reads — without
 * the second `fstat` it would make. A file that came up empty is read to its end, as `readFile` does.
 */
async function readOpenedFile(fd: number, size: number): Promise<Buffer> {
  if (size === 0) return readFileAsync(fd);
  const buffer = Buffer.allocUnsafeSlow(size);
  let filled = 0;
  while (filled < size) {
    const bytesRead =
      size <= SYNC_READ_MAX_BYTES
        ? fs.readSync(fd, buffer, filled, size - filled, null)
        : (await readAsync(fd, buffer, filled, size - filled, null)).bytesRead;
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === size ? buffer : buffer.subarray(0, filled);
}

function split(relPath: string): { dir: string; name: string } {
  const dir = posix.dirname(relPath);
  return { dir: dir === '.' ? '' : dir, name: posix.basename(relPath) };
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function symlinkError(relPath: string): ForbiddenPathError {
  return new ForbiddenPathError(
    `${displayPath(relPath)} is a symbolic link; the executor never follows links in a workspace`,
    [{ path: relPath, message: 'PATH_SYMLINK' }],
  );
}

function assertRegularFile(stats: Stats, relPath: string): void {
  if (stats.isSymbolicLink()) throw symlinkError(relPath);
  if (!stats.isFile()) {
    throw new ForbiddenPathError(
      `${displayPath(relPath)} is not a regular file (a directory, device, FIFO or socket)`,
      [{ path: relPath, message: 'PATH_NOT_REGULAR_FILE' }],
    );
  }
}

async function describeOpenFailure(
  error: NodeJS.ErrnoException,
  path: string,
  relDir: string,
): Promise<Error> {
  if (error.code === 'ENOENT') return new MissingDirectoryError(relDir);
  if (error.code === 'ELOOP' || error.code === 'ENOTDIR') {
    const stats = await lstatOrUndefined(path).catch(() => undefined);
    if (!stats) return new MissingDirectoryError(relDir);
    if (stats.isSymbolicLink()) return symlinkError(relDir);
    return new ForbiddenPathError(`${displayPath(relDir)} is not a directory`, [
      { path: relDir, message: 'PATH_PARENT_NOT_DIRECTORY' },
    ]);
  }
  return error;
}

/** The code of a ForbiddenPathError raised here, as a WriteGate path fact. */
function factsOf(error: ForbiddenPathError): PathFact[] {
  const code = error.details[0]?.message;
  const known =
    code === 'PATH_SYMLINK' ||
    code === 'PATH_NOT_REGULAR_FILE' ||
    code === 'PATH_PARENT_NOT_DIRECTORY' ||
    code === 'PATH_FILE_TOO_LARGE' ||
    code === 'PATH_HARD_LINK'
      ? code
      : 'PATH_ESCAPES_WORKSPACE';
  return [{ code: known, message: error.message }];
}
