import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import protobuf from "protobufjs";
import { findRealDataDir, shardPath } from "./helpers/realData.js";
import { encodeTfRecords } from "../src/data/tfrecord.js";
import {
  bytesFeature,
  encodeExample,
  encodeSequenceExample,
  floatFeature,
  int64Feature,
  type Feature,
  type Int64Value,
} from "../src/data/tfexample.js";
import {
  AUDIO_DIM,
  decodeYt8mRecord,
  readYt8mVideos,
  RecordFormatError,
  RGB_DIM,
  type Yt8mVideo,
} from "../src/data/yt8mRecords.js";
import { categoryOf, parseYt8mVocabulary, readYt8mVocabulary, VocabularyError } from "../src/data/yt8mVocabulary.js";
import { assertFeatureMatrix, featureRow } from "../src/data/featureMatrix.js";

/** Float32-representable pseudo-random values in [-2, 2). */
function floats(n: number, seed: number): number[] {
  const out: number[] = [];
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround((s / 2 ** 32) * 4 - 2));
  }
  return out;
}

function videoExample(over: Record<string, Feature | undefined> = {}): Uint8Array {
  const feature: Record<string, Feature> = {
    id: bytesFeature("Ab3z"),
    labels: int64Feature([3, 4, 9]),
    mean_rgb: floatFeature(floats(RGB_DIM, 1)),
    mean_audio: floatFeature(floats(AUDIO_DIM, 2)),
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete feature[k];
    else feature[k] = v;
  }
  return encodeExample({ features: { feature } });
}

function expectFormatError(fn: () => unknown, field: string, message: RegExp): RecordFormatError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof RecordFormatError, `expected RecordFormatError, got ${String(caught)}`);
  assert.equal(caught.field, field);
  assert.match(caught.message, message);
  return caught;
}

test("video-level Example decodes to 1-frame rgb/audio matrices", () => {
  const v = decodeYt8mRecord(videoExample());
  assert.equal(v.id, "Ab3z");
  assert.equal(v.level, "video");
  assert.deepEqual(v.labels, [3, 4, 9]);
  const rgb = v.features.rgb!;
  const audio = v.features.audio!;
  assert.equal(rgb.frames, 1);
  assert.equal(rgb.dim, RGB_DIM);
  assert.ok(rgb.values instanceof Float32Array);
  assert.deepEqual(Array.from(rgb.values), floats(RGB_DIM, 1));
  assert.deepEqual({ frames: audio.frames, dim: audio.dim }, { frames: 1, dim: AUDIO_DIM });
  assert.deepEqual(Array.from(audio.values), floats(AUDIO_DIM, 2));
  assertFeatureMatrix(rgb, "rgb", RGB_DIM);
});

test("video_id is accepted in place of id; labels may be absent", () => {
  const v = decodeYt8mRecord(videoExample({ id: undefined, video_id: bytesFeature("XyZ0"), labels: undefined }));
  assert.equal(v.id, "XyZ0");
  assert.deepEqual(v.labels, []);
});

test("int64 labels arriving as Long are converted; unsafe or negative ones are rejected", () => {
  const Long = protobuf.util.Long as unknown as { fromString(s: string): Int64Value };
  const big = Long.fromString("3000000000"); // beyond int32, still a safe integer
  const v = decodeYt8mRecord(videoExample({ labels: { int64_list: { value: [big, 7] } } }));
  assert.deepEqual(v.labels, [3000000000, 7]);

  const unsafe = Long.fromString("9007199254740993");
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ labels: { int64_list: { value: [1, unsafe] } } }), { recordIndex: 4 }),
    "labels",
    /^record 4: labels\[1\]: int64 value .* is not a safe integer/,
  );
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ labels: int64Feature([2, -1]) })),
    "labels",
    /labels\[1\] is -1, expected a non-negative label index/,
  );
});

test("bad video-level records name the field", () => {
  const e = expectFormatError(
    () => decodeYt8mRecord(videoExample({ mean_rgb: floatFeature(floats(1000, 3)) }), { recordIndex: 12 }),
    "mean_rgb",
    /^record 12: mean_rgb has 1000 values, expected 1024$/,
  );
  assert.equal(e.recordIndex, 12);

  expectFormatError(
    () => decodeYt8mRecord(videoExample({ mean_audio: floatFeature(floats(129, 3)) })),
    "mean_audio",
    /mean_audio has 129 values, expected 128/,
  );
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ id: undefined }), { file: "/x/validate0003.tfrecord", recordIndex: 17, offset: 999 }),
    "id",
    /^validate0003\.tfrecord: record 17 at byte 999: missing id/,
  );
  const withNaN = floats(AUDIO_DIM, 4);
  withNaN[77] = NaN;
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ mean_audio: floatFeature(withNaN) })),
    "mean_audio",
    /mean_audio\[77\] is NaN/,
  );
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ mean_rgb: bytesFeature("oops") })),
    "mean_rgb",
    /mean_rgb is a bytes_list, expected a float_list/,
  );
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ id: bytesFeature("a", "b") })),
    "id",
    /id has 2 values, expected 1/,
  );
  expectFormatError(
    () => decodeYt8mRecord(videoExample({ mean_rgb: undefined, mean_audio: undefined })),
    "mean_rgb",
    /not a YouTube-8M record/,
  );
  expectFormatError(
    () => decodeYt8mRecord(new Uint8Array([0x0a, 0xff, 0xff, 0x01])),
    "(payload)",
    /not a tf\.train\.Example\/SequenceExample/,
  );
});

/** Frame-level record with `frames` seconds; byte q at (t, j) is (t*31 + j*7 + salt) mod 256. */
function frameBytes(frames: number, dim: number, salt: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let t = 0; t < frames; t++) {
    const row = new Uint8Array(dim);
    for (let j = 0; j < dim; j++) row[j] = (t * 31 + j * 7 + salt) % 256;
    out.push(row);
  }
  return out;
}

function sequenceExample(rgb: Uint8Array[] | undefined, audio: Uint8Array[] | undefined, id = "fr4m"): Uint8Array {
  const feature_list: Record<string, { feature: Feature[] }> = {};
  if (rgb) feature_list.rgb = { feature: rgb.map((r) => bytesFeature(r)) };
  if (audio) feature_list.audio = { feature: audio.map((r) => bytesFeature(r)) };
  return encodeSequenceExample({
    context: { feature: { video_id: bytesFeature(id), labels: int64Feature([5, 1]) } },
    feature_lists: { feature_list },
  });
}

test("frame-level SequenceExample is dequantised with q*4/255 + 4/512 - 2", () => {
  const rgbQ = frameBytes(5, RGB_DIM, 0);
  const audioQ = frameBytes(5, AUDIO_DIM, 200);
  rgbQ[0][0] = 0;
  rgbQ[0][1] = 255;
  rgbQ[0][2] = 128;
  const v = decodeYt8mRecord(sequenceExample(rgbQ, audioQ));
  assert.equal(v.level, "frame");
  assert.equal(v.id, "fr4m");
  assert.deepEqual(v.labels, [5, 1]);
  const rgb = v.features.rgb!;
  const audio = v.features.audio!;
  assert.deepEqual({ frames: rgb.frames, dim: rgb.dim }, { frames: 5, dim: RGB_DIM });
  assert.deepEqual({ frames: audio.frames, dim: audio.dim }, { frames: 5, dim: AUDIO_DIM });
  // Hand-checked endpoints of the quantisation range.
  assert.equal(rgb.values[0], -1.9921875); // 0*4/255 + 4/512 - 2
  assert.equal(rgb.values[1], 2.0078125); // 255*4/255 + 4/512 - 2
  assert.ok(Math.abs(rgb.values[2] - (128 * 4 / 255 + 4 / 512 - 2)) < 1e-6);
  for (const [m, q] of [[rgb, rgbQ], [audio, audioQ]] as const) {
    for (let t = 0; t < m.frames; t++) {
      const row = featureRow(m, t);
      for (let j = 0; j < m.dim; j++) {
        const expected = (q[t][j] * 4) / 255 + 4 / 512 - 2;
        assert.ok(Math.abs(row[j] - expected) < 1e-6, `frame ${t} col ${j}: ${row[j]} vs ${expected}`);
      }
    }
  }
});

test("bad frame-level records name the field", () => {
  const rgbQ = frameBytes(3, RGB_DIM, 0);
  rgbQ[1] = rgbQ[1].subarray(0, 1000);
  expectFormatError(
    () => decodeYt8mRecord(sequenceExample(rgbQ, frameBytes(3, AUDIO_DIM, 0)), { recordIndex: 2 }),
    "rgb",
    /^record 2: rgb frame 1 has 1000 bytes, expected 1024$/,
  );
  expectFormatError(
    () => decodeYt8mRecord(sequenceExample(frameBytes(3, RGB_DIM, 0), frameBytes(4, AUDIO_DIM, 0))),
    "audio",
    /rgb has 3 frames but audio has 4/,
  );
  expectFormatError(
    () => decodeYt8mRecord(sequenceExample(frameBytes(3, RGB_DIM, 0), [])),
    "audio",
    /feature_list audio has no frames/,
  );
  expectFormatError(
    () => decodeYt8mRecord(sequenceExample(frameBytes(1, RGB_DIM, 0), frameBytes(1, AUDIO_DIM, 0), "")),
    "video_id",
    /video_id is empty/,
  );
});

test("readYt8mVideos attaches file, record index and offset to content errors", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vidrecall-yt8m-"));
  try {
    const good = videoExample();
    const bad = videoExample({ mean_rgb: floatFeature(floats(1000, 3)) });
    const file = join(dir, "validate0042.tfrecord");
    await writeFile(file, encodeTfRecords([good, good, bad, good]));
    const seen: Yt8mVideo[] = [];
    await assert.rejects(
      async () => {
        for await (const r of readYt8mVideos(file, { chunkBytes: 100 })) seen.push(r.video);
      },
      (e: unknown) => {
        assert.ok(e instanceof RecordFormatError);
        assert.equal(e.field, "mean_rgb");
        assert.equal(e.recordIndex, 2);
        const offset = 2 * (good.length + 16);
        assert.equal(e.offset, offset);
        assert.equal(e.message, `validate0042.tfrecord: record 2 at byte ${offset}: mean_rgb has 1000 values, expected 1024`);
        return true;
      },
    );
    // Decoded videos own their data: earlier ones survive later reads through the shared buffer.
    assert.equal(seen.length, 2);
    for (const v of seen) {
      assert.equal(v.id, "Ab3z");
      assert.deepEqual(Array.from(v.features.rgb!.values), floats(RGB_DIM, 1));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const VOCAB_HEADER = "Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,WikiDescription";

test("vocabulary.csv: quoted commas and newlines, rows out of Index order", () => {
  const csv =
    `${VOCAB_HEADER}\n` +
    `2,900,/m/a,Car,https://w/Car,Autos & Vehicles,,,"A car, or automobile,\nis a ""vehicle""."\n` +
    `0,500,/m/b,Game,https://w/Game,Games,,,Plain\n` +
    `5,100,/m/c,,,(Unknown),,,\n` +
    `1,50,/m/d,"Cooking, home",https://w/C,,Food & Drink,,"multi\nline\ntext"\n`;
  const vocab = parseYt8mVocabulary(csv);
  assert.equal(vocab.size, 4);
  assert.deepEqual([...vocab.keys()].sort((a, b) => a - b), [0, 1, 2, 5]);
  assert.deepEqual(
    { name: vocab.get(2)!.name, v1: vocab.get(2)!.vertical1, n: vocab.get(2)!.trainVideoCount },
    { name: "Car", v1: "Autos & Vehicles", n: 900 },
  );
  assert.equal(vocab.get(1)!.name, "Cooking, home");
  assert.equal(vocab.get(1)!.vertical1, "");
  assert.equal(vocab.get(1)!.vertical2, "Food & Drink");
  assert.equal(vocab.get(5)!.name, "");

  // categoryOf: first label with a non-empty Vertical1 by default.
  assert.equal(categoryOf([1, 2, 0], vocab), "Autos & Vehicles");
  assert.equal(categoryOf([5, 0], vocab), "(Unknown)");
  assert.equal(categoryOf([5, 0], vocab, "firstKnownLabel"), "Games");
  assert.equal(categoryOf([1], vocab), undefined);
  assert.equal(categoryOf([], vocab), undefined);
  assert.equal(categoryOf([1, 5], vocab, "firstKnownLabel"), undefined);
  assert.throws(() => categoryOf([0, 77], vocab), /label 77 is not in the vocabulary/);

  const more = parseYt8mVocabulary(
    `${VOCAB_HEADER}\n0,1,k,A,u,Games,,,\n1,1,k,B,u,Sports,,,\n2,1,k,C,u,Sports,,,\n3,1,k,D,u,Games,,,\n`,
  );
  assert.equal(categoryOf([0, 1, 2], more, "majority"), "Sports");
  assert.equal(categoryOf([0, 1, 2, 3], more, "majority"), "Games"); // tie → earliest vertical
});

test("vocabulary.csv errors name the line", () => {
  const row = (i: number) => `${i},10,/m/x,Name ${i},u,Games,,,"desc,\nsecond line"`;
  // Rows 0 and 1 occupy lines 2–3 and 4–5; the duplicate starts on line 6.
  assert.throws(
    () => parseYt8mVocabulary(`${VOCAB_HEADER}\n${row(0)}\n${row(1)}\n${row(0)}\n`, "vocab.csv"),
    (e: unknown) => {
      assert.ok(e instanceof VocabularyError);
      assert.equal(e.line, 6);
      assert.equal(e.message, "vocab.csv: line 6: duplicate Index 0 (first seen on line 2)");
      return true;
    },
  );
  assert.throws(
    () => parseYt8mVocabulary(`${VOCAB_HEADER}\n${row(0)}\nx1,10,/m/y,N,u,Games,,,d\n`),
    /^VocabularyError: vocabulary\.csv: line 4: Index is "x1", expected a non-negative integer$/,
  );
  assert.throws(
    () => parseYt8mVocabulary(`${VOCAB_HEADER}\n${row(0)}\n1,10,/m/y,N,u,Games,,d\n`),
    /malformed CSV: .*line 4/,
  );
  assert.throws(
    () => parseYt8mVocabulary(`${VOCAB_HEADER}\n0,1,k,"unterminated,u,Games,,,d\n`),
    /malformed CSV: Quote Not Closed/,
  );
  assert.throws(() => parseYt8mVocabulary("Index,Name\n0,x\n"), /line 1: header is "Index,Name", expected "Index,TrainVideoCount,/);
  assert.throws(() => parseYt8mVocabulary(""), /empty file/);
});

const shard = shardPath;

test("real YouTube-8M shard validate0000: ids, dimensions, labels within the vocabulary", async (t: TestContext) => {
  const dir = findRealDataDir();
  if (!dir) {
    t.skip("YouTube-8M shards not found at ../shared/data/yt8m-2018-video-level");
    return;
  }
  const vocab = await readYt8mVocabulary(join(dir, "vocabulary.csv"));
  assert.equal(vocab.size, 3862);
  let count = 0;
  let labelCount = 0;
  const verticals = new Set<string>();
  for await (const { video, index } of readYt8mVideos(shard(dir, 0))) {
    assert.equal(index, count);
    assert.equal(video.level, "video");
    assert.match(video.id, /^.{4}$/su, `record ${index}: id ${JSON.stringify(video.id)}`);
    assert.equal(video.features.rgb?.dim, RGB_DIM, `record ${index}`);
    assert.equal(video.features.rgb?.frames, 1);
    assert.equal(video.features.audio?.dim, AUDIO_DIM, `record ${index}`);
    assert.equal(video.features.audio?.frames, 1);
    assert.ok(video.labels.length > 0, `record ${index}: no labels`);
    for (const l of video.labels) assert.ok(vocab.has(l), `record ${index}: label ${l} not in vocabulary`);
    labelCount += video.labels.length;
    const cat = categoryOf(video.labels, vocab);
    assert.ok(cat !== undefined && cat !== "", `record ${index}: no category`);
    verticals.add(cat);
    count++;
  }
  assert.ok(count > 0);
  t.diagnostic(`validate0000: ${count} videos, ${(labelCount / count).toFixed(2)} labels/video, ${verticals.size} categories`);
});

test("real YouTube-8M shards: all 80 hold 23,091 videos (17,499 train + 5,592 validation)", async (t: TestContext) => {
  const dir = findRealDataDir();
  if (!dir) {
    t.skip("YouTube-8M shards not found at ../shared/data/yt8m-2018-video-level");
    return;
  }
  const ids = new Set<string>();
  let train = 0;
  let validation = 0;
  const t0 = performance.now();
  for (let i = 0; i < 80; i++) {
    for await (const { video } of readYt8mVideos(shard(dir, i))) {
      ids.add(video.id);
      if (i < 60) train++;
      else validation++;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(train, 17499);
  assert.equal(validation, 5592);
  assert.equal(train + validation, 23091);
  assert.equal(ids.size, 23091, "video ids are unique across shards");
  t.diagnostic(
    `read+decode of 80 shards: ${train + validation} videos in ${seconds.toFixed(2)} s ` +
      `(${Math.round((train + validation) / seconds)} records/s)`,
  );
});
