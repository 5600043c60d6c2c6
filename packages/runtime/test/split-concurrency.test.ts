import { describe, expect, it } from 'vitest';
import { splitConcurrency } from '../src/split-concurrency.js';

describe('splitConcurrency', () => {
  it('should split a budget into shares that add up to it exactly', () => {
    expect(splitConcurrency(1000, 8)).toEqual(Array(8).fill(125));
    expect(splitConcurrency(10, 4)).toEqual([3, 3, 2, 2]);
    expect(splitConcurrency(256, 3)).toEqual([86, 85, 85]);
    for (let total = 1; total <= 60; total++)
      for (let parts = 1; parts <= 70; parts++) {
        const shares = splitConcurrency(total, parts);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.min(...shares)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }
  });

  it('should never make more parts than the budget allows, nor fewer than one', () => {
    expect(splitConcurrency(3, 8)).toEqual([1, 1, 1]);
    expect(splitConcurrency(5, 0)).toEqual([5]);
  });

  it('should refuse a budget that is not a positive integer', () => {
    expect(() => splitConcurrency(0, 2)).toThrow(RangeError);
    expect(() => splitConcurrency(2.5, 2)).toThrow(/positive integer/);
  });
});
