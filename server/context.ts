/** What the routes need: the services, built by server.ts. */
import type { Logger } from "pino";
import type { AdminService } from "../src/service/adminService.js";
import type { ClassifyService } from "../src/service/classifyService.js";
import type { IndexUpdater } from "../src/service/indexUpdater.js";
import type { LabelService } from "../src/service/labelService.js";
import type { ServerMetrics } from "../src/service/metrics.js";
import type { ServingRuntime } from "../src/service/runtime.js";
import type { SimilarService } from "../src/service/similarService.js";
import type { VideoService } from "../src/service/videoService.js";

export interface AppContext {
  runtime: ServingRuntime;
  similar: SimilarService;
  classify: ClassifyService;
  videos: VideoService;
  labels: LabelService;
  admin: AdminService;
  /** Coalesced incremental index updates (ingestion, deletion). */
  indexUpdater: IndexUpdater;
  metrics: ServerMetrics;
  logger: Logger;
  /** Admin API key; undefined disables the admin routes. */
  adminKey: string | undefined;
  /** Largest accepted request body, bytes or a size string ("16mb"). */
  bodyLimit: string | number;
  startedAt: number;
}
