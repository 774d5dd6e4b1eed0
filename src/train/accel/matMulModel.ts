/**
 * Tiny in-memory ONNX models for matrix products:
 *
 *   a ─(Transpose, optional)─┐
 *                            MatMul ─(Add bias)─(activation)─ y
 *   b ─(Transpose, optional)─┘
 *
 * Inputs a and b have a fixed rank with symbolic dims (so one session serves
 * every shape of that rank); bias and the PRelu slope have no declared shape
 * (any rank that broadcasts). ORT's graph optimizer folds Transpose+MatMul
 * into a single FusedMatMul with transA/transB flags, so the transposes are
 * never materialized.
 */
import { ONNX_IR_VERSION, ONNX_OPSET, OnnxAttributeType, OnnxDataType, onnxType } from "./onnxSchema.js";

/** The activations tfjs' fused matMul defines (tfjs-core fused_types.ts). */
export type FusedActivation = "linear" | "relu" | "relu6" | "elu" | "leakyrelu" | "sigmoid" | "prelu";

export const FUSED_ACTIVATIONS: readonly FusedActivation[] = ["linear", "relu", "relu6", "elu", "leakyrelu", "sigmoid", "prelu"];

export interface MatMulModelSpec {
  /** Rank of a and b as fed to ORT (≥ 2). */
  rank: number;
  transposeA: boolean;
  transposeB: boolean;
  bias: boolean;
  activation: FusedActivation;
  /** LeakyRelu slope; only used for activation "leakyrelu". */
  leakyreluAlpha?: number;
}

/** Graph input/output names. */
export const IO = { a: "a", b: "b", bias: "bias", slope: "slope", y: "y" } as const;

interface NodeSpec {
  op_type: string;
  input: string[];
  output: string[];
  attribute?: object[];
}

function tensorValueInfo(name: string, rank: number | null): object {
  const tensor_type: { elem_type: number; shape?: object } = { elem_type: OnnxDataType.FLOAT };
  if (rank !== null) {
    tensor_type.shape = { dim: Array.from({ length: rank }, (_, i) => ({ dim_param: `${name}_d${i}` })) };
  }
  return { name, type: { tensor_type } };
}

function scalarInitializer(name: string, value: number): object {
  return { name, data_type: OnnxDataType.FLOAT, dims: [], float_data: [value] };
}

/** A stable cache key for a spec (alpha only matters for leakyrelu). */
export function matMulModelKey(spec: MatMulModelSpec): string {
  const alpha = spec.activation === "leakyrelu" ? `:${spec.leakyreluAlpha ?? 0.2}` : "";
  return `r${spec.rank}|${spec.transposeA ? "T" : "N"}${spec.transposeB ? "T" : "N"}|${spec.bias ? "bias" : "-"}|${spec.activation}${alpha}`;
}

/** Serialized ModelProto for the spec. */
export function buildMatMulModel(spec: MatMulModelSpec): Uint8Array {
  if (!Number.isInteger(spec.rank) || spec.rank < 2) throw new Error(`matMul model rank must be an integer ≥ 2, got ${spec.rank}`);
  const nodes: NodeSpec[] = [];
  const initializer: object[] = [];
  // Swap the last two axes only; leading (batch) axes stay in place.
  const perm = [...Array.from({ length: spec.rank - 2 }, (_, i) => i), spec.rank - 1, spec.rank - 2];
  const transpose = (x: string, out: string): string => {
    nodes.push({ op_type: "Transpose", input: [x], output: [out], attribute: [{ name: "perm", type: OnnxAttributeType.INTS, ints: perm }] });
    return out;
  };
  const a = spec.transposeA ? transpose(IO.a, "a_t") : IO.a;
  const b = spec.transposeB ? transpose(IO.b, "b_t") : IO.b;

  // Epilogue steps, each applied to the previous value.
  const steps: Array<(x: string) => Omit<NodeSpec, "output">> = [];
  if (spec.bias) steps.push((x) => ({ op_type: "Add", input: [x, IO.bias] }));
  switch (spec.activation) {
    case "linear":
      break;
    case "relu":
      steps.push((x) => ({ op_type: "Relu", input: [x] }));
      break;
    case "relu6":
      // Clip-11+ takes min/max as inputs.
      initializer.push(scalarInitializer("clip_min", 0), scalarInitializer("clip_max", 6));
      steps.push((x) => ({ op_type: "Clip", input: [x, "clip_min", "clip_max"] }));
      break;
    case "elu":
      // tfjs elu is x > 0 ? x : exp(x) - 1, i.e. alpha = 1.
      steps.push((x) => ({ op_type: "Elu", input: [x], attribute: [{ name: "alpha", type: OnnxAttributeType.FLOAT, f: 1 }] }));
      break;
    case "leakyrelu": {
      const alpha = spec.leakyreluAlpha ?? 0.2;
      steps.push((x) => ({ op_type: "LeakyRelu", input: [x], attribute: [{ name: "alpha", type: OnnxAttributeType.FLOAT, f: alpha }] }));
      break;
    }
    case "sigmoid":
      steps.push((x) => ({ op_type: "Sigmoid", input: [x] }));
      break;
    case "prelu":
      steps.push((x) => ({ op_type: "PRelu", input: [x, IO.slope] }));
      break;
    default: {
      const never: never = spec.activation;
      throw new Error(`unsupported activation ${String(never)}`);
    }
  }
  let cur: string = steps.length > 0 ? "mm" : IO.y;
  nodes.push({ op_type: "MatMul", input: [a, b], output: [cur] });
  steps.forEach((step, i) => {
    const out = i === steps.length - 1 ? IO.y : `ep${i}`;
    nodes.push({ ...step(cur), output: [out] });
    cur = out;
  });

  const inputs = [tensorValueInfo(IO.a, spec.rank), tensorValueInfo(IO.b, spec.rank)];
  if (spec.bias) inputs.push(tensorValueInfo(IO.bias, null));
  if (spec.activation === "prelu") inputs.push(tensorValueInfo(IO.slope, null));

  const ModelProto = onnxType("ModelProto");
  const model = ModelProto.fromObject({
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: "", version: ONNX_OPSET }],
    producer_name: "vidrecall-accel",
    graph: {
      name: `matmul_${matMulModelKey(spec).replace(/[^A-Za-z0-9]+/g, "_")}`,
      node: nodes,
      initializer,
      input: inputs,
      output: [tensorValueInfo(IO.y, null)],
    },
  });
  return ModelProto.encode(model).finish();
}
