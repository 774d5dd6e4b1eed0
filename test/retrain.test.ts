import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { reindex } from "../indexer/reindex.js";
import { readCurrent } from "../indexer/versions.js";
import { writeDemoData } from "../src/data/demo.js";
import { importLabelFile } from "../src/data/labelFile.js";
import { VideoStore } from "../src/data/store.js";
import { exportModel } from "../src/export/exportModel.js";
import { InferenceService } from "../src/infer/inferenceService.js";
import { storeEmbedder } from "../src/infer/storeEmbedder.js";
import { parseModelConfig, type ModelConfigInput } from "../src/model/config.js";
import { inferenceContext } from "../src/model/core.js";
import { batchToInputs, disposeInputs, VideoModel } from "../src/model/model.js";
import { applyGate } from "../src/registry/gate.js";
import { ModelRegistry } from "../src/registry/modelRegistry.js";
import { promoteModel, rollbackModel } from "../src/registry/promotion.js";
import { BatchStream } from "../src/train/batches.js";
import { FUSED_CACHE_FILE } from "../src/train/fusedFeatures.js";
import { loadTrainedModel } from "../src/train/modelFiles.js";
import { retrain } from "../src/train/retrain.js";
import { storeLabelSpaces, train } from "../src/train/trainer.js";
import { warmStart } from "../src/train/warmStart.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
let store: VideoStore;
const parentDir = join(dir, "models", "parent");

const tiny: ModelConfigInput = {
  input: { features: { rgb: { frames: 4, dim: 16 }, audio: { frames: 4, dim: 8 } }, modalities: ["rgb", "audio"], useTitle: false },
  encoders: { rgb: { type: "attention", hidden: 16 }, audio: { type: "attention", hidden: 8 } },
  fusion: { type: "concat_se", embeddingDim: 16 },
  training: { batchSize: 32, epochs: 8, learningRate: 1e-2, warmupSteps: 2, earlyStopPatience: 0, seed: 3 },
};

before(async () => {
  await tf.setBackend("cpu");
  store = VideoStore.open(join(dir, "db.sqlite"));
  writeDemoData(store, { videos: 400, seed: 5, frames: 4, rgbDim: 16, audioDim: 8, categories: 4, tagsPerCategory: 3 });
  await train(store, parseModelConfig(tiny), parentDir);
});

/** A label file tagging every video of one category with a new tag, plus a new category on a few videos. */
function newLabelsCsv(): string {
  const lines = ["id,category,tags"];
  const cat0 = store.labels("category")[0].name;
  for (const id of store.videoIds()) {
    const v = store.getVideo(id)!;
    if (v.category?.name === cat0) lines.push(`${id},,fresh tag`);
  }
  const file = join(dir, "labels.csv");
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

test("labels import grows the label spaces and keeps every old index; a bad file changes nothing", async () => {
  const oldTags = store.labels("tags");
  const oldCats = store.labels("category");
  const someId = store.videoIds()[0];
  const tagsBefore = store.getVideo(someId)!.tags.map((t) => t.name);

  const bad = join(dir, "bad.csv");
  writeFileSync(bad, `id,tags\n${someId},brand new\nno-such-video,x\n`);
  await assert.rejects(importLabelFile(store, bad), /bad\.csv line 3: id: unknown video "no-such-video"/, "error names file, line and field");
  assert.equal(store.labelIndex("tags", "brand new"), undefined, "the failed file's new label was rolled back");
  assert.deepEqual(store.getVideo(someId)!.tags.map((t) => t.name), tagsBefore, "the failed file's assignments were rolled back");

  const badJson = join(dir, "bad.jsonl");
  writeFileSync(badJson, `{"id": "${someId}", "tags": ["ok"]}\n{"id": "${someId}", "tags": [""]}\n`);
  await assert.rejects(importLabelFile(store, badJson), /bad\.jsonl line 2: tags\[0\]/, "JSONL error names the field");

  const r = await importLabelFile(store, newLabelsCsv());
  assert.deepEqual(r.newLabels.tags, ["fresh tag"], "one new tag");
  assert.equal(store.labelIndex("tags", "fresh tag"), oldTags.length, "the new tag takes the next index");
  const extra = join(dir, "cat.jsonl");
  const ids = store.videoIds("validate").slice(0, 3);
  writeFileSync(extra, ids.map((id) => JSON.stringify({ id, category: "Brand new category" })).join("\n") + "\n");
  await importLabelFile(store, extra);
  assert.equal(store.labelIndex("category", "Brand new category"), oldCats.length, "the new category takes the next index");
  for (const l of oldTags) assert.equal(store.labelIndex("tags", l.name), l.index, `tag ${l.name} kept its index`);
  for (const l of oldCats) assert.equal(store.labelIndex("category", l.name), l.index, `category ${l.name} kept its index`);
  // Added, not replaced: the video keeps its old tags.
  const tagged = store.videosWithLabel("tags", "fresh tag")[0];
  assert.ok(store.getVideo(tagged)!.tags.length >= 2, "fresh tag was added next to the video's existing tags");
  const spaces = storeLabelSpaces(store);
  const parentLabels = loadTrainedModel(parentDir);
  assert.deepEqual(spaces.tags.slice(0, parentLabels.model.labels.tags.length), parentLabels.model.labels.tags, "old tags are a prefix of the grown space");
  parentLabels.model.dispose();
});

test("warm start reproduces the old model's outputs for the old labels before any fine-tuning", () => {
  const parent = loadTrainedModel(parentDir);
  const grown = new VideoModel(parent.model.config, storeLabelSpaces(store), 2);
  try {
    const growth = warmStart(grown, parent.checkpoint, parent.file);
    assert.deepEqual(growth.newTags, ["fresh tag"], "growth names the new tag");
    assert.deepEqual(growth.newCategories, ["Brand new category"], "growth names the new category");
    const stream = new BatchStream(store, parent.model.config.input, { split: "validate", batchSize: 64, training: false, numTags: 0 });
    const batch = stream.batch(0, 0);
    const inputs = batchToInputs(batch, parent.model);
    try {
      const a = parent.model.forward(inputs, inferenceContext());
      const b = grown.forward(inputs, inferenceContext());
      const T = parent.model.labels.tags.length;
      const C = parent.model.labels.categories.length;
      const pa = tf.sigmoid(a.tagLogits!).arraySync() as number[][];
      const pb = tf.sigmoid(b.tagLogits!).arraySync() as number[][];
      const ca = a.categoryLogits!.arraySync() as number[][];
      const cb = b.categoryLogits!.arraySync() as number[][];
      assert.deepEqual(b.embedding.arraySync(), a.embedding.arraySync(), "embedding unchanged");
      for (let i = 0; i < batch.size; i++) {
        assert.deepEqual(pb[i].slice(0, T), pa[i], `video ${i}: old tag probabilities identical`);
        assert.deepEqual(cb[i].slice(0, C), ca[i], `video ${i}: old category logits identical`);
      }
      const probs = tf.softmax(b.categoryLogits!).arraySync() as number[][];
      for (let i = 0; i < batch.size; i++) assert.ok(probs[i][C] < 0.01, `video ${i}: the untrained new category starts unlikely (${probs[i][C]})`);
      tf.dispose([a, b] as unknown as tf.Tensor[]);
    } finally {
      disposeInputs(inputs);
    }
  } finally {
    grown.dispose();
    parent.model.dispose();
  }
});

let headsId = "";

test("heads retrain learns the new tag on cached fused features, keeps the embedding, registers a candidate with holdout metrics", async () => {
  const stages = new Set<string>();
  const r = await retrain(store, { from: parentDir, mode: "heads", id: "heads-1", gate: { minPositives: 5 }, onProgress: (p) => stages.add(p.stage) });
  headsId = r.id;
  assert.deepEqual([...stages].sort(), ["evaluate", "features", "load", "register", "train"], "every stage reported progress");
  assert.equal(r.embeddingChanged, false, "heads retrain keeps the embedding");
  const n = store.videoIds("train").length + store.videoIds("validate").length;
  assert.deepEqual(r.features, { cached: 0, computed: n }, "features computed once for train + validate videos");
  assert.ok(existsSync(join(parentDir, FUSED_CACHE_FILE)), "fused features cached next to the parent");
  const fresh = r.holdout.new_tags["fresh tag"];
  assert.ok(fresh.positives >= 5, `holdout positives of the new tag: ${fresh.positives}`);
  // Chance AP is the positive rate; the tag is "category 0", which the backbone separates.
  const chance = fresh.positives / r.holdout.videos;
  assert.ok(fresh.ap !== null && fresh.ap > 2 * chance, `new tag AP after: ${fresh.ap}, chance ${chance.toFixed(3)}, parent category accuracy ${r.parentHoldout.old.category_accuracy}`);
  assert.equal(r.parentHoldout.new_tags["fresh tag"].ap, 0, "the parent cannot rank the new tag: AP 0");
  assert.ok(r.holdout.old.gap20! >= r.parentHoldout.old.gap20! - 0.01, `old GAP ${r.parentHoldout.old.gap20} → ${r.holdout.old.gap20}`);
  const registry = new ModelRegistry(store);
  const rec = registry.require(r.id);
  assert.equal(rec.status, "candidate", "registered as a candidate");
  assert.equal(rec.mode, "heads");
  const parent = registry.require(rec.parent!);
  assert.equal(parent.status, "active", "the unregistered parent directory was registered and made active");
  assert.equal(rec.embeddingHash, parent.embeddingHash, "same embedding hash as the parent");
  assert.equal(rec.snapshot.labelSpaces.tags, store.labelSpaceSize("tags"), "snapshot records the label space size");
  assert.ok((rec.metrics as { gate: { checks: string[] } }).gate.checks.length > 0, "gate verdict stored");

  const again = await retrain(store, { from: parentDir, mode: "heads", id: "heads-2", gate: { minPositives: 5 } });
  assert.deepEqual(again.features, { cached: n, computed: 0 }, "second retrain reads every fused vector from the cache");
});

test("the gate rejects a deliberately bad candidate, and promotion refuses it without --force", async () => {
  // Heads fine-tuned at a learning rate 10^5 times too high: the old rows are wrecked.
  const r = await retrain(store, { from: parentDir, mode: "heads", id: "bad", gate: { minPositives: 5 }, heads: { epochs: 2, learningRate: 10 } });
  assert.equal(r.gate.passed, false, `gate passed a wrecked model: ${r.gate.checks.join("; ")}`);
  assert.match(r.gate.reasons.join("\n"), /old-label GAP@20 dropped by/, "reason names the old-label GAP drop");
  const registry = new ModelRegistry(store);
  assert.equal(registry.require("bad").status, "candidate");
  assert.match(registry.require("bad").reason ?? "", /gate: /, "reason recorded in the registry");
  await assert.rejects(promoteModel(store, "bad", { indexDir: join(dir, "index") }), /did not pass the promotion gate/, "promotion refuses");
  assert.notEqual(registry.active()?.id, "bad", "active model unchanged");

  // The gate on its own: tolerance edge and new labels.
  const base = r.parentHoldout;
  const shifted = (d: number) => ({ ...base, old: { ...base.old, gap20: base.old.gap20! - d } });
  assert.equal(applyGate(base, shifted(0.009)).passed, true, "a drop within the tolerance passes");
  assert.equal(applyGate(base, shifted(0.011)).passed, false, "a drop beyond the tolerance fails");
  const weakNew = { ...base, new_tags: { x: { ap: 0.2, positives: 50 }, rare: { ap: 0.0, positives: 2 } } };
  const g = applyGate(base, weakNew);
  assert.equal(g.passed, false, "a new label below the minimum AP fails");
  assert.match(g.reasons[0], /new tag "x" reaches AP 0\.2000/, "reason names the label");
  assert.ok(g.unchecked.some((u) => u.startsWith('tag "rare"')), "a new label with too few positives is unchecked, not failed");
  assert.equal(g.reasons.length, 1, "only the weak label fails");
});

test("promotion reuses the parent's index for a heads model, reindexes for a new embedding; rollback restores model and index", async () => {
  const registry = new ModelRegistry(store);
  const indexDir = join(dir, "index");
  const parent = registry.active()!;
  // The parent serves with an index of its own embeddings.
  const loaded = loadTrainedModel(parent.dir);
  const meta = (await exportModel(loaded, parent.dir)).metadata;
  loaded.model.dispose();
  const service = await InferenceService.create(parent.dir);
  const built = await reindex({ store, embedder: storeEmbedder(service, store), root: indexDir });
  await service.close();
  registry.update(parent.id, { modelHash: meta.onnx.sha256, indexVersion: built.version });
  const v1 = built.version;

  const heads = await promoteModel(store, headsId, { indexDir });
  assert.equal(heads.index, "reused", "heads model: no reindex");
  assert.equal(heads.indexVersion, v1, "heads model uses the parent's index version");
  assert.equal(readCurrent(indexDir), v1);
  assert.equal(registry.active()?.id, headsId, "heads model active");
  assert.equal(registry.require(parent.id).status, "retired", "parent retired");
  assert.ok(existsSync(join(registry.require(headsId).dir, "model.onnx")), "promotion exported the model");

  const full = await retrain(store, { mode: "full", id: "full-1", epochs: 1, gate: { minPositives: 5, tolerance: 1, minNewLabelAp: 0 } });
  assert.equal(full.parent, headsId, "retrain defaults to the active model");
  assert.equal(full.embeddingChanged, true, "full fine-tune changes the embedding");
  const p2 = await promoteModel(store, "full-1", { indexDir, keep: 1 });
  assert.equal(p2.index, "built", "new embedding: reindexed");
  assert.notEqual(p2.indexVersion, v1);
  assert.equal(readCurrent(indexDir), p2.indexVersion, "new version current");
  assert.ok(existsSync(join(indexDir, v1)), "the version a rollback needs survived pruning (keep 1)");

  const rb = rollbackModel(store, { indexDir });
  assert.deepEqual([rb.from, rb.to], ["full-1", headsId], "rolled back to the heads model");
  assert.equal(registry.active()?.id, headsId, "registry restored");
  assert.equal(readCurrent(indexDir), v1, "index version restored");
  assert.equal(rb.indexFlipped, true);
  const rb2 = rollbackModel(store, { indexDir });
  assert.equal(rb2.to, parent.id, "a second rollback goes one further back");
  assert.equal(readCurrent(indexDir), v1, "the parent's index (same version) is current");
  assert.throws(() => rollbackModel(store, { indexDir }), /no previously active model/, "nothing before the first model");
});
