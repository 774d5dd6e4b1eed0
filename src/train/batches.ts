/**
 * The batch pipeline: store examples → fixed-shape batches of plain typed
 * arrays. No tfjs here, so the same batches feed tfjs training and ONNX
 * inference.
 *
 * Shapes (B = batch size, T = a modality's steps, D = its dim, L = title
 * tokens): per modality `values` [B, T, D], `mask` [B, T] (1 real frame,
 * 0 padding; always a prefix), `present` [B]; title `titleIds` [B, L],
 * `titleMask` [B, L], `titlePresent` [B]; `category` [B]; `tags` [B, numTags].
 */
import { z } from "zod";
import type { Label, VideoExample, VideoStore } from "../data/store.js";
import type { Split } from "../data/split.js";
import { PAD_ID, type TokenVocabulary } from "../data/tokenize.js";
import { epochOrder, frameIndices, frameUniforms } from "./sampling.js";

export const ModalityInputConfig = z.object({
  /** Fixed number of time steps T the model sees. */
  frames: z.number().int().positive(),
  /** Feature dimension D; a stored video with another dim is an error. */
  dim: z.number().int().positive(),
});
export type ModalityInputConfig = z.infer<typeof ModalityInputConfig>;

export const InputConfig = z
  .object({
    /** Shape per modality, by name (YouTube-8M: rgb 1024, audio 128, ≤ 300 frames). */
    features: z.record(z.string().min(1), ModalityInputConfig).default(() => ({
      rgb: { frames: 300, dim: 1024 },
      audio: { frames: 300, dim: 128 },
    })),
    /** The modalities the model uses, in order; each needs an entry in `features`. */
    modalities: z.array(z.string().min(1)).default(() => ["rgb", "audio"]),
    useTitle: z.boolean().default(true),
    /**
     * segment: T equal segments of the real frames, a random frame of each in
     * training (seeded), the centre one in evaluation; videos with < T frames
     * keep them all and pad. pad: the first T frames, padded.
     */
    sampling: z.enum(["segment", "pad"]).default("segment"),
    titleMaxTokens: z.number().int().positive().default(30),
    /**
     * "l2": each frame's features are divided by their L2 norm inside the
     * model (as the YouTube-8M starter code does), so videos whose features
     * differ only in scale look alike. Part of the model, not of the batch.
     */
    normalize: z.enum(["none", "l2"]).default("none"),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    for (const m of c.modalities) {
      if (seen.has(m)) ctx.addIssue({ code: "custom", path: ["modalities"], message: `modality "${m}" listed twice` });
      seen.add(m);
      if (!Object.hasOwn(c.features, m)) {
        ctx.addIssue({ code: "custom", path: ["features", m], message: `modality "${m}" is used but has no { frames, dim } entry in features` });
      }
    }
    if (c.modalities.length === 0 && !c.useTitle) ctx.addIssue({ code: "custom", path: ["modalities"], message: "no inputs: use at least one modality or the title" });
  });
export type InputConfig = z.infer<typeof InputConfig>;

export interface ModalityBatch {
  /** T. */
  steps: number;
  /** D. */
  dim: number;
  /** [B, T, D] row-major; zero at padded steps and for absent modalities. */
  values: Float32Array;
  /** [B, T]: 1 real frame, 0 padding; a prefix of ones. */
  mask: Float32Array;
  /** [B]: 0 when the video lacks the modality (its mask row is then all 0). */
  present: Float32Array;
}

export interface Batch {
  size: number;
  ids: string[];
  /** Per used modality, in `config.modalities` order. */
  modalities: Record<string, ModalityBatch>;
  /** L = config.titleMaxTokens. */
  titleLength: number;
  /** [B, L] token ids, PAD_ID (0) after the title; all PAD when the title is unused. */
  titleIds: Int32Array;
  /** [B, L]: 1 for real tokens. */
  titleMask: Float32Array;
  /** [B]: 1 when the title is used and has at least one token (unknown tokens count). */
  titlePresent: Float32Array;
  /** [B] model category index; -1 = none (no category, or one the model does not know). */
  category: Int32Array;
  /** [B]: 1 when the video has a category the model does not know (category is -1): a sure miss for evaluation. */
  categoryUnmapped: Uint8Array;
  numTags: number;
  /** [B, numTags] multi-hot over the model's tags. */
  tags: Float32Array;
  /** [B]: how many of the video's tags the model does not know (left out of `tags`): sure misses for evaluation. */
  tagsUnmapped: Int32Array;
}

/** Store label index → model label index, -1 for labels the model does not know. */
export type LabelMap = Int32Array;

/**
 * Matches a separately imported store's labels to a model's by name (trimmed,
 * as the store compares them). Returns an array indexed by store index: the
 * model index, or -1 for a store label the model lacks (and for unused store
 * indices). Store indices past the end are unknown too.
 */
export function labelMapping(modelLabels: readonly string[], storeLabels: readonly Pick<Label, "index" | "name">[]): LabelMap {
  const model = new Map<string, number>();
  modelLabels.forEach((name, i) => {
    const key = name.trim();
    if (model.has(key)) throw new Error(`model label "${key}" appears twice (indices ${model.get(key)} and ${i})`);
    model.set(key, i);
  });
  const size = storeLabels.reduce((n, l) => Math.max(n, l.index + 1), 0);
  const map = new Int32Array(size).fill(-1);
  for (const l of storeLabels) map[l.index] = model.get(l.name.trim()) ?? -1;
  return map;
}

export interface MakeBatchOptions {
  /** Training samples a random frame per segment; evaluation the centre one. */
  training: boolean;
  /** With `epoch` and the video id, determines the training frame choice. Default 0. */
  seed?: number;
  epoch?: number;
  /** Required when config.useTitle. */
  vocabulary?: TokenVocabulary;
  numTags: number;
  /** Model category count: mapped indices at or beyond it are unknown. Default: no limit. */
  numCategories?: number;
  /** Store → model indices (see labelMapping); without one, store indices are model indices. */
  categoryMap?: LabelMap;
  tagMap?: LabelMap;
}

/**
 * Model index of a store label: through `map` if given (past its end:
 * unknown), -1 when unknown or at/after `limit`. A map entry pointing at or
 * past `limit` is a bad map, not an unknown label.
 */
function mapLabel(index: number, map: LabelMap | undefined, limit: number, what: string): number {
  if (!map) return index < limit ? index : -1;
  const m = index < map.length ? map[index] : -1;
  if (m >= limit) throw new Error(`${what} map sends store index ${index} to model index ${m}, outside 0..${limit - 1}`);
  return m;
}

export function makeBatch(examples: readonly VideoExample[], config: InputConfig, options: MakeBatchOptions): Batch {
  const B = examples.length;
  const { numTags } = options;
  if (!Number.isInteger(numTags) || numTags < 0) throw new Error(`numTags must be a non-negative integer, got ${numTags}`);
  const numCategories = options.numCategories ?? Infinity;
  if (config.useTitle && !options.vocabulary) throw new Error("makeBatch: config.useTitle needs a token vocabulary");
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  const randomFrames = options.training && config.sampling === "segment";

  const modalities: Record<string, ModalityBatch> = {};
  for (const m of config.modalities) {
    const { frames: T, dim: D } = config.features[m];
    modalities[m] = { steps: T, dim: D, values: new Float32Array(B * T * D), mask: new Float32Array(B * T), present: new Float32Array(B) };
  }
  const maxSteps = config.modalities.reduce((n, m) => Math.max(n, config.features[m].frames), 0);

  const L = config.titleMaxTokens;
  const titleIds = new Int32Array(B * L).fill(PAD_ID);
  const titleMask = new Float32Array(B * L);
  const titlePresent = new Float32Array(B);
  const category = new Int32Array(B).fill(-1);
  const categoryUnmapped = new Uint8Array(B);
  const tags = new Float32Array(B * numTags);
  const tagsUnmapped = new Int32Array(B);

  examples.forEach((ex, b) => {
    const uniforms = randomFrames ? frameUniforms(seed, epoch, ex.id, maxSteps) : undefined;
    for (const m of config.modalities) {
      const out = modalities[m];
      const f = ex.features[m];
      if (!f) continue;
      if (f.dim !== out.dim) throw new Error(`video "${ex.id}": modality "${m}" has dim ${f.dim}, but the input config expects dim ${out.dim}`);
      const idx = frameIndices(f.frames, out.steps, config.sampling, uniforms);
      if (idx.length === 0) continue;
      out.present[b] = 1;
      const D = out.dim;
      const rowBase = b * out.steps;
      for (let t = 0; t < idx.length; t++) {
        const src = idx[t] * D;
        out.values.set(f.values.subarray(src, src + D), (rowBase + t) * D);
      }
      out.mask.fill(1, rowBase, rowBase + idx.length);
    }

    if (config.useTitle && ex.title !== null && options.vocabulary) {
      const ids = options.vocabulary.encode(ex.title, L);
      titleIds.set(ids, b * L);
      titleMask.fill(1, b * L, b * L + ids.length);
      if (ids.length > 0) titlePresent[b] = 1;
    }

    if (ex.category !== null) {
      const c = mapLabel(ex.category, options.categoryMap, numCategories, "category");
      category[b] = c;
      if (c < 0) categoryUnmapped[b] = 1;
    }
    for (const t of ex.tags) {
      const m = mapLabel(t, options.tagMap, numTags, "tag");
      if (m < 0) tagsUnmapped[b]++;
      else tags[b * numTags + m] = 1;
    }
  });

  return {
    size: B,
    ids: examples.map((e) => e.id),
    modalities,
    titleLength: L,
    titleIds,
    titleMask,
    titlePresent,
    category,
    categoryUnmapped,
    numTags,
    tags,
    tagsUnmapped,
  };
}

export interface BatchStreamOptions {
  /** The split to iterate; or give `ids`. */
  split?: Split;
  /** An explicit id list (e.g. a subset), iterated instead of a split. */
  ids?: readonly string[];
  batchSize: number;
  /** Training: random frames per segment; shuffled unless `shuffle` says otherwise. */
  training: boolean;
  /** Default: `training`. Unshuffled order is the store's (insertion) order or `ids` as given. */
  shuffle?: boolean;
  seed?: number;
  /** Leave out the last, short batch. Default false. */
  dropLast?: boolean;
  /** Default: the store's title vocabulary (needed when config.useTitle). */
  vocabulary?: TokenVocabulary;
  /** Default: the store's tag space size. */
  numTags?: number;
  numCategories?: number;
  categoryMap?: LabelMap;
  tagMap?: LabelMap;
}

/**
 * Iterates a split in batches, reading each batch's examples from the store
 * as it goes (only the ids are held). Epoch e's order is a permutation fixed
 * by (seed, e), and a video's training frames by (seed, e, id), so
 * `epoch(e, { skipBatches: n })` continues a stopped run exactly.
 */
export class BatchStream {
  readonly ids: readonly string[];
  readonly batchSize: number;
  readonly training: boolean;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private readonly batchOptions: Omit<MakeBatchOptions, "epoch">;

  constructor(
    readonly store: VideoStore,
    readonly config: InputConfig,
    options: BatchStreamOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${options.batchSize}`);
    if (options.ids && options.split) throw new Error("BatchStream: give a split or ids, not both");
    this.ids = options.ids ? [...options.ids] : store.videoIds(options.split);
    this.batchSize = options.batchSize;
    this.training = options.training;
    this.shuffle = options.shuffle ?? options.training;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    const vocabulary = options.vocabulary ?? (config.useTitle ? store.loadTokenVocabulary() : undefined);
    if (config.useTitle && !vocabulary) throw new Error("BatchStream: the config uses titles but the store has no title vocabulary (build it first)");
    this.batchOptions = {
      training: options.training,
      seed: this.seed,
      vocabulary,
      numTags: options.numTags ?? store.labelSpaceSize("tags"),
      numCategories: options.numCategories,
      categoryMap: options.categoryMap,
      tagMap: options.tagMap,
    };
  }

  /** Videos iterated per epoch (before dropLast). */
  get videoCount(): number {
    return this.ids.length;
  }

  get batchesPerEpoch(): number {
    const n = this.ids.length / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The epoch's video order (the stored order when not shuffling). */
  order(epoch: number): readonly string[] {
    return this.shuffle ? epochOrder(this.ids, this.seed, epoch) : this.ids;
  }

  /** Batch `index` of `epoch`, read on its own (same content as the epoch iterator yields there). */
  batch(epoch: number, index: number): Batch {
    return this.batchAt(this.order(epoch), epoch, index);
  }

  /** The epoch's batches from batch `skipBatches` on (default 0). */
  *epoch(epoch: number, options: { skipBatches?: number } = {}): Generator<Batch> {
    const skip = options.skipBatches ?? 0;
    if (!Number.isInteger(skip) || skip < 0) throw new Error(`skipBatches must be a non-negative integer, got ${skip}`);
    const order = this.order(epoch);
    for (let i = skip; i < this.batchesPerEpoch; i++) yield this.batchAt(order, epoch, i);
  }

  private batchAt(order: readonly string[], epoch: number, index: number): Batch {
    if (!Number.isInteger(index) || index < 0 || index >= this.batchesPerEpoch) {
      throw new Error(`batch index ${index} outside 0..${this.batchesPerEpoch - 1}`);
    }
    const ids = order.slice(index * this.batchSize, (index + 1) * this.batchSize);
    return makeBatch(this.store.getExamples(ids), this.config, { ...this.batchOptions, epoch });
  }
}

/**
 * Evaluation batches (no shuffling, evaluation frame sampling) of a store's
 * videos for a model, its labels matched to the store's by name.
 */
export function evaluationStream(
  store: VideoStore,
  model: { config: { input: InputConfig }; labels: { tags: readonly string[]; categories: readonly string[] } },
  target: { split: Split } | { ids: readonly string[] },
  vocabulary?: TokenVocabulary,
  batchSize = 256,
): BatchStream {
  return new BatchStream(store, model.config.input, {
    ...target,
    batchSize,
    training: false,
    vocabulary,
    numTags: model.labels.tags.length,
    numCategories: model.labels.categories.length,
    tagMap: labelMapping(model.labels.tags, store.labels("tags")),
    categoryMap: labelMapping(model.labels.categories, store.labels("category")),
  });
}
