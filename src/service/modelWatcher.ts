/**
 * Polls for a new active model (the registry, written by `vidrecall models
 * promote`, `retrain --promote`, or anything else sharing the database) and a
 * new index version (CURRENT, flipped by any `reindex`), and swaps them in.
 * Admin jobs call checkNow() when they finish, so their results are live at
 * once rather than at the next tick.
 */
import type { Logger } from "pino";
import type { RefreshResult, ServingRuntime } from "./runtime.js";

export class ModelWatcher {
  private timer: NodeJS.Timeout | undefined;
  checks = 0;

  constructor(
    private readonly runtime: ServingRuntime,
    private readonly options: { intervalMs: number; logger: Logger },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.checkNow(), this.options.intervalMs);
    // The watcher alone does not keep the process alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async checkNow(): Promise<RefreshResult> {
    this.checks++;
    try {
      return await this.runtime.refresh();
    } catch (err) {
      this.options.logger.error({ err }, "model/index check failed");
      return { model: "failed", index: "failed" };
    }
  }
}
