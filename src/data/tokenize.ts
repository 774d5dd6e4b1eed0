/**
 * Title tokenisation. Intl.Segmenter's word granularity handles both
 * space-separated scripts and Chinese/Japanese (dictionary-based word
 * breaks), so one code path serves every language; we keep only word-like
 * segments and lower-case them with Unicode case folding (NFKC first, so
 * full-width Latin letters and digits match their ASCII forms).
 */
const segmenter = new Intl.Segmenter(undefined, { granularity: "word" });

export function tokenize(text: string): string[] {
  const normalized = text.normalize("NFKC").toLowerCase();
  const tokens: string[] = [];
  for (const seg of segmenter.segment(normalized)) {
    if (seg.isWordLike) tokens.push(seg.segment);
  }
  return tokens;
}

export const PAD_ID = 0;
export const UNK_ID = 1;
export const PAD_TOKEN = "<pad>";
export const UNK_TOKEN = "<unk>";

/** A frozen token → id map; ids 0 and 1 are reserved for padding and unknown tokens. */
export class TokenVocabulary {
  private readonly ids: Map<string, number>;
  constructor(readonly tokens: readonly string[]) {
    if (tokens[PAD_ID] !== PAD_TOKEN || tokens[UNK_ID] !== UNK_TOKEN) {
      throw new Error(`token vocabulary must start with ${PAD_TOKEN}, ${UNK_TOKEN}`);
    }
    this.ids = new Map(tokens.map((t, i) => [t, i]));
  }

  get size(): number {
    return this.tokens.length;
  }

  idOf(token: string): number {
    return this.ids.get(token) ?? UNK_ID;
  }

  /** Token ids of a title, truncated to maxLength (no padding). */
  encode(title: string, maxLength = Infinity): number[] {
    const out: number[] = [];
    for (const t of tokenize(title)) {
      if (out.length >= maxLength) break;
      out.push(this.idOf(t));
    }
    return out;
  }

  /** Builds a vocabulary from titles: tokens seen at least minCount times, most frequent first (ties by token). */
  static build(titles: Iterable<string>, minCount = 2, maxSize = Infinity): { vocabulary: TokenVocabulary; counts: Map<string, number> } {
    const counts = new Map<string, number>();
    for (const title of titles) for (const t of tokenize(title)) counts.set(t, (counts.get(t) ?? 0) + 1);
    const kept = [...counts.entries()]
      .filter(([, c]) => c >= minCount)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, Math.max(0, maxSize - 2))
      .map(([t]) => t);
    return { vocabulary: new TokenVocabulary([PAD_TOKEN, UNK_TOKEN, ...kept]), counts };
  }
}
