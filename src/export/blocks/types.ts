/** The exporter signatures (shared by the block modules and the registry). */
import type { ParamStore, SequenceEncoder } from "../../model/core.js";
import type { Fusion } from "../../model/fusion.js";
import type { OnnxGraph } from "../graph.js";

/** What an exporter may need beyond its block: the model's parameters, by name. */
export interface ExportEnv {
  params: ParamStore;
}

/** x [B, T, D] float, mask [B, T] float → the encoder's output [B, outputDim]. */
export type VideoEncoderExporter = (g: OnnxGraph, encoder: SequenceEncoder, x: string, mask: string, env: ExportEnv) => string;

/**
 * A title branch: token embeddings [B, L, E] and mask [B, L] → [B, outputDim].
 * `scope` is the branch's parameter prefix (e.g. "model/encoder_title/textcnn").
 */
export type TextBranchExporter = (g: OnnxGraph, branch: SequenceEncoder, x: string, mask: string, env: ExportEnv & { scope: string }) => string;

/** vectors[i] [B, D_i], present[i] [B, 1] float → fused [B, embeddingDim]. */
export type FusionExporter = (g: OnnxGraph, fusion: Fusion, vectors: string[], present: string[], env: ExportEnv) => string;

/** An exporter was handed an instance of another class than its block type builds. */
export function wrongBlock(kind: string, expected: string, got: unknown): Error {
  const name = typeof got === "object" && got !== null ? got.constructor.name : typeof got;
  return new Error(`ONNX export: the ${kind} exporter expects a ${expected}, got a ${name} (config and model disagree)`);
}
