/**
 * Progress display: a cli-progress bar on a terminal, occasional plain lines
 * otherwise (CI logs, pipes), so long jobs always show they are alive.
 */
import cliProgress from "cli-progress";

export interface Progress {
  update(done: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

export function createProgress(label: string, total: number | undefined, unit = "videos"): Progress {
  const started = Date.now();
  if (process.stderr.isTTY && total !== undefined) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {extra}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: "0", extra: "" });
    return {
      update(done, extra) {
        const rate = done / Math.max(1e-3, (Date.now() - started) / 1000);
        const text = extra ? Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(" ") : "";
        bar.update(done, { rate: rate.toFixed(0), extra: text });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let lastPrint = started;
  let last = 0;
  let printed = -1;
  const line = (done: number, extra?: Record<string, string | number>) => {
    const secs = (Date.now() - started) / 1000;
    const rate = done / Math.max(1e-3, secs);
    const text = extra ? " " + Object.entries(extra).map(([k, v]) => `${k} ${v}`).join(" ") : "";
    const of = total !== undefined ? `/${total}` : "";
    printed = done;
    process.stderr.write(`${label}: ${done}${of} ${unit}, ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s${text}\n`);
  };
  return {
    update(done, extra) {
      last = done;
      if (Date.now() - lastPrint > 5000) {
        lastPrint = Date.now();
        line(done, extra);
      }
    },
    stop() {
      if (last > 0 && last !== printed) line(last);
    },
  };
}
