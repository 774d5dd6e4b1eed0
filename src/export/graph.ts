/**
 * A small ONNX graph builder over the protobufjs schema in
 * train/accel/onnxSchema.ts: named initializers (stored as raw little-endian
 * bytes), nodes with unique output and node names under a slash-separated
 * scope, graph inputs/outputs with symbolic dims, value infos, subgraphs (for
 * Scan bodies) and serialisation to a ModelProto.
 *
 * Opset 17 conventions baked into the helpers: ReduceSum, Squeeze, Unsqueeze
 * take their axes as an input; ReduceMax/ReduceMean still take an `axes`
 * attribute (that moved to an input only in opset 18).
 */
import { ONNX_IR_VERSION, ONNX_OPSET, OnnxAttributeType, OnnxDataType, onnxType } from "../train/accel/onnxSchema.js";

export type ElemType = "float32" | "float64" | "int64" | "bool";
/** A fixed size or a symbolic (named) dimension. */
export type Dim = number | string;

const ELEM_CODE: Record<ElemType, number> = {
  float32: OnnxDataType.FLOAT,
  float64: OnnxDataType.DOUBLE,
  int64: OnnxDataType.INT64,
  bool: OnnxDataType.BOOL,
};

/** Largest int64: Slice's "to the end". */
export const INT64_MAX = 9223372036854775807n;

export interface AttributeValue {
  type: number;
  i?: number;
  ints?: number[];
  f?: number;
  t?: object;
  g?: object;
}

/** Typed attribute constructors (a JS number alone cannot say INT or FLOAT). */
export const attr = {
  int: (i: number): AttributeValue => ({ type: OnnxAttributeType.INT, i }),
  ints: (ints: number[]): AttributeValue => ({ type: OnnxAttributeType.INTS, ints }),
  float: (f: number): AttributeValue => ({ type: OnnxAttributeType.FLOAT, f }),
  tensor: (t: object): AttributeValue => ({ type: OnnxAttributeType.TENSOR, t }),
  graph: (g: object): AttributeValue => ({ type: OnnxAttributeType.GRAPH, g }),
};

type TensorData = Float32Array | Float64Array | BigInt64Array | Uint8Array;

/** A TensorProto object with raw_data (protobufjs fromObject form). */
export function tensorProto(name: string, type: ElemType, dims: readonly number[], data: TensorData): object {
  const size = dims.reduce((a, b) => a * b, 1);
  if (data.length !== size) throw new Error(`tensor ${name}: ${data.length} values for shape [${dims.join(", ")}]`);
  return {
    name,
    data_type: ELEM_CODE[type],
    dims: [...dims],
    raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

export function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): object {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ELEM_CODE[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

interface NodeObject {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: object[];
}

interface Body {
  name: string;
  nodes: NodeObject[];
  inputs: object[];
  outputs: object[];
  valueInfo: object[];
}

/** What every graph view of one model shares: initializers and the name space. */
interface Shared {
  initializers: object[];
  names: Set<string>;
  constCache: Map<string, string>;
  /** Names taken by reserve() and not yet declared. */
  reserved: Set<string>;
}

export class OnnxGraph {
  private constructor(
    private readonly shared: Shared,
    private readonly body: Body,
    /** Prefix of names created through this view ("" at the root). */
    readonly prefix: string,
  ) {}

  static create(name: string): OnnxGraph {
    return new OnnxGraph({ initializers: [], names: new Set(), constCache: new Map(), reserved: new Set() }, { name, nodes: [], inputs: [], outputs: [], valueInfo: [] }, "");
  }

  /** A view that creates names under `prefix/child` (same graph). */
  scope(child: string): OnnxGraph {
    return new OnnxGraph(this.shared, this.body, this.join(child));
  }

  /**
   * A new graph (e.g. a Scan body). It shares the model's name space, as ONNX
   * requires subgraph names not to shadow outer ones, and puts its weights
   * and constants in the main graph, which subgraphs may read (outer scope).
   */
  subgraph(name: string): OnnxGraph {
    const full = this.unique(name);
    return new OnnxGraph(this.shared, { name: full, nodes: [], inputs: [], outputs: [], valueInfo: [] }, full);
  }

  private join(name: string): string {
    return this.prefix ? `${this.prefix}/${name}` : name;
  }

  /** A name not used anywhere in the model yet, under this view's prefix. */
  unique(base: string): string {
    const full = this.join(base);
    let name = full;
    for (let i = 1; this.shared.names.has(name); i++) name = `${full}_${i}`;
    this.shared.names.add(name);
    return name;
  }

  /** Reserves exact names (graph outputs, named by the caller) before generated names could take them. */
  reserve(names: readonly string[]): void {
    for (const n of names) this.claim(n);
    for (const n of names) this.shared.reserved.add(n);
  }

  private claim(name: string): string {
    if (this.shared.reserved.delete(name)) return name;
    if (this.shared.names.has(name)) throw new Error(`ONNX graph: name "${name}" is already used`);
    this.shared.names.add(name);
    return name;
  }

  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.body.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** A graph input with a generated unique name (subgraph inputs). */
  freshInput(base: string, type: ElemType, dims: readonly Dim[]): string {
    const name = this.unique(base);
    this.body.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Declares `value` as a graph output named `name` (an Identity when the names differ). */
  output(value: string, name: string, type: ElemType, dims: readonly Dim[]): string {
    if (value !== name) {
      this.claim(name);
      this.body.nodes.push({ name: this.unique("Identity"), op_type: "Identity", input: [value], output: [name], attribute: [] });
    }
    this.body.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Records the type and shape of an intermediate value (documentation for viewers; ORT infers them anyway). */
  describe(value: string, type: ElemType, dims: readonly Dim[]): void {
    this.body.valueInfo.push(valueInfo(value, type, dims));
  }

  /** A named initializer (a weight). */
  weight(name: string, data: Float32Array, dims: readonly number[]): string {
    const full = this.unique(name);
    this.shared.initializers.push(tensorProto(full, "float32", dims, data));
    return full;
  }

  private constant(type: ElemType, dims: readonly number[], data: TensorData, values: ArrayLike<number | bigint>): string {
    // Small constants (axes, shapes, scalars) are shared by value.
    const key = data.length <= 64 ? `${type}|${dims.join("x")}|${Array.from(values).join(",")}` : undefined;
    const hit = key === undefined ? undefined : this.shared.constCache.get(key);
    if (hit) return hit;
    const name = this.rootUnique(`const_${type}`);
    this.shared.initializers.push(tensorProto(name, type, dims, data));
    if (key !== undefined) this.shared.constCache.set(key, name);
    return name;
  }

  /** Constants live at the root regardless of the view they were asked from. */
  private rootUnique(base: string): string {
    let name = `const/${base}`;
    for (let i = 1; this.shared.names.has(name); i++) name = `const/${base}_${i}`;
    this.shared.names.add(name);
    return name;
  }

  /** A float32 constant; a number gives a scalar. */
  f32(values: number | readonly number[] | Float32Array, dims?: readonly number[]): string {
    const data = typeof values === "number" ? Float32Array.of(values) : Float32Array.from(values);
    return this.constant("float32", dims ?? (typeof values === "number" ? [] : [data.length]), data, data);
  }

  f64(values: number | readonly number[] | Float64Array, dims?: readonly number[]): string {
    const data = typeof values === "number" ? Float64Array.of(values) : Float64Array.from(values);
    return this.constant("float64", dims ?? (typeof values === "number" ? [] : [data.length]), data, data);
  }

  /** An int64 constant; a number gives a scalar. */
  i64(values: number | bigint | readonly (number | bigint)[], dims?: readonly number[]): string {
    const list = typeof values === "number" || typeof values === "bigint" ? [values] : values;
    const data = BigInt64Array.from(list.map((v) => BigInt(v)));
    return this.constant("int64", dims ?? (typeof values === "number" || typeof values === "bigint" ? [] : [data.length]), data, data);
  }

  /** Adds a node with `outputs` outputs; returns their names. */
  opN(opType: string, inputs: readonly string[], outputs: number, attrs: Record<string, AttributeValue> = {}, hint?: string): string[] {
    const base = hint ?? opType;
    const out = Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? base : `${base}_out${i}`));
    this.body.nodes.push({
      name: this.unique(`${base}_node`),
      op_type: opType,
      input: [...inputs],
      output: out,
      attribute: Object.entries(attrs).map(([name, a]) => ({ name, ...a })),
    });
    return out;
  }

  /** Adds a single-output node; returns the output name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttributeValue> = {}, hint?: string): string {
    return this.opN(opType, inputs, 1, attrs, hint)[0];
  }

  // ---- helpers for the ops the exporters use -------------------------------------------

  add(a: string, b: string): string {
    return this.op("Add", [a, b]);
  }
  sub(a: string, b: string): string {
    return this.op("Sub", [a, b]);
  }
  mul(a: string, b: string): string {
    return this.op("Mul", [a, b]);
  }
  div(a: string, b: string): string {
    return this.op("Div", [a, b]);
  }
  max(a: string, b: string): string {
    return this.op("Max", [a, b]);
  }
  min(a: string, b: string): string {
    return this.op("Min", [a, b]);
  }
  matmul(a: string, b: string): string {
    return this.op("MatMul", [a, b]);
  }
  relu(x: string): string {
    return this.op("Relu", [x]);
  }
  /**
   * σ(x) = 1 / (1 + exp(−x)), spelled out: ORT's CPU Sigmoid kernel is a
   * polynomial approximation whose relative error grows for x < −8 (−20 % at
   * x = −16, exactly 0 below about −18), and gate fusion renormalises small
   * gates, so their relative error reaches the output. Exp is accurate.
   */
  sigmoid(x: string): string {
    return this.div(this.f32(1), this.add(this.f32(1), this.op("Exp", [this.op("Neg", [x])])));
  }
  tanh(x: string): string {
    return this.op("Tanh", [x]);
  }
  cast(x: string, to: ElemType): string {
    return this.op("Cast", [x], { to: attr.int(ELEM_CODE[to]) });
  }
  concat(xs: readonly string[], axis: number): string {
    return xs.length === 1 ? xs[0] : this.op("Concat", xs, { axis: attr.int(axis) });
  }
  reshape(x: string, shape: readonly number[]): string {
    return this.op("Reshape", [x, this.i64(shape)]);
  }
  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op("Unsqueeze", [x, this.i64(axes)]);
  }
  squeeze(x: string, axes: readonly number[]): string {
    return this.op("Squeeze", [x, this.i64(axes)]);
  }
  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op("ReduceSum", [x, this.i64(axes)], { keepdims: attr.int(keepdims ? 1 : 0) });
  }
  reduceMax(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op("ReduceMax", [x], { axes: attr.ints([...axes]), keepdims: attr.int(keepdims ? 1 : 0) });
  }
  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    return this.op("ReduceMean", [x], { axes: attr.ints([...axes]), keepdims: attr.int(keepdims ? 1 : 0) });
  }
  /** x[..., start:end] along one axis; `end` may be negative (from the end) or INT64_MAX. */
  slice(x: string, axis: number, start: number, end: number | bigint): string {
    return this.op("Slice", [x, this.i64([start]), this.i64([end]), this.i64([axis])]);
  }
  /** The runtime size of one axis of x, as an int64 [1] tensor. */
  dim(x: string, axis: number): string {
    return this.op("Gather", [this.op("Shape", [x]), this.i64([axis])], { axis: attr.int(0) });
  }
  /** where(cond, a, b) with broadcasting. */
  where(cond: string, a: string, b: string): string {
    return this.op("Where", [cond, a, b]);
  }

  /** The GraphProto object (for a Scan/Loop body or the main graph). */
  graphObject(includeInitializers: boolean): object {
    return {
      name: this.body.name,
      node: this.body.nodes,
      initializer: includeInitializers ? this.shared.initializers : [],
      input: this.body.inputs,
      output: this.body.outputs,
      value_info: this.body.valueInfo,
    };
  }

  /** Serialised ModelProto (opset ONNX_OPSET, IR ONNX_IR_VERSION) of this (root) graph. */
  toModel(meta: { producerVersion: string; docString?: string; metadata?: Record<string, string> }): Uint8Array {
    const ModelProto = onnxType("ModelProto");
    const model = ModelProto.fromObject({
      ir_version: ONNX_IR_VERSION,
      opset_import: [{ domain: "", version: ONNX_OPSET }],
      producer_name: "vidrecall",
      producer_version: meta.producerVersion,
      doc_string: meta.docString ?? "",
      graph: this.graphObject(true),
      metadata_props: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
    });
    const err = ModelProto.verify(model);
    if (err) throw new Error(`ONNX model does not fit the schema: ${err}`);
    return ModelProto.encode(model).finish();
  }

  get nodeCount(): number {
    return this.body.nodes.length;
  }
}
