/**
 * bench ann's YouTube-8M part: label-precision@k on a hand-made index, and the
 * whole measurement on two real shards with a (random) exported model, its
 * raw-feature number checked against exact brute-force search done here.
 */
import { after, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildIndex } from "../indexer/build.js";
import { SimilarityIndex } from "../indexer/search.js";
import { benchAnnYt8m, labelPrecisionAtK } from "../src/bench/annYt8m.js";
import { importYt8m } from "../src/data/importer.js";
import { VideoStore } from "../src/data/store.js";
import { readYt8mVocabulary } from "../src/data/yt8mVocabulary.js";
import type { ModelConfigInput } from "../src/model/config.js";
import { exportRandomModel } from "./helpers/randomModel.js";
import { findRealDataDir, REAL_DATA_MISSING, shardPath } from "./helpers/realData.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("vidrecall-ann-yt8m-");

describe("labelPrecisionAtK", () => {
  it("counts neighbours sharing at least one tag, over k", async () => {
    // Two tight groups on the unit circle: a0..a2 near (1,0), b0..b2 near (0,1).
    const at = (deg: number) => Float32Array.from([Math.cos((deg * Math.PI) / 180), Math.sin((deg * Math.PI) / 180)]);
    const vectors: [string, number][] = [
      ["a0", 0],
      ["a1", 2],
      ["a2", 4],
      ["b0", 90],
      ["b1", 92],
      ["b2", 94],
    ];
    const root = join(dir, "tiny");
    await buildIndex(
      vectors.map(([id, deg]) => ({ id, vector: at(deg) })),
      { root, modelHash: "test", dim: 2 },
    );
    const ix = await SimilarityIndex.open(root);
    const tags = new Map<string, Set<number>>([
      ["a0", new Set([1, 2])],
      ["a1", new Set([2])],
      ["a2", new Set([3])],
      ["b0", new Set([1])],
      ["b1", new Set([4])],
      ["b2", new Set([4, 5])],
    ]);
    // k = 2: a0's neighbours a1 (shares 2), a2 (no) → 1/2; b1's neighbours b0/b2: b2 shares 4 → 1/2.
    assert.equal(labelPrecisionAtK(ix, ["a0"], tags, 2), 0.5, "a0 at k=2");
    assert.equal(labelPrecisionAtK(ix, ["b1"], tags, 2), 0.5, "b1 at k=2");
    // a1: a0 (shares 2) and a2 (no) → 1/2; b2: b1 (shares 4), b0 (no) → 1/2; mean 0.5.
    assert.equal(labelPrecisionAtK(ix, ["a1", "b2"], tags, 2), 0.5, "mean over queries");
    // k = 6 asks for more than the 5 other videos: the empty slot is a miss. a0: a1 ✓, a2 ✗, b0 ✓ (tag 1), b1 ✗, b2 ✗ → 2/6.
    assert.equal(labelPrecisionAtK(ix, ["a0"], tags, 6), 2 / 6, "k larger than the index");
    assert.throws(() => labelPrecisionAtK(ix, [], tags, 2), /at least one query/, "no queries");
    assert.throws(() => labelPrecisionAtK(ix, ["zz"], tags, 2), /zz has no tags/, "a query without tags");
  });
});

describe("benchAnnYt8m on real shards", () => {
  const stores: VideoStore[] = [];
  after(() => stores.forEach((s) => s.close()));

  it("reports model and raw label-precision@10; raw matches exact brute-force search", async (t: TestContext) => {
    const data = findRealDataDir();
    if (!data) return t.skip(REAL_DATA_MISSING);
    const db = join(dir, "yt8m.sqlite");
    const store = VideoStore.open(db);
    stores.push(store);
    const vocabulary = await readYt8mVocabulary(join(data, "vocabulary.csv"));
    await importYt8m(store, [shardPath(data, 0)], { vocabulary, split: "train" });
    await importYt8m(store, [shardPath(data, 60)], { vocabulary, split: "test" });
    const labels = { categories: store.labels("category").map((l) => l.name), tags: store.labels("tags").map((l) => l.name) };
    const config: ModelConfigInput = {
      name: "ann-yt8m-random",
      input: { features: { rgb: { frames: 1, dim: 1024 }, audio: { frames: 1, dim: 128 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "pad" },
      encoders: { rgb: { type: "gated_mlp", hidden: 16, gatingReduction: 4 }, audio: { type: "gated_mlp", hidden: 8, gatingReduction: 4 } },
      fusion: { type: "concat_se", embeddingDim: 16, seReduction: 4 },
      heads: { mode: "multi" },
    };
    const model = await exportRandomModel(join(dir, "model"), config, 5, { labels });
    model.model.dispose();

    const r = await benchAnnYt8m({ db, model: model.dir, queries: 100, seed: 3 });
    const testIds = store.videoIds("test");
    assert.equal(r.videos, store.countVideos(), "index over every imported video");
    assert.equal(r.queries, Math.min(100, testIds.length), "queries from the test split");
    assert.equal(r.dims.raw, 1024 + 128, "raw = mean_rgb ⧺ mean_audio");
    assert.equal(r.dims.model, 16, "the model's embedding dim");
    for (const key of ["label_precision_at_10_model", "label_precision_at_10_raw"] as const) {
      assert.ok(r[key] >= 0 && r[key] <= 1, `${key} = ${r[key]} in [0, 1]`);
    }

    // Exact raw label-precision@10 over the same videos, for every labelled test video.
    const all = [...store.iterateExamples()];
    const vec = new Map<string, Float32Array>();
    const tags = new Map<string, Set<number>>();
    for (const ex of all) {
      const v = Float32Array.from([...ex.features.rgb.values, ...ex.features.audio.values]);
      const norm = Math.hypot(...v);
      vec.set(ex.id, v.map((x) => x / norm));
      tags.set(ex.id, new Set(ex.tags));
    }
    const exact = {
      similar(id: string, k: number) {
        const q = vec.get(id)!;
        return all
          .filter((ex) => ex.id !== id)
          .map((ex) => ({ id: ex.id, score: vec.get(ex.id)!.reduce((s, x, i) => s + x * q[i], 0) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, k);
      },
    };
    const labelled = testIds.filter((id) => tags.get(id)!.size > 0);
    const exactAll = labelPrecisionAtK(exact, labelled, tags, 10);
    // The bench samples 100 queries and searches HNSW: allow sampling + ANN slack.
    assert.ok(Math.abs(r.label_precision_at_10_raw - exactAll) < 0.08, `raw ${r.label_precision_at_10_raw} vs exact over all test videos ${exactAll}`);
    assert.ok(exactAll > 0.2, `real features carry label signal (exact raw precision ${exactAll})`);
  });
});
