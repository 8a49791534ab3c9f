/**
 * What the points of an origin share: ingest connections, and one byte budget for what they hold in
 * memory. Each point counts its own bytes into the budget; when the total goes over, the points that
 * hold the most let go of their oldest fragments, and what cannot be let go (boxes still arriving)
 * is refused.
 */

/** Ingest connections open at once, counted across the points that share it (an origin's). */
export class IngestSlots {
  #used = 0;

  /** @param max - connections that may be open at once */
  constructor(readonly max: number) {}

  /** Connections open now. */
  get used(): number {
    return this.#used;
  }

  /** Takes a slot for a new connection. @returns false when all are taken */
  take(): boolean {
    if (this.#used >= this.max) return false;
    this.#used++;
    return true;
  }

  /** A connection ended. */
  give(): void {
    this.#used--;
  }
}

/** A point, as the byte budget sees it. */
export interface BudgetHolder {
  /** Bytes it could let go of now: its stored fragments in memory, with their bookkeeping. */
  readonly sheddable: number;
  /**
   * Lets go of its oldest fragments until about `bytes` are freed or none is left, reporting what it
   * freed through {@link ByteBudget.change}.
   */
  shed(bytes: number): void;
}

/**
 * One byte budget for the points that share it. The points report every change of what they hold
 * (stored fragments, their bookkeeping, caches, partly received boxes); a change that takes the total
 * over `max` has the holder with the most sheddable bytes let go of its oldest fragments, then the
 * next largest, until the total fits or nothing more can go.
 */
export class ByteBudget {
  #used = 0;
  readonly #holders = new Set<BudgetHolder>();
  /** Shedding is under way: a change reported from inside it does not start another round. */
  #fitting = false;

  /** @param max - bytes the holders may hold together */
  constructor(readonly max: number) {}

  /** Bytes counted now, all holders together. */
  get used(): number {
    return this.#used;
  }

  /** A point that counts into the budget and can be asked to shed. */
  join(holder: BudgetHolder): void {
    this.#holders.add(holder);
  }

  /** The point is gone; it reported its bytes as freed first. */
  leave(holder: BudgetHolder): void {
    this.#holders.delete(holder);
  }

  /**
   * Whether `bytes` more could be held, once the holders shed all they can. Growth that may be refused
   * (a box still arriving) asks first: it must not make the points drop fragments and then be refused.
   */
  fits(bytes: number): boolean {
    if (this.#used + bytes <= this.max) return true;
    let sheddable = 0;
    for (const h of this.#holders) sheddable += h.sheddable;
    return this.#used + bytes - sheddable <= this.max;
  }

  /**
   * Counts `delta` more bytes (negative: bytes freed). A growth that takes the total over the budget
   * has the largest holders shed.
   * @returns whether the total is within the budget afterwards
   */
  change(delta: number): boolean {
    this.#used += delta;
    if (delta > 0 && this.#used > this.max && !this.#fitting) this.#fit();
    return this.#used <= this.max;
  }

  #fit(): void {
    this.#fitting = true;
    try {
      while (this.#used > this.max) {
        let largest: BudgetHolder | undefined;
        for (const h of this.#holders) if (h.sheddable > 0 && (!largest || h.sheddable > largest.sheddable)) largest = h;
        if (!largest) return;
        const before = this.#used;
        largest.shed(this.#used - this.max);
        if (this.#used >= before) return; // it could not free anything: nothing more to gain
      }
    } finally {
      this.#fitting = false;
    }
  }
}

/** What the points of one origin share. */
export interface SharedLimits {
  readonly slots: IngestSlots;
  readonly budget: ByteBudget;
}

/** New shared limits for an origin's points, from its options. */
export function sharedLimits(options: { maxIngestConnections: number; maxBytes: number }): SharedLimits {
  return { slots: new IngestSlots(options.maxIngestConnections), budget: new ByteBudget(options.maxBytes) };
}
