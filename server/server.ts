/**
 * Starting and stopping the HTTP service: opens the store, loads the model
 * and index (ServingRuntime), wires the services, starts the model/index
 * watcher, listens. `close()` is the graceful shutdown: stop accepting,
 * let requests in flight finish (bounded), stop jobs, drain inference, close
 * the store.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { resolve } from "node:path";
import pino, { type Logger } from "pino";
import { VideoStore } from "../src/data/store.js";
import type { InferenceServiceOptions } from "../src/infer/inferenceService.js";
import { ModelRegistry } from "../src/registry/modelRegistry.js";
import { AdminService } from "../src/service/adminService.js";
import { AsyncLock } from "../src/service/asyncLock.js";
import { ClassifyService } from "../src/service/classifyService.js";
import { cliCommand } from "../src/service/cliRunner.js";
import { IndexUpdater } from "../src/service/indexUpdater.js";
import { JobService } from "../src/service/jobService.js";
import { LabelService } from "../src/service/labelService.js";
import { createMetrics } from "../src/service/metrics.js";
import { ModelWatcher } from "../src/service/modelWatcher.js";
import { applyPeerEvent, leaderHandler, NO_PEERS, RemoteAdmin, RemoteIndexUpdater, type AdminOperations, type IndexUpdates } from "../src/service/peers.js";
import { ServingRuntime } from "../src/service/runtime.js";
import { SimilarService } from "../src/service/similarService.js";
import { SummaryCache } from "../src/service/summaryCache.js";
import { TagVotes } from "../src/service/tagVotes.js";
import { VideoService } from "../src/service/videoService.js";
import { createApp } from "./app.js";
import type { ClusterLink } from "./cluster.js";
import type { AppContext } from "./context.js";

export interface ServerOptions {
  db: string;
  /** Served when the registry has no active model. */
  model?: string;
  indexDir: string;
  host?: string;
  /** 0: any free port. */
  port?: number;
  adminKey?: string;
  /** Request body limit (bytes, or "16mb"); default 16 MiB. */
  bodyLimit?: string | number;
  /** How often the watcher looks for a new active model or index version (default 2000 ms). */
  watchIntervalMs?: number;
  /** Bounded wait for requests in flight at shutdown (default 10 s). */
  shutdownTimeoutMs?: number;
  logger?: Logger;
  logLevel?: string;
  inference?: InferenceServiceOptions;
  /** Search threads (default 2), each holding a copy of the index. */
  searchThreads?: number;
  /** argv prefix of the CLI run for jobs (default: this CLI). */
  cliCommand?: string[];
  /** This process is one of `serve --processes N` (see cluster.ts). */
  cluster?: ClusterLink;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  context: AppContext;
  watcher: ModelWatcher;
  close(): Promise<void>;
}

export const DEFAULT_BODY_LIMIT = "16mb";

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: options.logLevel ?? "info" });
  const db = resolve(options.db);
  const store = VideoStore.open(db);
  let runtime: ServingRuntime | undefined;
  let jobs: JobService | undefined;
  const link = options.cluster;
  const peers = link ?? NO_PEERS;
  let metrics = createMetrics({ runtime: () => runtime, jobs: () => jobs });
  if (link) {
    link.exposeMetrics(metrics.registry);
    metrics = { ...metrics, text: () => link.clusterMetrics() };
  }
  try {
    const registry = new ModelRegistry(store);
    runtime = await ServingRuntime.start({ store, registry, modelDir: options.model, indexDir: resolve(options.indexDir), inference: options.inference, searchThreads: options.searchThreads, logger });
    const rt = runtime;
    const command = options.cliCommand ?? cliCommand();
    const indexLock = new AsyncLock();
    const watcher = new ModelWatcher(rt, { intervalMs: options.watchIntervalMs ?? 2000, logger });
    link?.onEvent((event) => applyPeerEvent(rt, watcher, event));
    let admin: AdminOperations;
    let indexUpdater: IndexUpdates;
    if (link && !link.leader) {
      // Jobs and index updates are the leader's: one of each at a time across the cluster.
      admin = new RemoteAdmin(link.call);
      indexUpdater = new RemoteIndexUpdater(link.call, (err) => logger.error({ err }, "scheduled index update failed"));
    } else {
      jobs = new JobService({
        command,
        logger,
        onFinished: async () => {
          await watcher.checkNow();
          await peers.notify({ type: "refresh" });
        },
      });
      const updater = new IndexUpdater({ command, runtime: rt, db, lock: indexLock, logger, peers });
      const adminService = new AdminService({ runtime: rt, registry, jobs, db, indexLock });
      link?.serveCalls(leaderHandler(adminService, updater));
      admin = adminService;
      indexUpdater = updater;
    }
    const videos = new VideoService(rt, indexUpdater, peers);
    const summaries = new SummaryCache(rt.store);
    const similar = new SimilarService(rt, summaries);
    const preloadStart = performance.now();
    const preloaded = similar.preloadSummaries();
    if (preloaded) logger.info({ videos: preloaded, ms: Math.round(performance.now() - preloadStart) }, "video summaries cached for /similar");
    const context: AppContext = {
      runtime: rt,
      similar,
      classify: new ClassifyService(rt, new TagVotes(rt, summaries)),
      videos,
      labels: new LabelService(rt, videos, peers),
      admin,
      indexUpdater,
      metrics,
      logger,
      adminKey: options.adminKey || undefined,
      bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
      startedAt: Date.now(),
    };
    const app = createApp(context);
    const host = options.host ?? "127.0.0.1";
    const server: Server = await new Promise((resolveListen, reject) => {
      const s = app.listen(options.port ?? 8080, host, (err?: Error) => (err ? reject(err) : resolveListen(s)));
      s.once("error", reject);
    });
    // Slow or stalled clients cannot hold a connection forever.
    server.headersTimeout = 30_000;
    server.requestTimeout = 120_000;
    watcher.start();
    const port = (server.address() as AddressInfo).port;
    const urlHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
    let closing: Promise<void> | undefined;
    const jobsRef = jobs;
    return {
      url: `http://${urlHost}:${port}`,
      port,
      host,
      context,
      watcher,
      close() {
        closing ??= (async () => {
          logger.info("shutting down: no new connections; finishing requests in flight");
          watcher.stop();
          await closeHttp(server, options.shutdownTimeoutMs ?? 10_000, logger);
          indexUpdater.stop();
          await jobsRef?.close();
          await rt.close();
          store.close();
          logger.info("stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    await runtime?.close().catch(() => undefined);
    store.close();
    throw err;
  }
}

/** Stops accepting, closes idle keep-alive connections, waits for the rest at most `timeoutMs`, then cuts them. */
async function closeHttp(server: Server, timeoutMs: number, logger: Logger): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  server.closeIdleConnections();
  // Connections that finish a request while closing are not kept alive (Node sends Connection: close).
  const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([closed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
  clearInterval(idleSweep);
  if (timer) clearTimeout(timer);
  if (timedOut) {
    logger.warn({ timeoutMs }, "requests still running after the shutdown timeout: closing their connections");
    server.closeAllConnections();
    await closed;
  }
}
