/** What the routes need: the services, built by server.ts. */
import type { Logger } from "pino";
import type { ClassifyService } from "../src/service/classifyService.js";
import type { LabelService } from "../src/service/labelService.js";
import type { ServerMetrics } from "../src/service/metrics.js";
import type { AdminOperations, IndexUpdates } from "../src/service/peers.js";
import type { ServingRuntime } from "../src/service/runtime.js";
import type { SimilarService } from "../src/service/similarService.js";
import type { VideoService } from "../src/service/videoService.js";

export interface AppContext {
  runtime: ServingRuntime;
  similar: SimilarService;
  classify: ClassifyService;
  videos: VideoService;
  labels: LabelService;
  /** This process's AdminService, or the cluster leader's (serve --processes). */
  admin: AdminOperations;
  /** Coalesced incremental index updates (ingestion, deletion); the leader's in a cluster. */
  indexUpdater: IndexUpdates;
  metrics: ServerMetrics;
  logger: Logger;
  /** Admin API key; undefined disables the admin routes. */
  adminKey: string | undefined;
  /** Largest accepted request body, bytes or a size string ("16mb"). */
  bodyLimit: string | number;
  startedAt: number;
}
