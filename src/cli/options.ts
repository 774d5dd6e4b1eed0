/** Options shared by several commands. */
import { Option } from "commander";
import { BACKENDS } from "../train/backend.js";

export const DEFAULT_DB = "data/vidrecall.sqlite";

export function dbOption(): Option {
  return new Option("--db <path>", "SQLite database").default(DEFAULT_DB);
}

export function backendOption(): Option {
  return new Option("--backend <name>", "tfjs backend: auto picks tfjs-node-gpu, then tfjs-node, then wasm").choices([...BACKENDS]).default("auto");
}

export function parseNonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be an integer ≥ 0, got "${v}"`);
    return n;
  };
}

export function parsePositiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}
