import { describe, expect, it } from 'vitest';
import { runWatched } from '../src/watch.js';
import type { CliIo } from '../src/output.js';

/** Collects what is written; aborts the watch after `refreshes` refreshes. */
function watchFor(refreshes: number, isTty: boolean) {
  const controller = new AbortController();
  const writes: string[] = [];
  const io: CliIo = {
    out: (text) => {
      writes.push(text);
      if (writes.length >= refreshes) controller.abort();
    },
    err: (text) => writes.push(`err:${text}`),
    isTty,
  };
  return { io, writes, signal: controller.signal };
}

const now = () => new Date('2026-01-02T03:04:05.000Z');

describe('runWatched', () => {
  it('should render once and add nothing without --watch', async () => {
    const { io, writes, signal } = watchFor(1, true);
    await runWatched(io, {}, async (out) => out.out('one\n'), { signal, now });
    expect(writes).toEqual(['one\n']);
  });

  describe('when stdout is a terminal', () => {
    it('should clear the screen and redraw each refresh in one write', async () => {
      const { io, writes, signal } = watchFor(2, true);
      let count = 0;
      await runWatched(io, { watch: true, interval: '0.1' }, async (out) => out.out(`refresh ${++count}\n`), {
        signal,
        now,
      });
      expect(writes).toEqual([
        '\x1b[H\x1b[2Jevery 0.1 s, 2026-01-02T03:04:05.000Z (Ctrl-C to stop)\n\nrefresh 1\n',
        '\x1b[H\x1b[2Jevery 0.1 s, 2026-01-02T03:04:05.000Z (Ctrl-C to stop)\n\nrefresh 2\n',
      ]);
    });
  });

  describe('when stdout is not a terminal', () => {
    it('should append each refresh under its timestamp', async () => {
      const { io, writes, signal } = watchFor(2, false);
      await runWatched(io, { watch: true, interval: '0.1' }, async (out) => out.out('list\n'), {
        signal,
        now,
      });
      expect(writes).toEqual([
        '--- 2026-01-02T03:04:05.000Z\nlist\n',
        '--- 2026-01-02T03:04:05.000Z\nlist\n',
      ]);
    });
  });

  it('should end with the error of the first refresh, and show a later one and go on', async () => {
    const first = watchFor(5, false);
    await expect(
      runWatched(first.io, { watch: true, interval: '0.1' }, () => Promise.reject(new Error('bad key')), {
        signal: first.signal,
        now,
      }),
    ).rejects.toThrow('bad key');
    expect(first.writes).toEqual([]);

    const later = watchFor(3, false);
    let count = 0;
    await runWatched(
      later.io,
      { watch: true, interval: '0.1' },
      async (out) => {
        count++;
        if (count === 2) throw new Error('API restarting');
        out.out(`refresh ${count}\n`);
      },
      { signal: later.signal, now },
    );
    expect(later.writes[1]).toBe(
      '--- 2026-01-02T03:04:05.000Z\nerror: API restarting (trying again in 0.1 s)\n',
    );
    expect(later.writes[2]).toContain('refresh 3');
  });

  it.each(['0', 'soon', '', '7200'])('should refuse --interval %j', async (interval) => {
    const { io, signal } = watchFor(1, false);
    await expect(runWatched(io, { watch: true, interval }, async () => {}, { signal })).rejects.toThrow(
      '--interval must be',
    );
  });
});
