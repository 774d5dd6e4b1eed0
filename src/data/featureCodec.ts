/**
 * Compact storage of per-video feature matrices.
 *
 * - `uint8`: YouTube-8M quantisation, x ≈ q·4/255 + 4/512 − 2 over [−2, 2].
 *   Absolute error ≤ 2/255 ≈ 0.00784 for x in range; values outside are
 *   clamped, so it is only chosen for data known to be in range (YouTube-8M
 *   frame features, which arrive quantised and so round-trip exactly).
 * - `float16`: IEEE half precision. For |x| ≤ 65504 the error is
 *   ≤ 2⁻¹¹·|x| + 2⁻²⁵ (round to nearest; the 2⁻²⁵ covers subnormals);
 *   larger magnitudes are rejected at encode time.
 */
import { Float16Array } from "@petamoriken/float16";
import type { FeatureMatrix } from "./featureMatrix.js";

export type FeatureEncoding = "uint8" | "float16";
export const FEATURE_ENCODINGS: readonly FeatureEncoding[] = ["uint8", "float16"];

export const UINT8_SCALE = 4 / 255;
export const UINT8_BIAS = 4 / 512 - 2;
export const UINT8_MAX_ABS_ERROR = UINT8_SCALE / 2;
export const FLOAT16_MAX = 65504;

export function dequantizeUint8(q: number): number {
  return q * UINT8_SCALE + UINT8_BIAS;
}

export function quantizeUint8(x: number): number {
  const q = Math.round((x - UINT8_BIAS) / UINT8_SCALE);
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

// One table per encoding turns decoding into a lookup; the float16 table is
// filled by the library so its rounding semantics are the reference ones.
let float16Table: Float32Array | undefined;
function float16ToFloat32Table(): Float32Array {
  if (!float16Table) {
    const bits = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) bits[i] = i;
    float16Table = Float32Array.from(new Float16Array(bits.buffer));
  }
  return float16Table;
}

const uint8Table = Float32Array.from({ length: 256 }, (_, q) => dequantizeUint8(q));

/**
 * float32 → float16 bits, round to nearest even (the algorithm of numpy's
 * npy_floatbits_to_halfbits). Hand-written because the float16 library's
 * Float16Array constructor costs ~100 µs per 1152-value video, which alone
 * would cap imports below the 10k videos/s target; test/featureCodec.test.ts
 * checks it bit for bit against the library. Callers reject |x| > 65504 and
 * NaN beforehand, so the overflow branch only ever sees exact infinities.
 */
export function floatsToHalfBits(values: Float32Array, out: Uint16Array): void {
  const f32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < f32.length; i++) {
    const f = f32[i];
    const sign = (f >>> 16) & 0x8000;
    const exp = f & 0x7f800000;
    if (exp >= 0x47800000) {
      out[i] = exp === 0x7f800000 && (f & 0x007fffff) !== 0 ? sign | 0x7e00 : sign | 0x7c00;
    } else if (exp <= 0x38000000) {
      if (exp < 0x33000000) {
        out[i] = sign;
        continue;
      }
      const e = exp >>> 23;
      let sig = (0x00800000 + (f & 0x007fffff)) >>> (113 - e);
      if ((sig & 0x3fff) !== 0x1000 || (f & 0x7ff) !== 0) sig += 0x1000;
      out[i] = sign + (sig >>> 13);
    } else {
      const hExp = (exp - 0x38000000) >>> 13;
      let sig = f & 0x007fffff;
      if ((sig & 0x3fff) !== 0x1000) sig += 0x1000;
      out[i] = sign + ((sig >>> 13) + hExp);
    }
  }
}

export interface EncodedFeatures {
  frames: number;
  dim: number;
  encoding: FeatureEncoding;
  data: Buffer;
}

export function encodeFeatures(m: FeatureMatrix, encoding: FeatureEncoding): EncodedFeatures {
  const { frames, dim, values } = m;
  if (values.length !== frames * dim) {
    throw new Error(`feature matrix has ${values.length} values, expected frames×dim = ${frames}×${dim}`);
  }
  if (encoding === "uint8") {
    const out = Buffer.allocUnsafe(values.length);
    for (let i = 0; i < values.length; i++) out[i] = quantizeUint8(values[i]);
    return { frames, dim, encoding, data: out };
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= -FLOAT16_MAX && v <= FLOAT16_MAX)) {
      throw new Error(`value ${v} at frame ${Math.floor(i / dim)}, dim ${i % dim} cannot be stored as float16 (|x| must be ≤ ${FLOAT16_MAX})`);
    }
  }
  const out = Buffer.allocUnsafe(values.length * 2);
  const bits = new Uint16Array(out.buffer, out.byteOffset, values.length);
  floatsToHalfBits(values, bits);
  return { frames, dim, encoding, data: out };
}

/** Decodes into `out` (or a new array) as float32, row-major frames×dim. */
export function decodeFeatures(e: EncodedFeatures, out?: Float32Array): Float32Array {
  const n = e.frames * e.dim;
  const expectedBytes = e.encoding === "uint8" ? n : 2 * n;
  if (e.data.byteLength !== expectedBytes) {
    throw new Error(`stored ${e.encoding} features have ${e.data.byteLength} bytes, expected ${expectedBytes} for ${e.frames}×${e.dim}`);
  }
  const values = out ?? new Float32Array(n);
  if (e.encoding === "uint8") {
    const src = e.data;
    for (let i = 0; i < n; i++) values[i] = uint8Table[src[i]];
  } else {
    const table = float16ToFloat32Table();
    // Copy when unaligned: a Uint16Array view needs an even byte offset.
    const aligned = e.data.byteOffset % 2 === 0 ? e.data : Buffer.from(e.data);
    const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    for (let i = 0; i < n; i++) values[i] = table[bits[i]];
  }
  return values;
}
