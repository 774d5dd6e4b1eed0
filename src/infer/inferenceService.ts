/**
 * Serving an exported model (model.onnx + model.json) with onnxruntime:
 * classification (top categories, tags) and embeddings for videos given as
 * feature matrices and a title.
 *
 * Shape of the service:
 *   - Inputs are checked when a call is made (a bad video fails only its own
 *     call) and turned into the model's feeds with makeBatch (evaluation frame
 *     sampling, masks, titles through the model's own vocabulary) one run at a
 *     time, on the main thread; the feed arrays are transferred, not copied.
 *   - Micro-batching: calls queue up; a batch is sent to an idle worker once
 *     it holds `maxBatch` videos or the oldest call has waited `batchWindowMs`
 *     (default 0: the calls of one event-loop turn), and while every worker is
 *     busy calls keep accumulating. One batch = one ORT run; each call gets
 *     its own rows back (a large call is split over runs).
 *   - The event loop stays free: sessions live in worker_threads (the native
 *     run is synchronous and would block whatever thread calls it). The main
 *     thread only copies feed rows and reads results.
 *   - Threads: `workers` sessions, each with `intraOpThreads` ORT threads
 *     (default: cores / workers), spinning off so idle ORT threads do not take
 *     the core the event loop shares. One worker on small machines (≤ 4 cores):
 *     the model's matmuls parallelise well inside one session, and every
 *     extra session costs its own thread pool and memory. See defaultThreading.
 *   - Hot swap: swapModel loads the new model in every worker next to the old
 *     one, then switches. Calls accepted before the switch finish on the model
 *     they were accepted for (their inputs were checked against its config);
 *     that model is unloaded when its last call is done. No call fails because
 *     of a swap.
 */
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { FeatureMatrix } from "../data/featureMatrix.js";
import type { VideoExample } from "../data/store.js";
import { startWorker } from "../data/yt8mParse.js";
import { makeBatch } from "../train/batches.js";
import { ModelBundleError, readModelMetadata, type ModelBundleProblem, type ModelMetadata } from "./modelBundle.js";
import type { FromWorker, SessionSettings, ToWorker, WireOutput, WireTensor, WorkerInit } from "./protocol.js";

/** What the service needs of a video: `VideoExample` from the store fits, and so does a parsed JSONL record's matrices. */
export interface InferenceVideo {
  id: string;
  title?: string | null;
  /**
   * By modality name; modalities the model does not use are ignored, a missing
   * one is fed as absent. Read when the video's run is built (not when the
   * call is made): leave the arrays alone until the call settles.
   */
  features: Record<string, FeatureMatrix>;
}

export interface InferenceServiceOptions {
  /** Session workers (default: defaultThreading). */
  workers?: number;
  /** ORT intra-op threads per worker (default: max(1, floor(cores / workers))). */
  intraOpThreads?: number;
  /** Most videos in one ORT run (default 32). */
  maxBatch?: number;
  /**
   * How long the oldest queued call may wait for others to join its run
   * (default 0: calls made in the same event-loop turn still share a run, and
   * while every worker is busy calls pile up into the next one; a positive
   * window also merges calls that arrive apart, at that much added latency).
   */
  batchWindowMs?: number;
  /** ORT thread spinning (default false: the event loop shares the cores). */
  allowSpinning?: boolean;
  /**
   * onnxruntime execution providers, most preferred first (default: the
   * comma-separated VIDRECALL_ORT_PROVIDERS, else ["cpu"]). "cuda" needs
   * onnxruntime-node's CUDA binaries (see README, GPU inference).
   */
  executionProviders?: string[];
}

export interface RequestOptions {
  /** Refuse to run on any model but this one (its sha256), e.g. while building an index. */
  modelHash?: string;
}

export interface ClassifyOptions extends RequestOptions {
  /** Categories per video, most probable first (default 3). */
  topCategories?: number;
  /** Tags with probability ≥ this (default 0.5); 0 gives the plain top `maxTags`. */
  tagThreshold?: number;
  /** At most this many tags per video, most probable first (default 20). */
  maxTags?: number;
  /** Also return the embedding (default false). */
  embedding?: boolean;
  /** Also return every tag's probability and the model that answered (default false), e.g. to re-rank the tags. */
  tagProbs?: boolean;
}

export interface LabelScore {
  label: string;
  index: number;
  probability: number;
}

export interface Classification {
  id: string;
  /** Empty when the model has no category head. */
  categories: LabelScore[];
  /** Empty when the model has no tag head (or no tag reaches the threshold). */
  tags: LabelScore[];
  embedding?: Float32Array;
  /** With `tagProbs`: all tag probabilities, and the model they came from (a swap may land between calls). */
  tagProbs?: Float32Array;
  model?: ModelMetadata;
}

export interface InferenceStats {
  /** ORT runs completed (one per micro-batch). */
  runs: number;
  /** Videos those runs processed. */
  videos: number;
  /** Largest run so far, in videos. */
  largestRun: number;
  /** Summed ORT run time inside the workers, ms. */
  runMs: number;
  /** Live session workers. */
  workers: number;
  intraOpThreads: number;
  /** Videos accepted but not yet sent to a worker. */
  queuedVideos: number;
  inflightRuns: number;
  /** The model new calls run on: its load counter and sha256. */
  modelVersion: number;
  modelHash: string;
  /** Model versions loaded in the workers (more than one while old calls finish after a swap). */
  loadedVersions: number[];
}

export interface SwapResult {
  previousHash: string;
  modelHash: string;
  modelVersion: number;
  /** Slowest worker's load time (read, verify, create the session), ms. */
  loadMs: number;
}

/** A call made after close(), or pending when close() gave up on it. */
export class ServiceClosedError extends Error {
  constructor(message = "the inference service is closed") {
    super(message);
    this.name = "ServiceClosedError";
  }
}

/** A call pinned to a model hash that is no longer (or not) the served one. */
export class ModelChangedError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`the service now serves model ${actual.slice(0, 16)}…, the call asked for ${expected.slice(0, 16)}…`);
    this.name = "ModelChangedError";
  }
}

/**
 * Worker count and ORT threads per worker for `cores` cores (see the module
 * comment). On the 2-core benchmark machine, 1 worker × 2 threads gave 524
 * embeddings/s at batch 32, 2 workers × 1 thread 449.
 */
export function defaultThreading(cores: number = availableParallelism(), workers?: number): { workers: number; intraOpThreads: number } {
  const w = workers ?? (cores <= 4 ? 1 : 2);
  return { workers: w, intraOpThreads: Math.max(1, Math.floor(cores / w)) };
}

interface ModelVersion {
  id: number;
  meta: ModelMetadata;
  /** Calls prepared for this version and not settled. */
  refs: number;
  /** Replaced by a newer version: unload once refs reaches 0. */
  retired: boolean;
  unloaded: boolean;
}

interface PendingLoad {
  resolve: (loadMs: number) => void;
  reject: (err: Error) => void;
}

interface WorkerHandle {
  worker: Worker;
  alive: boolean;
  /** Resolves when the thread has exited. */
  exited: Promise<void>;
  /** Jobs and loads sent and not answered: a worker is idle at 0. */
  busy: number;
  jobs: Set<number>;
  loads: Map<number, PendingLoad>;
  versions: Set<number>;
}

interface Request {
  version: ModelVersion;
  /** The caller's videos, checked; turned into feeds run by run (see buildFeeds). */
  videos: readonly InferenceVideo[];
  rows: number;
  /** Next row to send to a worker. */
  next: number;
  /** Rows whose outputs have arrived. */
  done: number;
  /** Per output name, rows × width. */
  outputs: Record<string, Float32Array>;
  enqueuedAt: number;
  settled: boolean;
  resolve: (r: RequestResult) => void;
  reject: (err: Error) => void;
}

interface RequestResult {
  version: ModelVersion;
  outputs: Record<string, Float32Array>;
}

interface Segment {
  request: Request;
  /** First row in the request. */
  start: number;
  count: number;
  /** First row in the job. */
  offset: number;
}

interface Job {
  id: number;
  version: ModelVersion;
  worker: WorkerHandle;
  segments: Segment[];
  size: number;
}

/**
 * One run of `bench infer` on the shared 2-core machine: single-video latency
 * p50 4.4 ms with a 0 ms window, 6.1 ms with 1 ms and 7.0 ms with 2 ms (timers
 * fire late), for no gain in batch-32 throughput; under load, busy workers
 * batch calls anyway.
 */
export const DEFAULT_BATCH_WINDOW_MS = 0;

/** Respawn budget per configured worker, so a worker that dies on start cannot loop forever. */
const MAX_RESPAWNS_PER_WORKER = 3;

function outputWidth(meta: ModelMetadata, name: string): number {
  if (name === "embedding") return meta.embeddingDim;
  if (name === "category_probs") return meta.numCategories;
  if (name === "tag_probs") return meta.numTags;
  throw new Error(`unexpected model output ${name}`);
}

function checkVideos(videos: readonly InferenceVideo[], meta: ModelMetadata): void {
  if (!Array.isArray(videos)) throw new TypeError("videos must be an array");
  const input = meta.config.input;
  videos.forEach((v, i) => {
    if (v === null || typeof v !== "object" || typeof v.id !== "string" || v.id === "") throw new TypeError(`videos[${i}]: needs a non-empty string id`);
    if (v.features === null || typeof v.features !== "object") throw new TypeError(`video "${v.id}": features must be an object of feature matrices`);
    if (v.title !== undefined && v.title !== null && typeof v.title !== "string") throw new TypeError(`video "${v.id}": title must be a string or null`);
    for (const m of input.modalities) {
      const f = v.features[m];
      if (f === undefined) continue;
      const dim = input.features[m].dim;
      if (!(f.values instanceof Float32Array)) throw new TypeError(`video "${v.id}": ${m} values must be a Float32Array`);
      if (!Number.isInteger(f.frames) || f.frames < 1 || f.dim !== dim || f.values.length !== f.frames * f.dim) {
        throw new RangeError(`video "${v.id}": ${m} is ${f.frames}×${f.dim} with ${f.values.length} values; the model wants frames × ${dim}`);
      }
    }
  });
}

export class InferenceService {
  private readonly settings: SessionSettings;
  private readonly maxBatch: number;
  private readonly windowMs: number;
  private readonly handles: WorkerHandle[] = [];
  private current: ModelVersion;
  private readonly versions = new Map<number, ModelVersion>();
  private versionCounter = 0;
  private readonly queue: Request[] = [];
  private readonly jobs = new Map<number, Job>();
  private jobCounter = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private pumpScheduled = false;
  private swapChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | undefined;
  private respawnsLeft: number;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly counters = { runs: 0, videos: 0, largestRun: 0, runMs: 0 };
  /** Runs per batch size since the last takeRunSizes() (bounded: sizes ≤ maxBatch). */
  private runSizes = new Map<number, number>();

  private constructor(meta: ModelMetadata, options: InferenceServiceOptions) {
    const threading = defaultThreading(availableParallelism(), options.workers);
    const workers = threading.workers;
    const intra = options.intraOpThreads ?? threading.intraOpThreads;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
    if (!Number.isInteger(intra) || intra < 1) throw new RangeError(`intraOpThreads must be a positive integer, got ${intra}`);
    this.maxBatch = options.maxBatch ?? 32;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${this.maxBatch}`);
    this.windowMs = options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS;
    if (!(this.windowMs >= 0)) throw new RangeError(`batchWindowMs must be ≥ 0, got ${this.windowMs}`);
    const providers = options.executionProviders ?? (process.env.VIDRECALL_ORT_PROVIDERS ? process.env.VIDRECALL_ORT_PROVIDERS.split(",").map((p) => p.trim()).filter(Boolean) : ["cpu"]);
    this.settings = { intraOpThreads: intra, allowSpinning: options.allowSpinning ?? false, executionProviders: providers };
    this.respawnsLeft = MAX_RESPAWNS_PER_WORKER * workers;
    this.current = this.newVersion(meta);
    for (let i = 0; i < workers; i++) this.handles.push(this.spawn());
  }

  /** Starts the workers and loads the model in `dir` in each; rejects (with no workers left) if it cannot be served. */
  static async create(dir: string, options: InferenceServiceOptions = {}): Promise<InferenceService> {
    const meta = readModelMetadata(dir);
    const service = new InferenceService(meta, options);
    try {
      await Promise.all(service.handles.map((h) => service.loadOn(h, service.current)));
    } catch (err) {
      await service.close();
      throw err;
    }
    return service;
  }

  /** The served model's metadata (labels, config, vocabulary, hash). */
  get model(): ModelMetadata {
    return this.current.meta;
  }

  get modelHash(): string {
    return this.current.meta.sha256;
  }

  /** The served model's embedding identity (model.json `embedding.sha256`): equal for models that embed identically. */
  get embeddingHash(): string {
    return this.current.meta.embeddingSha256;
  }

  get embeddingDim(): number {
    return this.current.meta.embeddingDim;
  }

  /** Top categories and tags per video, in the order given. */
  async classify(videos: readonly InferenceVideo[], options: ClassifyOptions = {}): Promise<Classification[]> {
    const topCategories = options.topCategories ?? 3;
    const tagThreshold = options.tagThreshold ?? 0.5;
    const maxTags = options.maxTags ?? 20;
    if (!Number.isInteger(topCategories) || topCategories < 0) throw new RangeError(`topCategories must be a non-negative integer, got ${topCategories}`);
    if (!Number.isInteger(maxTags) || maxTags < 0) throw new RangeError(`maxTags must be a non-negative integer, got ${maxTags}`);
    if (!(tagThreshold >= 0 && tagThreshold <= 1)) throw new RangeError(`tagThreshold must be in [0, 1], got ${tagThreshold}`);
    const { version, outputs } = await this.submit(videos, options);
    const { labels, numCategories: C, numTags: N, embeddingDim: E } = version.meta;
    return videos.map((v, i) => {
      const result: Classification = {
        id: v.id,
        categories: C > 0 ? topScores(outputs.category_probs.subarray(i * C, (i + 1) * C), labels.categories, topCategories, 0) : [],
        tags: N > 0 ? topScores(outputs.tag_probs.subarray(i * N, (i + 1) * N), labels.tags, maxTags, tagThreshold) : [],
      };
      if (options.embedding) result.embedding = outputs.embedding.slice(i * E, (i + 1) * E);
      if (options.tagProbs) {
        result.tagProbs = N > 0 ? outputs.tag_probs.slice(i * N, (i + 1) * N) : new Float32Array(0);
        result.model = version.meta;
      }
      return result;
    });
  }

  /** One L2-normalised embedding per video, in the order given. */
  async embed(videos: readonly InferenceVideo[], options: RequestOptions = {}): Promise<Float32Array[]> {
    const { version, outputs } = await this.submit(videos, options);
    const E = version.meta.embeddingDim;
    return videos.map((_, i) => outputs.embedding.slice(i * E, (i + 1) * E));
  }

  /**
   * Loads the model in `dir` in every worker, then serves new calls with it.
   * Calls already accepted finish on the previous model. If the new model
   * cannot be loaded (missing, corrupt, a graph that does not match its
   * model.json), this rejects and the previous model stays in service.
   * Swaps run one at a time.
   */
  swapModel(dir: string): Promise<SwapResult> {
    const run = this.swapChain.then(() => this.doSwap(dir));
    this.swapChain = run.catch(() => undefined);
    return run;
  }

  /** The batch sizes of the runs completed since the last call (size → runs), e.g. for a metrics histogram. */
  takeRunSizes(): Map<number, number> {
    const sizes = this.runSizes;
    this.runSizes = new Map();
    return sizes;
  }

  stats(): InferenceStats {
    let queued = 0;
    for (const r of this.queue) if (!r.settled) queued += r.rows - r.next;
    return {
      ...this.counters,
      workers: this.handles.filter((h) => h.alive).length,
      intraOpThreads: this.settings.intraOpThreads,
      queuedVideos: queued,
      inflightRuns: this.jobs.size,
      modelVersion: this.current.id,
      modelHash: this.current.meta.sha256,
      loadedVersions: [...this.versions.values()].filter((v) => !v.unloaded).map((v) => v.id),
    };
  }

  /**
   * Stops the service: new calls are refused; with `drain`, calls already
   * accepted finish first, otherwise they are rejected with ServiceClosedError.
   * Resolves when every worker thread has exited.
   */
  async close(options: { drain?: boolean } = {}): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (options.drain) {
        await this.swapChain;
        await new Promise<void>((resolve) => {
          if (this.idle()) resolve();
          else this.drainWaiters.push(resolve);
        });
      }
      this.closed = true;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      const error = new ServiceClosedError("the inference service was closed before this call finished");
      for (const r of this.queue) this.fail(r, error);
      this.queue.length = 0;
      for (const job of this.jobs.values()) for (const s of job.segments) this.fail(s.request, error);
      this.jobs.clear();
      await Promise.all(
        this.handles.map((h) => {
          for (const p of h.loads.values()) p.reject(error);
          h.loads.clear();
          h.alive = false;
          return this.stopWorker(h);
        }),
      );
    })();
    return this.closing;
  }

  // ---- calls --------------------------------------------------------------------

  private submit(videos: readonly InferenceVideo[], options: RequestOptions): Promise<RequestResult> {
    return new Promise<RequestResult>((resolve, reject) => {
      if (this.closed || this.closing) throw new ServiceClosedError();
      const version = this.current;
      if (options.modelHash !== undefined && options.modelHash !== version.meta.sha256) throw new ModelChangedError(options.modelHash, version.meta.sha256);
      const meta = version.meta;
      checkVideos(videos, meta);
      const rows = videos.length;
      const outputs: Record<string, Float32Array> = {};
      for (const o of meta.outputs) outputs[o.name] = new Float32Array(rows * outputWidth(meta, o.name));
      if (rows === 0) return resolve({ version, outputs });
      const request: Request = { version, videos: [...videos], rows, next: 0, done: 0, outputs, enqueuedAt: performance.now(), settled: false, resolve, reject };
      version.refs++;
      this.queue.push(request);
      this.schedulePump();
    });
  }

  private settle(r: Request): void {
    if (r.settled) return;
    r.settled = true;
    r.resolve({ version: r.version, outputs: r.outputs });
    this.release(r.version);
  }

  private fail(r: Request, err: Error): void {
    if (r.settled) return;
    r.settled = true;
    r.reject(err);
    this.release(r.version);
  }

  private release(v: ModelVersion): void {
    v.refs--;
    this.maybeUnload(v);
  }

  private idle(): boolean {
    return this.jobs.size === 0 && this.queue.every((r) => r.settled);
  }

  // ---- scheduling ---------------------------------------------------------------

  /**
   * Calls never dispatch synchronously: the queue is looked at once the
   * current turn of the event loop is done, so calls made together (a
   * Promise.all, one request handler's loop) share a run even with a zero
   * window, at a cost of microseconds.
   */
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends runs to idle workers while there is queued work that is due (full batch or window over). */
  private pump(): void {
    if (this.closed) return;
    for (;;) {
      while (this.queue.length > 0 && (this.queue[0].settled || this.queue[0].next >= this.queue[0].rows)) this.queue.shift();
      if (this.queue.length === 0) break;
      const head = this.queue[0];
      const worker = this.idleWorker(head.version);
      if (!worker) break;
      const now = performance.now();
      const due = head.enqueuedAt + this.windowMs;
      if (now < due && this.readyRows(head.version) < this.maxBatch) {
        this.armTimer(due - now);
        break;
      }
      this.dispatch(worker, head.version);
    }
    if (this.drainWaiters.length > 0 && this.idle()) for (const w of this.drainWaiters.splice(0)) w();
  }

  private armTimer(ms: number): void {
    const due = performance.now() + ms;
    if (this.timer && this.timerDue <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDue = Infinity;
        this.pump();
      },
      Math.max(0, Math.ceil(ms)),
    );
  }

  private idleWorker(version: ModelVersion): WorkerHandle | undefined {
    return this.handles.find((h) => h.alive && h.busy === 0 && h.versions.has(version.id));
  }

  /** Unsent rows of `version` at the head of the queue, counted up to maxBatch. */
  private readyRows(version: ModelVersion): number {
    let n = 0;
    for (const r of this.queue) {
      if (r.settled) continue;
      if (r.version !== version || n >= this.maxBatch) break;
      n += r.rows - r.next;
    }
    return n;
  }

  private dispatch(worker: WorkerHandle, version: ModelVersion): void {
    const segments: Segment[] = [];
    let size = 0;
    for (const r of this.queue) {
      if (size >= this.maxBatch) break;
      if (r.settled || r.next >= r.rows) continue;
      if (r.version !== version) break;
      const count = Math.min(r.rows - r.next, this.maxBatch - size);
      segments.push({ request: r, start: r.next, count, offset: size });
      r.next += count;
      size += count;
    }
    let built;
    try {
      built = this.buildFeeds(version, segments, size);
    } catch (err) {
      // Not expected after checkVideos; if it happens, these calls fail and the queue moves on.
      for (const s of segments) this.fail(s.request, err as Error);
      return;
    }
    const { feeds, transfer } = built;
    const job: Job = { id: ++this.jobCounter, version, worker, segments, size };
    this.jobs.set(job.id, job);
    worker.jobs.add(job.id);
    worker.busy++;
    this.send(worker, { type: "run", job: job.id, version: version.id, feeds }, transfer);
  }

  /**
   * The run's feeds, built here, one run at a time, so that the main thread
   * copies at most one run's worth of frames in one go (a call of thousands of
   * videos does not stall the event loop while it is turned into tensors).
   * makeBatch in evaluation mode: segment-centre frames, masks, title ids from
   * the model's vocabulary, exactly what the model was validated on. Its
   * arrays are transferred to the worker, not copied.
   */
  private buildFeeds(version: ModelVersion, segments: Segment[], size: number): { feeds: Record<string, WireTensor>; transfer: ArrayBuffer[] } {
    const meta = version.meta;
    const input = meta.config.input;
    const examples: VideoExample[] = [];
    for (const s of segments) {
      for (let i = s.start; i < s.start + s.count; i++) {
        const v = s.request.videos[i];
        examples.push({ id: v.id, title: v.title ?? null, split: "test", features: v.features, category: null, tags: [] });
      }
    }
    const batch = makeBatch(examples, input, { training: false, vocabulary: meta.vocabulary, numTags: 0 });
    const feeds: Record<string, WireTensor> = {};
    const transfer: ArrayBuffer[] = [];
    const put = (name: string, type: WireTensor["type"], data: Float32Array | Int32Array, dims: number[]) => {
      feeds[name] = { type, data, dims };
      transfer.push(data.buffer as ArrayBuffer);
    };
    for (const m of input.modalities) {
      const f = batch.modalities[m];
      put(m, "float32", f.values, [size, f.steps, f.dim]);
      put(`${m}_mask`, "float32", f.mask, [size, f.steps]);
      put(`${m}_present`, "float32", f.present, [size]);
    }
    if (input.useTitle) {
      put("title_ids", "int32", batch.titleIds, [size, batch.titleLength]);
      put("title_mask", "float32", batch.titleMask, [size, batch.titleLength]);
      put("title_present", "float32", batch.titlePresent, [size]);
    }
    return { feeds, transfer };
  }

  private onResult(job: Job, outputs: Record<string, WireOutput>, runMs: number): void {
    this.counters.runs++;
    this.counters.videos += job.size;
    this.counters.largestRun = Math.max(this.counters.largestRun, job.size);
    this.counters.runMs += runMs;
    this.runSizes.set(job.size, (this.runSizes.get(job.size) ?? 0) + 1);
    const meta = job.version.meta;
    for (const s of job.segments) {
      const r = s.request;
      if (r.settled) continue;
      try {
        for (const name of Object.keys(r.outputs)) {
          const out = outputs[name];
          const width = outputWidth(meta, name);
          if (!out || out.dims[0] !== job.size || out.dims[1] !== width) throw new Error(`the model returned ${name} [${out?.dims.join(", ")}], expected [${job.size}, ${width}]`);
          r.outputs[name].set(out.data.subarray(s.offset * width, (s.offset + s.count) * width), s.start * width);
        }
      } catch (err) {
        this.fail(r, err as Error);
        continue;
      }
      r.done += s.count;
      if (r.done === r.rows) this.settle(r);
    }
  }

  private onRunFailed(job: Job, message: string): void {
    const err = new Error(`inference failed: ${message}`);
    for (const s of job.segments) this.fail(s.request, err);
  }

  // ---- model versions -----------------------------------------------------------

  private newVersion(meta: ModelMetadata): ModelVersion {
    const v: ModelVersion = { id: ++this.versionCounter, meta, refs: 0, retired: false, unloaded: false };
    this.versions.set(v.id, v);
    return v;
  }

  private maybeUnload(v: ModelVersion): void {
    if (!v.retired || v.refs > 0 || v.unloaded) return;
    v.unloaded = true;
    this.versions.delete(v.id);
    for (const h of this.handles) {
      if (!h.alive || !h.versions.delete(v.id)) continue;
      // Posted after every run of this version (messages keep their order), so none is cut off.
      this.send(h, { type: "unload", version: v.id });
    }
  }

  private loadOn(h: WorkerHandle, v: ModelVersion): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (!h.alive) return reject(new Error("inference worker is not running"));
      h.busy++;
      h.loads.set(v.id, { resolve, reject });
      const m = v.meta;
      this.send(h, { type: "load", version: v.id, onnxPath: m.onnxPath, sha256: m.sha256, bytes: m.onnxBytes, inputs: m.inputs.map((i) => i.name), outputs: m.outputs.map((o) => o.name) });
    });
  }

  private async doSwap(dir: string): Promise<SwapResult> {
    if (this.closed || this.closing) throw new ServiceClosedError();
    const meta = readModelMetadata(dir);
    const version = this.newVersion(meta);
    let loadMs = 0;
    try {
      // A worker respawned meanwhile has not seen this version: load until every live worker has it.
      for (;;) {
        const missing = this.handles.filter((h) => h.alive && !h.versions.has(version.id));
        if (missing.length === 0) break;
        const times = await Promise.all(missing.map((h) => this.loadOn(h, version)));
        loadMs = Math.max(loadMs, ...times);
      }
      if (this.closed || this.closing) throw new ServiceClosedError();
    } catch (err) {
      version.retired = true;
      this.maybeUnload(version);
      // Workers still loading it unload it after (their messages are ordered).
      for (const h of this.handles) if (h.alive && h.loads.has(version.id)) this.send(h, { type: "unload", version: version.id });
      throw err;
    }
    const previous = this.current;
    this.current = version;
    previous.retired = true;
    this.maybeUnload(previous);
    this.pump();
    return { previousHash: previous.meta.sha256, modelHash: meta.sha256, modelVersion: version.id, loadMs };
  }

  // ---- workers ------------------------------------------------------------------

  private spawn(): WorkerHandle {
    const init: WorkerInit = { settings: this.settings };
    const worker = startWorker(new URL("./sessionWorker.js", import.meta.url), init);
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    const h: WorkerHandle = { worker, alive: true, exited, busy: 0, jobs: new Set(), loads: new Map(), versions: new Set() };
    worker.on("message", (m: FromWorker) => this.onMessage(h, m));
    worker.on("error", (err) => this.onWorkerDown(h, err));
    worker.on("exit", (code) => this.onWorkerDown(h, new Error(`inference worker exited (code ${code})`)));
    return h;
  }

  /**
   * Ends a worker thread after its current run. Never worker.terminate() a
   * worker that may be inside a run: onnxruntime-node then aborts the process.
   */
  private stopWorker(h: WorkerHandle): Promise<void> {
    h.worker.postMessage({ type: "shutdown" } satisfies ToWorker);
    return h.exited;
  }

  private send(h: WorkerHandle, m: ToWorker, transfer: ArrayBuffer[] = []): void {
    h.worker.postMessage(m, transfer);
  }

  private onMessage(h: WorkerHandle, m: FromWorker): void {
    if (m.type === "loaded" || m.type === "loadFailed") {
      const pending = h.loads.get(m.version);
      h.loads.delete(m.version);
      h.busy--;
      if (m.type === "loaded") {
        h.versions.add(m.version);
        pending?.resolve(m.loadMs);
      } else {
        pending?.reject(m.problem ? new ModelBundleError(m.problem as ModelBundleProblem, m.message) : new Error(`cannot load the model: ${m.message}`));
      }
    } else {
      const job = this.jobs.get(m.job);
      h.jobs.delete(m.job);
      h.busy--;
      if (job) {
        this.jobs.delete(m.job);
        if (m.type === "result") this.onResult(job, m.outputs, m.runMs);
        else this.onRunFailed(job, m.message);
      }
    }
    this.pump();
  }

  /** A worker died: fail what it held, and start a replacement with the live models. */
  private onWorkerDown(h: WorkerHandle, err: Error): void {
    if (!h.alive) return;
    h.alive = false;
    const error = new Error(`inference worker failed: ${err.message}`);
    for (const id of h.jobs) {
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      if (job) for (const s of job.segments) this.fail(s.request, error);
    }
    h.jobs.clear();
    for (const p of h.loads.values()) p.reject(error);
    h.loads.clear();
    // After "error" the thread is already ending (an uncaught exception, outside any native run).
    void h.worker.terminate();
    if (this.closed || this.closing) return;
    if (this.respawnsLeft > 0) {
      this.respawnsLeft--;
      const replacement = this.spawn();
      this.handles[this.handles.indexOf(h)] = replacement;
      const live = [...this.versions.values()].filter((v) => !v.unloaded && (v === this.current || v.refs > 0));
      Promise.all(live.map((v) => this.loadOn(replacement, v)))
        .then(() => this.pump())
        .catch(() => {
          replacement.alive = false;
          void this.stopWorker(replacement);
          this.failIfNoWorkers(error);
        });
    } else {
      this.failIfNoWorkers(error);
    }
  }

  private failIfNoWorkers(error: Error): void {
    if (this.handles.some((h) => h.alive)) return;
    for (const r of this.queue) this.fail(r, error);
    this.queue.length = 0;
  }
}

/** Indices of `probs` with p ≥ threshold, most probable first (ties: lower index), at most `top`. */
export function topScores(probs: Float32Array, labels: readonly string[], top: number, threshold: number): LabelScore[] {
  const picked: number[] = [];
  for (let i = 0; i < probs.length; i++) if (probs[i] >= threshold) picked.push(i);
  picked.sort((a, b) => probs[b] - probs[a] || a - b);
  return picked.slice(0, top).map((i) => ({ label: labels[i], index: i, probability: probs[i] }));
}
