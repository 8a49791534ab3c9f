/**
 * A bounded pool of read-only file handles. An on-demand server reads fragments from many files, each
 * read a few positioned reads long; opening per read costs a syscall pair and keeping every file open
 * runs into the process's descriptor limit. The pool keeps at most `max` handles, closes the least
 * recently used idle one to make room, and never closes a handle a read is still using (a read that
 * finds every handle busy waits for one to be released).
 */
import { FileHandle, open } from 'node:fs/promises';
import type { FileHandles } from '../ismv/source';

interface Entry {
  readonly file: string;
  readonly handle: Promise<FileHandle>;
  /** Uses in progress; the handle closes only at 0. */
  users: number;
  /** Dropped from the pool (forgotten, evicted or closed): closes when its last user leaves. */
  stale: boolean;
  /** Counted in the pool's open handles: from the open until its failure or the end of its close. */
  counted: boolean;
}

/** Opens a file for reading; injectable for tests. */
export type FileOpener = (file: string) => Promise<FileHandle>;

/** A bounded, LRU pool of read-only file handles shared by every reader of an origin. */
export class FilePool implements FileHandles {
  /** Most handles open at once. */
  readonly max: number;
  readonly #open: FileOpener;
  /** Oldest use first (a Map keeps insertion order; a use moves its entry to the end). */
  readonly #entries = new Map<string, Entry>();
  readonly #waiters: Array<() => void> = [];
  /** Handles opened and not yet closed, stale ones included: what the bound is about. */
  #live = 0;
  /** Closes under way, so {@link close} can wait for them. */
  readonly #closing = new Set<Promise<void>>();
  #closed = false;

  /**
   * @param max - most handles open at once (≥ 1; `Infinity` for an unbounded pool)
   * @param opener - opens a file; default `fs.promises.open(file, 'r')`
   */
  constructor(max: number, opener: FileOpener = (file) => open(file, 'r')) {
    if (!(max >= 1)) throw new RangeError('a file pool needs room for at least one handle');
    this.max = max;
    this.#open = opener;
  }

  /** Handles open now (in use or idle). */
  get size(): number {
    return this.#live;
  }

  /**
   * Runs `fn` with an open handle of `file`, which stays open until `fn` settles.
   * @throws the opener's error when the file cannot be opened; whatever `fn` throws
   */
  async use<T>(file: string, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.#acquire(file);
    try {
      return await fn(await entry.handle);
    } finally {
      this.#release(entry);
    }
  }

  /**
   * Drops the handle of `file` (it changed on disk: the next use opens it again). A read in progress
   * keeps its handle until it ends.
   */
  forget(file: string): void {
    const e = this.#entries.get(file);
    if (e) this.#drop(e);
  }

  /** Closes every idle handle now and the busy ones when their reads end; later uses fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const e of [...this.#entries.values()]) this.#drop(e);
    for (const wake of this.#waiters.splice(0)) wake();
    await Promise.all([...this.#closing]);
  }

  async #acquire(file: string): Promise<Entry> {
    for (;;) {
      if (this.#closed) throw new Error('file pool is closed');
      const known = this.#entries.get(file);
      if (known) {
        this.#entries.delete(file);
        this.#entries.set(file, known);
        known.users++;
        return known;
      }
      if (this.#live < this.max) {
        const entry: Entry = { file, handle: this.#open(file), users: 1, stale: false, counted: true };
        this.#live++;
        this.#entries.set(file, entry);
        entry.handle.catch(() => {
          // Nothing to close: the slot is free again, and the next use tries afresh.
          if (this.#entries.get(file) === entry) this.#entries.delete(file);
          entry.stale = true;
          this.#uncount(entry);
        });
        return entry;
      }
      // Full: an idle handle is closed to make room (its close wakes a waiter), else a release will.
      this.#evictIdle();
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  #release(entry: Entry): void {
    entry.users--;
    if (entry.users === 0 && entry.stale) this.#closeHandle(entry);
    else if (entry.users === 0) this.#wake();
  }

  /** Closes the least recently used idle handle, if any. */
  #evictIdle(): void {
    for (const e of this.#entries.values()) {
      if (e.users === 0) return this.#drop(e);
    }
  }

  #drop(e: Entry): void {
    if (this.#entries.get(e.file) === e) this.#entries.delete(e.file);
    if (e.stale) return;
    e.stale = true;
    if (e.users === 0) this.#closeHandle(e);
  }

  #closeHandle(e: Entry): void {
    const closing = e.handle.then(
      (fh) =>
        fh.close().then(
          () => undefined,
          () => undefined,
        ),
      () => undefined, // a failed open was already given back
    );
    this.#closing.add(closing);
    void closing.then(() => {
      this.#closing.delete(closing);
      this.#uncount(e);
    });
  }

  #uncount(e: Entry): void {
    if (!e.counted) return;
    e.counted = false;
    this.#live--;
    this.#wake();
  }

  #wake(): void {
    this.#waiters.shift()?.();
  }
}
