/**
 * `bench infer`: serving speed of the benchmark frame-level model
 * (BENCH_TRAIN_CONFIG: batch 32, 32 frames × 1024 rgb + 128 audio, NeXtVLAD
 * K=32 G=8 hidden 512, 100 tags) exported to ONNX, next to the PyTorch peer
 * (bench/peers/infer_nextvlad.py, the same model in eval mode).
 *
 * The model has random (initial) weights and goes through the real path:
 * checkpoint → loadTrainedModel → exportModel (with its tfjs parity check) →
 * InferenceService. Measured in one process, in rounds, medians reported:
 *   - service: batch-32 `embed` calls one after another (embeddings/s), and
 *     single-video calls (latency p50/p99). These include everything a caller
 *     waits for: makeBatch, the batch window, the worker round trip, the run.
 *   - raw session: the same ORT settings in this thread, feeds prebuilt, only
 *     `session.run` timed.
 *   - FLOPs per video: counted from ORT's profile of one batch-32 run (the
 *     MatMul/Gemm kernels with their run-time shapes; see flops.ts).
 *   - sgemm ceiling: one MatMul [1024,1024]·[1024,1024] in ORT with the same
 *     thread count.
 *   - PyTorch: the peer script once per round (same threads, same batch and
 *     run counts), so both sides see the same machine load; ratio = median
 *     over median.
 */
import { availableParallelism, cpus, tmpdir } from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as ort from "onnxruntime-node";
import { isUnavailable, runPythonPeer } from "../bench/peers.js";
import { BENCH_TRAIN_BATCH, BENCH_TRAIN_CONFIG, BENCH_TRAIN_TAGS, syntheticBatch } from "../bench/trainBench.js";
import { exportUntrainedModel } from "../export/untrainedModel.js";
import { ortFeeds } from "../export/verify.js";
import { OnnxGraph } from "../export/graph.js";
import { parseModelConfig, type ModelConfig } from "../model/config.js";
import type { Batch } from "../train/batches.js";
import { profileProductFlops } from "./flops.js";
import { DEFAULT_BATCH_WINDOW_MS, defaultThreading, InferenceService, type InferenceVideo } from "./inferenceService.js";
import { readVerifiedOnnx, readModelMetadata } from "./modelBundle.js";

export interface InferBenchOptions {
  /** Measurement rounds (medians over them are reported). */
  rounds: number;
  /** Timed batch-32 runs per round. */
  batches: number;
  /** Timed single-video runs per round. */
  latencyRuns: number;
  warmup: number;
  workers?: number;
  intraOpThreads?: number;
  batchWindowMs?: number;
  /** Run the PyTorch peer (default true). */
  peer: boolean;
  peerTimeoutMs: number;
  log?: (line: string) => void;
}

export interface InferBenchResult {
  config: string;
  machine: { cores: number; cpu: string };
  threading: { workers: number; intra_op_threads: number; allow_spinning: boolean; batch_window_ms: number };
  batch: number;
  ours_embeddings_per_s: number;
  pytorch_embeddings_per_s: number | null;
  ratio: number | null;
  pytorch_latency_p50_ms: number | null;
  pytorch_latency_p99_ms: number | null;
  /** Single video through the service (worker round trip and batch window included); medians of the rounds' p50 / p99. */
  latency_p50_ms: number;
  latency_p99_ms: number;
  flops_per_video: number;
  flops_method: string;
  /** flops_per_video × ours_embeddings_per_s. */
  gflops_achieved: number;
  gflops_sgemm_ceiling: number;
  fraction_of_ceiling: number;
  raw_session: { embeddings_per_s: number; latency_p50_ms: number; latency_p99_ms: number; gflops: number };
  /** The last round's peer output (its interpreter, BLAS, threads). */
  pytorch: Record<string, unknown> | null;
  pytorch_unavailable: string | null;
  rounds: number;
  batches_per_round: number;
  latency_runs_per_round: number;
  /** Each round's numbers, for the spread (the headline numbers are their medians). */
  per_round: { service_embeddings_per_s: number[]; raw_embeddings_per_s: number[]; pytorch_embeddings_per_s: number[]; sgemm_gflops: number[] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Nearest-rank quantile (as the PyTorch peer computes it). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)];
}

/** The benchmark model exported to `dir` (random initial weights); returns its parsed config. */
export async function exportBenchModel(dir: string): Promise<ModelConfig> {
  await tf.setBackend("cpu");
  await tf.ready();
  const config = parseModelConfig(BENCH_TRAIN_CONFIG);
  const labels = { categories: ["a", "b"], tags: Array.from({ length: BENCH_TRAIN_TAGS }, (_, i) => `tag${i}`) };
  // One small batch through tfjs' cpu backend: the served graph is checked against the model it came from.
  const loaded = await exportUntrainedModel(dir, config, labels, { vocabulary: null, verify: { batch: 2 } });
  loaded.model.dispose();
  return config;
}

/** The rows of a synthetic batch as service inputs (full-length videos). */
function batchVideos(batch: Batch, config: ModelConfig): InferenceVideo[] {
  return batch.ids.map((id, b) => {
    const features: InferenceVideo["features"] = {};
    for (const m of config.input.modalities) {
      const { steps: T, dim: D, values } = batch.modalities[m];
      features[m] = { frames: T, dim: D, values: values.slice(b * T * D, (b + 1) * T * D) };
    }
    return { id, title: null, features };
  });
}

function batchFeeds(batch: Batch): Record<string, ort.Tensor> {
  return ortFeeds({
    batch: batch.size,
    modalities: Object.fromEntries(Object.entries(batch.modalities).map(([m, f]) => [m, { steps: f.steps, dim: f.dim, values: f.values, mask: f.mask, present: f.present }])),
  });
}

function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  } as ort.InferenceSession.SessionOptions;
}

/** ORT sgemm GFLOP/s: [n,n]·[n,n] with a constant right-hand side, median of `runs`. */
async function sgemmGflops(n: number, threads: number, runs: number): Promise<number> {
  const g = OnnxGraph.create("sgemm");
  const a = g.input("a", "float32", [n, n]);
  const w = new Float32Array(n * n);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  g.output(g.matmul(a, g.weight("w", w, [n, n])), "y", "float32", [n, n]);
  const session = await ort.InferenceSession.create(g.toModel({ producerVersion: "bench" }), sessionOptions(threads));
  try {
    const x = new ort.Tensor("float32", Float32Array.from(w, (v) => -v), [n, n]);
    for (let i = 0; i < 3; i++) await session.run({ a: x });
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await session.run({ a: x });
      times.push(performance.now() - t0);
    }
    return (2 * n ** 3) / (median(times) / 1000) / 1e9;
  } finally {
    await session.release();
  }
}

async function timeRuns(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

export async function benchInfer(options: InferBenchOptions): Promise<InferBenchResult> {
  const log = options.log ?? (() => undefined);
  const cores = availableParallelism();
  const threading = defaultThreading(cores, options.workers);
  const intra = options.intraOpThreads ?? threading.intraOpThreads;
  const totalThreads = threading.workers * intra;
  const B = BENCH_TRAIN_BATCH;
  const dir = mkdtempSync(join(tmpdir(), "vidrecall-bench-infer-"));
  let service: InferenceService | undefined;
  let raw: ort.InferenceSession | undefined;
  try {
    log("bench infer: exporting the benchmark model (random weights, parity-checked against tfjs)…");
    const config = await exportBenchModel(dir);
    const meta = readModelMetadata(dir);
    const onnx = await readVerifiedOnnx(meta.onnxPath, { sha256: meta.sha256, bytes: meta.onnxBytes });
    const big = syntheticBatch(config, B, BENCH_TRAIN_TAGS, 1);
    const one = syntheticBatch(config, 1, BENCH_TRAIN_TAGS, 2);

    const counted = await profileProductFlops(onnx, batchFeeds(big));
    const flopsPerVideo = counted.flops / B;
    log(`bench infer: ${(flopsPerVideo / 1e6).toFixed(1)} MFLOP per video in matrix products (${JSON.stringify(counted.kernels)})`);

    service = await InferenceService.create(dir, { workers: threading.workers, intraOpThreads: intra, batchWindowMs: options.batchWindowMs });
    const windowMs = options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS;
    raw = await ort.InferenceSession.create(onnx, sessionOptions(totalThreads));
    const bigVideos = batchVideos(big, config);
    const oneVideo = batchVideos(one, config);
    const bigFeeds = batchFeeds(big);
    const oneFeeds = batchFeeds(one);
    const svc = service;
    const session = raw;

    const rounds = {
      service: [] as number[],
      raw: [] as number[],
      sgemm: [] as number[],
      p50: [] as number[],
      p99: [] as number[],
      rawP50: [] as number[],
      rawP99: [] as number[],
      peer: [] as Record<string, unknown>[],
    };
    let unavailable: string | null = options.peer ? null : "not run (--no-peer)";
    const peerArgs = ["--threads", String(totalThreads), "--batch", String(B), "--batches", String(options.batches), "--runs", String(options.latencyRuns), "--warmup", String(options.warmup)];
    for (let r = 0; r < options.rounds; r++) {
      // Everything interleaved round by round (the peer too), so drift in the machine's load hits every number alike.
      rounds.sgemm.push(await sgemmGflops(1024, totalThreads, 10));

      await timeRuns(options.warmup, () => session.run(bigFeeds));
      const t1 = performance.now();
      await timeRuns(options.batches, () => session.run(bigFeeds));
      rounds.raw.push((options.batches * B) / ((performance.now() - t1) / 1000));

      await timeRuns(options.warmup, () => svc.embed(bigVideos));
      const t0 = performance.now();
      await timeRuns(options.batches, () => svc.embed(bigVideos));
      rounds.service.push((options.batches * B) / ((performance.now() - t0) / 1000));

      await timeRuns(options.warmup, () => svc.embed(oneVideo));
      const lat = await timeRuns(options.latencyRuns, () => svc.embed(oneVideo));
      rounds.p50.push(quantile(lat, 0.5));
      rounds.p99.push(quantile(lat, 0.99));
      await timeRuns(options.warmup, () => session.run(oneFeeds));
      const rawLat = await timeRuns(options.latencyRuns, () => session.run(oneFeeds));
      rounds.rawP50.push(quantile(rawLat, 0.5));
      rounds.rawP99.push(quantile(rawLat, 0.99));

      let peerLine = "";
      if (unavailable === null) {
        // Our workers sit idle meanwhile (no spinning), so the peer has the cores.
        const result = await runPythonPeer("infer_nextvlad.py", peerArgs, options.peerTimeoutMs);
        if (isUnavailable(result)) unavailable = result.unavailable;
        else {
          rounds.peer.push(result);
          peerLine = `, pytorch ${Number(result.embeddings_per_s).toFixed(1)} emb/s`;
        }
      }
      log(
        `bench infer: round ${r + 1}/${options.rounds}: service ${rounds.service[r].toFixed(1)} emb/s, raw ${rounds.raw[r].toFixed(1)} emb/s${peerLine}, sgemm ${rounds.sgemm[r].toFixed(1)} GFLOP/s`,
      );
    }

    const peerMedian = (key: string): number | null => {
      const xs = rounds.peer.map((p) => p[key]).filter((v): v is number => typeof v === "number");
      return xs.length > 0 ? median(xs) : null;
    };
    const peerRate = peerMedian("embeddings_per_s");
    const ours = median(rounds.service);
    const rawRate = median(rounds.raw);
    const ceiling = median(rounds.sgemm);
    const achieved = (flopsPerVideo * ours) / 1e9;
    return {
      config: `${config.name} (BENCH_TRAIN_CONFIG), inference graph, random initial weights`,
      machine: { cores, cpu: cpus()[0]?.model ?? "unknown" },
      threading: { workers: threading.workers, intra_op_threads: intra, allow_spinning: false, batch_window_ms: windowMs },
      batch: B,
      ours_embeddings_per_s: ours,
      pytorch_embeddings_per_s: peerRate,
      ratio: peerRate ? ours / peerRate : null,
      pytorch_latency_p50_ms: peerMedian("latency_p50_ms"),
      pytorch_latency_p99_ms: peerMedian("latency_p99_ms"),
      latency_p50_ms: median(rounds.p50),
      latency_p99_ms: median(rounds.p99),
      flops_per_video: flopsPerVideo,
      flops_method: "ORT profile of one batch-32 run: 2·|output|·K summed over MatMul/Gemm/FusedMatMul/FusedGemm kernels at their run-time shapes; elementwise ops not counted",
      gflops_achieved: achieved,
      gflops_sgemm_ceiling: ceiling,
      fraction_of_ceiling: achieved / ceiling,
      raw_session: {
        embeddings_per_s: rawRate,
        latency_p50_ms: median(rounds.rawP50),
        latency_p99_ms: median(rounds.rawP99),
        gflops: (flopsPerVideo * rawRate) / 1e9,
      },
      pytorch: rounds.peer.length > 0 ? rounds.peer[rounds.peer.length - 1] : null,
      pytorch_unavailable: unavailable,
      rounds: options.rounds,
      batches_per_round: options.batches,
      latency_runs_per_round: options.latencyRuns,
      per_round: {
        service_embeddings_per_s: rounds.service,
        raw_embeddings_per_s: rounds.raw,
        pytorch_embeddings_per_s: rounds.peer.map((p) => p.embeddings_per_s as number),
        sgemm_gflops: rounds.sgemm,
      },
    };
  } finally {
    await service?.close();
    await raw?.release();
    rmSync(dir, { recursive: true, force: true });
  }
}
