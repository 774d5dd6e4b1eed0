/** Durable file writes: nothing is ever left half-written under its real name. */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/** writeSync until every byte is written (a single call may write fewer). */
export function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/** Flushes a file (or directory) to disk. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a file through a temp file next to it: `write` fills the temp file,
 * which is fsynced and renamed over `path`. On failure the temp file is
 * removed and `path` is untouched.
 */
export function writeFileAtomicWith(path: string, write: (fd: number) => void): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, path);
}

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  writeFileAtomicWith(path, (fd) => writeAll(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data));
}
