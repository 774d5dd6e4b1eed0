/**
 * Adam / AdamW with global-norm gradient clipping and a warm-up + decay
 * learning-rate schedule. Written here (rather than tf.train.adam) because the
 * schedule changes the rate every step and the moment estimates must be saved
 * in checkpoints and restored exactly on resume.
 */
import * as tf from "@tensorflow/tfjs";
import type { TrainingConfig } from "../model/config.js";

/**
 * A kernel that does one parameter's whole update in one pass (registered for
 * the wasm backend by train/accel/wasmKernels.ts while the accelerated
 * backend is on). It gives bit-for-bit the op chain's result, so training is
 * identical with or without it; the op chain is used wherever it is missing.
 */
const ADAM_UPDATE_KERNEL = "VidrecallAdamUpdate";
/** Σx² in one pass, the same float32 sum as tf.sum(tf.square(x)) (same module). */
const SUM_SQUARES_KERNEL = "VidrecallSumSquares";

export interface OptimizerState {
  step: number;
  /** Per parameter name: first and second moment estimates. */
  moments: Map<string, { m: tf.Variable; v: tf.Variable }>;
}

export class AdamOptimizer {
  readonly beta1 = 0.9;
  readonly beta2 = 0.999;
  readonly epsilon = 1e-7;
  step = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(
    readonly config: TrainingConfig,
    /** Total optimisation steps planned, for the cosine schedule. */
    readonly totalSteps: number,
    readonly stepsPerEpoch: number,
  ) {}

  /** Learning rate at a (0-based) step. */
  learningRate(step: number): number {
    const c = this.config;
    const base = c.learningRate;
    if (c.warmupSteps > 0 && step < c.warmupSteps) return (base * (step + 1)) / c.warmupSteps;
    const floor = base * c.minLearningRateRatio;
    const t = step - c.warmupSteps;
    switch (c.decay) {
      case "none":
        return base;
      case "cosine": {
        const span = Math.max(1, this.totalSteps - c.warmupSteps);
        const p = Math.min(1, t / span);
        return floor + (base - floor) * 0.5 * (1 + Math.cos(Math.PI * p));
      }
      case "exponential":
        return Math.max(floor, base * Math.pow(c.decayRate, t / Math.max(1, this.stepsPerEpoch)));
    }
  }

  private slot(name: string, like: tf.Variable): { m: tf.Variable; v: tf.Variable } {
    let s = this.moments.get(name);
    if (!s) {
      s = tf.tidy(() => ({ m: tf.variable(tf.zerosLike(like), false), v: tf.variable(tf.zerosLike(like), false) }));
      this.moments.set(name, s);
    }
    return s;
  }

  /**
   * Applies one update. `grads` maps parameter names to gradients; kernels
   * (names ending in /kernel or /table) get weight decay. Returns the global
   * gradient norm before clipping.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>): number {
    const c = this.config;
    const lr = this.learningRate(this.step);
    const names = [...grads.keys()];
    const fusedNorm = tf.getKernel(SUM_SQUARES_KERNEL, tf.getBackend()) !== undefined;
    const sumSquares = (g: tf.Tensor): tf.Tensor => (fusedNorm ? (tf.engine().runKernel(SUM_SQUARES_KERNEL, { x: g }, {}) as tf.Tensor) : tf.sum(tf.square(g)));
    const norm = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => sumSquares(grads.get(n)!)))).dataSync()[0]);
    if (!Number.isFinite(norm)) throw new Error(`gradient norm is ${norm} at step ${this.step}: training diverged (lower the learning rate?)`);
    const scale = c.clipNorm > 0 && norm > c.clipNorm ? c.clipNorm / norm : 1;
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    const fused = tf.getKernel(ADAM_UPDATE_KERNEL, tf.getBackend()) !== undefined;
    for (const name of names) {
      const p = params.get(name);
      if (!p) throw new Error(`gradient for unknown parameter ${name}`);
      const s = this.slot(name, p);
      const decays = c.weightDecay > 0 && (name.endsWith("/kernel") || name.endsWith("/table"));
      if (fused) {
        // Same arithmetic as the chain below (see wasmKernels.ts: AdamUpdateAttrs).
        const attrs = {
          scale,
          learningRate: lr,
          beta1: this.beta1,
          beta2: this.beta2,
          biasCorrection1: bc1,
          biasCorrection2: bc2,
          epsilon: this.epsilon,
          weightDecay: c.weightDecay,
          decay: decays ? c.optimizer : "none",
        };
        const [pNew, mNew, vNew] = tf.engine().runKernel(ADAM_UPDATE_KERNEL, { p, m: s.m, v: s.v, g: grads.get(name)! }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        s.m.assign(mNew);
        s.v.assign(vNew);
        p.assign(pNew);
        tf.dispose([pNew, mNew, vNew]);
        continue;
      }
      tf.tidy(() => {
        let g = tf.mul(grads.get(name)!, scale);
        if (decays && c.optimizer === "adam") g = tf.add(g, tf.mul(p, c.weightDecay));
        const m = tf.add(tf.mul(s.m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(s.v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        s.m.assign(m);
        s.v.assign(v);
        let update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), this.epsilon));
        if (decays && c.optimizer === "adamw") update = tf.add(update, tf.mul(p, c.weightDecay));
        p.assign(tf.sub(p, tf.mul(update, lr)));
      });
    }
    this.step++;
    return norm;
  }

  /** Moment estimates by parameter name, for checkpoints. */
  state(): OptimizerState {
    return { step: this.step, moments: this.moments };
  }

  restore(step: number, moments: Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>): void {
    this.step = step;
    for (const s of this.moments.values()) tf.dispose([s.m, s.v]);
    this.moments.clear();
    for (const [name, { m, v, shape }] of moments) {
      this.moments.set(name, tf.tidy(() => ({ m: tf.variable(tf.tensor(m, shape), false), v: tf.variable(tf.tensor(v, shape), false) })));
    }
  }

  dispose(): void {
    for (const s of this.moments.values()) tf.dispose([s.m, s.v]);
    this.moments.clear();
  }
}
