import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@warden/observability';
import { PeriodicTask } from '../src/periodic-task.js';

const logger = createLogger({ service: 'periodic-task-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PeriodicTask.runSoon', () => {
  const tasks: PeriodicTask[] = [];
  afterEach(async () => {
    while (tasks.length > 0) await tasks.pop()!.stop();
  });

  /** A task with an hour between passes: any pass within a test was asked for with runSoon. */
  function hourly(run: () => Promise<void>): PeriodicTask {
    const task = new PeriodicTask({ name: 'test', intervalMs: 3_600_000, run, logger });
    tasks.push(task);
    return task;
  }

  describe('when no pass is running', () => {
    it('should start one now instead of after the interval', async () => {
      let passes = 0;
      const task = hourly(async () => {
        passes += 1;
      });
      task.start();
      task.runSoon();
      await sleep(20);
      expect(passes).toBe(1);
    });
  });

  describe('when a pass is running', () => {
    it('should start the next right after it, never overlapping it', async () => {
      let running = 0;
      let overlapped = false;
      let passes = 0;
      const task = hourly(async () => {
        running += 1;
        overlapped ||= running > 1;
        await sleep(50);
        passes += 1;
        running -= 1;
      });
      task.start();
      task.runSoon();
      await sleep(10);
      // Asked twice during the pass: one more pass follows, not two at once.
      task.runSoon();
      task.runSoon();
      await sleep(150);
      expect(passes).toBe(2);
      expect(overlapped).toBe(false);
    });
  });

  describe('when the task is stopped', () => {
    it('should start nothing', async () => {
      let passes = 0;
      const task = hourly(async () => {
        passes += 1;
      });
      task.runSoon();
      task.start();
      await task.stop();
      task.runSoon();
      await sleep(20);
      expect(passes).toBe(0);
    });
  });
});
