/** VideoStore.getExamples: many examples in a few queries, in the requested order. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { VideoStore, type VideoInput } from "../src/data/store.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();

function video(i: number): VideoInput {
  const frames = 1 + (i % 4);
  const rgb = Float32Array.from({ length: frames * 3 }, (_, k) => i + k);
  const v: VideoInput = {
    id: `vid-${i}`,
    title: i % 3 === 0 ? null : `title ${i}`,
    split: i % 5 === 0 ? "validate" : "train",
    features: { rgb: { matrix: { frames, dim: 3, values: rgb }, encoding: "float16" } },
  };
  if (i % 2 === 0) v.features.audio = { matrix: { frames, dim: 2, values: new Float32Array(frames * 2).fill(i % 7) }, encoding: "uint8" };
  if (i % 4 !== 1) v.category = `cat-${i % 3}`;
  if (i % 3 !== 2) v.tags = [`tag-${i % 5}`, `tag-${(i + 2) % 5}`];
  return v;
}

function openStore(name: string, n: number): VideoStore {
  const store = VideoStore.open(join(dir, name));
  store.upsertVideos(Array.from({ length: n }, (_, i) => video(i)), { source: "test", now: 1 });
  return store;
}

test("getExamples returns the same examples as getExample, in the requested order", () => {
  const store = openStore("order.sqlite", 40);
  const ids = ["vid-17", "vid-3", "vid-0", "vid-39", "vid-22", "vid-5", "vid-1"];
  const got = store.getExamples(ids);
  assert.deepEqual(
    got.map((e) => e.id),
    ids,
  );
  got.forEach((ex, i) => assert.deepEqual(ex, store.getExample(ids[i]), `example ${ids[i]}`));
  // Missing audio, missing labels and null titles come back as getExample has them.
  assert.equal(got[2].features.audio?.frames, 1);
  assert.equal(got[1].features.audio, undefined);
  assert.equal(got[1].title, null);
  assert.equal(got[0].category, null); // 17 % 4 === 1
  assert.deepEqual(got[5].tags, []); // 5 % 3 === 2
  store.close();
});

test("getExamples: empty list, repeated ids, unknown id", () => {
  const store = openStore("edge.sqlite", 6);
  assert.deepEqual(store.getExamples([]), []);
  const rep = store.getExamples(["vid-2", "vid-4", "vid-2"]);
  assert.deepEqual(
    rep.map((e) => e.id),
    ["vid-2", "vid-4", "vid-2"],
  );
  assert.deepEqual(rep[0], store.getExample("vid-2"));
  assert.throws(() => store.getExamples(["vid-1", "nope", "vid-2"]), /unknown video id "nope"/);
  // Ids with quotes and non-ASCII characters travel through the JSON array intact.
  store.upsertVideos([{ ...video(100), id: `it's "odd" 视频` }], { source: "test" });
  assert.equal(store.getExamples([`it's "odd" 视频`])[0].title, "title 100");
  store.close();
});

test("getExamples reads a long id list (one JSON parameter, not one bound parameter per id)", () => {
  const store = openStore("many.sqlite", 1200);
  const ids = store.videoIds().reverse();
  const got = store.getExamples(ids);
  assert.equal(got.length, 1200);
  assert.deepEqual(
    got.map((e) => e.id),
    ids,
  );
  for (const i of [0, 1, 599, 1199]) assert.deepEqual(got[i], store.getExample(ids[i]));
  // The same set as iterateExamples, example for example.
  const streamed = new Map([...store.iterateExamples({ pageSize: 100 })].map((e) => [e.id, e]));
  for (const ex of got) assert.deepEqual(ex, streamed.get(ex.id));
  store.close();
});

test("getExamples works on a read-only store", () => {
  openStore("ro.sqlite", 5).close();
  const ro = VideoStore.open(join(dir, "ro.sqlite"), { readonly: true });
  assert.deepEqual(
    ro.getExamples(["vid-4", "vid-0"]).map((e) => e.features.rgb.frames),
    [1, 1],
  );
  ro.close();
});
