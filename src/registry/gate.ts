/**
 * The promotion gate: a candidate may replace its parent only if, on the
 * holdout, it loses at most `tolerance` of GAP@20 and of category accuracy
 * on the old labels, and each new label with at least `minPositives` holdout
 * positives reaches `minNewLabelAp`. New labels with fewer positives are
 * listed as unchecked (too few to measure), not failed.
 */
import type { HoldoutMetrics, NewLabelMetric } from "./holdout.js";

export interface GateOptions {
  /** Largest allowed drop of old-label GAP@20 and category accuracy. Default 0.01. */
  tolerance: number;
  /** Minimum AP of each checked new label. Default 0.5. */
  minNewLabelAp: number;
  /** Holdout positives a new label needs to be checked. Default 20. */
  minPositives: number;
}

export const DEFAULT_GATE: GateOptions = { tolerance: 0.01, minNewLabelAp: 0.5, minPositives: 20 };

export interface GateResult {
  passed: boolean;
  /** Why it failed (empty when it passed). */
  reasons: string[];
  /** What was compared, one line each. */
  checks: string[];
  /** New labels with too few holdout positives to be checked. */
  unchecked: string[];
  options: GateOptions;
}

export function checkGateOptions(o: GateOptions): GateOptions {
  if (!(o.tolerance >= 0)) throw new Error(`gate tolerance must be ≥ 0, got ${o.tolerance}`);
  if (!(o.minNewLabelAp >= 0 && o.minNewLabelAp <= 1)) throw new Error(`gate minimum new-label AP must be in [0, 1], got ${o.minNewLabelAp}`);
  if (!(Number.isInteger(o.minPositives) && o.minPositives >= 1)) throw new Error(`gate minimum positives must be a positive integer, got ${o.minPositives}`);
  return o;
}

const f = (x: number) => x.toFixed(4);

export function applyGate(parent: HoldoutMetrics, candidate: HoldoutMetrics, options: GateOptions = DEFAULT_GATE): GateResult {
  checkGateOptions(options);
  const reasons: string[] = [];
  const checks: string[] = [];
  const unchecked: string[] = [];
  const compare = (what: string, before: number | null, after: number | null) => {
    if (before === null) return;
    if (after === null) {
      reasons.push(`${what}: the candidate has none (parent ${f(before)})`);
      return;
    }
    const drop = before - after;
    checks.push(`${what}: ${f(before)} → ${f(after)} (drop ${f(drop)}, tolerance ${options.tolerance})`);
    // A hair of float slack so an exact tie at the tolerance passes.
    if (drop > options.tolerance + 1e-12) reasons.push(`${what} dropped by ${f(drop)} (${f(before)} → ${f(after)}), more than the tolerance ${options.tolerance}`);
  };
  compare("old-label GAP@20", parent.old.gap20, candidate.old.gap20);
  compare("old-label category accuracy", parent.old.category_accuracy, candidate.old.category_accuracy);
  const newLabels = (space: string, labels: Record<string, NewLabelMetric>) => {
    for (const [name, m] of Object.entries(labels)) {
      if (m.positives < options.minPositives || m.ap === null) {
        unchecked.push(`${space} "${name}" (${m.positives} holdout positives, fewer than ${options.minPositives})`);
        continue;
      }
      checks.push(`new ${space} "${name}": AP ${f(m.ap)} on ${m.positives} positives (minimum ${options.minNewLabelAp})`);
      if (m.ap < options.minNewLabelAp) reasons.push(`new ${space} "${name}" reaches AP ${f(m.ap)} on ${m.positives} holdout positives, below the minimum ${options.minNewLabelAp}`);
    }
  };
  newLabels("tag", candidate.new_tags);
  newLabels("category", candidate.new_categories);
  return { passed: reasons.length === 0, reasons, checks, unchecked, options };
}
