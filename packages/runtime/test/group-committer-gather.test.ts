import { describe, expect, it } from 'vitest';
import { GroupCommitter } from '../src/index.js';

/** Records each group and answers at once. */
function recordingRun() {
  const groups: string[][] = [];
  return {
    groups,
    run: async (items: string[]) => {
      groups.push(items);
      return items.map((item) => `done ${item}`);
    },
  };
}

describe('GroupCommitter with gatherWithinTurn', () => {
  it('should put the items submitted in one turn into one group although slots were free', async () => {
    const recorded = recordingRun();
    const committer = new GroupCommitter<string, string>({
      run: recorded.run,
      maxGroupSize: 10,
      maxInFlight: 4,
      gatherWithinTurn: true,
    });
    const results = await Promise.all(['a', 'b', 'c'].map((item) => committer.submit(item)));
    expect(recorded.groups).toEqual([['a', 'b', 'c']]);
    expect(results).toEqual(['done a', 'done b', 'done c']);
  });

  it('should start a group per free slot at once without it', async () => {
    const recorded = recordingRun();
    const committer = new GroupCommitter<string, string>({
      run: recorded.run,
      maxGroupSize: 10,
      maxInFlight: 4,
    });
    await Promise.all(['a', 'b', 'c'].map((item) => committer.submit(item)));
    expect(recorded.groups).toEqual([['a'], ['b'], ['c']]);
  });

  it('should still respect maxGroupSize and keep later turns apart', async () => {
    const recorded = recordingRun();
    const committer = new GroupCommitter<string, string>({
      run: recorded.run,
      maxGroupSize: 2,
      maxInFlight: 4,
      gatherWithinTurn: true,
    });
    const first = ['a', 'b', 'c'].map((item) => committer.submit(item));
    await Promise.all(first);
    await committer.submit('d');
    expect(recorded.groups).toEqual([['a', 'b'], ['c'], ['d']]);
  });
});
