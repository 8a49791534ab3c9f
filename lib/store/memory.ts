/**
 * The default store: in memory, per track a time-ordered deque with an exact-time index, and one
 * insertion-ordered queue across tracks for the byte budget.
 */
import type { FragmentTime } from '../model';
import type { EvictReason, FragmentStore, FragmentStoreOptions, StoredFragment } from './types';

interface TrackFragments {
  list: StoredFragment[];
  head: number;
  byTime: Map<bigint, StoredFragment>;
}

/** In-memory {@link FragmentStore}. Fragments are held once; `get` returns the stored object. */
export class MemoryFragmentStore implements FragmentStore {
  readonly #maxBytes: number;
  readonly #onEvict: FragmentStoreOptions['onEvict'];
  readonly #tracks = new Map<string, TrackFragments>();
  /** Insertion order across tracks; entries may be stale after a window trim. */
  #order: { track: string; fragment: StoredFragment }[] = [];
  #orderHead = 0;
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

  put(track: string, fragment: StoredFragment): boolean {
    let t = this.#tracks.get(track);
    if (!t) {
      t = { list: [], head: 0, byTime: new Map() };
      this.#tracks.set(track, t);
    }
    const last = t.list[t.list.length - 1];
    if (t.byTime.has(fragment.time) || (last && t.list.length > t.head && fragment.time <= last.time)) return false;
    t.list.push(fragment);
    t.byTime.set(fragment.time, fragment);
    this.#order.push({ track, fragment });
    this.#bytes += fragment.data.length;
    while (this.#bytes > this.#maxBytes && this.#orderHead < this.#order.length) {
      const { track: victim, fragment: f } = this.#order[this.#orderHead++]!;
      const vt = this.#tracks.get(victim);
      if (vt?.byTime.get(f.time) === f) this.#removeHead(victim, vt, 'bytes');
    }
    this.#compactOrder();
    return true;
  }

  get(track: string, time: bigint): StoredFragment | undefined {
    return this.#tracks.get(track)?.byTime.get(time);
  }

  timeline(track: string): FragmentTime[] {
    const t = this.#tracks.get(track);
    if (!t) return [];
    const out: FragmentTime[] = new Array<FragmentTime>(t.list.length - t.head);
    for (let i = t.head; i < t.list.length; i++) out[i - t.head] = t.list[i]!;
    return out;
  }

  newest(track: string): FragmentTime | undefined {
    const t = this.#tracks.get(track);
    return t && t.list.length > t.head ? t.list[t.list.length - 1] : undefined;
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
    this.#order = [];
    this.#orderHead = 0;
  }

  #removeHead(track: string, t: TrackFragments, reason: EvictReason): void {
    const f = t.list[t.head]!;
    t.list[t.head] = undefined as unknown as StoredFragment; // release the bytes now, compact later
    t.head++;
    t.byTime.delete(f.time);
    this.#bytes -= f.data.length;
    if (t.head > 64 && t.head * 2 > t.list.length) {
      t.list = t.list.slice(t.head);
      t.head = 0;
    }
    this.#onEvict?.(track, { time: f.time, duration: f.duration }, reason);
  }

  #compactOrder(): void {
    // Drop queue entries that a window trim already removed, so the queue stays proportional to the store.
    while (this.#orderHead < this.#order.length) {
      const { track, fragment } = this.#order[this.#orderHead]!;
      if (this.#tracks.get(track)?.byTime.get(fragment.time) === fragment) break;
      this.#orderHead++;
    }
    if (this.#orderHead > 64 && this.#orderHead * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#orderHead);
      this.#orderHead = 0;
    }
  }
}

/** The default store factory. */
export const memoryStore = (options: FragmentStoreOptions): FragmentStore => new MemoryFragmentStore(options);
