#!/usr/bin/env node
import { buildProgram } from "./program.js";

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`vidrecall: error: ${message}\n`);
    if (process.env.VIDRECALL_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + "\n");
    process.exit(1);
  });
