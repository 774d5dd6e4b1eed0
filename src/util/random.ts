/** Seeded pseudo-random numbers for everything that must be reproducible (tuple draws, fixtures, benchmark data). */
import seedrandom from "seedrandom";

export type Rng = () => number;

/** A uniform [0, 1) generator keyed by the given parts (Alea, from seedrandom). */
export function seededRandom(...parts: (string | number)[]): Rng {
  return seedrandom.alea(parts.map(String).join("\u0000"));
}
