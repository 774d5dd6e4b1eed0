/** Accelerated kernels for tfjs training (see ortMatMul.ts and wasmKernels.ts). */
export {
  DEFAULT_MIN_FLOPS,
  DEFAULT_MIN_FLOPS_TRANSPOSED,
  disableOrtMatMul,
  enableOrtMatMul,
  isOrtMatMulEnabled,
  ortMatMulConfig,
  ortMatMulStats,
  resetOrtMatMulStats,
  type OrtMatMulOptions,
  type OrtMatMulStats,
  type OrtMatMulStatus,
} from "./ortMatMul.js";
export { buildMatMulModel, type FusedActivation, type MatMulModelSpec } from "./matMulModel.js";
export { ONNX_IR_VERSION, ONNX_OPSET, ONNX_PROTO, onnxRoot, onnxType } from "./onnxSchema.js";
export {
  ADAM_UPDATE_KERNEL,
  disableWasmKernels,
  enableWasmKernels,
  isWasmKernelsEnabled,
  resetWasmKernelStats,
  SUM_SQUARES_KERNEL,
  wasmKernelStats,
  type AdamUpdateAttrs,
  type WasmKernelStats,
} from "./wasmKernels.js";
