/**
 * The fused features of a trained model: the vector the heads read (before
 * L2 normalisation), one per video. A `heads` retrain freezes everything
 * below the heads, so these vectors are exactly what the retrained heads see;
 * they are computed once per video (the model's inference forward without its
 * heads) and cached next to the model:
 *
 *   <model dir>/fused_features.bin
 *     "VRFUSED1" | uint32 LE header length | JSON header | padding to 4 | float32 [n, dim]
 *     header: { format, backboneHash, dim, ids, updatedAt }
 *
 * A cached vector is reused only when the backbone hash (the weights and
 * config below the heads) matches and the video's features have not changed
 * since (the store's `updated_at`); the file is rewritten atomically.
 */
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { VideoStore } from "../data/store.js";
import type { TokenVocabulary } from "../data/tokenize.js";
import type { LabelSpaces, ModelConfig } from "../model/config.js";
import { inferenceContext } from "../model/core.js";
import { batchToInputs, disposeInputs, VideoModel } from "../model/model.js";
import { writeAll, writeFileAtomicWith } from "../util/files.js";
import { BatchStream } from "./batches.js";
import type { Checkpoint } from "./checkpoint.js";

export const FUSED_CACHE_FILE = "fused_features.bin";
const MAGIC = "VRFUSED1";

/** Parameters under these scopes are heads; everything else determines the embedding. */
export function isHeadParam(name: string): boolean {
  return name.startsWith("model/head_");
}

/** The parts of a config that determine the fused vector (the heads and training schedule do not). */
function backboneConfig(config: ModelConfig): unknown {
  return { input: config.input, encoders: config.encoders, title: config.input.useTitle ? config.title : null, fusion: config.fusion };
}

/**
 * sha256 over the backbone's config and parameter values (not the heads'):
 * two models with the same backbone hash produce the same embedding for every
 * video, so they can share embeddings and a similarity index.
 */
export function backboneHash(checkpoint: Checkpoint): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(backboneConfig(checkpoint.header.config)));
  h.update(JSON.stringify(checkpoint.header.config.input.useTitle ? checkpoint.header.vocabulary : null));
  const params = checkpoint.tensors.filter((t) => t.kind === "param" && !isHeadParam(t.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const t of params) {
    h.update(`${t.name}:${t.shape.join("x")};`);
    h.update(new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength));
  }
  return h.digest("hex");
}

/**
 * The model without its tag head (a two-class category head stands in, unused):
 * the forward pass up to the fused vector, with the checkpoint's backbone
 * weights. Caller disposes.
 */
export function backboneModel(checkpoint: Checkpoint, vocabulary: TokenVocabulary | undefined, source: string): VideoModel {
  const config = checkpoint.header.config;
  const labels: LabelSpaces = { categories: ["_a", "_b"], tags: [] };
  const model = new VideoModel({ ...config, heads: { ...config.heads, mode: "category" } }, labels, vocabulary?.size ?? 2);
  const byName = new Map(checkpoint.tensors.filter((t) => t.kind === "param").map((t) => [t.name, t]));
  for (const [name, info] of model.params.entries()) {
    if (isHeadParam(name)) continue;
    const t = byName.get(name);
    if (!t) throw new Error(`${source}: no values for parameter ${name}`);
    if (t.shape.join("x") !== info.variable.shape.join("x")) throw new Error(`${source}: parameter ${name} has shape ${t.shape.join("x")}, model expects ${info.variable.shape.join("x")}`);
    tf.tidy(() => info.variable.assign(tf.tensor(t.values, t.shape)));
  }
  return model;
}

export interface FusedFeatures {
  dim: number;
  /** Row of each id in `values`. */
  row: Map<string, number>;
  values: Float32Array;
  /** How many rows came from the cache, how many were computed now. */
  cached: number;
  computed: number;
}

interface CacheHeader {
  format: 1;
  backboneHash: string;
  dim: number;
  ids: string[];
  updatedAt: number[];
}

function readCache(file: string, hash: string): { header: CacheHeader; values: Float32Array } | undefined {
  if (!existsSync(file)) return undefined;
  const buf = readFileSync(file);
  if (buf.length < 12 || buf.toString("latin1", 0, 8) !== MAGIC) return undefined;
  const len = buf.readUInt32LE(8);
  let header: CacheHeader;
  try {
    header = JSON.parse(buf.toString("utf8", 12, 12 + len)) as CacheHeader;
  } catch {
    return undefined;
  }
  if (header.format !== 1 || header.backboneHash !== hash) return undefined;
  const start = 12 + len + ((4 - ((12 + len) % 4)) % 4);
  const n = header.ids.length * header.dim;
  if (buf.length < start + n * 4) return undefined;
  const values = new Float32Array(n);
  new Uint8Array(values.buffer).set(buf.subarray(start, start + n * 4));
  return { header, values };
}

function writeCache(file: string, header: CacheHeader, values: Float32Array): void {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = 12 + json.length;
  const head = Buffer.alloc(prefix + ((4 - (prefix % 4)) % 4));
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(json.length, 8);
  json.copy(head, 12);
  writeFileAtomicWith(file, (fd) => {
    writeAll(fd, head);
    writeAll(fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  });
}

export interface FusedFeatureOptions {
  /** Directory holding the cache file (the model's); undefined: no cache. */
  cacheDir?: string;
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Fused vectors of `ids` from the checkpoint's backbone: cached ones read
 * back, the rest computed (inference mode) and the cache rewritten with all
 * of them.
 */
export async function fusedFeatures(
  store: VideoStore,
  checkpoint: Checkpoint,
  vocabulary: TokenVocabulary | undefined,
  ids: readonly string[],
  source: string,
  options: FusedFeatureOptions = {},
): Promise<FusedFeatures> {
  const hash = backboneHash(checkpoint);
  const cacheFile = options.cacheDir ? join(options.cacheDir, FUSED_CACHE_FILE) : undefined;
  const cache = cacheFile ? readCache(cacheFile, hash) : undefined;
  const updated = store.videoUpdateTimes();
  const cachedRow = new Map<string, number>();
  if (cache) cache.header.ids.forEach((id, i) => cachedRow.set(id, i));

  const config = checkpoint.header.config;
  const model = backboneModel(checkpoint, vocabulary, source);
  try {
    const dim = model.fusion.embeddingDim;
    if (cache && cache.header.dim !== dim) cachedRow.clear();
    const row = new Map<string, number>();
    ids.forEach((id, i) => {
      if (!row.has(id)) row.set(id, i);
    });
    const values = new Float32Array(ids.length * dim);
    const missing: string[] = [];
    let cached = 0;
    for (const [id, r] of row) {
      const c = cachedRow.get(id);
      const u = updated.get(id);
      if (u === undefined) throw new Error(`unknown video id "${id}"`);
      if (c !== undefined && cache!.header.updatedAt[c] === u) {
        values.set(cache!.values.subarray(c * dim, (c + 1) * dim), r * dim);
        cached++;
      } else missing.push(id);
    }
    const batchSize = options.batchSize ?? 512;
    if (missing.length > 0) {
      const stream = new BatchStream(store, config.input, { ids: missing, batchSize, training: false, vocabulary, numTags: 0 });
      let done = 0;
      options.onProgress?.(0, missing.length);
      for (const batch of stream.epoch(0)) {
        const inputs = batchToInputs(batch, model);
        try {
          // Read inside the scope, returned outside it: tf.tidy walks whatever it returns, index by index for a typed array.
          let fused: Float32Array = new Float32Array(0);
          tf.tidy(() => {
            fused = model.forward(inputs, inferenceContext()).fused.dataSync() as Float32Array;
          });
          batch.ids.forEach((id, b) => values.set(fused.subarray(b * dim, (b + 1) * dim), row.get(id)! * dim));
        } finally {
          disposeInputs(inputs);
        }
        done += batch.size;
        options.onProgress?.(done, missing.length);
        await new Promise((r) => setImmediate(r));
      }
    }
    if (cacheFile && missing.length > 0) {
      // Keep cached rows of videos not asked for this time (another split), unless stale.
      const keepIds: string[] = [];
      const keepRows: Float32Array[] = [];
      if (cache) {
        cache.header.ids.forEach((id, c) => {
          if (!row.has(id) && updated.get(id) === cache.header.updatedAt[c] && cache.header.dim === dim) {
            keepIds.push(id);
            keepRows.push(cache.values.subarray(c * dim, (c + 1) * dim));
          }
        });
      }
      const allIds = [...row.keys(), ...keepIds];
      const all = new Float32Array(allIds.length * dim);
      // `row` holds positions in `ids` (which may repeat an id): written compactly in allIds order.
      let i = 0;
      for (const [, r] of row) all.set(values.subarray(r * dim, (r + 1) * dim), i++ * dim);
      for (const v of keepRows) all.set(v, i++ * dim);
      writeCache(cacheFile, { format: 1, backboneHash: hash, dim, ids: allIds, updatedAt: allIds.map((id) => updated.get(id)!) }, all);
    }
    return { dim, row, values, cached, computed: missing.length };
  } finally {
    model.dispose();
  }
}
