/**
 * The byte budget of a store: every fragment in insertion order across tracks, so the oldest go first
 * when a put exceeds the budget. Fragments that leave for another reason (a window trim, a failed
 * write) stay in the queue as "gone" entries until they reach its head; the queue compacts itself so
 * it stays proportional to what the store holds.
 */

/** Arrays whose consumed head is dropped once it is this long and more than half the array. */
const COMPACT_AT = 64;

/** Insertion order of a store's fragments, for its byte budget. */
export class BudgetQueue<E> {
  readonly #gone: (entry: E) => boolean;
  #order: Array<E | undefined> = [];
  #head = 0;
  /** Entries held (not gone). */
  #held = 0;

  /** @param gone - whether an entry's fragment already left the store */
  constructor(gone: (entry: E) => boolean) {
    this.#gone = gone;
  }

  /** A fragment entered the store. */
  push(entry: E): void {
    this.#order.push(entry);
    this.#held++;
  }

  /** A fragment left the store (its entry is now gone, wherever it is in the queue). */
  left(): void {
    this.#held--;
  }

  /** The oldest entry still held, taken off the queue; the caller removes its fragment. */
  oldest(): E | undefined {
    while (this.#head < this.#order.length) {
      const entry = this.#order[this.#head]!;
      this.#order[this.#head++] = undefined;
      if (!this.#gone(entry)) return entry;
    }
    return undefined;
  }

  /** Drops gone entries and the consumed head; call after a put. */
  compact(): void {
    while (this.#head < this.#order.length && this.#gone(this.#order[this.#head]!)) this.#order[this.#head++] = undefined;
    if (this.#head > COMPACT_AT && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
    // Gone entries behind a live head (a track that stopped while others go on being trimmed) are
    // small, but must not pile up without bound either.
    if (this.#order.length - this.#head > 2 * this.#held + COMPACT_AT) {
      this.#order = this.#order.slice(this.#head).filter((e) => !this.#gone(e!));
      this.#head = 0;
    }
  }

  /** Forgets every entry (the store was cleared). */
  clear(): void {
    this.#order = [];
    this.#head = 0;
    this.#held = 0;
  }
}
