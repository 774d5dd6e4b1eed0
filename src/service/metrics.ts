/**
 * Prometheus metrics (prom-client), in a registry of their own per server so
 * that several servers in one process (tests) do not collide: HTTP request
 * counts and latency per route, inference runs and videos (their ratio is the
 * mean micro-batch size), index size and version, jobs per kind and state,
 * and the process defaults (RSS, event-loop lag, GC).
 *
 * In a cluster (serve --processes) the primary sums the processes' metrics;
 * gauges that each process reports about the same shared state (the model,
 * the index, the leader's jobs) take the maximum instead.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { JOB_STATES, type JobService } from "./jobService.js";
import type { ServingRuntime } from "./runtime.js";

export interface ServerMetrics {
  registry: Registry;
  /** What /metrics answers: this registry, or in a cluster (serve --processes) every process's summed. */
  text(): Promise<string>;
  /** A request arrived; returns the function to call when it has been answered. */
  startRequest(): () => void;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** Requests received and not yet answered. */
  inFlight(): number;
}

export function createMetrics(source: { runtime: () => ServingRuntime | undefined; jobs: () => JobService | undefined }): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({ name: "vidrecall_http_requests_total", help: "HTTP requests by method, route and status", labelNames: ["method", "route", "status"], registers: [registry] });
  const latency = new Histogram({
    name: "vidrecall_http_request_duration_seconds",
    help: "HTTP request latency by method and route",
    labelNames: ["method", "route"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  const children = new Map<string, { count: { inc(): void }; latency: { observe(v: number): void } }>();

  let inFlight = 0;
  new Gauge({
    name: "vidrecall_http_requests_in_flight",
    help: "requests received and not yet answered",
    registers: [registry],
    collect() {
      this.set(inFlight);
    },
  });

  // Monotonic totals read from the inference service when scraped.
  let seenRuns = 0;
  let seenVideos = 0;
  const runs = new Counter({
    name: "vidrecall_inference_runs_total",
    help: "ONNX runs (micro-batches) completed",
    registers: [registry],
    collect() {
      const s = source.runtime()?.service.stats();
      if (s && s.runs > seenRuns) {
        this.inc(s.runs - seenRuns);
        seenRuns = s.runs;
      }
    },
  });
  const videos = new Counter({
    name: "vidrecall_inference_videos_total",
    help: "videos processed by those runs (videos / runs = mean micro-batch size)",
    registers: [registry],
    collect() {
      const s = source.runtime()?.service.stats();
      if (s && s.videos > seenVideos) {
        this.inc(s.videos - seenVideos);
        seenVideos = s.videos;
      }
    },
  });
  void runs;
  void videos;
  new Histogram({
    name: "vidrecall_inference_batch_size",
    help: "videos per ONNX run (micro-batch), observed when scraped",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
    collect() {
      const sizes = source.runtime()?.service.takeRunSizes();
      if (sizes) for (const [size, n] of sizes) for (let i = 0; i < n; i++) this.observe(size);
    },
  });
  new Gauge({
    name: "vidrecall_inference_largest_batch",
    aggregator: "max",
    help: "largest micro-batch so far, in videos",
    registers: [registry],
    collect() {
      const s = source.runtime()?.service.stats();
      if (s) this.set(s.largestRun);
    },
  });
  new Gauge({
    name: "vidrecall_inference_queued_videos",
    help: "videos accepted and waiting for a worker",
    registers: [registry],
    collect() {
      const s = source.runtime()?.service.stats();
      if (s) this.set(s.queuedVideos);
    },
  });
  new Gauge({
    name: "vidrecall_model_info",
    aggregator: "max",
    help: "the model served (value 1)",
    labelNames: ["model_id", "model_hash"],
    registers: [registry],
    collect() {
      this.reset();
      const r = source.runtime();
      if (r) this.set({ model_id: r.model.id ?? "", model_hash: r.model.hash }, 1);
    },
  });
  new Gauge({
    name: "vidrecall_index_videos",
    aggregator: "max",
    help: "live videos in the loaded index version",
    registers: [registry],
    collect() {
      this.set(source.runtime()?.index?.size ?? 0);
    },
  });
  new Gauge({
    name: "vidrecall_index_version_info",
    aggregator: "max",
    help: "the loaded index version (value 1)",
    labelNames: ["version", "model_hash"],
    registers: [registry],
    collect() {
      this.reset();
      const ix = source.runtime()?.index;
      if (ix) this.set({ version: ix.version, model_hash: ix.manifest.modelHash }, 1);
    },
  });
  new Gauge({
    name: "vidrecall_index_tombstones",
    aggregator: "max",
    help: "videos deleted since the loaded index version was built (filtered from results)",
    registers: [registry],
    collect() {
      this.set(source.runtime()?.tombstones.size ?? 0);
    },
  });
  new Gauge({
    name: "vidrecall_index_searches",
    help: "searches since the index was opened, by how they were answered",
    labelNames: ["strategy"],
    registers: [registry],
    collect() {
      const st = source.runtime()?.index?.stats;
      if (st) for (const [k, v] of Object.entries(st)) this.set({ strategy: k }, v);
    },
  });
  new Gauge({
    name: "vidrecall_jobs",
    aggregator: "max",
    help: "background jobs by kind and state",
    labelNames: ["kind", "state"],
    registers: [registry],
    collect() {
      this.reset();
      const jobs = source.jobs();
      if (!jobs) return;
      for (const kind of ["reindex", "retrain"]) for (const state of JOB_STATES) this.set({ kind, state }, 0);
      for (const c of jobs.counts()) this.set({ kind: c.kind, state: c.state }, c.n);
    },
  });

  return {
    registry,
    text: () => registry.metrics(),
    startRequest() {
      inFlight++;
      let done = false;
      return () => {
        if (!done) inFlight--;
        done = true;
      };
    },
    inFlight: () => inFlight,
    observeRequest(method, route, status, seconds) {
      // Children per label set (a handful of routes): no label hashing per request.
      const key = `${method} ${route} ${status}`;
      let c = children.get(key);
      if (!c) {
        c = { count: requests.labels({ method, route, status: String(status) }), latency: latency.labels({ method, route }) };
        children.set(key, c);
      }
      c.count.inc();
      c.latency.observe(seconds);
    },
  };
}
