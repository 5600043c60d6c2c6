/**
 * Keeps the event archive's daily partitions rotating: creates the coming days ahead of time and drops the
 * days past the retention (a partition drop is instant, whatever its size). Runs at start and then every
 * `intervalMs`, in each supervisor-worker; concurrent runs take turns on an advisory lock.
 */
import { rotateArchivePartitions, type ArchiveRotation, type Db } from '@warden/db';
import type { Logger } from '@warden/observability';
import { PeriodicTask } from '@warden/runtime';

export interface ArchiveMaintenanceOptions {
  db: Db;
  logger: Logger;
  /** Days of archived events kept. @defaultValue `30` */
  retentionDays?: number;
  /** Days of partitions created ahead. @defaultValue `7` */
  daysAhead?: number;
  /** @defaultValue `3600000` (hourly) */
  intervalMs?: number;
  /** The clock (tests move it). @defaultValue `() => new Date()` */
  now?: () => Date;
}

export class ArchiveMaintenance {
  private readonly task: PeriodicTask;

  constructor(private readonly options: ArchiveMaintenanceOptions) {
    this.task = new PeriodicTask({
      name: 'archive-maintenance',
      intervalMs: options.intervalMs ?? 3_600_000,
      run: () => this.runOnce(),
      logger: options.logger,
    });
  }

  start(): void {
    this.task.start();
    this.task.runSoon();
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  async runOnce(): Promise<ArchiveRotation> {
    const rotation = await rotateArchivePartitions(this.options.db, {
      now: (this.options.now ?? (() => new Date()))(),
      retentionDays: this.options.retentionDays ?? 30,
      daysAhead: this.options.daysAhead ?? 7,
    });
    if (rotation.created.length + rotation.dropped.length + rotation.purgedFromDefault > 0)
      this.options.logger.info(
        { module: 'archive', action: 'rotate', status: 'ok', ...rotation },
        `event archive: ${rotation.created.length} partitions created, ${rotation.dropped.length} dropped`,
      );
    return rotation;
  }
}
