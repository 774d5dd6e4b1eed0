/**
 * Chooses the frame/audio encoder from config. The union is discriminated on
 * `type` so a YAML config names the block and only that block's fields, each
 * with the block's own defaults.
 */
import { z } from "zod";
import type { ParamScope, SequenceEncoder } from "../core.js";
import { AttentionPoolConfig, AttentionPoolEncoder } from "./attentionPool.js";
import { GatedMlpConfig, GatedMlpEncoder } from "./gatedMlp.js";
import { NeXtVladConfig, NeXtVladEncoder } from "./nextvlad.js";
import { TrnConfig, TrnEncoder } from "./trn.js";

export const VideoEncoderConfig = z.discriminatedUnion("type", [
  NeXtVladConfig.extend({ type: z.literal("nextvlad") }),
  TrnConfig.extend({ type: z.literal("trn") }),
  AttentionPoolConfig.extend({ type: z.literal("attention") }),
  GatedMlpConfig.extend({ type: z.literal("gated_mlp") }),
]);
export type VideoEncoderConfig = z.infer<typeof VideoEncoderConfig>;
export type VideoEncoderType = VideoEncoderConfig["type"];

/** Builds the encoder named by `config.type`; `config` may omit any field that has a default. */
export function buildVideoEncoder(config: z.input<typeof VideoEncoderConfig>, scope: ParamScope, inputDim: number): SequenceEncoder {
  const c = VideoEncoderConfig.parse(config);
  switch (c.type) {
    case "nextvlad":
      return new NeXtVladEncoder(c, scope, inputDim);
    case "trn":
      return new TrnEncoder(c, scope, inputDim);
    case "attention":
      return new AttentionPoolEncoder(c, scope, inputDim);
    case "gated_mlp":
      return new GatedMlpEncoder(c, scope, inputDim);
  }
}
