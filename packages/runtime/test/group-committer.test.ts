import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../src/index.js';

/** A group run that waits until the test releases it, recording what each group held. */
function gatedRun() {
  const groups: string[][] = [];
  const releases: Array<() => void> = [];
  return {
    groups,
    /** Lets the oldest running group finish. */
    releaseNext: () => releases.shift()?.(),
    run: async (items: string[]) => {
      groups.push(items);
      await new Promise<void>((resolve) => releases.push(resolve));
      return items.map((item) => `done ${item}`);
    },
  };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const tenantOf = (item: string) => item.split(':')[0]!;

describe('GroupCommitter', () => {
  it('should commit items waiting while a group runs as the next group, in arrival order', async () => {
    const gated = gatedRun();
    const committer = new GroupCommitter<string, string>({
      run: gated.run,
      maxGroupSize: 10,
      maxInFlight: 1,
    });
    const results = ['a', 'b', 'c'].map((item) => committer.submit(item));
    await tick();
    expect(gated.groups).toEqual([['a']]);
    gated.releaseNext();
    await tick();
    expect(gated.groups).toEqual([['a'], ['b', 'c']]);
    gated.releaseNext();
    expect(await Promise.all(results)).toEqual(['done a', 'done b', 'done c']);
  });

  describe('with groupKeyOf', () => {
    it('should never put items of two keys in one group', async () => {
      const gated = gatedRun();
      const committer = new GroupCommitter<string, string>({
        run: gated.run,
        maxGroupSize: 10,
        maxInFlight: 1,
        groupKeyOf: tenantOf,
      });
      const items = ['t1:0', 't1:1', 't2:0', 't1:2', 't3:0', 't2:1'];
      const results = items.map((item) => committer.submit(item));
      for (let i = 0; i < 4; i += 1) {
        await tick();
        gated.releaseNext();
      }
      expect(await Promise.all(results)).toEqual(items.map((item) => `done ${item}`));
      for (const group of gated.groups) expect(new Set(group.map(tenantOf)).size).toBe(1);
      // Each key's items keep their order, and every item ran exactly once.
      expect(gated.groups.flat().sort()).toEqual([...items].sort());
      expect(gated.groups.flat().filter((item) => item.startsWith('t1:'))).toEqual(['t1:0', 't1:1', 't1:2']);
    });

    it('should start a group of a key with none in flight before another group of a busy key', async () => {
      const gated = gatedRun();
      const committer = new GroupCommitter<string, string>({
        run: gated.run,
        maxGroupSize: 2,
        maxInFlight: 2,
        groupKeyOf: tenantOf,
      });
      // t1 takes both slots and keeps two items waiting; t2's item arrives after them.
      const results = ['t1:0', 't1:1', 't1:2', 't1:3', 't2:0'].map((item) => committer.submit(item));
      await tick();
      expect(gated.groups).toEqual([['t1:0'], ['t1:1']]);
      gated.releaseNext();
      await tick();
      // A slot is free while t1 still has a group in flight: t2's item goes before t1's older ones.
      expect(gated.groups.at(-1)).toEqual(['t2:0']);
      gated.releaseNext();
      await tick();
      expect(gated.groups.at(-1)).toEqual(['t1:2', 't1:3']);
      gated.releaseNext();
      gated.releaseNext();
      await Promise.all(results);
      expect(committer.waiting).toBe(0);
    });

    it('should keep at most maxInFlight groups running whatever the number of keys', async () => {
      let running = 0;
      let most = 0;
      const committer = new GroupCommitter<string, string>({
        run: async (items) => {
          running += 1;
          most = Math.max(most, running);
          await tick();
          running -= 1;
          return items;
        },
        maxGroupSize: 3,
        maxInFlight: 2,
        groupKeyOf: tenantOf,
      });
      const items = Array.from({ length: 60 }, (_, i) => `t${i % 7}:${i}`);
      expect(await Promise.all(items.map((item) => committer.submit(item)))).toEqual(items);
      expect(most).toBe(2);
    });
  });
});
