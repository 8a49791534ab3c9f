/**
 * The store contract: where a publishing point's fragments live while they are in its window. The
 * point keeps the timeline (which fragments exist, in order); the store keeps their bytes. Every
 * method may answer with a value or a Promise, so a store can live on disk or elsewhere.
 */
import type { Readable } from 'node:stream';
import type { FragmentMeta, MediaFragment } from '../media';
import type { FragmentTime } from '../model';

/** A value, or a Promise of it. */
export type Awaitable<T> = T | PromiseLike<T>;

/** Whether an {@link Awaitable} (or anything a callback returned) is a Promise to wait for. */
export function isThenable<T>(value: Awaitable<T> | unknown): value is PromiseLike<T> {
  return value !== null && typeof value === 'object' && typeof (value as PromiseLike<T>).then === 'function';
}

/** A fragment as a store returns it: its description, and its sample bytes as a Buffer or a stream. */
export interface StoredFragment extends FragmentMeta {
  /**
   * The sample bytes. A stream is read at most once, by the response it was made for; the reader
   * destroys it when it does not need it.
   */
  readonly data: Buffer | Readable;
}

/** Why a fragment left a store: the DVR window, the byte budget, a reset of the point, or a failed write. */
export type EvictReason = 'window' | 'bytes' | 'clear' | 'error';

/** Options every store factory receives, one store per publishing point and session. */
export interface FragmentStoreOptions {
  /**
   * The publishing point's path relative to the media root (`events/game1.isml`), validated. A store
   * that names things after it must still not use it as a file name as it is.
   */
  point: string;
  /** Byte budget for all tracks together; the oldest fragments go first when a put exceeds it. */
  maxBytes: number;
  /**
   * Called for every fragment that leaves the store, at the moment it leaves. A store that evicts on
   * its own (byte budget, a failed write) must call it: the point drops the fragment from its
   * timeline, so manifests and ETags change with the store.
   */
  onEvict?: (track: string, fragment: FragmentTime, reason: EvictReason) => void;
}

/**
 * A fragment store for one publishing point. Track keys are validated strings, times exact bigints.
 * The point puts the fragments of a track in increasing time order. Every store must pass the
 * conformance suite (`live-smooth/store-conformance`).
 */
export interface FragmentStore {
  /**
   * Adds a fragment. A fragment at a time the track already holds, or not newer than the track's
   * newest, is refused (first copy wins). A fragment is readable with {@link get} from the moment
   * `put` returns, even while a returned Promise is pending. A Promise that resolves `false` or
   * rejects means the fragment was not kept; the store calls `onEvict` with reason `error` for it.
   * @returns whether the fragment was (or is being) stored
   */
  put(track: string, fragment: MediaFragment): Awaitable<boolean>;
  /** The fragment of `track` that starts exactly at `time`, if the store holds it. */
  get(track: string, time: bigint): Awaitable<StoredFragment | undefined>;
  /** Removes the fragments of `track` that end at or before `end` (the DVR window), calling `onEvict`. */
  trim(track: string, end: bigint): Awaitable<void>;
  /** Removes everything (the point's session ends), calling `onEvict` for each fragment. */
  clear(): Awaitable<void>;
  /** Bytes held, all tracks together (for a store on disk: bytes on disk and in its write queue). */
  readonly bytes: number;
  /**
   * Of {@link bytes}, those in process memory that leave on their own (a disk store's write queue).
   * Absent: every byte is in memory until its fragment is removed (the memory store). The point counts
   * these in the origin's byte budget; the rest of `bytes` is on disk or elsewhere.
   */
  readonly memoryBytes?: number;
}

/** Creates the store of one publishing point; passed as the `store` option to replace the default. */
export type FragmentStoreFactory = (options: FragmentStoreOptions) => FragmentStore;
