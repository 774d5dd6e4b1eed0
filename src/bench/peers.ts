/**
 * Runs the PyTorch peer benchmarks in bench/peers (see its README): the same
 * model as `bench train` written in PyTorch, so our numbers can be set next to
 * a mainstream framework's on the same machine.
 *
 * A peer prints JSON lines; the last one is its result. PyTorch is optional:
 * when the interpreter is missing or cannot import torch, the result is
 * `{ unavailable: reason }` rather than an exception, so the benchmarks still
 * run. Anything else (a crash, no JSON, the timeout) is a real failure and
 * throws, with the end of the peer's stderr.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The interpreter the peers are written for (Debian's python3-torch installs torch for it). */
export const DEFAULT_PYTHON = "/usr/bin/python3";

export type PeerResult = Record<string, unknown> | { unavailable: string };

export interface PeerOptions {
  /** Interpreter to run the script with (default /usr/bin/python3). */
  python?: string;
  /** Directory holding the scripts (default <repo>/bench/peers). */
  peersDir?: string;
  /** Extra environment variables for the peer (added to this process's environment). */
  env?: Record<string, string>;
}

/** Keep at most this much of each output stream (the tail): a peer's result is its last line. */
const MAX_CAPTURE = 1 << 20;

/**
 * The repository root: the nearest directory above `from` with a package.json
 * and bench/peers. Found by walking up so it works from src/ (tsx) and from
 * dist/src/ (compiled) alike.
 */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "bench", "peers"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no repository root (package.json with bench/peers) above ${from}`);
    dir = parent;
  }
}

/** The last line of `text` that parses as a JSON object, or undefined. */
export function lastJsonLine(text: string): Record<string, unknown> | undefined {
  const lines = text.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (!line.startsWith("{")) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (value !== null && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // not JSON: keep looking
    }
  }
  return undefined;
}

/** The message of a Python traceback's final ImportError / ModuleNotFoundError line, if any. */
export function pythonImportError(stderr: string): string | undefined {
  const matches = [...stderr.matchAll(/^(?:ModuleNotFoundError|ImportError): (.*)$/gm)];
  return matches.length > 0 ? matches[matches.length - 1][1].trim() : undefined;
}

function appendTail(buffer: string, chunk: string): string {
  const s = buffer + chunk;
  return s.length > MAX_CAPTURE ? s.slice(s.length - MAX_CAPTURE) : s;
}

function tail(text: string, chars = 2000): string {
  const t = text.trim();
  return t.length > chars ? `…${t.slice(t.length - chars)}` : t;
}

/**
 * Runs `<python> bench/peers/<script> ...args` and returns the last JSON line
 * it printed. Resolves `{ unavailable }` when the interpreter cannot be
 * started, when the peer reports itself unavailable (its `{"unavailable": …}`
 * line: torch not importable), or when it died of an ImportError. Rejects on
 * any other failure, and kills the peer (SIGKILL) if it runs past `timeoutMs`.
 */
export function runPythonPeer(script: string, args: string[], timeoutMs: number, options: PeerOptions = {}): Promise<PeerResult> {
  if (script === "" || /[/\\]/.test(script) || script === "." || script === "..") {
    return Promise.reject(new Error(`peer script must be a file name in the peers directory, got "${script}"`));
  }
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) return Promise.reject(new Error(`timeout must be a positive number of ms, got ${timeoutMs}`));
  const python = options.python ?? DEFAULT_PYTHON;
  const dir = options.peersDir ?? join(findRepoRoot(), "bench", "peers");
  const path = join(dir, script);
  if (!existsSync(path)) return Promise.reject(new Error(`no peer script ${path}`));

  return new Promise<PeerResult>((resolvePromise, reject) => {
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    let stdout = "";
    let stderr = "";
    // No __pycache__ next to the scripts in the working tree.
    const child = spawn(python, [path, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1", ...options.env } });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish(() => reject(new Error(`peer ${script} timed out after ${timeoutMs} ms${stderr ? `; stderr:\n${tail(stderr)}` : ""}`)));
    }, timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout = appendTail(stdout, c)));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr = appendTail(stderr, c)));
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "EACCES") {
        finish(() => resolvePromise({ unavailable: `cannot run ${python} (${err.code}): Python is not installed there` }));
      } else {
        finish(() => reject(new Error(`peer ${script}: cannot start ${python}: ${err.message}`)));
      }
    });
    child.on("close", (code, signal) => {
      finish(() => {
        const result = lastJsonLine(stdout);
        if (result && typeof result.unavailable === "string") return resolvePromise({ unavailable: result.unavailable });
        if (code === 0 && result) return resolvePromise(result);
        const importError = code !== 0 ? pythonImportError(stderr) : undefined;
        if (importError !== undefined) return resolvePromise({ unavailable: `${python} cannot import a module the peer needs: ${importError}` });
        const how = signal ? `was killed by ${signal}` : code === 0 ? "printed no JSON line" : `exited with status ${code}`;
        reject(new Error(`peer ${script} ${how}${stderr ? `; stderr:\n${tail(stderr)}` : ""}`));
      });
    });
  });
}

/** True when a peer result is the `{ unavailable }` form. */
export function isUnavailable(result: PeerResult): result is { unavailable: string } {
  return typeof (result as { unavailable?: unknown }).unavailable === "string";
}
