/**
 * The batch pipeline: InputConfig, makeBatch shapes/masks/titles/labels,
 * segment and pad frame sampling, label mapping by name, and BatchStream's
 * deterministic order, resumption and coverage — on a small temp store.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, after, describe, test } from "node:test";
import { VideoStore, type VideoInput } from "../src/data/store.js";
import { PAD_ID, UNK_ID, type TokenVocabulary } from "../src/data/tokenize.js";
import { BatchStream, InputConfig, labelMapping, makeBatch, type Batch } from "../src/train/batches.js";
import { epochOrder, frameIndices, frameUniforms, segmentBounds } from "../src/train/sampling.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
const D_RGB = 4;
const D_AUDIO = 2;
const AUDIO_BASE = 500;

/** rgb row f is [4f, 4f+1, ...], audio row f is [500+2f, 500+2f+1]: exact in float16, so a batch row names its source frame. */
function features(rgbFrames: number, audioFrames: number | null): VideoInput["features"] {
  const out: VideoInput["features"] = {
    rgb: { matrix: { frames: rgbFrames, dim: D_RGB, values: Float32Array.from({ length: rgbFrames * D_RGB }, (_, i) => i) }, encoding: "float16" },
  };
  if (audioFrames !== null) {
    out.audio = {
      matrix: { frames: audioFrames, dim: D_AUDIO, values: Float32Array.from({ length: audioFrames * D_AUDIO }, (_, i) => AUDIO_BASE + i) },
      encoding: "float16",
    };
  }
  return out;
}

interface Spec {
  id: string;
  rgb: number;
  audio: number | null;
  title: string | null;
  category: string | null;
  tags: string[];
  split?: "train" | "validate";
}

const SPECS: Spec[] = [
  { id: "t0", rgb: 12, audio: 12, title: "Cat video, funny!", category: "pets", tags: ["funny", "cats"] },
  { id: "t1", rgb: 3, audio: null, title: null, category: "music", tags: ["live"] },
  { id: "t2", rgb: 5, audio: 5, title: "今天天气很好", category: null, tags: [] },
  { id: "t3", rgb: 1, audio: 1, title: "!!! ???", category: "pets", tags: ["cats"] },
  { id: "t4", rgb: 20, audio: 20, title: "cat cat funny", category: "music", tags: ["funny", "live"] },
  ...Array.from({ length: 9 }, (_, i): Spec => ({
    id: `t${5 + i}`,
    rgb: 6 + 3 * i,
    audio: i % 3 === 0 ? null : 6 + 3 * i,
    title: i % 4 === 0 ? null : `clip number ${i}`,
    category: ["pets", "music", null][i % 3],
    tags: i % 2 ? ["cats"] : ["live", "funny"],
  })),
  // Validation videos: a title with tokens the train vocabulary lacks, a label only they use.
  { id: "v0", rgb: 9, audio: 9, title: "Zebra cat 猫咪 xylophone", category: "sports", tags: ["cats", "zebras"], split: "validate" },
  { id: "v1", rgb: 2, audio: null, title: "funny", category: "pets", tags: [], split: "validate" },
  { id: "v2", rgb: 7, audio: 3, title: null, category: null, tags: ["live"], split: "validate" },
];
const spec = (id: string): Spec => SPECS.find((s) => s.id === id)!;

const config = InputConfig.parse({
  features: { rgb: { frames: 5, dim: D_RGB }, audio: { frames: 4, dim: D_AUDIO } },
  modalities: ["rgb", "audio"],
  sampling: "segment",
  titleMaxTokens: 3,
});

let store: VideoStore;
let vocabulary: TokenVocabulary;
let numTags: number;

before(() => {
  store = VideoStore.open(join(dir, "store.sqlite"));
  store.upsertVideos(
    SPECS.map((s) => ({ id: s.id, title: s.title, split: s.split ?? "train", features: features(s.rgb, s.audio), category: s.category, tags: s.tags })),
    { source: "test", now: 1 },
  );
  vocabulary = store.buildTokenVocabulary(1);
  numTags = store.labelSpaceSize("tags");
});
after(() => store.close());

/** Source frame of each real step of video b in a modality (decoded from the values), checking padding is zero. */
function pickedFrames(batch: Batch, modality: "rgb" | "audio", b: number): number[] {
  const m = batch.modalities[modality];
  const base = modality === "rgb" ? 0 : AUDIO_BASE;
  const out: number[] = [];
  for (let t = 0; t < m.steps; t++) {
    const row = m.values.subarray((b * m.steps + t) * m.dim, (b * m.steps + t + 1) * m.dim);
    if (m.mask[b * m.steps + t] === 1) {
      const f = (row[0] - base) / m.dim;
      assert.ok(Number.isInteger(f), `${modality} step ${t} holds ${row[0]}, not a frame's first value`);
      row.forEach((v, d) => assert.equal(v, base + f * m.dim + d, `${modality} step ${t} column ${d}`));
      out.push(f);
    } else {
      assert.ok(
        row.every((v) => v === 0),
        `${modality} padded step ${t} of row ${b} is not zero`,
      );
    }
  }
  return out;
}

function assertPrefixMask(mask: Float32Array, b: number, steps: number, n: number, what: string): void {
  const row = Array.from(mask.subarray(b * steps, (b + 1) * steps));
  assert.deepEqual(row, Array.from({ length: steps }, (_, t) => (t < n ? 1 : 0)), what);
}

describe("InputConfig", () => {
  test("defaults", () => {
    const c = InputConfig.parse({});
    assert.deepEqual(c.modalities, ["rgb", "audio"]);
    assert.deepEqual(c.features.rgb, { frames: 300, dim: 1024 });
    assert.equal(c.titleMaxTokens, 30);
    assert.equal(c.useTitle, true);
    assert.equal(c.sampling, "segment");
  });

  test("extensible by name; a used modality needs its shape; some input is required", () => {
    const c = InputConfig.parse({ features: { flow: { frames: 8, dim: 16 } }, modalities: ["flow"], useTitle: false });
    assert.deepEqual(c.features.flow, { frames: 8, dim: 16 });
    assert.throws(() => InputConfig.parse({ features: { rgb: { frames: 8, dim: 16 } }, modalities: ["rgb", "audio"] }), /audio.{0,4} is used but has no/);
    assert.throws(() => InputConfig.parse({ modalities: ["rgb", "rgb"] }), /listed twice/);
    assert.throws(() => InputConfig.parse({ modalities: [], useTitle: false }), /no inputs/);
    assert.throws(() => InputConfig.parse({ features: { rgb: { frames: 0, dim: 4 } }, modalities: ["rgb"] }));
  });
});

describe("frame sampling", () => {
  test("segment: one frame inside each segment in training, the centre in evaluation; short videos keep all frames", () => {
    for (const [n, T] of [
      [12, 5],
      [5, 4],
      [300, 32],
      [33, 32],
      [7, 7],
    ]) {
      const centre = frameIndices(n, T, "segment");
      assert.equal(centre.length, Math.min(n, T));
      for (let k = 0; k < T; k++) {
        const { start, end } = segmentBounds(n, T, k);
        assert.ok(end > start, `segment ${k} of ${n}/${T} empty`);
        assert.equal(centre[k], start + Math.floor((end - start) / 2), `centre of segment ${k} (${n}/${T})`);
      }
      for (let epoch = 0; epoch < 20; epoch++) {
        const picked = frameIndices(n, T, "segment", frameUniforms(7, epoch, "x", T));
        for (let k = 0; k < T; k++) {
          const { start, end } = segmentBounds(n, T, k);
          assert.ok(picked[k] >= start && picked[k] < end, `frame ${picked[k]} outside segment [${start}, ${end})`);
        }
      }
    }
    assert.deepEqual(Array.from(frameIndices(3, 5, "segment", [0.9, 0.9, 0.9, 0.9, 0.9])), [0, 1, 2]);
    assert.deepEqual(Array.from(frameIndices(12, 5, "pad")), [0, 1, 2, 3, 4]);
    assert.deepEqual(Array.from(frameIndices(3, 5, "pad")), [0, 1, 2]);
    assert.deepEqual(Array.from(frameIndices(10, 2, "segment", [0, 0.9999])), [0, 9]);
  });

  test("uniforms are a pure function of (seed, epoch, id)", () => {
    assert.deepEqual(frameUniforms(1, 2, "a", 8), frameUniforms(1, 2, "a", 8));
    assert.deepEqual(frameUniforms(1, 2, "a", 8).subarray(0, 3), frameUniforms(1, 2, "a", 3));
    assert.notDeepEqual(frameUniforms(1, 2, "a", 8), frameUniforms(1, 3, "a", 8));
    assert.notDeepEqual(frameUniforms(1, 2, "a", 8), frameUniforms(2, 2, "a", 8));
    assert.notDeepEqual(frameUniforms(1, 2, "a", 8), frameUniforms(1, 2, "b", 8));
    const ids = Array.from({ length: 50 }, (_, i) => `id${i}`);
    assert.deepEqual(epochOrder(ids, 3, 1), epochOrder(ids, 3, 1));
    assert.notDeepEqual(epochOrder(ids, 3, 1), epochOrder(ids, 3, 2));
    assert.deepEqual(epochOrder(ids, 3, 1).slice().sort(), ids.slice().sort());
  });
});

describe("makeBatch", () => {
  test("shapes, prefix masks, missing modalities, titles and labels", () => {
    const ids = ["t0", "t1", "t2", "t3", "t4"];
    const batch = makeBatch(store.getExamples(ids), config, { training: false, vocabulary, numTags });
    const B = ids.length;
    assert.equal(batch.size, B);
    assert.deepEqual(batch.ids, ids);
    assert.deepEqual(Object.keys(batch.modalities), ["rgb", "audio"]);
    const rgb = batch.modalities.rgb;
    const audio = batch.modalities.audio;
    assert.equal(rgb.values.length, B * 5 * D_RGB);
    assert.equal(rgb.mask.length, B * 5);
    assert.equal(audio.values.length, B * 4 * D_AUDIO);
    assert.equal(audio.mask.length, B * 4);
    assert.equal(rgb.present.length, B);
    assert.equal(batch.titleIds.length, B * 3);
    assert.equal(batch.titleMask.length, B * 3);
    assert.equal(batch.titlePresent.length, B);
    assert.equal(batch.category.length, B);
    assert.equal(batch.tags.length, B * numTags);
    assert.ok(batch.titleIds instanceof Int32Array && batch.category instanceof Int32Array && batch.tags instanceof Float32Array);

    ids.forEach((id, b) => {
      const s = spec(id);
      assertPrefixMask(rgb.mask, b, 5, Math.min(s.rgb, 5), `${id} rgb mask`);
      assertPrefixMask(audio.mask, b, 4, s.audio === null ? 0 : Math.min(s.audio, 4), `${id} audio mask`);
      assert.equal(rgb.present[b], 1);
      assert.equal(audio.present[b], s.audio === null ? 0 : 1, `${id} audio present`);
      pickedFrames(batch, "rgb", b);
      pickedFrames(batch, "audio", b);
    });
    // Short videos keep their frames in order; absent audio is all zero (checked by pickedFrames).
    assert.deepEqual(pickedFrames(batch, "rgb", 1), [0, 1, 2]);
    assert.deepEqual(pickedFrames(batch, "audio", 1), []);
    assert.deepEqual(pickedFrames(batch, "rgb", 3), [0]);
    assert.deepEqual(pickedFrames(batch, "rgb", 2), [0, 1, 2, 3, 4]);
    // Evaluation: centre frames of 12/5 segments [0,2) [2,4) [4,7) [7,9) [9,12) and 12/4 [0,3) [3,6) [6,9) [9,12).
    assert.deepEqual(pickedFrames(batch, "rgb", 0), [1, 3, 5, 8, 10]);
    assert.deepEqual(pickedFrames(batch, "audio", 0), [1, 4, 7, 10]);

    // Titles: encoded, truncated to 3, padded; no title / no word tokens → not present.
    const titleRow = (b: number) => Array.from(batch.titleIds.subarray(b * 3, b * 3 + 3));
    assert.deepEqual(titleRow(0), vocabulary.encode("Cat video, funny!", 3));
    assert.deepEqual(titleRow(1), [PAD_ID, PAD_ID, PAD_ID]);
    const zh = vocabulary.encode("今天天气很好");
    assert.ok(zh.length >= 2 && zh.every((t) => t !== UNK_ID), `Chinese title tokens ${zh}`);
    assert.deepEqual(titleRow(2), [...zh, PAD_ID, PAD_ID, PAD_ID].slice(0, 3));
    assert.deepEqual(titleRow(3), [PAD_ID, PAD_ID, PAD_ID]);
    assert.deepEqual(Array.from(batch.titlePresent), [1, 0, 1, 0, 1]);
    assertPrefixMask(batch.titleMask, 2, 3, Math.min(zh.length, 3), "Chinese title mask");
    assertPrefixMask(batch.titleMask, 3, 3, 0, "punctuation-only title mask");

    // Labels: store indices, -1 for no category, multi-hot tags.
    const cat = (name: string) => store.labelIndex("category", name)!;
    const tag = (name: string) => store.labelIndex("tags", name)!;
    assert.deepEqual(Array.from(batch.category), [cat("pets"), cat("music"), -1, cat("pets"), cat("music")]);
    assert.deepEqual(Array.from(batch.categoryUnmapped), [0, 0, 0, 0, 0]);
    ids.forEach((id, b) => {
      const hot = Array.from(batch.tags.subarray(b * numTags, (b + 1) * numTags));
      const expected = new Array(numTags).fill(0);
      for (const t of spec(id).tags) expected[tag(t)] = 1;
      assert.deepEqual(hot, expected, `${id} tags`);
    });
  });

  test("unknown title tokens map to UNK", () => {
    const [ex] = store.getExamples(["v0"]);
    const batch = makeBatch([ex], { ...config, titleMaxTokens: 6 }, { training: false, vocabulary, numTags });
    const ids = Array.from(batch.titleIds);
    // "zebra cat 猫咪 xylophone": cat is known from training titles, the rest are not.
    assert.deepEqual(ids.slice(0, 4), [UNK_ID, vocabulary.idOf("cat"), UNK_ID, UNK_ID]);
    assert.notEqual(vocabulary.idOf("cat"), UNK_ID);
    assert.deepEqual(ids.slice(4), [PAD_ID, PAD_ID]);
    assert.equal(batch.titlePresent[0], 1);
  });

  test("pad sampling truncates to the first T frames", () => {
    const padConfig = InputConfig.parse({ ...config, sampling: "pad" });
    const batch = makeBatch(store.getExamples(["t0", "t1", "t4"]), padConfig, { training: true, seed: 3, vocabulary, numTags });
    assert.deepEqual(pickedFrames(batch, "rgb", 0), [0, 1, 2, 3, 4]);
    assert.deepEqual(pickedFrames(batch, "audio", 0), [0, 1, 2, 3]);
    assert.deepEqual(pickedFrames(batch, "rgb", 1), [0, 1, 2]);
    assert.deepEqual(pickedFrames(batch, "rgb", 2), [0, 1, 2, 3, 4]);
  });

  test("training picks one frame per segment; rgb and audio share the draw; it varies with the epoch", () => {
    const aligned = InputConfig.parse({ ...config, features: { rgb: { frames: 5, dim: D_RGB }, audio: { frames: 5, dim: D_AUDIO } } });
    const seen = new Set<string>();
    for (let epoch = 0; epoch < 12; epoch++) {
      const batch = makeBatch(store.getExamples(["t4", "t0"]), aligned, { training: true, seed: 11, epoch, vocabulary, numTags });
      const rgb = pickedFrames(batch, "rgb", 0);
      assert.equal(rgb.length, 5);
      rgb.forEach((f, k) => {
        const { start, end } = segmentBounds(20, 5, k);
        assert.ok(f >= start && f < end, `epoch ${epoch}: frame ${f} outside segment ${k} [${start}, ${end})`);
      });
      assert.deepEqual(pickedFrames(batch, "audio", 0), rgb, "aligned modalities sample the same frames");
      seen.add(rgb.join(","));
    }
    assert.ok(seen.size > 3, `training frames barely vary across epochs: ${[...seen].join(" | ")}`);
    // No title vocabulary needed when titles are unused; title arrays stay PAD.
    const noTitle = InputConfig.parse({ ...config, useTitle: false });
    const b = makeBatch(store.getExamples(["t0"]), noTitle, { training: true, numTags });
    assert.deepEqual(Array.from(b.titleIds), [PAD_ID, PAD_ID, PAD_ID]);
    assert.deepEqual(Array.from(b.titlePresent), [0]);
    assert.throws(() => makeBatch(store.getExamples(["t0"]), config, { training: true, numTags }), /needs a token vocabulary/);
  });

  test("a feature dim that does not match the config names the video, modality and both dims", () => {
    const wrong = InputConfig.parse({ ...config, features: { ...config.features, audio: { frames: 4, dim: 3 } } });
    assert.throws(
      () => makeBatch(store.getExamples(["t1", "t2"]), wrong, { training: false, vocabulary, numTags }),
      (err: Error) => /video "t2"/.test(err.message) && /modality "audio"/.test(err.message) && /dim 2\b/.test(err.message) && /dim 3\b/.test(err.message),
    );
  });
});

describe("label mapping by name", () => {
  test("labelMapping: store index → model index, unknown → -1", () => {
    const map = labelMapping(["b", "a", "c"], [
      { index: 0, name: "a" },
      { index: 2, name: "zzz" },
      { index: 3, name: " c " },
    ]);
    assert.deepEqual(Array.from(map), [1, -1, -1, 2]);
    assert.throws(() => labelMapping(["a", "a"], []), /"a" appears twice/);
  });

  test("a separately imported store is evaluated in the model's label space; unknown labels are misses", () => {
    // The "model" was trained on this store: its label lists are the store's names by index.
    const modelCategories = store.labels("category").filter((l) => l.name !== "sports");
    const modelTags = store.labels("tags").filter((l) => l.name !== "zebras");
    const categoryNames = modelCategories.map((l) => l.name).reverse();
    const tagNames = modelTags.map((l) => l.name).reverse();
    // Another database, labels created in another order, plus labels the model lacks.
    const other = VideoStore.open(join(dir, "other.sqlite"));
    other.upsertVideos(
      [
        { id: "o0", title: "cat", split: "test", features: features(8, 8), category: "sports", tags: ["zebras", "cats", "funny"] },
        { id: "o1", title: "funny", split: "test", features: features(2, null), category: "pets", tags: ["live", "unicorns"] },
        { id: "o2", title: null, split: "test", features: features(4, 4), category: null, tags: [] },
      ],
      { source: "other" },
    );
    const categoryMap = labelMapping(categoryNames, other.labels("category"));
    const tagMap = labelMapping(tagNames, other.labels("tags"));
    const stream = new BatchStream(other, config, {
      split: "test",
      batchSize: 8,
      training: false,
      vocabulary,
      numTags: tagNames.length,
      numCategories: categoryNames.length,
      categoryMap,
      tagMap,
    });
    const [batch] = [...stream.epoch(0)];
    assert.deepEqual(batch.ids, ["o0", "o1", "o2"]);
    assert.deepEqual(Array.from(batch.category), [-1, categoryNames.indexOf("pets"), -1]);
    assert.deepEqual(Array.from(batch.categoryUnmapped), [1, 0, 0]);
    const hot = (b: number) =>
      Array.from(batch.tags.subarray(b * tagNames.length, (b + 1) * tagNames.length))
        .map((v, i) => (v ? tagNames[i] : null))
        .filter((x) => x !== null)
        .sort();
    assert.deepEqual(hot(0), ["cats", "funny"]);
    assert.deepEqual(hot(1), ["live"]);
    assert.deepEqual(hot(2), []);
    assert.deepEqual(Array.from(batch.tagsUnmapped), [1, 1, 0]);
    other.close();
  });

  test("without a map, store indices past the model's label count are unknown, not errors", () => {
    // Indices follow first use: tags funny 0, cats 1, …; categories pets 0, music 1, sports 2.
    assert.equal(store.labelIndex("tags", "funny"), 0);
    assert.equal(store.labelIndex("tags", "cats"), 1);
    assert.equal(store.labelIndex("category", "sports"), 2);
    const batch = makeBatch(store.getExamples(["t0", "v0"]), config, { training: false, vocabulary, numTags: 1, numCategories: 2 });
    assert.deepEqual(Array.from(batch.tags), [1, 0]); // t0 keeps funny; v0's cats and zebras are outside the model
    assert.deepEqual(Array.from(batch.tagsUnmapped), [1, 2]);
    assert.deepEqual(Array.from(batch.category), [0, -1]); // v0's sports (2) is past numCategories
    assert.deepEqual(Array.from(batch.categoryUnmapped), [0, 1]);
    assert.throws(() => makeBatch(store.getExamples(["t0"]), config, { training: false, vocabulary, numTags: 2, tagMap: Int32Array.from([5, 5, 5]) }), /outside 0\.\.1/);
  });
});

describe("BatchStream", () => {
  const trainIds = () => store.videoIds("train");
  const stream = (options: Partial<ConstructorParameters<typeof BatchStream>[2]> = {}) =>
    new BatchStream(store, config, { split: "train", batchSize: 4, training: true, seed: 5, ...options });

  test("batches per epoch, dropLast, and every id exactly once per epoch", () => {
    const n = trainIds().length; // 14
    assert.equal(n, 14);
    const s = stream();
    assert.equal(s.batchesPerEpoch, 4);
    assert.equal(s.videoCount, 14);
    for (const e of [0, 1, 2]) {
      const batches = [...s.epoch(e)];
      assert.deepEqual(
        batches.map((b) => b.size),
        [4, 4, 4, 2],
      );
      const ids = batches.flatMap((b) => b.ids);
      assert.equal(new Set(ids).size, n);
      assert.deepEqual(ids.slice().sort(), trainIds().sort());
    }
    const dropped = stream({ dropLast: true });
    assert.equal(dropped.batchesPerEpoch, 3);
    assert.deepEqual(
      [...dropped.epoch(0)].map((b) => b.size),
      [4, 4, 4],
    );
    assert.equal(stream({ batchSize: 7, dropLast: true }).batchesPerEpoch, 2);
    assert.throws(() => stream({ batchSize: 0 }), /batchSize/);
  });

  test("the same (seed, epoch) gives the same order and frames; another epoch or seed another order", () => {
    const a = [...stream().epoch(3)];
    const b = [...stream().epoch(3)];
    assert.deepEqual(a, b);
    const order = (batches: Batch[]) => batches.flatMap((x) => x.ids);
    assert.notDeepEqual(order(a), order([...stream().epoch(4)]));
    assert.notDeepEqual(order(a), order([...stream({ seed: 6 }).epoch(3)]));
    assert.notDeepEqual(order(a), trainIds());
  });

  test("a video's frames depend on (seed, epoch, id) only, not on its batch or position", () => {
    const framesById = (s: BatchStream, epoch: number) => {
      const out = new Map<string, string>();
      for (const batch of s.epoch(epoch)) batch.ids.forEach((id, b) => out.set(id, `${pickedFrames(batch, "rgb", b)}|${pickedFrames(batch, "audio", b)}`));
      return out;
    };
    const by4 = framesById(stream(), 2);
    const by3 = framesById(stream({ batchSize: 3 }), 2);
    const subset = new BatchStream(store, config, { ids: ["t4", "t0"], batchSize: 1, training: true, shuffle: false, seed: 5 });
    const single = framesById(subset, 2);
    assert.deepEqual(by4, by3);
    assert.equal(single.get("t4"), by4.get("t4"));
    assert.equal(single.get("t0"), by4.get("t0"));
    assert.notEqual(framesById(stream(), 3).get("t4"), by4.get("t4"));
  });

  test("resuming with skipBatches reproduces the rest of the epoch exactly", () => {
    const full = [...stream().epoch(7)];
    for (const skip of [0, 1, 3, 4]) {
      assert.deepEqual([...stream().epoch(7, { skipBatches: skip })], full.slice(skip), `skip ${skip}`);
    }
    assert.deepEqual(stream().batch(7, 2), full[2]);
    assert.throws(() => stream().batch(7, 4), /outside 0\.\.3/);
    assert.throws(() => [...stream().epoch(7, { skipBatches: -1 })], /skipBatches/);
  });

  test("evaluation is unshuffled and uses centre frames, whatever the epoch", () => {
    const s = new BatchStream(store, config, { split: "validate", batchSize: 2, training: false, seed: 9 });
    const e0 = [...s.epoch(0)];
    assert.deepEqual(e0, [...s.epoch(5)]);
    assert.deepEqual(
      e0.flatMap((b) => b.ids),
      store.videoIds("validate"),
    );
    // v0: 9 rgb frames in 5 segments [0,1) [1,3) [3,5) [5,7) [7,9); v2: 3 audio frames < T keep all.
    assert.deepEqual(pickedFrames(e0[0], "rgb", 0), [0, 2, 4, 6, 8]);
    assert.deepEqual(pickedFrames(e0[1], "audio", 0), [0, 1, 2]);
    assert.equal(e0[0].modalities.audio.present[1], 0);
  });

  test("titles need a vocabulary; the store's is the default", () => {
    const empty = VideoStore.open(join(dir, "novocab.sqlite"));
    empty.upsertVideos([{ id: "x", title: "hello", split: "train", features: features(3, 3) }], { source: "t" });
    assert.throws(() => new BatchStream(empty, config, { split: "train", batchSize: 2, training: true }), /no title vocabulary/);
    const s = new BatchStream(empty, InputConfig.parse({ ...config, useTitle: false }), { split: "train", batchSize: 2, training: true });
    assert.equal([...s.epoch(0)][0].numTags, 0);
    empty.close();
    const withStoreVocab = [...stream().epoch(0)];
    assert.deepEqual(withStoreVocab, [...stream({ vocabulary }).epoch(0)]);
  });
});
