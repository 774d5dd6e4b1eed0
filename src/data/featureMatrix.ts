/**
 * A dense per-video feature matrix: `frames` rows of `dim` float32 values,
 * row-major. Video-level features are a single row (frames = 1).
 */
export interface FeatureMatrix {
  frames: number;
  dim: number;
  values: Float32Array;
}

/** Index of the first NaN or ±Infinity in `values`, or -1 if all are finite. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) {
    // v - v is 0 for finite numbers and NaN for NaN/±Infinity: one cheap test.
    const v = values[i];
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Checks that `m` is a well-formed matrix (positive integer shape matching
 * values.length, optionally a required `dim`) holding only finite values.
 * Throws a RangeError naming `what` and the offending frame/column.
 */
export function assertFeatureMatrix(m: FeatureMatrix, what: string, expectedDim?: number): void {
  if (!Number.isInteger(m.frames) || m.frames < 1) {
    throw new RangeError(`${what}: frames must be a positive integer, got ${m.frames}`);
  }
  if (!Number.isInteger(m.dim) || m.dim < 1) {
    throw new RangeError(`${what}: dim must be a positive integer, got ${m.dim}`);
  }
  if (expectedDim !== undefined && m.dim !== expectedDim) {
    throw new RangeError(`${what}: dim is ${m.dim}, expected ${expectedDim}`);
  }
  if (m.values.length !== m.frames * m.dim) {
    throw new RangeError(
      `${what}: ${m.values.length} values do not fill ${m.frames}×${m.dim} = ${m.frames * m.dim}`,
    );
  }
  const bad = firstNonFinite(m.values);
  if (bad >= 0) {
    throw new RangeError(
      `${what}: value at frame ${Math.floor(bad / m.dim)}, column ${bad % m.dim} is ${m.values[bad]}`,
    );
  }
}

/** Row `frame` of `m` as a view (no copy). */
export function featureRow(m: FeatureMatrix, frame: number): Float32Array {
  if (!Number.isInteger(frame) || frame < 0 || frame >= m.frames) {
    throw new RangeError(`featureRow: frame ${frame} out of range 0..${m.frames - 1}`);
  }
  return m.values.subarray(frame * m.dim, (frame + 1) * m.dim);
}
