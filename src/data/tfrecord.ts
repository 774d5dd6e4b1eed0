/**
 * Streaming TFRecord reader and writer.
 *
 * A TFRecord file is a sequence of records, each framed as
 *
 *   uint64 LE  payload length
 *   uint32 LE  masked CRC32C of the 8 length bytes
 *   bytes      payload
 *   uint32 LE  masked CRC32C of the payload
 *
 * The reader keeps one reusable buffer (a few MiB) and reads the file through a
 * FileHandle in chunks, so memory stays flat however large the file is. Both
 * CRCs are verified; corruption and truncation throw a TfRecordError naming the
 * file, the 0-based record index and the record's byte offset.
 */
import { open, type FileHandle } from "node:fs/promises";
import { basename } from "node:path";
import { crc32c } from "@node-rs/crc32";

const HEADER_BYTES = 12; // uint64 length + uint32 length CRC
const FOOTER_BYTES = 4; // uint32 payload CRC
const MASK_DELTA = 0xa282ead8;

/** Default read size: big enough that syscalls are rare, small enough to be cache-friendly. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** One framed record. `payload` may be a view into the reader's buffer; see readTfRecords. */
export interface TfRecord {
  payload: Uint8Array;
  /** 0-based position of the record in its file. */
  index: number;
  /** Byte offset of the record's header within the file. */
  offset: number;
}

export interface ReadTfRecordsOptions {
  /** Bytes read per fs call (default 4 MiB). Records larger than this still work: the buffer grows. */
  chunkBytes?: number;
  /**
   * Yield a fresh copy of each payload instead of a view into the shared read
   * buffer. Needed only when payloads are kept past the next iteration.
   */
  copyPayloads?: boolean;
}

/** A framing problem (CRC mismatch, truncation, absurd length) at a known place in a TFRecord file. */
export class TfRecordError extends Error {
  override readonly name = "TfRecordError";
  constructor(
    readonly file: string,
    readonly recordIndex: number,
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`${basename(file)}: record ${recordIndex} at byte ${offset}: ${problem}`);
  }
}

/** TensorFlow's CRC masking: rotate right by 15 bits and add a constant, all in uint32. */
export function maskCrc32c(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + MASK_DELTA) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  return maskCrc32c(crc32c(bytes));
}

function hex32(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/** Frames one payload as a TFRecord (header, payload, footer). */
export function encodeTfRecord(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length + FOOTER_BYTES);
  out.writeBigUInt64LE(BigInt(payload.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(payload, HEADER_BYTES);
  out.writeUInt32LE(maskedCrc32c(payload), HEADER_BYTES + payload.length);
  return out;
}

/** Frames many payloads into one contiguous TFRecord file image. */
export function encodeTfRecords(payloads: Iterable<Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  for (const p of payloads) parts.push(encodeTfRecord(p));
  return Buffer.concat(parts);
}

/**
 * Reads `file` record by record.
 *
 * Contract (unless `copyPayloads` is set): each yielded `payload` is a view into
 * a buffer the reader reuses, valid only until the generator is resumed. Decode
 * it (or copy it) before asking for the next record. This avoids one allocation
 * and copy per record, which matters at tens of thousands of records per second.
 *
 * Breaking out of a `for await` loop closes the file.
 */
export async function* readTfRecords(
  file: string,
  options: ReadTfRecordsOptions = {},
): AsyncGenerator<TfRecord, void, undefined> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) {
    throw new RangeError(`readTfRecords: chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const copy = options.copyPayloads ?? false;

  const fh: FileHandle = await open(file, "r");
  try {
    const fileSize = (await fh.stat()).size;
    // Window of valid bytes is buf[start, end); buf[start] is at file offset `base`.
    let buf = Buffer.allocUnsafe(Math.max(chunkBytes, HEADER_BYTES + FOOTER_BYTES));
    let start = 0;
    let end = 0;
    let base = 0;
    let filePos = 0;
    let eof = false;

    /** Makes at least `n` bytes available from `start`; returns how many are (fewer only at EOF). */
    const fill = async (n: number): Promise<number> => {
      while (end - start < n && !eof) {
        if (buf.length - start < n) {
          // Not enough room after `start`: slide the live bytes to the front,
          // growing the buffer when a single record exceeds it.
          const live = end - start;
          if (buf.length < n) {
            const bigger = Buffer.allocUnsafe(Math.max(n, buf.length * 2));
            buf.copy(bigger, 0, start, end);
            buf = bigger;
          } else {
            buf.copyWithin(0, start, end);
          }
          start = 0;
          end = live;
        }
        const want = Math.min(buf.length - end, Math.max(chunkBytes, n - (end - start)));
        const { bytesRead } = await fh.read(buf, end, want, filePos);
        if (bytesRead === 0) {
          eof = true;
        } else {
          end += bytesRead;
          filePos += bytesRead;
        }
      }
      return end - start;
    };

    for (let index = 0; ; index++) {
      const offset = base;
      const fail = (problem: string): TfRecordError => new TfRecordError(file, index, offset, problem);

      const haveHeader = await fill(HEADER_BYTES);
      if (haveHeader === 0) return; // clean end of file between records
      if (haveHeader < HEADER_BYTES) {
        throw fail(
          `truncated: file ends ${haveHeader} bytes into the ${HEADER_BYTES}-byte record header`,
        );
      }

      const lenBytes = buf.subarray(start, start + 8);
      const storedLenCrc = buf.readUInt32LE(start + 8);
      const computedLenCrc = maskedCrc32c(lenBytes);
      if (storedLenCrc !== computedLenCrc) {
        throw fail(
          `length CRC32C mismatch (stored ${hex32(storedLenCrc)}, computed ${hex32(computedLenCrc)})`,
        );
      }
      const lenBig = buf.readBigUInt64LE(start);
      const available = fileSize - offset - HEADER_BYTES;
      if (lenBig > BigInt(available)) {
        // Checked against the file size first so a bogus length never triggers a huge allocation.
        throw fail(
          `truncated: header says ${lenBig} payload bytes, file ends after ${Math.max(0, available)}`,
        );
      }
      const len = Number(lenBig);

      const need = HEADER_BYTES + len + FOOTER_BYTES;
      const have = await fill(need);
      if (have < HEADER_BYTES + len) {
        throw fail(
          `truncated: header says ${len} payload bytes, file ends after ${have - HEADER_BYTES}`,
        );
      }
      if (have < need) {
        throw fail(
          `truncated: file ends ${have - HEADER_BYTES - len} bytes into the 4-byte payload CRC32C ` +
            `after a ${len}-byte payload`,
        );
      }

      const payloadStart = start + HEADER_BYTES;
      const payload = buf.subarray(payloadStart, payloadStart + len);
      const storedCrc = buf.readUInt32LE(payloadStart + len);
      const computedCrc = maskedCrc32c(payload);
      if (storedCrc !== computedCrc) {
        throw fail(
          `payload CRC32C mismatch (stored ${hex32(storedCrc)}, computed ${hex32(computedCrc)})`,
        );
      }

      start += need;
      base += need;
      yield { payload: copy ? new Uint8Array(payload) : payload, index, offset };
    }
  } finally {
    await fh.close();
  }
}
