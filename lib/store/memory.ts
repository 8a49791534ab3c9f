/**
 * The default store: in memory, per track a time-ordered deque with an exact-time index, and one
 * insertion-ordered queue across tracks for the byte budget. Every method answers synchronously.
 */
import type { MediaFragment } from '../media';
import { BudgetQueue } from './budget';
import type { EvictReason, FragmentStore, FragmentStoreOptions } from './types';

/**
 * A fragment's place in the byte-budget queue. It is shared with the track's deque, so removing the
 * fragment for any reason empties the entry at once: a stale entry never keeps a fragment's bytes alive.
 */
interface Entry {
  track: string;
  fragment: MediaFragment | undefined;
}

interface TrackFragments {
  list: MediaFragment[];
  /** `entries[i]` is the queue entry of `list[i]`. */
  entries: Entry[];
  head: number;
  byTime: Map<bigint, MediaFragment>;
}

/**
 * In-memory {@link FragmentStore}. Fragments are held once, as the point hands them over; `get` returns
 * the stored object and a fragment counts its {@link MediaFragment.byteLength} against the budget.
 */
export class MemoryFragmentStore implements FragmentStore {
  readonly #maxBytes: number;
  readonly #onEvict: FragmentStoreOptions['onEvict'];
  readonly #tracks = new Map<string, TrackFragments>();
  /** Insertion order across tracks for the byte budget; an emptied entry is gone. */
  readonly #order = new BudgetQueue<Entry>((e) => e.fragment === undefined);
  #bytes = 0;

  constructor(options: FragmentStoreOptions) {
    if (!(options.maxBytes > 0) || !Number.isFinite(options.maxBytes)) {
      throw new RangeError('MemoryFragmentStore: maxBytes must be a positive finite number');
    }
    this.#maxBytes = options.maxBytes;
    this.#onEvict = options.onEvict;
  }

  get bytes(): number {
    return this.#bytes;
  }

  put(track: string, fragment: MediaFragment): boolean {
    let t = this.#tracks.get(track);
    if (!t) {
      t = { list: [], entries: [], head: 0, byTime: new Map() };
      this.#tracks.set(track, t);
    }
    const last = t.list[t.list.length - 1];
    if (t.byTime.has(fragment.time) || (last && t.list.length > t.head && fragment.time <= last.time)) return false;
    const entry: Entry = { track, fragment };
    t.list.push(fragment);
    t.entries.push(entry);
    t.byTime.set(fragment.time, fragment);
    this.#order.push(entry);
    this.#bytes += fragment.byteLength;
    while (this.#bytes > this.#maxBytes) {
      // The oldest across tracks is the oldest of its own track: its deque's head.
      const victim = this.#order.oldest();
      if (!victim) break;
      this.#removeHead(victim.track, this.#tracks.get(victim.track)!, 'bytes');
    }
    this.#order.compact();
    return true;
  }

  get(track: string, time: bigint): MediaFragment | undefined {
    return this.#tracks.get(track)?.byTime.get(time);
  }

  trim(track: string, end: bigint): void {
    const t = this.#tracks.get(track);
    if (!t) return;
    while (t.head < t.list.length) {
      const f = t.list[t.head]!;
      if (f.time + f.duration > end) break;
      this.#removeHead(track, t, 'window');
    }
  }

  clear(): void {
    for (const [track, t] of this.#tracks) while (t.head < t.list.length) this.#removeHead(track, t, 'clear');
    this.#tracks.clear();
    this.#order.clear();
  }

  /** Removes the oldest fragment of a track; the caller knows the track holds one. */
  #removeHead(track: string, t: TrackFragments, reason: EvictReason): void {
    const f = t.list[t.head]!;
    // Release the bytes now (the deque slot and the queue entry), compact the arrays later.
    t.list[t.head] = undefined as unknown as MediaFragment;
    t.entries[t.head]!.fragment = undefined;
    t.entries[t.head] = undefined as unknown as Entry;
    t.head++;
    t.byTime.delete(f.time);
    this.#order.left();
    this.#bytes -= f.byteLength;
    if (t.head > 64 && t.head * 2 > t.list.length) {
      t.list = t.list.slice(t.head);
      t.entries = t.entries.slice(t.head);
      t.head = 0;
    }
    this.#onEvict?.(track, { time: f.time, duration: f.duration }, reason);
  }

}

/** The default store factory. */
export const memoryStore = (options: FragmentStoreOptions): FragmentStore => new MemoryFragmentStore(options);
