/**
 * InferenceService: tiny random models exported with the real exporter, served
 * from worker threads, checked against the tfjs forward pass of the same model
 * on the same (makeBatch-built) inputs. Also: micro-batching, an event loop
 * that keeps running during long runs, hot swap under load, corrupt model
 * files, and close() leaving no worker threads.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { Command } from "commander";
import type { FeatureMatrix } from "../src/data/featureMatrix.js";
import { matrixToJson } from "../src/data/jsonl.js";
import { VideoStore } from "../src/data/store.js";
import { PAD_TOKEN, UNK_TOKEN } from "../src/data/tokenize.js";
import { prng, tfjsOutputs, type Feeds } from "../src/export/verify.js";
import type { ModelConfigInput } from "../src/model/config.js";
import { exportModel } from "../src/export/exportModel.js";
import { readCheckpoint, writeCheckpoint } from "../src/train/checkpoint.js";
import { loadTrainedModel } from "../src/train/modelFiles.js";
import { makeBatch } from "../src/train/batches.js";
import { InferenceService, ModelChangedError, ServiceClosedError, topScores, type InferenceVideo } from "../src/infer/inferenceService.js";
import { loadModelBundle, ModelBundleError, readModelMetadata } from "../src/infer/modelBundle.js";
import { productFlops } from "../src/infer/flops.js";
import { storeEmbedder } from "../src/infer/storeEmbedder.js";
import type { Embedder } from "../indexer/embedder.js";
import { classificationsToJson, formatClassifications, registerInferCommands, runClassify } from "../src/cli/inferCommands.js";
import { exportRandomModel, type ExportedRandomModel } from "./helpers/randomModel.js";
import { tempDir } from "./helpers/tmp.js";

const TOL = 1e-4;
const LABELS = { categories: ["sports", "music", "news"], tags: ["cat", "dog", "car", "food"] };
const TOKENS = [PAD_TOKEN, UNK_TOKEN, "cat", "dog", "video", "funny", "music", "news", "live", "race"];
const WORDS = ["cat", "dog", "video", "funny", "music", "news", "live", "race", "zebra", "quux"]; // the last two are unknown

const TINY: ModelConfigInput = {
  name: "infer-tiny",
  input: { features: { rgb: { frames: 6, dim: 8 }, audio: { frames: 5, dim: 4 } }, modalities: ["rgb", "audio"], useTitle: true, titleMaxTokens: 6, sampling: "segment" },
  encoders: {
    rgb: { type: "nextvlad", expansion: 2, groups: 2, clusters: 4, hidden: 8, gatingReduction: 2 },
    audio: { type: "gated_mlp", hidden: 6, gatingReduction: 2 },
  },
  title: { embeddingDim: 6, encoder: { type: "textcnn", textcnn: { widths: [2, 3], filters: 3 }, hidden: 5 } },
  fusion: { type: "concat_se", embeddingDim: 8, seReduction: 2 },
  heads: { mode: "multi" },
};

/** Heavy enough that one run takes a noticeable time (for the event-loop test). */
const HEAVY: ModelConfigInput = {
  name: "infer-heavy",
  input: { features: { rgb: { frames: 32, dim: 128 } }, modalities: ["rgb"], useTitle: false, sampling: "pad" },
  // ~76 MFLOP per video (mostly the 1024 → 8·128 assignment) for 16 KB of input: long runs, little to copy.
  encoders: { rgb: { type: "nextvlad", expansion: 8, groups: 8, clusters: 128, hidden: 64 } },
  fusion: { type: "concat_se", embeddingDim: 16 },
  heads: { mode: "tags" },
};

type Exported = ExportedRandomModel;

/** A random model written as a checkpoint, loaded back and exported to `dir` like a trained one. */
function exportRandom(dir: string, config: ModelConfigInput, seed: number, verify: boolean): Promise<Exported> {
  return exportRandomModel(dir, config, seed, { labels: LABELS, tokens: TOKENS, verify });
}

function matrix(frames: number, dim: number, rand: () => number): FeatureMatrix {
  return { frames, dim, values: Float32Array.from({ length: frames * dim }, () => 4 * rand() - 2) };
}

/**
 * Videos that hit the input cases: more frames than the model's T (segment
 * sampling), fewer (padding), a missing modality, no title, an empty title,
 * unknown words, and a modality the model does not use.
 */
function tinyVideos(n: number, seed: number, prefix = "v"): InferenceVideo[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const features: Record<string, FeatureMatrix> = { rgb: matrix(1 + Math.floor(rand() * 14), 8, rand) };
    if (i % 4 !== 1) features.audio = matrix(1 + Math.floor(rand() * 9), 4, rand);
    if (i % 5 === 2) features.depth = matrix(2, 3, rand);
    const words = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => WORDS[Math.floor(rand() * WORDS.length)]);
    const title = i % 6 === 3 ? null : i % 6 === 4 ? "" : words.join(" ");
    return { id: `${prefix}${i}`, title, features };
  });
}

interface Reference {
  category_probs?: Float32Array;
  tag_probs?: Float32Array;
  embedding: Float32Array;
}

/** The tfjs model's outputs for `videos`, one entry per video, on the inputs makeBatch builds in evaluation mode. */
function reference(e: Exported, videos: readonly InferenceVideo[]): Reference[] {
  const config = e.model.config;
  const batch = makeBatch(
    videos.map((v) => ({ id: v.id, title: v.title ?? null, split: "test" as const, features: v.features, category: null, tags: [] })),
    config.input,
    { training: false, vocabulary: e.vocabulary, numTags: 0 },
  );
  const feeds: Feeds = {
    batch: batch.size,
    modalities: Object.fromEntries(Object.entries(batch.modalities).map(([m, f]) => [m, { steps: f.steps, dim: f.dim, values: f.values, mask: f.mask, present: f.present }])),
    title: config.input.useTitle ? { length: batch.titleLength, ids: batch.titleIds, mask: batch.titleMask, present: batch.titlePresent } : undefined,
  };
  const out = tfjsOutputs(e.model, feeds);
  const row = (name: string, i: number) => {
    const o = out[name];
    if (!o) return undefined;
    const w = o.dims[1];
    return o.data.slice(i * w, (i + 1) * w);
  };
  return videos.map((_, i) => ({ category_probs: row("category_probs", i), tag_probs: row("tag_probs", i), embedding: row("embedding", i)! }));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= TOL, `${what}: max |diff| ${d.toExponential(2)} > ${TOL}`);
}

/** `p`, or a rejection after `ms`: a call that never settles fails the test instead of hanging it. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`call did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/** Worker threads of this process (the tsx loader's hooks thread, if any, included). */
function workerThreads(): number {
  return (process.report.getReport() as unknown as { workers: unknown[] }).workers.length;
}

const root = tempDir("vidrecall-infer-");
let A: Exported;
let B: Exported;
let heavyDir: string;
let baselineWorkers: number;

before(async () => {
  await tf.setBackend("cpu");
  await tf.ready();
  baselineWorkers = workerThreads();
  A = await exportRandom(join(root, "a"), TINY, 11, true);
  B = await exportRandom(join(root, "b"), TINY, 12, true);
  const heavy = await exportRandom(join(root, "heavy"), HEAVY, 3, false);
  heavy.model.dispose();
  heavyDir = heavy.dir;
});

/** Full-length inputs for the HEAVY model. */
function heavyVideos(n: number, seed: number): InferenceVideo[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, i) => ({ id: `h${i}`, features: { rgb: matrix(32, 128, rand) } }));
}

after(() => {
  A?.model.dispose();
  B?.model.dispose();
});

describe("model bundle", () => {
  it("loads model.json and a model.onnx that matches its hash", async () => {
    const bundle = await loadModelBundle(A.dir);
    assert.deepEqual(bundle.labels, LABELS);
    assert.equal(bundle.embeddingDim, 8);
    assert.equal(bundle.numCategories, 3);
    assert.equal(bundle.numTags, 4);
    assert.deepEqual(bundle.vocabulary?.tokens, TOKENS);
    assert.equal(bundle.onnx.byteLength, bundle.onnxBytes);
  });

  it("refuses missing, truncated and corrupt files with a clear error", async () => {
    const bad = join(root, "bad");
    mkdirSync(bad, { recursive: true });
    await assert.rejects(loadModelBundle(join(root, "nowhere")), (e: unknown) => e instanceof ModelBundleError && e.problem === "missing" && /no model directory/.test(e.message));
    await assert.rejects(loadModelBundle(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "missing" && /model\.json not found.*vidrecall export/.test(e.message));

    copyFileSync(join(A.dir, "model.json"), join(bad, "model.json"));
    await assert.rejects(loadModelBundle(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "missing" && /model\.onnx not found/.test(e.message));

    copyFileSync(join(A.dir, "model.onnx"), join(bad, "model.onnx"));
    const bytes = readFileSync(join(bad, "model.onnx"));
    bytes[bytes.length >> 1] ^= 0xff; // same size, one byte off
    writeFileSync(join(bad, "model.onnx"), bytes);
    await assert.rejects(loadModelBundle(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "corrupt" && /does not match model\.json \(sha256/.test(e.message));

    truncateSync(join(bad, "model.onnx"), 100);
    await assert.rejects(loadModelBundle(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "corrupt" && /100 bytes, model\.json says/.test(e.message));

    writeFileSync(join(bad, "model.json"), "{ not json");
    assert.throws(() => readModelMetadata(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "corrupt" && /not valid JSON/.test(e.message));
    const meta = JSON.parse(readFileSync(join(A.dir, "model.json"), "utf8"));
    writeFileSync(join(bad, "model.json"), JSON.stringify({ ...meta, onnx: { ...meta.onnx, file: "../a/model.onnx" } }));
    assert.throws(() => readModelMetadata(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "invalid" && /must be a file name/.test(e.message));
  });

  it("a service refuses a corrupt model.onnx and leaves no workers behind", async () => {
    const bad = join(root, "corrupt");
    mkdirSync(bad, { recursive: true });
    copyFileSync(join(A.dir, "model.json"), join(bad, "model.json"));
    const bytes = readFileSync(join(A.dir, "model.onnx"));
    bytes[100] ^= 0x01;
    writeFileSync(join(bad, "model.onnx"), bytes);
    await assert.rejects(InferenceService.create(bad, { workers: 2, intraOpThreads: 1 }), (e: unknown) => e instanceof ModelBundleError && e.problem === "corrupt" && /model\.onnx does not match model\.json/.test(e.message));
    assert.equal(workerThreads(), baselineWorkers);
  });
});

describe("InferenceService", () => {
  it("classify and embed equal the tfjs forward pass of the same model", async () => {
    const svc = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1 });
    try {
      const videos = tinyVideos(13, 5);
      const ref = reference(A, videos);
      const embeddings = await svc.embed(videos);
      assert.equal(embeddings.length, videos.length);
      embeddings.forEach((e, i) => assertClose(e, ref[i].embedding, `embedding of ${videos[i].id}`));

      // Every category and tag, so each probability can be checked at its index.
      const all = await svc.classify(videos, { topCategories: 3, tagThreshold: 0, maxTags: 4, embedding: true });
      all.forEach((c, i) => {
        assert.equal(c.id, videos[i].id);
        assert.equal(c.categories.length, 3);
        assert.equal(c.tags.length, 4);
        for (const s of c.categories) {
          assert.equal(s.label, LABELS.categories[s.index]);
          assert.ok(Math.abs(s.probability - ref[i].category_probs![s.index]) <= TOL);
        }
        for (const s of c.tags) {
          assert.equal(s.label, LABELS.tags[s.index]);
          assert.ok(Math.abs(s.probability - ref[i].tag_probs![s.index]) <= TOL);
        }
        const cp = c.categories.map((s) => s.probability);
        assert.deepEqual(cp, [...cp].sort((x, y) => y - x), "categories most probable first");
        assertClose(c.embedding!, ref[i].embedding, "classify embedding");
      });

      // Defaults: top 3 categories; tags at or above 0.5 only.
      const top = await svc.classify(videos.slice(0, 5), { topCategories: 1 });
      top.forEach((c, i) => {
        const probs = ref[i].category_probs!;
        assert.equal(c.categories[0].index, probs.indexOf(Math.max(...probs)));
        const want = [...ref[i].tag_probs!.keys()].filter((k) => ref[i].tag_probs![k] >= 0.5 + TOL).sort();
        const got = c.tags.map((t) => t.index).sort();
        for (const k of want) assert.ok(got.includes(k), `tag ${k} (p=${ref[i].tag_probs![k]}) missing`);
        for (const t of c.tags) assert.ok(t.probability >= 0.5);
        assert.equal(c.embedding, undefined);
      });
      assert.deepEqual(await svc.embed([]), []);

      // With the default zero window, calls made in one turn of the event loop still share a run.
      const runs = svc.stats().runs;
      const together = await Promise.all([svc.embed(videos.slice(0, 2)), svc.embed(videos.slice(2, 3)), svc.classify(videos.slice(3, 6))]);
      assert.equal(svc.stats().runs - runs, 1);
      together[0].forEach((e, i) => assertClose(e, ref[i].embedding, "merged call 0"));
      assertClose(together[1][0], ref[2].embedding, "merged call 1");
      assert.deepEqual(together[2].map((c) => c.id), ["v3", "v4", "v5"]);
    } finally {
      await svc.close();
    }
  });

  it("a bad video fails only its own call, with its id in the message", async () => {
    const svc = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1, batchWindowMs: 50 });
    try {
      const good = tinyVideos(2, 9);
      const bad: InferenceVideo = { id: "wrong-dim", features: { rgb: { frames: 2, dim: 7, values: new Float32Array(14) } } };
      const [ok, failed] = await Promise.allSettled([svc.embed(good), svc.embed([bad])]);
      assert.equal(ok.status, "fulfilled");
      assert.equal(failed.status, "rejected");
      assert.match(String((failed as PromiseRejectedResult).reason), /wrong-dim.*rgb is 2×7/);
      await assert.rejects(svc.embed(good, { modelHash: "0".repeat(64) }), ModelChangedError);
    } finally {
      await svc.close();
    }
  });

  it("merges concurrent calls into one run and gives each caller its own rows", async () => {
    const svc = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1, batchWindowMs: 200, maxBatch: 32 });
    try {
      const calls = [tinyVideos(1, 21, "a"), tinyVideos(3, 22, "b"), tinyVideos(2, 23, "c"), tinyVideos(4, 24, "d"), tinyVideos(1, 25, "e")];
      const before = svc.stats().runs;
      const results = await Promise.all(calls.map((videos, k) => (k % 2 ? svc.embed(videos) : svc.classify(videos, { tagThreshold: 0, embedding: true }))));
      const stats = svc.stats();
      assert.equal(stats.runs - before, 1, "five concurrent calls, one ORT run");
      assert.equal(stats.largestRun, 11);
      results.forEach((res, k) => {
        const ref = reference(A, calls[k]);
        assert.equal(res.length, calls[k].length);
        res.forEach((r, i) => {
          const emb = r instanceof Float32Array ? r : r.embedding!;
          if (!(r instanceof Float32Array)) assert.equal(r.id, calls[k][i].id);
          assertClose(emb, ref[i].embedding, `call ${k} row ${i}`);
        });
      });

      // Calls larger than maxBatch are split over runs and put back together.
      const small = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1, batchWindowMs: 20, maxBatch: 4 });
      try {
        const big = tinyVideos(10, 31, "big");
        const other = tinyVideos(3, 32, "other");
        const [r1, r2] = await Promise.all([small.embed(big), small.embed(other)]);
        assert.equal(small.stats().runs, 4, "13 videos in runs of at most 4");
        assert.equal(small.stats().largestRun, 4);
        const ref1 = reference(A, big);
        const ref2 = reference(A, other);
        r1.forEach((e, i) => assertClose(e, ref1[i].embedding, `big row ${i}`));
        r2.forEach((e, i) => assertClose(e, ref2[i].embedding, `other row ${i}`));
      } finally {
        await small.close();
      }
    } finally {
      await svc.close();
    }
  });

  it("keeps the event loop responsive during long inference runs", async (t) => {
    const svc = await InferenceService.create(heavyDir, { workers: 1, intraOpThreads: 1, maxBatch: 4096, batchWindowMs: 0 });
    try {
      // Calibrate, so that one run takes a few hundred ms here whatever the machine's speed.
      await svc.embed(heavyVideos(4, 3));
      const calib = heavyVideos(16, 3);
      const t0 = performance.now();
      await svc.embed(calib);
      let n = Math.min(1000, Math.max(16, Math.ceil(600 / ((performance.now() - t0) / calib.length))));

      let meanRunMs = 0;
      let maxGap = 0;
      let ticks = 0;
      // The machine may speed up after calibrating: measure again with more videos if the runs came out short.
      for (let attempt = 0; attempt < 3 && meanRunMs < 200; attempt++, n *= 2) {
        const videos = heavyVideos(n, 4 + attempt);
        const before = svc.stats();
        let last = performance.now();
        maxGap = 0;
        ticks = 0;
        const timer = setInterval(() => {
          const now = performance.now();
          maxGap = Math.max(maxGap, now - last);
          last = now;
          ticks++;
        }, 5);
        try {
          // Two calls, one run each.
          await svc.embed(videos);
          await svc.embed(videos);
        } finally {
          clearInterval(timer);
        }
        const s = svc.stats();
        assert.equal(s.runs - before.runs, 2);
        meanRunMs = (s.runMs - before.runMs) / 2;
        t.diagnostic(`${n} videos per run, mean run ${meanRunMs.toFixed(0)} ms, longest timer gap ${maxGap.toFixed(0)} ms, ${ticks} ticks`);
      }
      // Were the run on this thread, the timer would stall for a whole run.
      assert.ok(meanRunMs >= 200, `runs too short to tell (${meanRunMs.toFixed(0)} ms)`);
      assert.ok(maxGap < 100, `timer stalled for ${maxGap.toFixed(0)} ms during ${meanRunMs.toFixed(0)} ms runs`);
      assert.ok(ticks >= (2 * meanRunMs) / 25, `only ${ticks} timer ticks in ~${(2 * meanRunMs).toFixed(0)} ms`);
    } finally {
      await svc.close();
    }
  });

  /**
   * A stream of calls (one every ~2 ms) with a swap from A to B in the middle,
   * plus a burst of calls made right as the swap starts. Runs of at most 2
   * videos, so the burst cannot all go out in one run before the switch.
   * Returns the service (still open) and the pool's reference outputs.
   */
  async function swapUnderLoad(workers: number): Promise<{ svc: InferenceService; loadedAtSwitch: number[]; pool: InferenceVideo[]; refB: Reference[] }> {
    const svc = await InferenceService.create(A.dir, { workers, intraOpThreads: 1, batchWindowMs: 1, maxBatch: 2 });
    const pool = tinyVideos(12, 41, "p");
    const refA = reference(A, pool);
    const refB = reference(B, pool);
    // A and B must differ, or "which model answered" would be moot.
    assert.ok(maxAbsDiff(refA[0].embedding, refB[0].embedding) > 1e-2);

    type Call = { start: number; picks: number[]; promise: Promise<Float32Array[]> };
    const calls: Call[] = [];
    const rand = prng(42);
    const call = (size = 1 + Math.floor(rand() * 3)) => {
      const picks = Array.from({ length: size }, () => Math.floor(rand() * pool.length));
      calls.push({ start: performance.now(), picks, promise: svc.embed(picks.map((p) => pool[p])) });
    };
    let swapStarted = Infinity;
    let swapDone = Infinity;
    let swap: Promise<unknown> | undefined;
    let loadedAtSwitch: number[] = [];
    for (let k = 0; ; k++) {
      if (k === 15) {
        swapStarted = performance.now();
        swap = svc.swapModel(B.dir).then((r) => {
          swapDone = performance.now();
          loadedAtSwitch = svc.stats().loadedVersions;
          return r;
        });
        for (let j = 0; j < 10; j++) call(3);
      }
      if (swapDone < Infinity && calls.filter((c) => c.start > swapDone).length >= 15) break;
      call();
      await new Promise((r) => setTimeout(r, 2));
    }
    const swapResult = (await within(swap!, 30_000)) as { modelVersion: number; previousHash: string; modelHash: string };
    const settled = await Promise.allSettled(calls.map((c) => within(c.promise, 30_000)));
    const failed = settled.filter((x) => x.status === "rejected");
    assert.equal(failed.length, 0, `failed calls: ${failed.map((f) => String((f as PromiseRejectedResult).reason)).join("; ")}`);

    let onA = 0;
    let onB = 0;
    calls.forEach((c, k) => {
      const got = (settled[k] as PromiseFulfilledResult<Float32Array[]>).value;
      // A whole call comes from one model.
      const isA = c.picks.every((p, i) => maxAbsDiff(got[i], refA[p].embedding) <= TOL);
      const isB = c.picks.every((p, i) => maxAbsDiff(got[i], refB[p].embedding) <= TOL);
      assert.ok(isA !== isB, `call ${k} matches ${isA ? "both models" : "neither model"}`);
      if (c.start < swapStarted) assert.ok(isA, `call ${k}, made before the swap, ran on the new model`);
      if (c.start > swapDone) assert.ok(isB, `call ${k}, made after the swap, ran on the old model`);
      if (isA) onA++;
      else onB++;
    });
    assert.ok(onA >= 25 && onB >= 15, `${onA} calls on A, ${onB} on B`);
    assert.equal(swapResult.modelVersion, 2);
    assert.equal(swapResult.previousHash, readModelMetadata(A.dir).sha256);
    assert.equal(swapResult.modelHash, readModelMetadata(B.dir).sha256);
    assert.equal(svc.modelHash, swapResult.modelHash);
    // The old model is unloaded once its last call is done.
    assert.deepEqual(svc.stats().loadedVersions, [2]);
    return { svc, loadedAtSwitch, pool, refB };
  }

  it("swaps the model under load without failing a call (two workers)", { timeout: 120_000 }, async () => {
    const { svc } = await swapUnderLoad(2);
    await svc.close();
  });

  it("swaps the model under load: calls accepted before the switch finish on the old model", { timeout: 120_000 }, async () => {
    const { svc, loadedAtSwitch, pool, refB } = await swapUnderLoad(1);
    try {
      // One worker, busy loading while the burst queued: at the switch it had sent one run of the burst, so
      // old-model calls were still pending and both models were loaded.
      assert.deepEqual(loadedAtSwitch, [1, 2]);

      // A corrupt model cannot be swapped in, and the current one keeps serving.
      const bad = join(root, "swap-bad");
      mkdirSync(bad, { recursive: true });
      copyFileSync(join(B.dir, "model.json"), join(bad, "model.json"));
      const bytes = readFileSync(join(B.dir, "model.onnx"));
      bytes[bytes.length - 10] ^= 0x40;
      writeFileSync(join(bad, "model.onnx"), bytes);
      await assert.rejects(svc.swapModel(bad), (e: unknown) => e instanceof ModelBundleError && e.problem === "corrupt");
      assert.equal(svc.stats().modelVersion, 2);
      assertClose((await svc.embed([pool[0]]))[0], refB[0].embedding, "after a failed swap");
      assert.deepEqual(svc.stats().loadedVersions, [2]);
      rmSync(bad, { recursive: true });
    } finally {
      await svc.close();
    }
  });

  it("replaces a worker that dies and serves queued calls on the new one", async () => {
    const svc = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1, batchWindowMs: 200 });
    try {
      const videos = tinyVideos(3, 71);
      const ref = reference(A, videos);
      const queued = svc.embed(videos); // waits out the batch window: nothing is running in the worker
      assert.equal(svc.stats().inflightRuns, 0);
      // Kill the idle worker behind the service's back (terminating one inside a run would abort the process: see sessionWorker.ts).
      const handles = (svc as unknown as { handles: { worker: { terminate(): Promise<number> } }[] }).handles;
      const dead = handles[0];
      await dead.worker.terminate();
      const result = await within(queued, 30_000);
      result.forEach((e, i) => assertClose(e, ref[i].embedding, "after the respawn"));
      assert.notEqual(handles[0], dead, "a new worker took the dead one's place");
      assert.equal(svc.stats().workers, 1);
      assert.equal(svc.stats().runs, 1);
    } finally {
      await svc.close();
    }
    assert.equal(workerThreads(), baselineWorkers);
  });

  it("storeEmbedder embeds store videos by id, pinned to one model across swaps", async () => {
    const store = VideoStore.open(join(root, "embedder.sqlite"));
    const svc = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1 });
    try {
      const videos = tinyVideos(4, 81, "s");
      store.upsertVideos(
        videos.map((v) => ({ id: v.id, title: v.title, features: Object.fromEntries(Object.entries(v.features).map(([m, f]) => [m, { matrix: f, encoding: "float16" as const }])) })),
        { source: "test" },
      );
      const ids = ["s2", "s0", "s3"];
      const ref = reference(A, store.getExamples(ids));
      const embedder: Embedder = storeEmbedder(svc, store); // what the indexer takes
      assert.equal(embedder.modelHash, readModelMetadata(A.dir).embeddingSha256, "keyed by the embedding hash");
      assert.equal(embedder.dim, 8);
      (await embedder.embed(ids)).forEach((e, i) => assertClose(e, ref[i].embedding, `store video ${ids[i]}`));
      await assert.rejects(embedder.embed(["nope"]), /unknown video id "nope"/);
      await svc.swapModel(B.dir);
      await assert.rejects(embedder.embed(ids), ModelChangedError);
      const refB = reference(B, store.getExamples(ids));
      (await storeEmbedder(svc, store).embed(ids)).forEach((e, i) => assertClose(e, refB[i].embedding, `store video ${ids[i]} on B`));
    } finally {
      await svc.close();
      store.close();
    }
  });

  it("the embedding hash ignores the heads: a head-only change keeps it, a backbone change does not", async () => {
    const dir = join(root, "heads-only");
    const base = await exportRandom(join(dir, "base"), TINY, 7, false);
    base.model.dispose();
    const ckpt = readCheckpoint(join(base.dir, "best.ckpt"));
    const edited = (pick: (name: string) => boolean, out: string) => {
      const tensors = ckpt.tensors.map((t) => (t.kind === "param" && pick(t.name) ? { ...t, values: t.values.map((v) => v + 0.25) } : t));
      mkdirSync(out, { recursive: true });
      writeCheckpoint(join(out, "best.ckpt"), ckpt.header, tensors);
      return out;
    };
    const headsDir = edited((n) => n.startsWith("model/head_"), join(dir, "heads"));
    const backboneDir = edited((n) => !n.startsWith("model/head_"), join(dir, "backbone"));
    for (const d of [headsDir, backboneDir]) {
      const loaded = loadTrainedModel(d);
      await exportModel(loaded, d);
      loaded.model.dispose();
    }
    const [b, h, k] = [base.dir, headsDir, backboneDir].map((d) => readModelMetadata(d));
    assert.ok(ckpt.tensors.some((t) => t.name.startsWith("model/head_")), "the checkpoint has head parameters");
    assert.notEqual(h.sha256, b.sha256, "new heads: a different graph");
    assert.equal(h.embeddingSha256, b.embeddingSha256, "new heads: the same embedding hash");
    assert.notEqual(k.embeddingSha256, b.embeddingSha256, "a new backbone: a different embedding hash");
  });

  it("close() rejects pending calls (or drains them) and leaves no worker threads", async () => {
    const svc = await InferenceService.create(A.dir, { workers: 2, intraOpThreads: 1, batchWindowMs: 10_000 });
    assert.equal(workerThreads(), baselineWorkers + 2);
    const pending = assert.rejects(svc.embed(tinyVideos(2, 51)), ServiceClosedError);
    await svc.close();
    await pending;
    await assert.rejects(svc.embed(tinyVideos(1, 52)), ServiceClosedError);
    assert.equal(svc.stats().workers, 0);
    assert.equal(workerThreads(), baselineWorkers);

    // Closing during a long run: the worker ends after the run (terminating it inside one would abort the process).
    const busy = await InferenceService.create(heavyDir, { workers: 1, intraOpThreads: 1, batchWindowMs: 0, maxBatch: 4096 });
    const long = assert.rejects(busy.embed(heavyVideos(64, 55)), ServiceClosedError);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(busy.stats().inflightRuns, 1);
    await busy.close();
    await long;
    assert.equal(workerThreads(), baselineWorkers);

    const drained = await InferenceService.create(A.dir, { workers: 1, intraOpThreads: 1, batchWindowMs: 100 });
    const videos = tinyVideos(3, 53);
    const result = drained.embed(videos);
    await drained.close({ drain: true });
    const ref = reference(A, videos);
    (await result).forEach((e, i) => assertClose(e, ref[i].embedding, "drained call"));
    assert.equal(workerThreads(), baselineWorkers);
  });
});

describe("classify command", () => {
  it("classifies JSONL and store videos like the service", async () => {
    const videos = tinyVideos(5, 61).map((v) => ({ ...v, title: v.title ?? "cat" }));
    const jsonl = join(root, "videos.jsonl");
    writeFileSync(jsonl, videos.map((v) => JSON.stringify({ id: v.id, title: v.title, rgb: matrixToJson(v.features.rgb), ...(v.features.audio ? { audio: matrixToJson(v.features.audio) } : {}) })).join("\n") + "\n");
    const ref = reference(A, videos);
    const fromJsonl = await runClassify({ model: A.dir, jsonl, top: 2, tagThreshold: 0, maxTags: 2, embedding: true });
    assert.deepEqual(fromJsonl.map((r) => r.id), videos.map((v) => v.id));
    fromJsonl.forEach((r, i) => {
      const probs = ref[i].category_probs!;
      assert.equal(r.categories.length, 2);
      assert.equal(r.categories[0].label, LABELS.categories[probs.indexOf(Math.max(...probs))]);
      assert.equal(r.tags.length, 2);
      assertClose(r.embedding!, ref[i].embedding, "jsonl embedding");
    });

    const db = join(root, "store.sqlite");
    const store = VideoStore.open(db);
    store.upsertVideos(
      videos.map((v) => ({ id: v.id, title: v.title, features: Object.fromEntries(Object.entries(v.features).map(([m, f]) => [m, { matrix: f, encoding: "float16" as const }])) })),
      { source: "test" },
    );
    const stored = store.getExamples(videos.map((v) => v.id).reverse()); // float16: the reference is what the store gives back
    store.close();
    const refStored = reference(A, stored);
    const fromDb = await runClassify({ model: A.dir, db, ids: stored.map((v) => v.id).join(","), top: 1, tagThreshold: 0, maxTags: 4, embedding: true });
    fromDb.forEach((r, i) => {
      assert.equal(r.id, stored[i].id);
      assertClose(r.embedding!, refStored[i].embedding, "store embedding");
      for (const t of r.tags) assert.ok(Math.abs(t.probability - refStored[i].tag_probs![t.index]) <= TOL);
    });

    const table = formatClassifications(fromDb).split("\n");
    assert.match(table[0], /^id\s+categories\s+tags$/);
    assert.equal(table.length, stored.length + 1);
    assert.match(table[1], new RegExp(`^${stored[0].id}\\s+(sports|music|news) 0\\.\\d{3}\\s+`));
    const json = classificationsToJson(fromDb) as { id: string; embedding: number[] }[];
    assert.equal(json[0].id, stored[0].id);
    assert.equal(json[0].embedding.length, 8);

    // Through commander, as the CLI runs it.
    const program = new Command().exitOverride();
    registerInferCommands(program);
    const chunks: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((s: string) => (chunks.push(s), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(["node", "vidrecall", "classify", "--model", A.dir, "--jsonl", jsonl, "--json", "--top", "1"]);
    } finally {
      process.stdout.write = write;
    }
    const printed = JSON.parse(chunks.join("")) as { id: string; categories: { label: string; probability: number }[] }[];
    assert.deepEqual(printed.map((p) => p.id), videos.map((v) => v.id));
    assert.equal(printed[0].categories[0].label, fromJsonl[0].categories[0].label);

    await assert.rejects(runClassify({ model: A.dir, top: 1, tagThreshold: 0.5, maxTags: 1 }), /either --jsonl FILE or --ids/);
    writeFileSync(jsonl, JSON.stringify({ id: "x", rgb: [[1, 2, 3]] }) + "\n" + JSON.stringify({ id: "y", rgb: [[1, 2]] }) + "\n");
    await assert.rejects(runClassify({ model: A.dir, jsonl, top: 1, tagThreshold: 0.5, maxTags: 1 }), /line 2: rgb: dimension 2, expected 3/);
  });
});

describe("helpers", () => {
  it("topScores keeps scores at or above the threshold, most probable first, at most n", () => {
    const probs = Float32Array.from([0.1, 0.7, 0.5, 0.7, 0.2]);
    const labels = ["a", "b", "c", "d", "e"];
    assert.deepEqual(topScores(probs, labels, 10, 0.5).map((s) => s.label), ["b", "d", "c"]);
    assert.deepEqual(topScores(probs, labels, 2, 0).map((s) => s.index), [1, 3]);
    assert.deepEqual(topScores(probs, labels, 0, 0), []);
  });

  it("productFlops counts 2·|out|·K over matrix-product kernels from an ORT profile", () => {
    const node = (op: string, a: number[], out: number[], name = `n_${op}_kernel_time`) => ({
      cat: "Node",
      name,
      args: { op_name: op, input_type_shape: [{ float: a }], output_type_shape: [{ float: out }] },
    });
    const events = [
      node("Gemm", [32, 1024], [32, 512]), // 2·32·512·1024
      node("MatMul", [2, 8, 64], [2, 8, 16]), // 2·(2·8·16)·64
      node("FusedMatMul", [2, 64, 8], [2, 8, 16]), // transposed A: K = 64
      node("Add", [32, 512], [32, 512]),
      node("MatMul", [2, 8, 64], [2, 8, 16], "n_MatMul_fence_before"),
    ];
    const c = productFlops(events);
    assert.equal(c.flops, 2 * 32 * 512 * 1024 + 2 * 256 * 64 + 2 * 256 * 64);
    assert.deepEqual(c.kernels, { Gemm: 1, MatMul: 1, FusedMatMul: 1 });
  });
});
