/**
 * Bi-LSTM title encoder (model/encoders/bilstm.ts) as one ONNX Scan over the
 * token axis, which runs both directions per iteration (the backward one via
 * scan_input_directions = 1 and a prepending output). Scan rather than the
 * ONNX LSTM op because tfjs' masking is per step — a padded step keeps the
 * state and outputs 0 — which the LSTM op's sequence_lens only matches for
 * prefix masks; the Scan body is tfjs' cell op for op, so any mask and any
 * (dynamic) title length L give tfjs' result.
 * Per direction and step (gate order i, f, g, o; K [E+H, 4H]):
 *   [i f g o] = Split₄(concat(x_t, h)·K + b)
 *   c' = σ(f + forgetBias)·c + σ(i)·tanh(g);  h' = σ(o)·tanh(c')
 *   c = m·c' + (1 − m)·c;  h = m·h' + (1 − m)·h;  out_t = m·h'
 * then attention pooling over o = concat(out_fw, out_bw):
 *   s = tanh(o·W + b)·v;  a = softmax_t(s·m + (m − 1)·1e9)·m;  y = Σ_t a_t·o_t
 */
import { BiLstm, type Lstm } from "../../model/encoders/bilstm.js";
import type { SequenceEncoder } from "../../model/core.js";
import { attr, tensorProto, type OnnxGraph } from "../graph.js";
import { paramName, valuesOf } from "./layers.js";
import { paramValues } from "./params.js";
import type { ExportEnv } from "./types.js";
import { wrongBlock } from "./types.js";

const MASKED = 1e9;

export function exportBiLstm(g: OnnxGraph, branch: SequenceEncoder, x: string, mask: string, env: ExportEnv & { scope: string }): string {
  if (!(branch instanceof BiLstm)) throw wrongBlock("bilstm", "BiLstm", branch);
  const { hidden: H, attentionDim: A } = branch.config;
  const E = branch.inputDim;
  for (const [dir, lstm] of [["fw", branch.forward], ["bw", branch.backward]] as const) {
    const expected = `${env.scope}/${dir}/kernel`;
    if (paramName(lstm.kernel) !== expected) throw new Error(`ONNX export: Bi-LSTM ${dir} kernel is ${paramName(lstm.kernel)}, expected ${expected}`);
  }

  // Zero initial states [B, H].
  const zeros = g.op("ConstantOfShape", [g.concat([g.dim(x, 0), g.i64([H])], 0)], {
    value: attr.tensor(tensorProto("zero", "float32", [1], Float32Array.of(0))),
  });

  const body = g.subgraph("scan_body");
  const state = (name: string) => body.freshInput(name, "float32", ["batch", H]);
  const hf = state("h_fw");
  const cf = state("c_fw");
  const hb = state("h_bw");
  const cb = state("c_bw");
  const xf = body.freshInput("x_fw_t", "float32", ["batch", E]);
  const mf = body.freshInput("m_fw_t", "float32", ["batch"]);
  const xb = body.freshInput("x_bw_t", "float32", ["batch", E]);
  const mb = body.freshInput("m_bw_t", "float32", ["batch"]);

  const step = (sg: OnnxGraph, lstm: Lstm, xt: string, mt1: string, h: string, c: string) => {
    const kernel = sg.weight(paramName(lstm.kernel), valuesOf(lstm.kernel), [E + H, 4 * H]);
    const bias = sg.weight(paramName(lstm.bias), valuesOf(lstm.bias), [4 * H]);
    const gates = sg.add(sg.matmul(sg.concat([xt, h], 1), kernel), bias);
    const [gi, gf, gg, go] = sg.opN("Split", [gates], 4, { axis: attr.int(1) });
    const i = sg.sigmoid(gi);
    const f = sg.sigmoid(sg.add(gf, sg.f32(lstm.forgetBias)));
    const cNew = sg.add(sg.mul(f, c), sg.mul(i, sg.tanh(gg)));
    const hNew = sg.mul(sg.sigmoid(go), sg.tanh(cNew));
    const mt = sg.unsqueeze(mt1, [1]); // [B, 1]
    const keep = sg.sub(sg.f32(1), mt);
    return {
      h: sg.add(sg.mul(hNew, mt), sg.mul(h, keep)),
      c: sg.add(sg.mul(cNew, mt), sg.mul(c, keep)),
      out: sg.mul(hNew, mt),
    };
  };
  const fw = step(body.scope("fw"), branch.forward, xf, mf, hf, cf);
  const bw = step(body.scope("bw"), branch.backward, xb, mb, hb, cb);
  for (const v of [fw.h, fw.c, bw.h, bw.c]) body.output(v, v, "float32", ["batch", H]);
  for (const v of [fw.out, bw.out]) body.output(v, v, "float32", ["batch", H]);

  const scanOut = g.opN("Scan", [zeros, zeros, zeros, zeros, x, mask, x, mask], 6, {
    body: attr.graph(body.graphObject(false)),
    num_scan_inputs: attr.int(4),
    scan_input_axes: attr.ints([1, 1, 1, 1]),
    scan_input_directions: attr.ints([0, 0, 1, 1]),
    scan_output_axes: attr.ints([1, 1]),
    // Prepending the backward outputs stores step t's output at position t.
    scan_output_directions: attr.ints([0, 1]),
  });
  const o = g.concat([scanOut[4], scanOut[5]], 2); // [B, L, 2H]

  const attW = g.weight(`${env.scope}/attention/kernel`, paramValues(env.params, `${env.scope}/attention/kernel`, [2 * H, A]), [2 * H, A]);
  const attB = g.weight(`${env.scope}/attention/bias`, paramValues(env.params, `${env.scope}/attention/bias`, [A]), [A]);
  const attV = g.weight(`${env.scope}/attention/query`, paramValues(env.params, `${env.scope}/attention/query`, [A, 1]), [A, 1]);
  const u = g.tanh(g.add(g.matmul(o, attW), attB));
  const scores = g.squeeze(g.matmul(u, attV), [2]); // [B, L]
  const masked = g.add(g.mul(scores, mask), g.mul(g.sub(mask, g.f32(1)), g.f32(MASKED)));
  const weights = g.mul(g.op("Softmax", [masked], { axis: attr.int(1) }), mask);
  return g.reduceSum(g.mul(o, g.unsqueeze(weights, [2])), [1], false); // [B, 2H]
}
