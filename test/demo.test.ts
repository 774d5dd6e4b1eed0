import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();

function generate(name: string, videos: number, seed: number): VideoStore {
  const store = VideoStore.open(join(dir, `${name}.sqlite`));
  writeDemoData(store, { videos, seed, frames: 8, rgbDim: 16, audioDim: 8 });
  return store;
}

test("demo data is deterministic for a seed, and video i does not depend on N", () => {
  const a = generate("a", 60, 5);
  const b = generate("b", 60, 5);
  const c = generate("c", 30, 5);
  const d = generate("d", 60, 6);
  for (const id of a.videoIds()) {
    assert.deepEqual(b.getExample(id), a.getExample(id));
    assert.deepEqual(b.getVideo(id)?.tags.map((t) => t.name), a.getVideo(id)?.tags.map((t) => t.name));
  }
  for (const id of c.videoIds()) assert.deepEqual(c.getExample(id).features, a.getExample(id).features);
  const first = a.videoIds()[0];
  assert.notDeepEqual(d.getExample(first).features.rgb.values, a.getExample(first).features.rgb.values);
  for (const s of [a, b, c, d]) s.close();
});

test("demo data has every modality, some missing, labels with a long tail", () => {
  const store = generate("shape", 400, 1);
  let noAudio = 0;
  let noTitle = 0;
  for (const ex of store.iterateExamples()) {
    assert.equal(ex.features.rgb.frames, 8);
    assert.equal(ex.features.rgb.dim, 16);
    if (!ex.features.audio) noAudio++;
    if (!ex.title) noTitle++;
    assert.ok(ex.category !== null);
    assert.ok(ex.tags.length >= 1 && ex.tags.length <= 6);
  }
  assert.ok(noAudio > 10 && noAudio < 80, `${noAudio} videos without audio`);
  assert.ok(noTitle > 5 && noTitle < 70, `${noTitle} videos without a title`);
  const stats = store.stats(60);
  assert.equal(stats.categories, 10);
  const counts = stats.top_tags.map((t) => t.videos);
  assert.ok(counts[0] > 5 * counts[counts.length - 1], `tag frequencies ${counts.join(",")}`);
  assert.ok(store.loadTokenVocabulary()!.size > 50, "title vocabulary built");
  store.close();
});
