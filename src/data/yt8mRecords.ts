/**
 * Decodes YouTube-8M records (one TFRecord payload each) into plain videos.
 *
 * Two layouts exist:
 *  - video-level tf.train.Example: id/video_id (bytes), labels (int64),
 *    mean_rgb (1024 floats), mean_audio (128 floats) → 1-frame matrices;
 *  - frame-level tf.train.SequenceExample: context id/video_id + labels,
 *    feature_lists rgb (1024 uint8 per second) and audio (128 uint8 per
 *    second), dequantised to floats in [-2, 2].
 */
import { basename } from "node:path";
import { firstNonFinite, type FeatureMatrix } from "./featureMatrix.js";
import {
  decodeSequenceExample,
  featureKind,
  int64ToNumber,
  mapGet,
  type Feature,
  type FeatureKind,
  type FeatureList,
  type Features,
  type SequenceExample,
} from "./tfexample.js";
import { readTfRecords, type ReadTfRecordsOptions } from "./tfrecord.js";

export const RGB_DIM = 1024;
export const AUDIO_DIM = 128;

export interface Yt8mVideo {
  id: string;
  labels: number[];
  features: { rgb?: FeatureMatrix; audio?: FeatureMatrix };
  /** Which layout the record used: "video" (mean_* features) or "frame" (per-second lists). */
  level: "video" | "frame";
}

/** Where a record came from, used only to make error messages precise. */
export interface RecordLocation {
  file?: string;
  recordIndex?: number;
  offset?: number;
}

/** A payload that is not a valid YouTube-8M record; `field` names the offending feature. */
export class RecordFormatError extends Error {
  override readonly name = "RecordFormatError";
  readonly file?: string;
  readonly recordIndex?: number;
  readonly offset?: number;
  constructor(
    readonly field: string,
    readonly problem: string,
    where: RecordLocation = {},
  ) {
    super(`${describeLocation(where)}${problem}`);
    this.file = where.file;
    this.recordIndex = where.recordIndex;
    this.offset = where.offset;
  }
}

function describeLocation(where: RecordLocation): string {
  let s = where.file !== undefined ? `${basename(where.file)}: ` : "";
  if (where.recordIndex !== undefined) {
    s += `record ${where.recordIndex}`;
    if (where.offset !== undefined) s += ` at byte ${where.offset}`;
    s += ": ";
  } else if (where.offset !== undefined) {
    s += `record at byte ${where.offset}: `;
  }
  return s;
}

// YouTube-8M quantisation: q * 4/255 + 4/512 - 2, precomputed for all 256 bytes.
const DEQUANT = new Float32Array(256);
for (let q = 0; q < 256; q++) DEQUANT[q] = (q * 4) / 255 + 4 / 512 - 2;

/** Dequantises one YouTube-8M feature byte (0..255) to its float value (as float32). */
export function dequantizeByte(q: number): number {
  return DEQUANT[q];
}

const idDecoder = new TextDecoder("utf-8", { fatal: true });

const ID_FIELDS = ["id", "video_id"] as const;

/**
 * Decodes one YouTube-8M payload. The result owns its data (no views into
 * `payload`), so it stays valid after the TFRecord reader moves on.
 */
export function decodeYt8mRecord(payload: Uint8Array, where: RecordLocation = {}): Yt8mVideo {
  const fail = (field: string, problem: string): RecordFormatError =>
    new RecordFormatError(field, problem, where);

  let msg: SequenceExample;
  try {
    // One decode covers both layouts: Example.features and SequenceExample.context share field 1.
    msg = decodeSequenceExample(payload);
  } catch (e) {
    throw fail("(payload)", `not a tf.train.Example/SequenceExample: ${(e as Error).message}`);
  }
  const ctx = msg.context?.feature;
  const lists = msg.feature_lists?.feature_list;

  const hasMean = mapGet(ctx, "mean_rgb") !== undefined || mapGet(ctx, "mean_audio") !== undefined;
  const hasLists = mapGet(lists, "rgb") !== undefined || mapGet(lists, "audio") !== undefined;
  if (hasMean && hasLists) {
    throw fail("feature_lists", "record has both mean_* features and rgb/audio feature_lists");
  }
  if (!hasMean && !hasLists) {
    throw fail(
      "mean_rgb",
      "no mean_rgb/mean_audio features and no rgb/audio feature_lists: not a YouTube-8M record",
    );
  }

  const id = readId(ctx, fail);
  const labels = readLabels(ctx, fail);
  const features: Yt8mVideo["features"] = {};
  if (hasMean) {
    const rgb = readMean(ctx, "mean_rgb", RGB_DIM, fail);
    const audio = readMean(ctx, "mean_audio", AUDIO_DIM, fail);
    if (rgb) features.rgb = rgb;
    if (audio) features.audio = audio;
    return { id, labels, features, level: "video" };
  }
  const rgb = readFrames(mapGet(lists, "rgb"), "rgb", RGB_DIM, fail);
  const audio = readFrames(mapGet(lists, "audio"), "audio", AUDIO_DIM, fail);
  if (rgb && audio && rgb.frames !== audio.frames) {
    throw fail("audio", `rgb has ${rgb.frames} frames but audio has ${audio.frames}`);
  }
  if (rgb) features.rgb = rgb;
  if (audio) features.audio = audio;
  return { id, labels, features, level: "frame" };
}

type Fail = (field: string, problem: string) => RecordFormatError;

function expectKind(f: Feature, field: string, kind: FeatureKind, fail: Fail): void {
  const actual = featureKind(f);
  if (actual !== kind) {
    throw fail(field, `${field} is ${actual ? `a ${actual}` : "an empty Feature"}, expected a ${kind}`);
  }
}

function readId(ctx: Features["feature"] | undefined, fail: Fail): string {
  for (const field of ID_FIELDS) {
    const f = mapGet(ctx, field);
    if (f === undefined) continue;
    expectKind(f, field, "bytes_list", fail);
    const values = f.bytes_list!.value;
    if (values.length !== 1) throw fail(field, `${field} has ${values.length} values, expected 1`);
    if (values[0].length === 0) throw fail(field, `${field} is empty`);
    try {
      return idDecoder.decode(values[0]);
    } catch {
      throw fail(field, `${field} is not valid UTF-8`);
    }
  }
  throw fail("id", "missing id (no 'id' or 'video_id' feature)");
}

/** Labels are optional (test-partition records have none); present labels must be non-negative. */
function readLabels(ctx: Features["feature"] | undefined, fail: Fail): number[] {
  const f = mapGet(ctx, "labels");
  if (f === undefined) return [];
  expectKind(f, "labels", "int64_list", fail);
  const raw = f.int64_list!.value;
  const labels = new Array<number>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    let n: number;
    try {
      n = int64ToNumber(raw[i]);
    } catch (e) {
      throw fail("labels", `labels[${i}]: ${(e as Error).message}`);
    }
    if (n < 0) throw fail("labels", `labels[${i}] is ${n}, expected a non-negative label index`);
    labels[i] = n;
  }
  return labels;
}

function readMean(
  ctx: Features["feature"] | undefined,
  field: string,
  dim: number,
  fail: Fail,
): FeatureMatrix | undefined {
  const f = mapGet(ctx, field);
  if (f === undefined) return undefined;
  expectKind(f, field, "float_list", fail);
  const raw = f.float_list!.value;
  if (raw.length !== dim) throw fail(field, `${field} has ${raw.length} values, expected ${dim}`);
  const values = new Float32Array(raw);
  const bad = firstNonFinite(values);
  if (bad >= 0) throw fail(field, `${field}[${bad}] is ${values[bad]}`);
  return { frames: 1, dim, values };
}

function readFrames(
  list: FeatureList | undefined,
  field: string,
  dim: number,
  fail: Fail,
): FeatureMatrix | undefined {
  if (list === undefined) return undefined;
  const frames = list.feature.length;
  if (frames === 0) throw fail(field, `feature_list ${field} has no frames`);
  const values = new Float32Array(frames * dim);
  for (let t = 0; t < frames; t++) {
    const f = list.feature[t];
    const where = `${field} frame ${t}`;
    if (featureKind(f) !== "bytes_list") {
      throw fail(field, `${where} is ${featureKind(f) ?? "an empty Feature"}, expected a bytes_list`);
    }
    const vals = f.bytes_list!.value;
    if (vals.length !== 1) throw fail(field, `${where} has ${vals.length} byte strings, expected 1`);
    const q = vals[0];
    if (q.length !== dim) throw fail(field, `${where} has ${q.length} bytes, expected ${dim}`);
    const row = t * dim;
    for (let j = 0; j < dim; j++) values[row + j] = DEQUANT[q[j]];
  }
  return { frames, dim, values };
}

/** A decoded video plus where its record sits in the file. */
export interface Yt8mRecord {
  video: Yt8mVideo;
  index: number;
  offset: number;
}

/**
 * Streams the videos of one YouTube-8M TFRecord shard. Framing errors surface
 * as TfRecordError, content errors as RecordFormatError with file, record
 * index and offset filled in.
 */
export async function* readYt8mVideos(
  file: string,
  options: Omit<ReadTfRecordsOptions, "copyPayloads"> = {},
): AsyncGenerator<Yt8mRecord, void, undefined> {
  // Each payload is decoded into owned data before the next read, so the
  // reader's zero-copy views are safe here.
  for await (const r of readTfRecords(file, { ...options, copyPayloads: false })) {
    const video = decodeYt8mRecord(r.payload, { file, recordIndex: r.index, offset: r.offset });
    yield { video, index: r.index, offset: r.offset };
  }
}
