/**
 * The JSONL interchange format users bring: one video per line.
 *
 *   {"id": "v1", "title": "…", "split": "train", "category": "Sports", "tags": ["a", "b"],
 *    "rgb": [[0.1, …], …],                                      // frames × dim, nested arrays
 *    "audio": {"encoding": "float16", "shape": [32, 128], "data": "<base64>"}}
 *
 * Feature modalities are `rgb`, `audio`, and any others under `features`
 * ({"features": {"depth": …}}). Base64 encodings: `float32` and `float16`
 * (little-endian IEEE) and `uint8` (YouTube-8M quantised: x = q·4/255 + 4/512 − 2).
 */
import { Float16Array } from "@petamoriken/float16";
import { z } from "zod";
import { decodeFeatures, encodeFeatures, type EncodedFeatures, type FeatureEncoding } from "./featureCodec.js";
import { firstNonFinite, type FeatureMatrix } from "./featureMatrix.js";
import { SplitSchema } from "./split.js";
import type { ModalityInput, VideoInput } from "./store.js";

export const MAX_FRAMES = 4096;
export const MAX_DIM = 65536;

const Base64Features = z
  .object({
    encoding: z.enum(["float32", "float16", "uint8"]),
    shape: z.tuple([z.number().int().min(1).max(MAX_FRAMES), z.number().int().min(1).max(MAX_DIM)]),
    data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "not valid base64"),
  })
  .strict();

const NestedFrames = z.array(z.array(z.number()).min(1).max(MAX_DIM)).min(1).max(MAX_FRAMES);

export const FeaturesSchema = z.union([NestedFrames, Base64Features]);
export type FeaturesJson = z.infer<typeof FeaturesSchema>;

const LabelName = z.string().trim().min(1).max(512);

export const VideoJsonSchema = z
  .object({
    // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
    id: z.string().min(1).max(512).regex(/^[^\u0000-\u001f/\\]+$/, "must not contain control characters or slashes"),
    title: z.string().max(4096).nullish(),
    split: SplitSchema.optional(),
    category: LabelName.nullish(),
    tags: z.array(LabelName).max(10_000).optional(),
    rgb: FeaturesSchema.optional(),
    audio: FeaturesSchema.optional(),
    features: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, "modality names are lower-case identifiers"), FeaturesSchema).optional(),
  })
  .strict();
export type VideoJson = z.infer<typeof VideoJsonSchema>;

/** A problem with one field of one record, located for the user. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

function zodPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "") || "(record)";
}

/** Decodes one modality's JSON into a matrix, checking shape and finiteness. */
export function decodeFeaturesJson(json: FeaturesJson, field: string): { matrix: FeatureMatrix; encoding: FeatureEncoding } {
  if (Array.isArray(json)) {
    const frames = json.length;
    const dim = json[0].length;
    const values = new Float32Array(frames * dim);
    for (let t = 0; t < frames; t++) {
      const row = json[t];
      if (row.length !== dim) throw new FieldError(`${field}[${t}]`, `frame has ${row.length} values, frame 0 has ${dim}`);
      values.set(row, t * dim);
    }
    checkFinite(values, dim, field);
    return { matrix: { frames, dim, values }, encoding: "float16" };
  }
  const [frames, dim] = json.shape;
  const bytes = Buffer.from(json.data, "base64");
  const width = json.encoding === "uint8" ? 1 : json.encoding === "float16" ? 2 : 4;
  if (bytes.byteLength !== frames * dim * width) {
    throw new FieldError(`${field}.data`, `${bytes.byteLength} bytes do not match shape ${frames}×${dim} of ${json.encoding} (${frames * dim * width} bytes)`);
  }
  if (json.encoding === "uint8") {
    const encoded: EncodedFeatures = { frames, dim, encoding: "uint8", data: bytes };
    return { matrix: { frames, dim, values: decodeFeatures(encoded) }, encoding: "uint8" };
  }
  const aligned = new Uint8Array(bytes).buffer; // copy: typed views need aligned offsets
  const values = json.encoding === "float32" ? new Float32Array(aligned) : Float32Array.from(new Float16Array(aligned));
  checkFinite(values, dim, field);
  return { matrix: { frames, dim, values }, encoding: "float16" };
}

function checkFinite(values: Float32Array, dim: number, field: string): void {
  const bad = firstNonFinite(values);
  if (bad >= 0) throw new FieldError(`${field}[${Math.floor(bad / dim)}][${bad % dim}]`, `value is ${values[bad]}, features must be finite`);
}

/**
 * Parses and validates one JSONL line. `expectedDims` (modality → dim) is
 * checked and extended: the first record seen fixes each modality's dimension.
 */
export function parseVideoLine(line: string, expectedDims: Map<string, number>): VideoInput {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (err) {
    throw new FieldError("(record)", `invalid JSON: ${(err as Error).message}`);
  }
  const parsed = VideoJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : "";
    throw new FieldError(zodPath(issue.path), issue.message + more);
  }
  const v = parsed.data;
  const modalities: [string, FeaturesJson][] = [];
  if (v.rgb) modalities.push(["rgb", v.rgb]);
  if (v.audio) modalities.push(["audio", v.audio]);
  for (const [name, f] of Object.entries(v.features ?? {})) {
    if (name === "rgb" || name === "audio") {
      if (v[name]) throw new FieldError(`features.${name}`, `given both at top level and under features`);
    }
    modalities.push([name, f]);
  }
  const features: Record<string, ModalityInput & { matrix: FeatureMatrix }> = {};
  for (const [name, json] of modalities) {
    const field = v.features && name in v.features ? `features.${name}` : name;
    const decoded = decodeFeaturesJson(json, field);
    const want = expectedDims.get(name);
    if (want !== undefined && decoded.matrix.dim !== want) {
      throw new FieldError(field, `dimension ${decoded.matrix.dim}, expected ${want} (as earlier ${name} features)`);
    }
    features[name] = decoded;
  }
  // Only commit new dimensions once the whole record is valid.
  for (const [name, m] of Object.entries(features)) expectedDims.set(name, m.matrix.dim);
  return {
    id: v.id,
    title: v.title ?? null,
    split: v.split,
    features,
    category: v.category === undefined ? undefined : v.category,
    tags: v.tags,
  };
}

function featuresToJson(e: EncodedFeatures): FeaturesJson {
  return { encoding: e.encoding, shape: [e.frames, e.dim], data: e.data.toString("base64") };
}

/** One exported line: features in their stored encoding, so re-import is lossless. */
export function videoToJson(
  meta: { id: string; title: string | null; split: string },
  category: string | null,
  tags: string[],
  encoded: Record<string, EncodedFeatures>,
): string {
  const out: Record<string, unknown> = { id: meta.id };
  if (meta.title !== null) out.title = meta.title;
  out.split = meta.split;
  if (category !== null) out.category = category;
  out.tags = tags;
  const extra: Record<string, FeaturesJson> = {};
  for (const [m, e] of Object.entries(encoded)) {
    if (m === "rgb" || m === "audio") out[m] = featuresToJson(e);
    else extra[m] = featuresToJson(e);
  }
  if (Object.keys(extra).length) out.features = extra;
  return JSON.stringify(out);
}

/** Encodes a matrix for the JSONL format directly (used by tools that write JSONL without a store). */
export function matrixToJson(m: FeatureMatrix, encoding: FeatureEncoding | "float32" = "float32"): FeaturesJson {
  if (encoding === "float32") {
    return { encoding, shape: [m.frames, m.dim], data: Buffer.from(m.values.buffer, m.values.byteOffset, m.values.byteLength).toString("base64") };
  }
  return featuresToJson(encodeFeatures(m, encoding));
}

