/**
 * The model config: the single source of truth for what a vidrecall model is.
 * Encoders per modality, one fusion block, one head per output, the
 * adversarial-perturbation settings and the training schedule. Training,
 * checkpoints, evaluation and (later) the ONNX exporter all read this.
 */
import { z } from "zod";
import { InputConfig } from "../train/batches.js";
import { TextEncoderConfig } from "./encoders/text.js";
import { VideoEncoderConfig } from "./encoders/video.js";
import { FusionConfig } from "./fusion.js";
import { MultiTaskLossConfig } from "./heads.js";

export const TitleConfig = z.object({
  embeddingDim: z.number().int().positive().default(200),
  trainableEmbedding: z.boolean().default(true),
  /** Word vectors (word2vec/GloVe text format) to initialise the embedding table. */
  wordVectors: z.string().optional(),
  encoder: TextEncoderConfig.prefault({ type: "textcnn+bilstm" }),
});
export type TitleConfig = z.infer<typeof TitleConfig>;

export const AdversarialConfig = z.object({
  /** FGM (Miyato et al.): train on clean + perturbed inputs. Off by default. */
  enabled: z.boolean().default(false),
  /** ε per input (modality name or "title"), the L2 norm of each sample's perturbation. */
  epsilon: z.record(z.string(), z.number().positive()).default(() => ({})),
  /**
   * ε for inputs not named in `epsilon` (reference: 0.5, on raw frame features).
   * ε is an L2 norm per sample: size it against the input's own norm (1 per
   * frame with input.normalize "l2", where 0.5 is a very strong perturbation).
   */
  defaultEpsilon: z.number().positive().default(0.5),
  /** Weight of the adversarial loss next to the clean one. */
  weight: z.number().min(0).default(1),
});
export type AdversarialConfig = z.infer<typeof AdversarialConfig>;

export const NeighbourVoteConfig = z.object({
  /**
   * Blend the tags of the k most similar labelled videos (cosine similarity of
   * the embeddings) into the tag probabilities:
   *   p = modelWeight·p_model + (1 − modelWeight)·Σ_j softmax(temperature·sim)_j · tags_j
   * `eval` takes the neighbours from the training split, POST /classify from
   * the served index. Off by default: it needs labelled neighbours at inference.
   */
  enabled: z.boolean().default(false),
  k: z.number().int().positive().max(1000).default(30),
  /** Softmax temperature over the neighbours' cosine similarities (higher: the nearest dominate). */
  temperature: z.number().positive().default(20),
  /** Weight of the model's own probabilities in the blend. */
  modelWeight: z.number().min(0).max(1).default(0.7),
});
export type NeighbourVoteConfig = z.infer<typeof NeighbourVoteConfig>;

export const TrainingConfig = z.object({
  optimizer: z.enum(["adam", "adamw"]).default("adam"),
  learningRate: z.number().positive().default(1e-3),
  /** Linear warm-up from 0 over this many steps, then `decay`. */
  warmupSteps: z.number().int().min(0).default(100),
  decay: z.enum(["none", "cosine", "exponential"]).default("cosine"),
  /** exponential: multiply the rate by this every epoch. */
  decayRate: z.number().positive().max(1).default(0.95),
  /** Floor of the decayed rate, as a fraction of learningRate. */
  minLearningRateRatio: z.number().min(0).max(1).default(0.05),
  /** Decoupled weight decay (adamw) or L2 (adam), on kernels only. */
  weightDecay: z.number().min(0).default(0),
  /** Clip the global gradient norm to this; 0 = off. */
  clipNorm: z.number().min(0).default(5),
  batchSize: z.number().int().positive().default(64),
  epochs: z.number().int().positive().default(10),
  /**
   * true: validate on the store's \`validate\` split (early stopping, best
   * checkpoint). false: a final fit once the settings were chosen with a
   * holdout — the validate split is trained on too, for exactly \`epochs\`
   * epochs, and the last weights are the model.
   */
  holdout: z.boolean().default(true),
  /** Validate every N steps; 0 = at the end of each epoch. */
  evalEverySteps: z.number().int().min(0).default(0),
  /** Stop after this many validations without a better GAP@20; 0 = never. */
  earlyStopPatience: z.number().int().min(0).default(3),
  /** Also write the last checkpoint every N steps (0 = only after validations). */
  checkpointEverySteps: z.number().int().min(0).default(0),
  /** Cap on validation videos per evaluation (0 = all), to keep validation cheap on big splits. */
  maxEvalVideos: z.number().int().min(0).default(0),
  seed: z.number().int().default(1),
  /**
   * Exponential moving average of the weights (Polyak averaging): validation,
   * best.ckpt and exports use the average, which generalises better on small
   * data. 0 = off; typical 0.99–0.999.
   */
  emaDecay: z.number().min(0).lt(1).default(0),
  /**
   * Mixup α (src/model/mixup.ts): each batch is mixed with a shuffled copy of
   * itself with λ ~ Beta(α, α), inputs and losses alike. 0 = off; typical 0.1–0.4.
   */
  mixup: z.number().min(0).default(0),
});
export type TrainingConfig = z.infer<typeof TrainingConfig>;

export const ModelConfig = z
  .object({
    name: z.string().default("custom"),
    input: InputConfig.prefault({}),
    /** One encoder per modality in input.modalities. */
    encoders: z.record(z.string(), VideoEncoderConfig).default(() => ({})),
    title: TitleConfig.prefault({}),
    fusion: FusionConfig.prefault({ type: "concat_se" }),
    heads: MultiTaskLossConfig.prefault({}),
    adversarial: AdversarialConfig.prefault({}),
    neighbours: NeighbourVoteConfig.prefault({}),
    training: TrainingConfig.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const m of c.input.modalities) {
      if (!c.encoders[m]) ctx.addIssue({ code: "custom", path: ["encoders", m], message: `modality "${m}" is an input but has no encoder` });
    }
    for (const m of Object.keys(c.encoders)) {
      if (!c.input.modalities.includes(m)) ctx.addIssue({ code: "custom", path: ["encoders", m], message: `encoder for "${m}", which is not in input.modalities` });
    }
  });
export type ModelConfig = z.infer<typeof ModelConfig>;
export type ModelConfigInput = z.input<typeof ModelConfig>;

/** Parses a config, turning zod's issues into one message naming each bad field. */
export function parseModelConfig(raw: unknown, source = "config"): ModelConfig {
  const r = ModelConfig.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new Error(`${source}: invalid model config:\n${lines.join("\n")}`);
}

/** Sizes that come from the data, not the config: fixed when a model is built. */
export interface LabelSpaces {
  categories: string[];
  tags: string[];
}
