import Database from "better-sqlite3";
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { migrate, SCHEMA_VERSION } from "../src/data/migrations.js";
import { VideoStore, type VideoInput } from "../src/data/store.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();

function video(id: string, extra: Partial<VideoInput> = {}): VideoInput {
  return {
    id,
    title: `title of ${id}`,
    features: { rgb: { matrix: { frames: 2, dim: 3, values: Float32Array.from([0.5, -1, 2, 0.25, 0, 1]) }, encoding: "float16" } },
    category: "music",
    tags: ["guitar", "live"],
    ...extra,
  };
}

test("a v1 database is migrated on open and keeps its data", () => {
  const path = join(dir, "old.sqlite");
  const db = new Database(path);
  migrate(db, 1);
  db.prepare(`INSERT INTO videos (id, title, split, source, created_at, updated_at) VALUES ('old-1', 'kept', 'train', 'test', 1, 1)`).run();
  db.close();

  const store = VideoStore.open(path);
  assert.equal(store.db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
  assert.equal(store.getVideo("old-1")?.title, "kept");
  assert.equal(store.loadTokenVocabulary(), undefined); // v2 table exists, empty
  store.close();
});

test("a database newer than this build is refused with a clear error", () => {
  const path = join(dir, "new.sqlite");
  const db = new Database(path);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(() => VideoStore.open(path), new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this vidrecall supports`));
});

test("upsert updates in place, never duplicates; labels carry provenance", () => {
  const store = VideoStore.open(join(dir, "upsert.sqlite"));
  store.upsertVideos([video("v1"), video("v2", { category: "sports", tags: ["goal"] })], { source: "t", now: 100 });
  store.upsertVideos([video("v1", { title: "new title", tags: ["live", "piano"] })], { source: "t", now: 200 });
  assert.equal(store.countVideos(), 2);
  const v1 = store.getVideo("v1")!;
  assert.equal(v1.title, "new title");
  assert.equal(v1.createdAt, 100);
  assert.equal(v1.updatedAt, 200);
  assert.deepEqual(v1.tags.map((t) => t.name).sort(), ["live", "piano"]);
  assert.equal(v1.tags[0].provenance, "imported");
  assert.equal(v1.category?.name, "music");
  store.setLabels("v1", "tags", ["guitar"], "manual", 300);
  const again = store.getVideo("v1")!;
  assert.deepEqual(again.tags.map((t) => [t.name, t.provenance, t.assignedAt]), [["guitar", "manual", 300]]);
  assert.throws(() => store.setLabels("nope", "tags", ["x"], "manual"), /unknown video id "nope"/);
  assert.throws(() => store.setLabels("v1", "category", ["a", "b"], "manual"), /single-label/);
  store.close();
});

test("label spaces grow with stable indices", () => {
  const store = VideoStore.open(join(dir, "labels.sqlite"));
  const a = store.ensureLabel("tags", "alpha");
  const b = store.ensureLabel("tags", "beta");
  store.defineLabel("tags", 10, "ten");
  const c = store.ensureLabel("tags", "gamma");
  assert.deepEqual([a, b, c], [0, 1, 11]);
  assert.equal(store.ensureLabel("tags", " alpha "), 0, "names compare trimmed");
  assert.throws(() => store.defineLabel("tags", 3, "alpha"), /already has index 0/);
  assert.equal(store.labelSpaceSize("tags"), 12);
  store.close();
  const reopened = VideoStore.open(join(dir, "labels.sqlite"));
  assert.deepEqual(reopened.labels("tags").map((l) => [l.index, l.name]), [[0, "alpha"], [1, "beta"], [10, "ten"], [11, "gamma"]]);
  assert.equal(reopened.ensureLabel("tags", "delta"), 12);
  reopened.close();
});

test("a failed batch leaves nothing behind", () => {
  const store = VideoStore.open(join(dir, "atomic.sqlite"));
  store.upsertVideos([video("keep")], { source: "t" });
  const bad = video("bad", { features: { rgb: { matrix: { frames: 1, dim: 2, values: Float32Array.from([1, 1e6]) }, encoding: "float16" } } });
  assert.throws(() => store.upsertVideos([video("x1", { tags: ["brand-new-tag"] }), bad], { source: "t" }), /cannot be stored as float16/);
  assert.equal(store.countVideos(), 1);
  assert.equal(store.labelIndex("tags", "brand-new-tag"), undefined);
  store.close();
});

test("examples stream with decoded features, across pages", () => {
  const store = VideoStore.open(join(dir, "iter.sqlite"));
  store.upsertVideos(Array.from({ length: 25 }, (_, i) => video(`v${i}`, { split: i % 5 === 0 ? "validate" : "train" })), { source: "t" });
  const all = [...store.iterateExamples({ pageSize: 7 })];
  assert.equal(all.length, 25);
  assert.deepEqual(Array.from(all[3].features.rgb.values), [0.5, -1, 2, 0.25, 0, 1]);
  assert.equal(all[3].category, store.labelIndex("category", "music"));
  assert.deepEqual(all[3].tags, [store.labelIndex("tags", "guitar"), store.labelIndex("tags", "live")].sort());
  assert.equal([...store.iterateExamples({ split: "validate", pageSize: 2 })].length, 5);
  const stats = store.stats();
  assert.deepEqual(stats.splits, { train: 20, validate: 5, test: 0 });
  assert.equal(stats.top_tags[0].videos, 25);
  store.close();
});
