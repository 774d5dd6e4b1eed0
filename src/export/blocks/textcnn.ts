/**
 * TextCNN (model/encoders/textcnn.ts), same op order, with a dynamic title
 * length L: time is zero-padded to max(L, max width) with Pad (pads computed
 * from Shape), and the w shifted windows are Slices with static starts and
 * ends counted from the end (k … L − (w − 1 − k)), so one graph serves any L.
 *   x0 = x·mask;  U = concat_k x0[:, k : k+n];  z = U·K_w + b_w        [B, n, F]
 *   v  = max(Π_k mask[:, k : k+n], (count < w)·min(count, 1)·[1, 0, …])
 *   y  = relu(max_t(z·v + (v − 1)·1e9))
 */
import { TextCnn } from "../../model/encoders/textcnn.js";
import type { SequenceEncoder } from "../../model/core.js";
import { INT64_MAX, type OnnxGraph } from "../graph.js";
import { paramValues } from "./params.js";
import type { ExportEnv } from "./types.js";
import { wrongBlock } from "./types.js";

const MASKED = 1e9;

export function exportTextCnn(g: OnnxGraph, branch: SequenceEncoder, x: string, mask: string, env: ExportEnv & { scope: string }): string {
  if (!(branch instanceof TextCnn)) throw wrongBlock("textcnn", "TextCnn", branch);
  const { widths, filters } = branch.config;
  const E = branch.inputDim;

  let xs = g.mul(x, g.unsqueeze(mask, [2]));
  let ms = mask;
  const maxWidth = Math.max(...widths);
  if (maxWidth > 1) {
    // Titles shorter than the widest filter get zero (mask 0) steps appended, as tfjs pads them.
    const extra = g.max(g.sub(g.i64([maxWidth]), g.dim(x, 1)), g.i64([0])); // [1]
    const z = g.i64([0]);
    xs = g.op("Pad", [xs, g.concat([z, z, z, z, extra, z], 0)]);
    ms = g.op("Pad", [ms, g.concat([z, z, z, extra], 0)]);
  }
  const count = g.reduceSum(ms, [1], true); // [B, 1]

  const outs = widths.map((w) => {
    const sg = g.scope(`w${w}`);
    const shifted: string[] = [];
    const shiftedMask: string[] = [];
    for (let k = 0; k < w; k++) {
      const end = k === w - 1 ? INT64_MAX : -(w - 1 - k);
      shifted.push(sg.slice(xs, 1, k, end));
      shiftedMask.push(sg.slice(ms, 1, k, end));
    }
    const windows = sg.concat(shifted, 2); // [B, n, w·E]
    const kernel = sg.weight(`${env.scope}/conv_w${w}/kernel`, paramValues(env.params, `${env.scope}/conv_w${w}/kernel`, [w * E, filters]), [w * E, filters]);
    const bias = sg.weight(`${env.scope}/conv_w${w}/bias`, paramValues(env.params, `${env.scope}/conv_w${w}/bias`, [filters]), [filters]);
    const z = sg.add(sg.matmul(windows, kernel), bias); // [B, n, F]
    const full = shiftedMask.reduce((acc, s) => sg.mul(acc, s)); // [B, n]
    const short = sg.mul(sg.cast(sg.op("Less", [count, sg.f32(w)]), "float32"), sg.min(count, sg.f32(1))); // [B, 1]
    // [1, 0, …, 0] over the n windows: Range(0, n) == 0.
    const n = sg.squeeze(sg.dim(full, 1), [0]);
    const first = sg.cast(sg.op("Equal", [sg.op("Range", [sg.i64(0), n, sg.i64(1)]), sg.i64(0)]), "float32"); // [n]
    const valid = sg.unsqueeze(sg.max(full, sg.mul(short, first)), [2]); // [B, n, 1]
    const masked = sg.add(sg.mul(z, valid), sg.mul(sg.sub(valid, sg.f32(1)), sg.f32(MASKED)));
    return sg.relu(sg.reduceMax(masked, [1], false)); // [B, F]
  });
  return g.concat(outs, 1);
}
