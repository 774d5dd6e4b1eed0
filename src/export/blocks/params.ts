/** Parameters looked up by name in the model's ParamStore, for blocks that keep theirs private. */
import type { ParamStore } from "../../model/core.js";
import { valuesOf } from "./layers.js";

export function paramValues(params: ParamStore, name: string, shape: readonly number[]): Float32Array {
  if (!params.has(name)) throw new Error(`ONNX export: the model has no parameter ${name}`);
  const v = params.variable(name);
  if (v.shape.join("x") !== shape.join("x")) throw new Error(`ONNX export: parameter ${name} is ${v.shape.join("x")}, expected ${shape.join("x")}`);
  return valuesOf(v);
}
