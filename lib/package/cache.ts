/**
 * Packaged fragment headers, built once per fragment and variant (format, number of tfrf entries) and
 * reused by every request for them. Bounded in bytes; the oldest fragments' headers leave first.
 */
import type { MoofHead } from '../mp4/writer';

/**
 * A packaged header; where packaging had to change the sample bytes (TTML times for DASH and HLS), the
 * bytes it made too, counted with it, and when the stored fragment was stored (its Last-Modified).
 */
export interface PackagedHead extends MoofHead {
  body?: Buffer;
  storedAt?: number;
}

interface Entry {
  variants: Map<string | number, PackagedHead>;
  bytes: number;
}

const sizeOf = (head: PackagedHead): number => head.head.length + (head.body?.length ?? 0);

/**
 * The headers of fragments, keyed by the object that stands for the fragment (its timeline entry:
 * identity, no string to build per request), grouped so a fragment's variants leave together.
 * Eviction is first in, first out: live viewers ask for the newest fragments, which are the last in.
 */
export class PackageCache<K extends object> {
  readonly #maxBytes: number;
  /** Fragment → its variants, in insertion order. */
  readonly #entries = new Map<K, Entry>();
  #bytes = 0;

  /** @param maxBytes - bytes of headers kept, all fragments together */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes of headers (and rewritten bodies) kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The header of `fragment` in `variant`, if it was built. */
  get(fragment: K, variant: string | number): PackagedHead | undefined {
    return this.#entries.get(fragment)?.variants.get(variant);
  }

  /** Keeps the header of `fragment` in `variant` (just built); the oldest fragments go past the budget. */
  set(fragment: K, variant: string | number, head: PackagedHead): void {
    const size = sizeOf(head);
    if (size > this.#maxBytes) return;
    let entry = this.#entries.get(fragment);
    if (!entry) {
      entry = { variants: new Map(), bytes: 0 };
      this.#entries.set(fragment, entry);
    }
    const old = entry.variants.get(variant);
    const delta = size - (old ? sizeOf(old) : 0);
    entry.variants.set(variant, head);
    entry.bytes += delta;
    this.#bytes += delta;
    for (const [key, old] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
  }

  /** Forgets every variant of a fragment (it left the point). */
  delete(fragment: K): void {
    const entry = this.#entries.get(fragment);
    if (!entry) return;
    this.#entries.delete(fragment);
    this.#bytes -= entry.bytes;
  }

  /** Forgets everything (a new session reuses fragment times). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
