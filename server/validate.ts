/** zod parsing of request parts, turning issues into a 400 that names each bad field. */
import type { z } from "zod";
import { BadRequestError, type FieldProblem } from "../src/service/errors.js";

type Part = "body" | "query" | "params";

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  errors?: Issue[][];
}

const MAX_FIELDS = 20;

function pathString(part: Part, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : `${acc}.${String(p)}`), part);
}

/**
 * Flattens issues; a failed union (features as nested arrays *or* base64)
 * reports the branch that got furthest, so `rgb.encoding` is named rather
 * than "invalid input" at `rgb`.
 */
function flatten(issues: readonly Issue[], prefix: PropertyKey[], out: { path: PropertyKey[]; message: string }[]): void {
  for (const issue of issues) {
    if (out.length >= MAX_FIELDS) return;
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors && issue.errors.length > 0) {
      const depth = (branch: Issue[]) => Math.max(...branch.map((i) => i.path.length));
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0];
      flatten(best, path, out);
      continue;
    }
    out.push({ path, message: issue.message });
  }
}

export function parsePart<S extends z.ZodType>(schema: S, value: unknown, part: Part): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const flat: { path: PropertyKey[]; message: string }[] = [];
  flatten(r.error.issues as unknown as Issue[], [], flat);
  const fields: FieldProblem[] = flat.map((f) => ({ field: pathString(part, f.path), message: f.message }));
  const more = r.error.issues.length > fields.length ? ` (and more)` : "";
  throw new BadRequestError(`invalid ${part}: ${fields.map((f) => `${f.field}: ${f.message}`).join("; ")}${more}`, fields);
}
