/**
 * ONNX forms of the shared layers in model/layers.ts, inference semantics:
 * Dense → MatMul (+ Add), batch norm folded into the Dense before it
 * (W' = W·s, b' = (b − μ)·s + β with s = γ/√(σ² + ε)) or, with no matmul
 * before it, an explicit x·s + t. Folding is done in float64 and rounded once.
 */
import type * as tf from "@tensorflow/tfjs";
import type { BatchNorm, ContextGate, Dense } from "../../model/layers.js";
import type { OnnxGraph } from "../graph.js";

/** The parameter name of a variable (tfjs names are `name@storeId`). */
export function paramName(v: tf.Variable): string {
  const at = v.name.lastIndexOf("@");
  return at < 0 ? v.name : v.name.slice(0, at);
}

/** A copy of a tensor's values (float32). */
export function valuesOf(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync() as Float32Array);
}

export interface Affine {
  /** γ/√(σ² + ε) per channel. */
  scale: Float64Array;
  /** β − μ·scale per channel. */
  shift: Float64Array;
}

/** Inference batch norm as y = x·scale + shift, from the moving statistics. */
export function bnAffine(bn: BatchNorm): Affine {
  const gamma = valuesOf(bn.gamma);
  const beta = valuesOf(bn.beta);
  const mean = valuesOf(bn.movingMean);
  const variance = valuesOf(bn.movingVariance);
  const n = bn.channels;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    scale[j] = gamma[j] / Math.sqrt(variance[j] + bn.epsilon);
    shift[j] = beta[j] - mean[j] * scale[j];
  }
  return { scale, shift };
}

/** kernel [in, out] with column j multiplied by scale[j]. */
export function scaleColumns(kernel: Float32Array, inputDim: number, scale: Float64Array): Float32Array {
  const units = scale.length;
  if (kernel.length !== inputDim * units) throw new Error(`kernel has ${kernel.length} values, expected ${inputDim}×${units}`);
  const out = new Float32Array(kernel.length);
  for (let i = 0; i < inputDim; i++) for (let j = 0; j < units; j++) out[i * units + j] = kernel[i * units + j] * scale[j];
  return out;
}

/** x·W (+ b). x may have leading batch axes ([..., in]); MatMul broadcasts them. */
export function emitDense(g: OnnxGraph, x: string, dense: Dense): string {
  const kernel = g.weight(paramName(dense.kernel), valuesOf(dense.kernel), [dense.inputDim, dense.units]);
  const y = g.matmul(x, kernel);
  if (!dense.bias) return y;
  return g.add(y, g.weight(paramName(dense.bias), valuesOf(dense.bias), [dense.units]));
}

/** The folded kernel and bias of Dense → BN. */
export function foldDenseBn(dense: Dense, bn: BatchNorm): { kernel: Float32Array; bias: Float32Array } {
  if (bn.channels !== dense.units) throw new Error(`batch norm over ${bn.channels} channels after a ${dense.units}-unit dense layer`);
  const { scale, shift } = bnAffine(bn);
  const kernel = scaleColumns(valuesOf(dense.kernel), dense.inputDim, scale);
  const b = dense.bias ? valuesOf(dense.bias) : new Float32Array(dense.units);
  const bias = new Float32Array(dense.units);
  // (b − μ)·s + β = b·s + (β − μ·s)
  for (let j = 0; j < dense.units; j++) bias[j] = b[j] * scale[j] + shift[j];
  return { kernel, bias };
}

/** BN(x·W + b) as one MatMul + Add with the folded weights. */
export function emitDenseBn(g: OnnxGraph, x: string, dense: Dense, bn: BatchNorm): string {
  const { kernel, bias } = foldDenseBn(dense, bn);
  const base = paramName(dense.kernel).replace(/\/kernel$/, "");
  const w = g.weight(`${base}/kernel_bnfolded`, kernel, [dense.inputDim, dense.units]);
  const b = g.weight(`${base}/bias_bnfolded`, bias, [dense.units]);
  return g.add(g.matmul(x, w), b);
}

/** BN with no matmul before it: x·scale + shift. */
export function emitBnAffine(g: OnnxGraph, x: string, bn: BatchNorm): string {
  const { scale, shift } = bnAffine(bn);
  const base = paramName(bn.gamma).replace(/\/gamma$/, "");
  const s = g.weight(`${base}/scale`, Float32Array.from(scale), [bn.channels]);
  const t = g.weight(`${base}/shift`, Float32Array.from(shift), [bn.channels]);
  return g.add(g.mul(x, s), t);
}

/** y = x ⊙ σ(W2·relu(BN(W1·x)) + b2), the BN folded into W1. */
export function emitContextGate(g: OnnxGraph, x: string, gate: ContextGate): string {
  const h = g.relu(emitDenseBn(g, x, gate.squeeze, gate.bn));
  return g.mul(x, g.sigmoid(emitDense(g, h, gate.excite)));
}
