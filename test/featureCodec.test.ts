import { Float16Array } from "@petamoriken/float16";
import assert from "node:assert/strict";
import { test } from "node:test";
import seedrandom from "seedrandom";
import {
  decodeFeatures,
  dequantizeUint8,
  encodeFeatures,
  floatsToHalfBits,
  quantizeUint8,
  UINT8_MAX_ABS_ERROR,
} from "../src/data/featureCodec.js";

test("float16 conversion matches the float16 library bit for bit", () => {
  const rng = seedrandom.alea("f16");
  const n = 200_000;
  const bits = new Uint32Array(n);
  // Random bit patterns cover every exponent (subnormals, overflow, NaN) ...
  for (let i = 0; i < n; i++) bits[i] = Math.floor(rng() * 2 ** 32) >>> 0;
  const values = new Float32Array(bits.buffer);
  // ... plus the rounding edge cases: exact halfway points, the largest half, tiny values.
  const edges = [0, -0, 1, -1, 65504, -65504, 65519, 65520, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 5.960464477539063e-8, 0.1, 1e-7];
  const all = Float32Array.from([...values, ...edges]);
  const ours = new Uint16Array(all.length);
  floatsToHalfBits(all, ours);
  const reference = new Uint16Array(new Float16Array(all).buffer);
  for (let i = 0; i < all.length; i++) {
    if (Number.isNaN(all[i])) {
      assert.equal(ours[i] & 0x7c00, 0x7c00, `NaN at ${i} stays NaN`);
      assert.notEqual(ours[i] & 0x03ff, 0);
      continue;
    }
    if (ours[i] !== reference[i]) assert.fail(`value ${all[i]} (bits 0x${bits[i]?.toString(16)}): ours 0x${ours[i].toString(16)}, library 0x${reference[i].toString(16)}`);
  }
});

test("float16 round trip stays within the documented bound", () => {
  const rng = seedrandom.alea("bound");
  const n = 100_000;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = (rng() * 2 - 1) * 10 ** (rng() * 10 - 6);
  const back = decodeFeatures(encodeFeatures({ frames: n / 100, dim: 100, values }, "float16"));
  for (let i = 0; i < n; i++) {
    const bound = 2 ** -11 * Math.abs(values[i]) + 2 ** -25;
    assert.ok(Math.abs(back[i] - values[i]) <= bound, `value ${values[i]} came back as ${back[i]}`);
  }
});

test("float16 refuses values it cannot store, naming the position", () => {
  const values = Float32Array.from([1, 2, 70000, 3]);
  assert.throws(() => encodeFeatures({ frames: 2, dim: 2, values }, "float16"), /value 70000 at frame 1, dim 0/);
});

test("uint8 quantisation: every byte round-trips exactly, values within 4/510", () => {
  for (let q = 0; q < 256; q++) assert.equal(quantizeUint8(dequantizeUint8(q)), q);
  const rng = seedrandom.alea("u8");
  const values = Float32Array.from({ length: 10_000 }, () => rng() * 3.98 - 1.99);
  const back = decodeFeatures(encodeFeatures({ frames: 100, dim: 100, values }, "uint8"));
  for (let i = 0; i < values.length; i++) assert.ok(Math.abs(back[i] - values[i]) <= UINT8_MAX_ABS_ERROR + 1e-6);
});

test("decode checks the stored byte count", () => {
  assert.throws(() => decodeFeatures({ frames: 2, dim: 3, encoding: "float16", data: Buffer.alloc(10) }), /10 bytes, expected 12/);
});
