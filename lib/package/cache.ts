/**
 * Packaged fragment headers, built once per fragment and variant (format, number of tfrf entries) and
 * reused by every request for them. Bounded in bytes, least recently used first out.
 */
import type { MoofHead } from '../mp4/writer';

interface Entry {
  variants: Map<string, MoofHead>;
  bytes: number;
}

/** An LRU of packaged headers, grouped per fragment so a fragment's variants leave together. */
export class PackageCache {
  readonly #maxBytes: number;
  /** Fragment key → its variants; Map order is recency (oldest first). */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  /** @param maxBytes - bytes of headers kept, all fragments together */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of headers held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The header of `fragment` in `variant`, built with `build` the first time. */
  get(fragment: string, variant: string, build: () => MoofHead): MoofHead {
    let entry = this.#entries.get(fragment);
    if (entry) {
      // Most recent last.
      this.#entries.delete(fragment);
      this.#entries.set(fragment, entry);
      const hit = entry.variants.get(variant);
      if (hit) return hit;
    }
    const head = build();
    if (head.head.length > this.#maxBytes) return head;
    if (!entry) {
      entry = { variants: new Map(), bytes: 0 };
      this.#entries.set(fragment, entry);
    }
    entry.variants.set(variant, head);
    entry.bytes += head.head.length;
    this.#bytes += head.head.length;
    for (const [key, old] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    return head;
  }

  /** Forgets every variant of a fragment (it left the point). */
  delete(fragment: string): void {
    const entry = this.#entries.get(fragment);
    if (!entry) return;
    this.#entries.delete(fragment);
    this.#bytes -= entry.bytes;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
