#!/usr/bin/env node
/**
 * postinstall: rebuilds hnswlib-node for this machine's CPU (-O3 -march=native).
 *
 * hnswlib picks its SIMD distance kernels at compile time (SSE, AVX, AVX-512
 * behind __AVX__/__AVX512F__), and hnswlib-node's binding.gyp passes no
 * architecture flag, so its own install compiles the SSE kernels only.
 * hnswlib's Python package builds with -march=native by default for that
 * reason; measured here (100k × 256-d, M 16, ef 64): 0.35–0.41 ms per search
 * with the stock build, 0.21–0.26 ms native.
 *
 * A native build only runs on CPUs like this one. Set VIDRECALL_HNSW_PORTABLE=1
 * when the install is copied to other machines (a container image built
 * elsewhere): the stock, portable build is then kept. A failed native build
 * also keeps it, with a warning; it never fails the install.
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const log = (line) => process.stderr.write(`vidrecall postinstall: ${line}\n`);

function main() {
  if (process.env.VIDRECALL_HNSW_PORTABLE === "1") {
    log("VIDRECALL_HNSW_PORTABLE=1: keeping the portable hnswlib-node build");
    return;
  }
  if (process.platform !== "linux" || !["x64", "ia32"].includes(process.arch)) {
    log(`${process.platform}/${process.arch}: keeping the stock hnswlib-node build`);
    return;
  }
  let pkgDir;
  try {
    pkgDir = dirname(createRequire(import.meta.url).resolve("hnswlib-node/package.json"));
  } catch {
    log("hnswlib-node is not installed: nothing to rebuild");
    return;
  }
  // npm runs lifecycle scripts with its own node-gyp at npm_config_node_gyp.
  const gyp = process.env.npm_config_node_gyp;
  if (!gyp || !existsSync(gyp)) {
    log("no node-gyp from npm (run through `npm ci` / `npm rebuild`): keeping the stock hnswlib-node build");
    return;
  }
  const flags = "-O3 -march=native";
  const r = spawnSync(process.execPath, [gyp, "rebuild"], {
    cwd: pkgDir,
    env: { ...process.env, CXXFLAGS: `${process.env.CXXFLAGS ?? ""} ${flags}`.trim() },
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  });
  if (r.status !== 0) {
    const tail = (r.stderr ?? "").trim().split("\n").slice(-5).join("\n  ");
    log(`native hnswlib-node build failed (status ${r.status}); rebuilding the portable one:\n  ${tail}`);
    const again = spawnSync(process.execPath, [gyp, "rebuild"], { cwd: pkgDir, stdio: ["ignore", "ignore", "inherit"] });
    if (again.status !== 0) process.exitCode = again.status ?? 1;
    return;
  }
  if (!existsSync(join(pkgDir, "build", "Release", "addon.node"))) {
    log("native build left no addon.node");
    process.exitCode = 1;
    return;
  }
  log(`hnswlib-node rebuilt for this CPU (${flags})`);
}

main();
