/**
 * Exporters by block type. Each table is typed over the config's union of
 * block types, so adding a block type to the model config without an
 * exporter next to it fails to compile; a type that reaches the exporter
 * anyway (e.g. a checkpoint written by a newer version) fails at run time with
 * the block's name.
 */
import type { VideoEncoderType } from "../model/encoders/video.js";
import type { FusionConfig } from "../model/fusion.js";
import { exportAttentionPool } from "./blocks/attentionPool.js";
import { exportBiLstm } from "./blocks/bilstm.js";
import { exportConcatSeFusion, exportGateFusion } from "./blocks/fusion.js";
import { exportGatedMlp } from "./blocks/gatedMlp.js";
import { exportNextVlad } from "./blocks/nextvlad.js";
import { exportTextCnn } from "./blocks/textcnn.js";
import { exportTrn } from "./blocks/trn.js";
import type { FusionExporter, TextBranchExporter, VideoEncoderExporter } from "./blocks/types.js";

export type { ExportEnv, FusionExporter, TextBranchExporter, VideoEncoderExporter } from "./blocks/types.js";

export type TextBranchType = "textcnn" | "bilstm";

export const VIDEO_ENCODER_EXPORTERS: Record<VideoEncoderType, VideoEncoderExporter> = {
  nextvlad: exportNextVlad,
  trn: exportTrn,
  attention: exportAttentionPool,
  gated_mlp: exportGatedMlp,
};

export const TEXT_BRANCH_EXPORTERS: Record<TextBranchType, TextBranchExporter> = {
  textcnn: exportTextCnn,
  bilstm: exportBiLstm,
};

export const FUSION_EXPORTERS: Record<FusionConfig["type"], FusionExporter> = {
  concat_se: exportConcatSeFusion,
  gate: exportGateFusion,
};

/** Raised when a model holds a block the exporter cannot write. */
export class UnsupportedBlockError extends Error {
  constructor(
    readonly kind: string,
    readonly blockType: string,
    known: readonly string[],
    where: string,
  ) {
    super(`ONNX export: no exporter for ${kind} block "${blockType}" (at ${where}); exporters exist for: ${known.join(", ")}`);
    this.name = "UnsupportedBlockError";
  }
}

/** The exporter for `type` in `table`, or an UnsupportedBlockError naming it. */
export function exporterFor<T>(table: Record<string, T>, kind: string, type: string, where: string): T {
  if (!Object.hasOwn(table, type)) throw new UnsupportedBlockError(kind, type, Object.keys(table), where);
  return table[type];
}
