/**
 * The contract every model block follows: parameters live in a ParamStore under
 * slash-separated names (so checkpoints and the ONNX exporter can find them by
 * name), and a block's `apply` is a pure function of its inputs, its parameters
 * and a ForwardContext. Blocks never update state themselves: batch-norm moving
 * statistics are queued on the context and applied by the trainer after a clean
 * step, so an adversarial (FGM) pass cannot touch them.
 */
import * as tf from "@tensorflow/tfjs";

export type Initializer = "glorotUniform" | "zeros" | "ones" | "normal" | "uniformSmall";

/** FNV-1a over a string: a stable 32-bit seed per parameter name. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function initialValue(shape: number[], init: Initializer, seed: number): tf.Tensor {
  switch (init) {
    case "zeros":
      return tf.zeros(shape);
    case "ones":
      return tf.ones(shape);
    case "normal":
      return tf.randomNormal(shape, 0, 0.02, "float32", seed);
    case "uniformSmall":
      return tf.randomUniform(shape, -0.05, 0.05, "float32", seed);
    case "glorotUniform": {
      // Fan-in/fan-out as Keras defines them: the last two dims, with any
      // leading dims treated as a receptive field.
      const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const fanIn = (shape.length >= 2 ? shape[shape.length - 2] : shape[0]) * receptive;
      const fanOut = shape[shape.length - 1] * receptive;
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      return tf.randomUniform(shape, -limit, limit, "float32", seed);
    }
  }
}

export interface ParamInfo {
  variable: tf.Variable;
  trainable: boolean;
}

/** Owns every variable of a model, keyed by its full name. */
let nextStoreId = 0;

export class ParamStore {
  private readonly params = new Map<string, ParamInfo>();
  /** tfjs wants process-unique variable names; two stores (old and new model) may share parameter names. */
  private readonly storeId = nextStoreId++;
  constructor(readonly seed: number) {}

  get(name: string, shape: number[], init: Initializer, trainable = true): tf.Variable {
    const existing = this.params.get(name);
    if (existing) {
      const have = existing.variable.shape.join("x");
      if (have !== shape.join("x")) throw new Error(`parameter ${name}: shape ${have} already registered, asked for ${shape.join("x")}`);
      return existing.variable;
    }
    const seed = (hashString(name) ^ this.seed) >>> 0;
    const variable = tf.tidy(() => tf.variable(initialValue(shape, init, seed), trainable, `${name}@${this.storeId}`));
    this.params.set(name, { variable, trainable });
    return variable;
  }

  scope(prefix: string): ParamScope {
    return new ParamScope(this, prefix);
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  variable(name: string): tf.Variable {
    const info = this.params.get(name);
    if (!info) throw new Error(`no parameter named ${name}`);
    return info.variable;
  }

  names(): string[] {
    return [...this.params.keys()];
  }

  trainableVariables(): tf.Variable[] {
    return [...this.params.values()].filter((p) => p.trainable).map((p) => p.variable);
  }

  entries(): [string, ParamInfo][] {
    return [...this.params.entries()];
  }

  countTrainable(): number {
    return this.trainableVariables().reduce((n, v) => n + v.size, 0);
  }

  dispose(): void {
    for (const p of this.params.values()) p.variable.dispose();
    this.params.clear();
  }
}

/** A view of a ParamStore that prefixes names: blocks see only their own scope. */
export class ParamScope {
  constructor(
    readonly store: ParamStore,
    readonly prefix: string,
  ) {}

  get(name: string, shape: number[], init: Initializer, trainable = true): tf.Variable {
    return this.store.get(`${this.prefix}/${name}`, shape, init, trainable);
  }

  scope(child: string): ParamScope {
    return new ParamScope(this.store, `${this.prefix}/${child}`);
  }
}

export interface StatUpdate {
  variable: tf.Variable;
  value: tf.Tensor;
}

/** Per-forward-pass state. */
export interface ForwardContext {
  training: boolean;
  /**
   * Where batch-norm layers queue their moving-statistic updates during a clean
   * training pass. Undefined means "do not update" (evaluation, adversarial pass).
   */
  statUpdates?: StatUpdate[];
  /** Seeds for dropout masks, drawn in a fixed order so a run is reproducible. */
  nextSeed(): number;
}

/** A context for inference: no dropout, moving statistics, no updates. */
export function inferenceContext(): ForwardContext {
  return { training: false, nextSeed: () => 0 };
}

/** A training context whose dropout seeds come from a simple counter-based generator. */
export function trainingContext(seed: number, collectStats = true): ForwardContext {
  let state = seed >>> 0;
  return {
    training: true,
    statUpdates: collectStats ? [] : undefined,
    nextSeed: () => {
      state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return state;
    },
  };
}

/** Applies and releases the queued batch-norm updates of a finished training step. */
export function applyStatUpdates(ctx: ForwardContext): void {
  if (!ctx.statUpdates) return;
  for (const u of ctx.statUpdates) {
    u.variable.assign(u.value);
    u.value.dispose();
  }
  ctx.statUpdates.length = 0;
}

/**
 * Every per-modality encoder (frames, audio, title tokens) maps a padded batch
 * of sequences to one vector per video: x [B, T, D], mask [B, T] (1 = real
 * step, 0 = padding) → [B, outputDim]. Padded steps must not affect the output.
 */
export interface SequenceEncoder {
  readonly outputDim: number;
  apply(x: tf.Tensor3D, mask: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D;
}
