/**
 * reindex: store videos → embeddings (through a real exported model served by
 * InferenceService) → index versions. Full builds, reuse of stored
 * embeddings, incremental add/change/delete, resuming after a failed run,
 * refusing a model change, and the CLI's JSON-lines progress protocol.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Embedder } from "../indexer/embedder.js";
import { ModelMismatchError } from "../indexer/build.js";
import { reindex } from "../indexer/reindex.js";
import { SimilarityIndex } from "../indexer/search.js";
import { readCurrent, readIds, readManifest } from "../indexer/versions.js";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { InferenceService } from "../src/infer/inferenceService.js";
import { storeEmbedder } from "../src/infer/storeEmbedder.js";
import type { ModelConfigInput } from "../src/model/config.js";
import { exportRandomModel } from "./helpers/randomModel.js";
import { tempDir } from "./helpers/tmp.js";

const CONFIG: ModelConfigInput = {
  name: "reindex-tiny",
  input: { features: { rgb: { frames: 4, dim: 8 }, audio: { frames: 4, dim: 4 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "segment" },
  encoders: { rgb: { type: "gated_mlp", hidden: 8, gatingReduction: 2 }, audio: { type: "gated_mlp", hidden: 6, gatingReduction: 2 } },
  fusion: { type: "concat_se", embeddingDim: 8, seReduction: 2 },
  heads: { mode: "multi" },
};
const LABELS = { categories: ["a", "b", "c"], tags: ["x", "y", "z", "w"] };
const DEMO = { videos: 60, seed: 3, frames: 4, rgbDim: 8, audioDim: 4, categories: 3, tagsPerCategory: 2 };

const dir = tempDir("vidrecall-reindex-");
let modelA: string;
let modelB: string;
let service: InferenceService;

before(async () => {
  modelA = (await exportRandomModel(join(dir, "model-a"), CONFIG, 1, { labels: LABELS })).dir;
  modelB = (await exportRandomModel(join(dir, "model-b"), CONFIG, 2, { labels: LABELS })).dir;
  service = await InferenceService.create(modelA, { workers: 1, intraOpThreads: 1 });
});

after(async () => {
  await service?.close();
});

function freshStore(name: string): VideoStore {
  const store = VideoStore.open(join(dir, `${name}.sqlite`));
  writeDemoData(store, DEMO);
  return store;
}

/** An embedder that fails on its `failOn`-th call: a crash in the middle of a run. */
function failing(inner: Embedder, failOn: number): Embedder {
  let calls = 0;
  return {
    modelHash: inner.modelHash,
    dim: inner.dim,
    embed(ids) {
      calls++;
      if (calls === failOn) return Promise.reject(new Error("injected failure"));
      return inner.embed(ids);
    },
  };
}

function indexedIds(root: string): string[] {
  return readIds(root, readCurrent(root)!)
    .filter((id): id is string => id !== null)
    .sort();
}

describe("reindex", () => {
  it("embeds every video, stores the embeddings and builds a current version", async () => {
    const store = freshStore("full");
    const root = join(dir, "index-full");
    try {
      const embedder = storeEmbedder(service, store);
      const stages = new Set<string>();
      const r = await reindex({ store, embedder, root, batchSize: 16, onProgress: (p) => stages.add(p.stage) });
      assert.equal(r.mode, "full", "no index yet: a full build");
      assert.equal(r.embedded, 60, "all videos embedded");
      assert.equal(r.reused, 0, "nothing to reuse");
      assert.equal(r.count, 60, "all videos indexed");
      assert.deepEqual([...stages].sort(), ["embed", "flip", "insert", "verify", "write"], "progress reports every stage");
      assert.equal(store.countEmbeddings(embedder.modelHash), 60, "embeddings stored");
      assert.equal(readManifest(root, readCurrent(root)!).modelHash, embedder.modelHash, "the manifest names the model");

      // Stored vectors are the service's, and the index finds each video as its own nearest neighbour.
      const ids = store.videoIds().slice(0, 5);
      const fresh = await embedder.embed(ids);
      const stored = store.getEmbeddings(embedder.modelHash, ids);
      const ix = await SimilarityIndex.open(root);
      ids.forEach((id, i) => {
        assert.deepEqual(Array.from(stored.get(id)!), Array.from(fresh[i]), `stored embedding of ${id}`);
        const [top] = ix.similarToVector(fresh[i], 1);
        assert.equal(top.id, id, `${id} is its own nearest neighbour`);
        assert.ok(top.score > 0.9999, `self score ${top.score}`);
      });

      // A second full build reuses every stored embedding.
      const again = await reindex({ store, embedder, root });
      assert.equal(again.embedded, 0, "second run embeds nothing");
      assert.equal(again.reused, 60, "second run reuses all");
      assert.notEqual(again.version, r.version, "a new version");
    } finally {
      store.close();
    }
  });

  it("incremental: adds new videos, re-embeds changed ones, removes deleted ones", async () => {
    const store = freshStore("incr");
    const root = join(dir, "index-incr");
    try {
      const embedder = storeEmbedder(service, store);
      await reindex({ store, embedder, root });
      const ids = store.videoIds();
      // Delete two, change one (new features), add three.
      store.deleteVideo(ids[0]);
      store.deleteVideo(ids[1]);
      const changed = store.getExample(ids[2]);
      const rgb = changed.features.rgb;
      const newRgb = { frames: rgb.frames, dim: rgb.dim, values: rgb.values.map((v) => -v) };
      store.upsertVideo({ id: ids[2], features: { rgb: { matrix: newRgb, encoding: "float16" } } }, { source: "test" });
      assert.equal(store.getEmbeddings(embedder.modelHash, [ids[2]]).size, 0, "a feature change drops the stored embedding");
      for (const n of [1, 2, 3]) {
        store.upsertVideo({ id: `new-${n}`, features: { rgb: { matrix: { frames: 2, dim: 8, values: Float32Array.from({ length: 16 }, (_, i) => Math.sin(i * n)) }, encoding: "float16" } } }, { source: "test" });
      }

      const r = await reindex({ store, embedder, root, incremental: true });
      assert.equal(r.mode, "incremental", "an incremental update");
      assert.equal(r.embedded, 4, "three new videos and one changed one embedded");
      assert.equal(r.added, 3, "three added");
      assert.equal(r.updated, 1, "one updated in place");
      assert.equal(r.removed, 2, "two removed");
      assert.deepEqual(indexedIds(root), store.videoIds().sort(), "the index holds exactly the store's videos");

      const ix = await SimilarityIndex.open(root);
      const [vec] = await embedder.embed([ids[2]]);
      const [top] = ix.similarToVector(vec, 1);
      assert.equal(top.id, ids[2], "the changed video is found by its new embedding");
      assert.ok(top.score > 0.9999, `changed video self score ${top.score}`);
      assert.throws(() => ix.similar(ids[0], 3), /unknown|not in the index/i, "a deleted video is gone from the index");

      // Nothing changed since: an incremental run embeds nothing and changes nothing.
      const idle = await reindex({ store, embedder, root, incremental: true });
      assert.equal(idle.embedded + idle.added + idle.updated + idle.removed, 0, "an idle incremental run is a no-op");
    } finally {
      store.close();
    }
  });

  it("resumes after a failed run without redoing finished batches; the old version stays current", async () => {
    const store = freshStore("resume");
    const root = join(dir, "index-resume");
    try {
      const embedder = storeEmbedder(service, store);
      await reindex({ store, embedder, root, batchSize: 64 });
      const before = readCurrent(root);
      // New model: everything must be re-embedded; the third batch of 16 fails.
      const serviceB = await InferenceService.create(modelB, { workers: 1, intraOpThreads: 1 });
      try {
        const embedderB = storeEmbedder(serviceB, store);
        await assert.rejects(reindex({ store, embedder: failing(embedderB, 3), root, batchSize: 16 }), /injected failure/, "the failure propagates");
        assert.equal(readCurrent(root), before, "CURRENT still names the old, complete version");
        assert.equal(store.countEmbeddings(embedderB.modelHash), 32, "two finished batches were committed");
        const r = await reindex({ store, embedder: embedderB, root, batchSize: 16 });
        assert.equal(r.embedded, 60 - 32, "the rerun embeds only what is missing");
        assert.equal(r.reused, 32, "and reuses the committed batches");
        assert.equal(readManifest(root, readCurrent(root)!).modelHash, embedderB.modelHash, "the new model's index is current");
        assert.equal(store.countEmbeddings(embedder.modelHash), 60, "model A's embeddings are kept while a version of it is on disk");
      } finally {
        await serviceB.close();
      }
    } finally {
      store.close();
    }
  });

  it("an incremental run with another model refuses before embedding anything", async () => {
    const store = freshStore("mismatch");
    const root = join(dir, "index-mismatch");
    const serviceB = await InferenceService.create(modelB, { workers: 1, intraOpThreads: 1 });
    try {
      await reindex({ store, embedder: storeEmbedder(service, store), root });
      const embedderB = storeEmbedder(serviceB, store);
      await assert.rejects(reindex({ store, embedder: embedderB, root, incremental: true }), ModelMismatchError, "a model change needs a full rebuild");
      assert.equal(store.countEmbeddings(embedderB.modelHash), 0, "nothing was embedded with the refused model");
    } finally {
      await serviceB.close();
      store.close();
    }
  });
});

describe("vidrecall reindex (CLI)", () => {
  // Tests run compiled (dist/test) in CI: the CLI is then dist/src/cli/main.js.
  const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
  const ts = cli.endsWith(".ts") || !existsSync(cli);

  it("--progress jsonl prints progress events and a final result; errors are an error event and exit 1", { skip: ts ? "runs against the compiled CLI (npm test)" : false }, () => {
    const db = join(dir, "cli.sqlite");
    freshStore("cli").close();
    const root = join(dir, "index-cli");
    const r = spawnSync(process.execPath, [cli, "reindex", "--db", db, "--model", modelA, "--index-dir", root, "--progress", "jsonl"], { encoding: "utf8" });
    assert.equal(r.status, 0, `reindex exits 0: ${r.stderr}`);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; stage?: string; count?: number; embedded?: number });
    assert.ok(events.some((e) => e.event === "progress" && e.stage === "embed"), "embed progress reported");
    const last = events[events.length - 1];
    assert.equal(last.event, "result", "the last line is the result");
    assert.equal(last.count, 60, "result carries the count");
    assert.equal(last.embedded, 60, "result carries the embedded count");

    const bad = spawnSync(process.execPath, [cli, "reindex", "--db", db, "--model", join(dir, "nope"), "--index-dir", root, "--progress", "jsonl"], { encoding: "utf8" });
    assert.equal(bad.status, 1, "a missing model exits 1");
    const err = JSON.parse(bad.stdout.trim().split("\n").pop()!) as { event: string; message: string };
    assert.equal(err.event, "error", "an error event");
    assert.match(err.message, /nope/, "the error names the missing model directory");
  });
});
