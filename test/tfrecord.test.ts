import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  encodeTfRecord,
  encodeTfRecords,
  maskCrc32c,
  maskedCrc32c,
  readTfRecords,
  TfRecordError,
  type ReadTfRecordsOptions,
} from "../src/data/tfrecord.js";

/** Deterministic payloads of varied sizes (including empty and multi-KiB). */
function makePayloads(count: number): Uint8Array[] {
  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const len = i === 0 ? 0 : i % 50 === 0 ? 9000 + (rand() % 3000) : rand() % 600;
    const p = new Uint8Array(len);
    for (let j = 0; j < len; j++) p[j] = rand() & 0xff;
    out.push(p);
  }
  return out;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "vidrecall-tfrecord-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function readAll(file: string, options: ReadTfRecordsOptions = {}) {
  const out: { payload: Uint8Array; index: number; offset: number }[] = [];
  for await (const r of readTfRecords(file, { ...options, copyPayloads: true })) out.push(r);
  return out;
}

async function expectTfRecordError(file: string, check: (e: TfRecordError) => void, options: ReadTfRecordsOptions = {}) {
  let caught: unknown;
  try {
    await readAll(file, options);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof TfRecordError, `expected a TfRecordError, got ${String(caught)}`);
  check(caught);
}

/** File offsets of each record's header in an encodeTfRecords image. */
function offsetsOf(payloads: Uint8Array[]): number[] {
  const offsets: number[] = [];
  let pos = 0;
  for (const p of payloads) {
    offsets.push(pos);
    pos += 16 + p.length;
  }
  return offsets;
}

test("masked CRC and framing match a TensorFlow-written header", () => {
  // First 12 bytes of YouTube-8M validate0000.tfrecord (written by TensorFlow):
  // length 4695, masked CRC32C of those 8 bytes.
  const header = encodeTfRecord(new Uint8Array(4695)).subarray(0, 12);
  assert.equal(header.toString("hex"), "57120000000000008d33004f");
  assert.equal(maskCrc32c(0), 0xa282ead8);
});

test("round trip over many records and chunk sizes that split headers, payloads and footers", async () => {
  const payloads = makePayloads(400);
  const offsets = offsetsOf(payloads);
  await withTempDir(async (dir) => {
    const file = join(dir, "many.tfrecord");
    await writeFile(file, encodeTfRecords(payloads));
    for (const chunkBytes of [1, 7, 16, 100, 4096, undefined]) {
      const got = await readAll(file, { chunkBytes });
      assert.equal(got.length, payloads.length, `chunkBytes=${chunkBytes}`);
      for (let i = 0; i < payloads.length; i++) {
        assert.equal(got[i].index, i);
        assert.equal(got[i].offset, offsets[i], `offset of record ${i}, chunkBytes=${chunkBytes}`);
        assert.deepEqual(got[i].payload, payloads[i], `payload ${i}, chunkBytes=${chunkBytes}`);
      }
    }
  });
});

test("zero-copy views are correct when consumed before the next record", async () => {
  const payloads = makePayloads(120);
  await withTempDir(async (dir) => {
    const file = join(dir, "views.tfrecord");
    await writeFile(file, encodeTfRecords(payloads));
    let n = 0;
    for await (const r of readTfRecords(file, { chunkBytes: 333 })) {
      assert.ok(Buffer.from(r.payload).equals(payloads[r.index]), `record ${r.index}`);
      n++;
    }
    assert.equal(n, payloads.length);
  });
});

test("empty file has no records; breaking early stops cleanly", async () => {
  await withTempDir(async (dir) => {
    const empty = join(dir, "empty.tfrecord");
    await writeFile(empty, Buffer.alloc(0));
    assert.deepEqual(await readAll(empty), []);

    const file = join(dir, "some.tfrecord");
    await writeFile(file, encodeTfRecords(makePayloads(10)));
    let seen = 0;
    for await (const r of readTfRecords(file)) {
      seen = r.index + 1;
      if (r.index === 2) break;
    }
    assert.equal(seen, 3);
  });
});

test("length CRC mismatch names the record and its offset", async () => {
  const payloads = makePayloads(20);
  const offsets = offsetsOf(payloads);
  await withTempDir(async (dir) => {
    const image = encodeTfRecords(payloads);
    // Corrupt the length bytes of record 5 (not the CRC).
    const badLen = Buffer.from(image);
    badLen[offsets[5] + 1] ^= 0x01;
    const f1 = join(dir, "badlen.tfrecord");
    await writeFile(f1, badLen);
    await expectTfRecordError(f1, (e) => {
      assert.equal(e.recordIndex, 5);
      assert.equal(e.offset, offsets[5]);
      assert.equal(e.file, f1);
      assert.match(e.message, new RegExp(`^badlen\\.tfrecord: record 5 at byte ${offsets[5]}: length CRC32C mismatch \\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\)$`));
    });
    // Corrupt the stored length CRC of record 0.
    const badCrc = Buffer.from(image);
    badCrc[9] ^= 0x80;
    const f2 = join(dir, "badlencrc.tfrecord");
    await writeFile(f2, badCrc);
    await expectTfRecordError(f2, (e) => {
      assert.equal(e.recordIndex, 0);
      assert.equal(e.offset, 0);
      assert.match(e.message, /record 0 at byte 0: length CRC32C mismatch/);
    }, { chunkBytes: 5 });
  });
});

test("payload CRC mismatch names the record and its offset", async () => {
  const payloads = makePayloads(60);
  const offsets = offsetsOf(payloads);
  await withTempDir(async (dir) => {
    const image = encodeTfRecords(payloads);
    const badPayload = Buffer.from(image);
    const k = 50; // the 9000+ byte record
    badPayload[offsets[k] + 12 + 4000] ^= 0x10;
    const f1 = join(dir, "badpayload.tfrecord");
    await writeFile(f1, badPayload);
    await expectTfRecordError(f1, (e) => {
      assert.equal(e.recordIndex, k);
      assert.equal(e.offset, offsets[k]);
      assert.match(e.message, new RegExp(`record ${k} at byte ${offsets[k]}: payload CRC32C mismatch \\(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\\)`));
    }, { chunkBytes: 1024 });
    // Corrupt the stored payload CRC (footer) of the last record.
    const last = payloads.length - 1;
    const badFooter = Buffer.from(image);
    badFooter[image.length - 1] ^= 0xff;
    const f2 = join(dir, "badfooter.tfrecord");
    await writeFile(f2, badFooter);
    await expectTfRecordError(f2, (e) => {
      assert.equal(e.recordIndex, last);
      assert.equal(e.offset, offsets[last]);
      assert.match(e.message, /payload CRC32C mismatch/);
    });
  });
});

test("truncation inside header, payload and footer names the record", async () => {
  const payloads = makePayloads(12).map((p, i) => (p.length === 0 ? new Uint8Array([i]) : p));
  const offsets = offsetsOf(payloads);
  const image = encodeTfRecords(payloads);
  const k = 7;
  const len = payloads[k].length;
  const cases: { cut: number; message: RegExp }[] = [
    { cut: offsets[k] + 5, message: /truncated: file ends 5 bytes into the 12-byte record header/ },
    { cut: offsets[k] + 12, message: new RegExp(`truncated: header says ${len} payload bytes, file ends after 0$`) },
    { cut: offsets[k] + 12 + 1, message: new RegExp(`truncated: header says ${len} payload bytes, file ends after 1$`) },
    { cut: offsets[k] + 12 + len, message: /truncated: file ends 0 bytes into the 4-byte payload CRC32C/ },
    { cut: offsets[k] + 12 + len + 3, message: /truncated: file ends 3 bytes into the 4-byte payload CRC32C/ },
  ];
  await withTempDir(async (dir) => {
    for (const { cut, message } of cases) {
      const file = join(dir, `cut${cut}.tfrecord`);
      await writeFile(file, image.subarray(0, cut));
      for (const chunkBytes of [3, undefined]) {
        await expectTfRecordError(file, (e) => {
          assert.equal(e.recordIndex, k, `cut at ${cut}`);
          assert.equal(e.offset, offsets[k]);
          assert.match(e.message, new RegExp(`^cut${cut}\\.tfrecord: record ${k} at byte ${offsets[k]}: `));
          assert.match(e.message, message);
        }, { chunkBytes });
      }
    }
    // A cut exactly between records is a shorter, valid file.
    const file = join(dir, "boundary.tfrecord");
    await writeFile(file, image.subarray(0, offsets[k]));
    assert.equal((await readAll(file)).length, k);
  });
});

test("a CRC-valid but impossible length is reported as truncation without allocating it", async () => {
  await withTempDir(async (dir) => {
    const header = Buffer.alloc(12);
    header.writeBigUInt64LE(1n << 40n, 0);
    header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
    const file = join(dir, "huge.tfrecord");
    await writeFile(file, Buffer.concat([encodeTfRecord(new Uint8Array([1, 2, 3])), header, Buffer.alloc(20)]));
    await expectTfRecordError(file, (e) => {
      assert.equal(e.recordIndex, 1);
      assert.equal(e.offset, 19);
      assert.match(e.message, /truncated: header says 1099511627776 payload bytes, file ends after 20/);
    });
  });
});

test("rejects a bad chunk size", async () => {
  const gen = readTfRecords("/nonexistent", { chunkBytes: 0 });
  await assert.rejects(gen.next(), /chunkBytes must be a positive integer/);
});
