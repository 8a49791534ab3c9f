/**
 * The store contract: where available fragments live while they are in the DVR window.
 */
import type { FragmentTime } from '../model';

/** A fragment ready for clients: the complete response, written once, served as views. */
export interface StoredFragment extends FragmentTime {
  /** `moof` + `mdat` exactly as served. */
  readonly data: Buffer;
  /** Length of the `moof`; `data.subarray(0, moofSize)` answers FragmentInfo. */
  readonly moofSize: number;
  /** When it became available, in ms since the epoch (Last-Modified). */
  readonly storedAt: number;
}

/** Why a fragment left a store. */
export type EvictReason = 'window' | 'bytes' | 'clear';

/** Options every store constructor takes. */
export interface FragmentStoreOptions {
  /** Byte budget for all tracks together; the oldest fragments go first when it is exceeded. */
  maxBytes: number;
  /** Called for every fragment that leaves the store. */
  onEvict?: (track: string, fragment: FragmentTime, reason: EvictReason) => void;
}

/**
 * A fragment store for one publishing point. Keys are validated track keys; times are exact bigints.
 * Fragments of a track are put in increasing time order. Implementations must pass the conformance
 * suite in `store/conformance`.
 */
export interface FragmentStore {
  /**
   * Adds a fragment. A fragment whose time the track already holds, or that is not newer than the
   * track's newest fragment, is ignored (first copy wins).
   * @returns whether it was stored
   */
  put(track: string, fragment: StoredFragment): boolean;
  /** The fragment of `track` that starts exactly at `time`. */
  get(track: string, time: bigint): StoredFragment | undefined;
  /** Start and duration of every fragment of `track`, oldest first (a fresh array). */
  timeline(track: string): FragmentTime[];
  /** Newest fragment of `track`, if any. */
  newest(track: string): FragmentTime | undefined;
  /** Removes the fragments of `track` that end at or before `end` (DVR window). */
  trim(track: string, end: bigint): void;
  /** Removes everything. */
  clear(): void;
  /** Bytes held, all tracks together. */
  readonly bytes: number;
}

/** Creates the store of one publishing point; passed as the `store` option to replace the default. */
export type FragmentStoreFactory = (options: FragmentStoreOptions) => FragmentStore;
