import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { exportJsonl } from "../src/data/export.js";
import { ImportError, importJsonl, importYt8m } from "../src/data/importer.js";
import { VideoStore } from "../src/data/store.js";
import { bytesFeature, encodeExample, floatFeature, int64Feature } from "../src/data/tfexample.js";
import { encodeTfRecord } from "../src/data/tfrecord.js";
import { readYt8mVocabulary } from "../src/data/yt8mVocabulary.js";
import { findRealDataDir, REAL_DATA_MISSING, shardPath } from "./helpers/realData.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir();
let dbCounter = 0;
const freshStore = () => VideoStore.open(join(dir, `db${dbCounter++}.sqlite`));

function line(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ id, title: `clip ${id}`, category: "music", tags: ["live"], rgb: [[0.5, 1], [0.25, -1]], ...extra });
}

test("JSONL: nested arrays and base64 encodings import with their values", () => {
  const store = freshStore();
  const f32 = Buffer.from(Float32Array.from([1.5, -2, 3, 4]).buffer).toString("base64");
  const file = join(dir, "enc.jsonl");
  writeFileSync(
    file,
    [
      line("a"),
      line("b", { rgb: { encoding: "float32", shape: [2, 2], data: f32 }, audio: { encoding: "uint8", shape: [1, 3], data: Buffer.from([0, 128, 255]).toString("base64") } }),
      "",
      line("c", { tags: [], category: null, title: null, split: "test" }),
    ].join("\n"),
  );
  return importJsonl(store, [file]).then((report) => {
    assert.equal(report.videos, 3);
    const b = store.getExample("b");
    assert.deepEqual(Array.from(b.features.rgb.values), [1.5, -2, 3, 4]);
    assert.ok(Math.abs(b.features.audio.values[0] - (4 / 512 - 2)) < 1e-6);
    assert.ok(Math.abs(b.features.audio.values[2] - (255 * 4 / 255 + 4 / 512 - 2)) < 1e-6);
    const c = store.getVideo("c")!;
    assert.equal(c.split, "test");
    assert.equal(c.category, null);
    assert.equal(c.title, null);
    store.close();
  });
});

test("JSONL errors name file, line and field; nothing from the failed file is kept", async () => {
  const cases: [string, RegExp][] = [
    ["{not json", /bad\.jsonl line 2: \(record\): invalid JSON/],
    [line("x", { rgb: [[1, 2], [3]] }), /line 2: rgb\[1\]: frame has 1 values, frame 0 has 2/],
    [line("x", { rgb: [[1, 2, 3]] }), /line 2: rgb: dimension 3, expected 2/],
    [JSON.stringify({ id: "x", rgb: [[1, null]] }), /line 2: rgb/],
    [line("x", { rgb: { encoding: "float64", shape: [1, 2], data: "" } }), /line 2: rgb/],
    [line("x", { rgb: { encoding: "float32", shape: [1, 2], data: "AAAA" } }), /line 2: rgb\.data: 3 bytes do not match shape 1×2 of float32/],
    [line("x", { rgb: { encoding: "float32", shape: [1, 2], data: Buffer.from(Float32Array.from([1, NaN]).buffer).toString("base64") } }), /line 2: rgb\[0\]\[1\]: value is NaN/],
    [line("x", { id: "" }), /line 2: id/],
    [line("x", { colour: "red" }), /line 2: \(record\): Unrecognized key/],
    [line("x", { tags: "live" }), /line 2: tags/],
  ];
  for (const [bad, pattern] of cases) {
    const store = freshStore();
    const file = join(dir, "bad.jsonl");
    writeFileSync(file, [line("ok-1"), bad, line("ok-3")].join("\n"));
    await assert.rejects(importJsonl(store, [file]), (err: Error) => {
      assert.ok(err instanceof ImportError, String(err));
      assert.match(err.message, pattern);
      assert.match(err.message, /nothing from bad\.jsonl was kept/);
      return true;
    });
    assert.equal(store.countVideos(), 0, `after ${bad}`);
    store.close();
  }
});

test("JSONL --skip-invalid keeps the good lines and reports the bad ones", async () => {
  const store = freshStore();
  const file = join(dir, "mixed.jsonl");
  writeFileSync(file, [line("a"), "{oops", line("b", { rgb: [[1, 2, 3]] }), line("c")].join("\n"));
  const report = await importJsonl(store, [file], { skipInvalid: true });
  assert.equal(report.videos, 2);
  assert.equal(report.skipped, 2);
  assert.deepEqual(report.skippedExamples.map((s) => s.location), ["mixed.jsonl line 2", "mixed.jsonl line 3"]);
  assert.deepEqual(store.videoIds().sort(), ["a", "c"]);
  store.close();
});

test("import → export → import round-trips exactly", async () => {
  const first = freshStore();
  const file = join(dir, "round.jsonl");
  writeFileSync(
    file,
    [line("a"), line("b", { rgb: [[0.1234, 7]], audio: { encoding: "uint8", shape: [1, 2], data: Buffer.from([3, 200]).toString("base64") }, tags: ["x", "y"], split: "validate" })].join("\n"),
  );
  await importJsonl(first, [file]);
  const exported = join(dir, "exported.jsonl");
  assert.equal(await exportJsonl(first, exported), 2);
  const second = freshStore();
  await importJsonl(second, [exported]);
  const again = join(dir, "exported-again.jsonl");
  await exportJsonl(second, again);
  assert.equal(readFileSync(again, "utf8"), readFileSync(exported, "utf8"));
  for (const id of ["a", "b"]) {
    const x = first.getExample(id);
    const y = second.getExample(id);
    assert.deepEqual(y.features, x.features);
    assert.equal(second.getVideo(id)?.split, first.getVideo(id)?.split);
    assert.deepEqual(second.getVideo(id)?.tags.map((t) => t.name), first.getVideo(id)?.tags.map((t) => t.name));
  }
  first.close();
  second.close();
});

function videoRecord(id: string, labels: number[]): Uint8Array {
  return encodeExample({
    features: {
      feature: {
        id: bytesFeature(id),
        labels: int64Feature(labels),
        mean_rgb: floatFeature(Array.from({ length: 1024 }, (_, i) => Math.sin(i + id.length))),
        mean_audio: floatFeature(Array.from({ length: 128 }, (_, i) => Math.cos(i))),
      },
    },
  });
}

test("TFRecord CRC failure: the error names the record; nothing from that file is kept; --skip-invalid keeps the rest", async () => {
  const good = join(dir, "good.tfrecord");
  writeFileSync(good, Buffer.concat([encodeTfRecord(videoRecord("g000", [1])), encodeTfRecord(videoRecord("g001", [2]))]));
  const records = [0, 1, 2, 3].map((i) => encodeTfRecord(videoRecord(`b00${i}`, [i])));
  const corruptAt = records[0].length + records[1].length;
  const bytes = Buffer.concat(records);
  bytes[corruptAt + 20] ^= 0xff; // inside record 2's payload
  const bad = join(dir, "bad.tfrecord");
  writeFileSync(bad, bytes);

  const store = freshStore();
  await assert.rejects(importYt8m(store, [good, bad]), /bad\.tfrecord: record 2 at byte \d+: payload CRC32C mismatch.*nothing from bad\.tfrecord was kept/);
  assert.deepEqual(store.videoIds().sort(), ["g000", "g001"], "the earlier, good file stays");
  store.close();

  const skipping = freshStore();
  const report = await importYt8m(skipping, [bad], { skipInvalid: true });
  assert.deepEqual(skipping.videoIds().sort(), ["b000", "b001"]);
  assert.equal(report.skipped, 1);
  assert.match(report.skippedExamples[0].reason, /record 2 .*rest of file skipped/);
  skipping.close();

  const truncated = join(dir, "truncated.tfrecord");
  writeFileSync(truncated, Buffer.concat(records).subarray(0, corruptAt + 30));
  const t = freshStore();
  await assert.rejects(importYt8m(t, [truncated]), /truncated\.tfrecord: record 2 at byte \d+: truncated/);
  assert.equal(t.countVideos(), 0);
  t.close();
});

test("re-importing the same shard updates, never duplicates", async () => {
  const file = join(dir, "twice.tfrecord");
  writeFileSync(file, Buffer.concat([encodeTfRecord(videoRecord("t000", [1, 2])), encodeTfRecord(videoRecord("t001", [3]))]));
  const store = freshStore();
  await importYt8m(store, [file]);
  await importYt8m(store, [file], { split: "test" });
  assert.equal(store.countVideos(), 2);
  assert.equal(store.getVideo("t000")?.split, "test");
  assert.deepEqual(store.getVideo("t000")?.tags.map((x) => x.name), ["yt8m:1", "yt8m:2"]);
  store.close();
});

test("real YouTube-8M shards: categories and tags from the vocabulary", async (t: TestContext) => {
  const data = findRealDataDir();
  if (!data) return t.skip(REAL_DATA_MISSING);
  const store = freshStore();
  const vocabulary = await readYt8mVocabulary(join(data, "vocabulary.csv"));
  const report = await importYt8m(store, [shardPath(data, 0), shardPath(data, 60)], { vocabulary });
  assert.ok(report.videos > 400, `${report.videos} videos`);
  assert.equal(report.skipped, 0);
  const stats = store.stats();
  assert.equal(stats.videos, report.videos);
  assert.equal(stats.tags, 3862);
  assert.equal(stats.categories, 25);
  assert.equal(stats.top_tags[0].name, "Game");
  const [firstId] = store.videoIds();
  const v = store.getVideo(firstId)!;
  const firstLabel = v.tags[0];
  assert.ok(v.category, "every video with labels has a category");
  assert.equal(store.labelIndex("tags", firstLabel.name), firstLabel.index, "tag indices are YouTube-8M indices");
  const ex = store.getExample(firstId);
  assert.equal(ex.features.rgb.dim, 1024);
  assert.equal(ex.features.audio.dim, 128);
  store.close();
});
