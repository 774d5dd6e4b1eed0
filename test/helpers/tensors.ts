import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";

/** Element-wise |actual − expected| ≤ tol, naming the first index that is not. */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (|Δ| ${d} > ${tol})`);
  }
}

export function allFinite(t: tf.Tensor, what: string): void {
  for (const v of t.dataSync()) assert.ok(Number.isFinite(v), `${what} has a non-finite value ${v}`);
}
