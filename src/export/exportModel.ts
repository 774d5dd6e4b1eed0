/**
 * ONNX export of a trained VideoModel for onnxruntime serving: the graph is
 * the model's inference forward (dropout off, batch norms folded, masks as in
 * tfjs), block by block through the exporters in ./registry.ts, written as
 * model.onnx next to a model.json that carries what a server needs besides
 * the graph (labels, vocabulary, config, I/O contract, content hash).
 *
 * I/O contract (B, T_m, L symbolic; everything float32 except title_ids):
 *   per modality m:  m [B, T_m, D_m], m_mask [B, T_m], m_present [B]
 *   with titles:     title_ids int64 [B, L], title_mask [B, L], title_present [B]
 *   outputs:         category_probs [B, C] (softmax; category head only),
 *                    tag_probs [B, N] (sigmoid; tag head only),
 *                    embedding [B, E] (L2-normalised fused vector)
 */
import { createHash } from "node:crypto";
import { mkdirSync } from "node:fs";
import { writeFileAtomic } from "../util/files.js";
import { join, relative, resolve } from "node:path";
import type { LabelSpaces, ModelConfig } from "../model/config.js";
import { TITLE_INPUT, type VideoModel } from "../model/model.js";
import { ONNX_IR_VERSION, ONNX_OPSET } from "../train/accel/onnxSchema.js";
import { backboneHash } from "../train/fusedFeatures.js";
import type { LoadedModel } from "../train/modelFiles.js";
import { exportEmbedding } from "./blocks/embedding.js";
import { exportCategoryHead, exportL2Normalize, exportL2NormalizeFrames, exportTagHead } from "./blocks/heads.js";
import { exportTitleEncoder } from "./blocks/text.js";
import { OnnxGraph, type Dim } from "./graph.js";
import { FUSION_EXPORTERS, VIDEO_ENCODER_EXPORTERS, exporterFor, type ExportEnv } from "./registry.js";
import type { ParityReport } from "./verify.js";

export const ONNX_FILE = "model.onnx";
export const METADATA_FILE = "model.json";
export const METADATA_FORMAT = "vidrecall-onnx/1";
const PRODUCER_VERSION = "0.1.0";

export const BATCH_DIM = "batch";
export const TITLE_DIM = "title_tokens";

export interface TensorSpec {
  name: string;
  dtype: "float32" | "int64";
  /** Numbers are fixed; strings name symbolic (dynamic) dims. */
  shape: Dim[];
  description: string;
}

export interface IoContract {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The exported model's inputs and outputs, derived from the config and label spaces. */
export function ioContract(config: ModelConfig, labels: LabelSpaces, embeddingDim: number): IoContract {
  const inputs: TensorSpec[] = [];
  for (const m of config.input.modalities) {
    const T = `${m}_frames`;
    const D = config.input.features[m].dim;
    inputs.push(
      { name: m, dtype: "float32", shape: [BATCH_DIM, T, D], description: `${m} features per step; padded steps may hold anything (they are masked out)` },
      { name: `${m}_mask`, dtype: "float32", shape: [BATCH_DIM, T], description: "1 = real step, 0 = padding" },
      { name: `${m}_present`, dtype: "float32", shape: [BATCH_DIM], description: `1 = the video has ${m}, 0 = missing (send an all-zero mask too)` },
    );
  }
  if (config.input.useTitle) {
    inputs.push(
      {
        name: "title_ids",
        dtype: "int64",
        shape: [BATCH_DIM, TITLE_DIM],
        description: `token ids in [0, vocabulary size): 0 = padding, 1 = unknown word; training always padded to ${config.input.titleMaxTokens} tokens`,
      },
      { name: "title_mask", dtype: "float32", shape: [BATCH_DIM, TITLE_DIM], description: "1 = real token, 0 = padding" },
      { name: "title_present", dtype: "float32", shape: [BATCH_DIM], description: "1 = the title has at least one token" },
    );
  }
  const outputs: TensorSpec[] = [];
  if (config.heads.mode !== "tags") {
    outputs.push({ name: "category_probs", dtype: "float32", shape: [BATCH_DIM, labels.categories.length], description: "softmax over labels.categories" });
  }
  if (config.heads.mode !== "category") {
    outputs.push({ name: "tag_probs", dtype: "float32", shape: [BATCH_DIM, labels.tags.length], description: "independent sigmoid per labels.tags entry" });
  }
  outputs.push({ name: "embedding", dtype: "float32", shape: [BATCH_DIM, embeddingDim], description: "L2-normalised fused vector (cosine = dot product)" });
  return { inputs, outputs };
}

export interface OnnxBuild {
  bytes: Uint8Array;
  contract: IoContract;
  nodes: number;
}

/** The serialised ONNX model of `model`'s inference forward pass. */
export function buildOnnxModel(model: VideoModel): OnnxBuild {
  const config = model.config;
  const contract = ioContract(config, model.labels, model.fusion.embeddingDim);
  const g = OnnxGraph.create(`vidrecall_${config.name}`.replace(/[^A-Za-z0-9_]+/g, "_"));
  g.reserve(contract.outputs.map((o) => o.name));
  for (const i of contract.inputs) g.input(i.name, i.dtype, i.shape);
  const env: ExportEnv = { params: model.params };

  const vectors: string[] = [];
  const present: string[] = [];
  for (const m of config.input.modalities) {
    const encoder = model.encoders.get(m);
    if (!encoder) throw new Error(`ONNX export: the model has no encoder for modality "${m}"`);
    const type = String(config.encoders[m].type);
    const exporter = exporterFor(VIDEO_ENCODER_EXPORTERS, "video encoder", type, `encoders.${m}`);
    // input.normalize "l2": each frame over its norm, as model.ts l2NormalizeFrames (the encoders zero padded frames after).
    const x = config.input.normalize === "l2" ? exportL2NormalizeFrames(g.scope(`normalize_${m}`), m) : m;
    vectors.push(exporter(g.scope(`encoder_${m}`), encoder, x, `${m}_mask`, env));
    g.describe(vectors[vectors.length - 1], "float32", [BATCH_DIM, encoder.outputDim]);
    present.push(g.unsqueeze(`${m}_present`, [1]));
  }
  if (config.input.useTitle) {
    if (!model.embedding || !model.titleEncoder) throw new Error("ONNX export: config.input.useTitle but the model has no title embedding/encoder");
    const e = exportEmbedding(g.scope("title_embedding"), model.embedding, "title_ids");
    g.describe(e, "float32", [BATCH_DIM, TITLE_DIM, model.embedding.dim]);
    vectors.push(exportTitleEncoder(g.scope(`encoder_${TITLE_INPUT}`), model.titleEncoder, config.title.encoder, e, "title_mask", env));
    g.describe(vectors[vectors.length - 1], "float32", [BATCH_DIM, model.titleEncoder.outputDim]);
    present.push(g.unsqueeze("title_present", [1]));
  }
  const fusionExporter = exporterFor(FUSION_EXPORTERS, "fusion", String(config.fusion.type), "fusion");
  const fused = fusionExporter(g.scope("fusion"), model.fusion, vectors, present, env);
  g.describe(fused, "float32", [BATCH_DIM, model.fusion.embeddingDim]);

  const produced: Record<string, string> = { embedding: exportL2Normalize(g.scope("embedding"), fused) };
  if (model.categoryHead) produced.category_probs = exportCategoryHead(g.scope("head_category"), model.categoryHead, fused);
  if (model.tagHead) produced.tag_probs = exportTagHead(g.scope("head_tags"), model.tagHead, fused);
  for (const o of contract.outputs) {
    const value = produced[o.name];
    if (!value) throw new Error(`ONNX export: output ${o.name} is in the contract but the model has no block for it`);
    g.output(value, o.name, o.dtype, o.shape);
  }
  const bytes = g.toModel({
    producerVersion: PRODUCER_VERSION,
    docString: `vidrecall ${config.name}: inference graph (see ${METADATA_FILE})`,
    metadata: { format: METADATA_FORMAT },
  });
  return { bytes, contract, nodes: g.nodeCount };
}

export interface ExportMetadata {
  format: typeof METADATA_FORMAT;
  onnx: { file: string; sha256: string; bytes: number; opset: number; irVersion: number };
  /**
   * Identity of the embedding output: sha256 of the weights and config below
   * the heads. Two exports with the same value embed every video identically
   * (a heads retrain keeps it), so they share stored embeddings and indexes.
   */
  embedding: { sha256: string };
  source: { checkpoint: string; createdAt: string; step: number; metrics?: Record<string, number> };
  config: ModelConfig;
  labels: LabelSpaces;
  /** Title token vocabulary in id order (null without titles). */
  vocabulary: string[] | null;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  notes: string[];
}

export interface ExportResult {
  dir: string;
  onnxPath: string;
  metadataPath: string;
  metadata: ExportMetadata;
  build: OnnxBuild;
  /** Set when ExportOptions.verify asked for the parity check. */
  parity?: ParityReport;
}


/** The metadata for an export of `loaded` whose model.onnx has `bytes`. */
export function exportMetadata(loaded: LoadedModel, build: OnnxBuild, outDir: string): ExportMetadata {
  const h = loaded.checkpoint.header;
  return {
    format: METADATA_FORMAT,
    onnx: {
      file: ONNX_FILE,
      sha256: createHash("sha256").update(build.bytes).digest("hex"),
      bytes: build.bytes.length,
      opset: ONNX_OPSET,
      irVersion: ONNX_IR_VERSION,
    },
    embedding: { sha256: backboneHash(loaded.checkpoint) },
    source: {
      // Relative to this file's directory, so a model directory can move as a whole.
      checkpoint: relative(resolve(outDir), resolve(loaded.file)),
      createdAt: h.createdAt,
      step: h.position.step,
      ...(h.metrics ? { metrics: h.metrics } : {}),
    },
    config: loaded.model.config,
    labels: loaded.model.labels,
    vocabulary: loaded.vocabulary ? [...loaded.vocabulary.tokens] : null,
    inputs: build.contract.inputs,
    outputs: build.contract.outputs,
    notes: [
      "Inference semantics: dropout off, batch norms folded with their moving statistics, no modality dropout.",
      "B, frame counts and title length are dynamic; the title branch accepts any length but was trained at input.titleMaxTokens.",
      "A missing modality: present 0 and an all-zero mask (its values are ignored).",
      `Verify ${ONNX_FILE} against onnx.sha256 before serving: the two files are replaced one after the other.`,
    ],
  };
}

export interface ExportOptions {
  /**
   * Before writing anything, run random inputs (padding, missing modalities,
   * unknown tokens, an empty title) through tfjs and the ONNX graph and refuse
   * to write if any output's relative error exceeds `tolerance` (default 1e-4).
   */
  verify?: { batch?: number; seed?: number; tolerance?: number };
}

export const DEFAULT_TOLERANCE = 1e-4;

/**
 * Writes `outDir`/model.onnx and `outDir`/model.json, each via temp file +
 * rename, model.onnx first: model.json only names a hash once its file is in
 * place.
 */
export async function exportModel(loaded: LoadedModel, outDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const build = buildOnnxModel(loaded.model);
  let parity: ParityReport | undefined;
  if (options.verify) {
    const { checkParity, randomFeeds } = await import("./verify.js");
    const { batch = 3, seed = 1, tolerance = DEFAULT_TOLERANCE } = options.verify;
    const cases = [randomFeeds(loaded.model, { batch, seed }), randomFeeds(loaded.model, { batch: 1, seed: seed + 1 })];
    parity = await checkParity(loaded.model, build.bytes, cases);
    const bad = Object.entries(parity.errors).filter(([, e]) => !(e <= tolerance));
    if (bad.length > 0) {
      throw new Error(`ONNX export: the graph disagrees with the tfjs model (${bad.map(([k, e]) => `${k} rel. error ${e.toExponential(2)}`).join(", ")} > ${tolerance}); nothing written`);
    }
  }
  mkdirSync(outDir, { recursive: true });
  const onnxPath = join(outDir, ONNX_FILE);
  const metadataPath = join(outDir, METADATA_FILE);
  const metadata = exportMetadata(loaded, build, outDir);
  writeFileAtomic(onnxPath, build.bytes);
  writeFileAtomic(metadataPath, JSON.stringify(metadata, null, 2) + "\n");
  return { dir: outDir, onnxPath, metadataPath, metadata, build, parity };
}
