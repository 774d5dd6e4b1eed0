/**
 * Runs a `vidrecall` command in a child process and follows its progress
 * protocol (`--progress jsonl`): one JSON object per stdout line,
 *   {"event":"progress","stage":"embed","done":120,"total":5000}
 *   {"event":"result", ...}
 *   {"event":"error","message":"..."}
 * The child is this very CLI (`process.execPath` + our main script), so a
 * server running from source runs the source CLI and a built one the built
 * CLI. Index builds and training are CPU-bound native work that must stay
 * out of the server's event loop; a child also keeps a crash there from
 * taking the server down.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export interface ProgressEvent {
  event: "progress";
  stage: string;
  done: number;
  total?: number;
  [key: string]: unknown;
}

export interface CliOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The `result` event's payload (without "event"), if one came. */
  result: Record<string, unknown> | null;
  /** The `error` event's message, else the last stderr line, for a failed run. */
  error: string | null;
  ok: boolean;
}

export interface CliRunOptions {
  onProgress?: (p: ProgressEvent) => void;
  /** Lines of stdout that are not protocol JSON, and stderr lines. */
  onLog?: (stream: "stdout" | "stderr", line: string) => void;
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** argv prefix that runs this CLI: node, tsx's loader when running from source, the main script. */
export function cliCommand(): string[] {
  const js = fileURLToPath(new URL("../cli/main.js", import.meta.url));
  if (existsSync(js)) return [process.execPath, js];
  const ts = fileURLToPath(new URL("../cli/main.ts", import.meta.url));
  if (existsSync(ts)) return [process.execPath, "--import", "tsx", ts];
  throw new Error(`cannot find the vidrecall CLI next to ${fileURLToPath(import.meta.url)} (run npm run build)`);
}

const STDERR_TAIL = 20;

/**
 * Runs `command` (argv, e.g. [...cliCommand(), "reindex", ...]); resolves when
 * it exits, never rejects for the child's own failure (see `ok`). Aborting
 * sends SIGTERM, then SIGKILL after 10 s.
 */
export function runCli(command: string[], options: CliRunOptions = {}): Promise<CliOutcome> {
  return new Promise((resolvePromise, reject) => {
    const [file, ...args] = command;
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let result: Record<string, unknown> | null = null;
    let errorMessage: string | null = null;
    const stderrTail: string[] = [];
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
      const event = parseEvent(line);
      if (!event) {
        if (line.trim() !== "") options.onLog?.("stdout", line);
        return;
      }
      if (event.event === "progress") options.onProgress?.(event as ProgressEvent);
      else if (event.event === "result") {
        const { event: _omit, ...rest } = event;
        void _omit;
        result = rest;
      } else if (event.event === "error") errorMessage = typeof event.message === "string" ? event.message : JSON.stringify(event);
    });
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on("line", (line) => {
      if (line.trim() === "") return;
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
      options.onLog?.("stderr", line);
    });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      killTimer.unref();
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (err) => {
      options.signal?.removeEventListener("abort", onAbort);
      reject(new Error(`cannot start ${file}: ${err.message}`));
    });
    // "close" (not "exit"): stdout and stderr have been read to the end.
    child.once("close", (code, signal) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      const ok = code === 0 && errorMessage === null;
      let error: string | null = null;
      if (!ok) {
        const lastErr = stderrTail.filter((l) => l.startsWith("vidrecall: error:")).pop() ?? stderrTail[stderrTail.length - 1];
        error =
          errorMessage ??
          (lastErr ? lastErr.replace(/^vidrecall: error: /, "") : signal ? `killed by ${signal}` : `exited with code ${code}`);
      }
      resolvePromise({ exitCode: code, signal, result, error, ok });
    });
  });
}

function parseEvent(line: string): Record<string, unknown> | null {
  const t = line.trim();
  if (!t.startsWith("{")) return null;
  try {
    const v = JSON.parse(t) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v) && typeof (v as { event?: unknown }).event === "string") return v as Record<string, unknown>;
  } catch {
    // Not protocol output.
  }
  return null;
}
