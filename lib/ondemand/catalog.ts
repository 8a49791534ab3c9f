/**
 * The on-demand presentations under a root folder, opened on first request and kept in a bounded LRU.
 * Like the origin's `.isml` definitions, a presentation is trusted for `checkInterval` ms, then its
 * files are stat'ed again and it is reopened when any changed; concurrent requests for one that is
 * being opened wait for the same open. A failed open is remembered for `checkInterval` ms too (so a
 * broken presentation does not cost a scan per request) and then tried again.
 */
import * as path from 'node:path';
import { SmoothError, isSmoothError } from '../errors';
import type { ManifestFormatter } from '../manifest/types';
import { FilePool } from './pool';
import { OnDemandPresentation, stampOf } from './presentation';

/** Options of {@link OnDemandCatalog}. */
export interface CatalogOptions {
  /** Absolute media root. */
  root: string;
  /** Renders a client manifest when a presentation has no `.ismc`. */
  formatter: ManifestFormatter;
  /** Presentations kept open at most; the least recently used closes first. */
  maxPresentations: number;
  /** File handles open at most, over every presentation. */
  maxOpenFiles: number;
  /** How long (ms) a presentation, a miss or a failure is trusted before its files are checked again. */
  checkInterval: number;
  /** Largest moof, mdat or `.ismc` read, in bytes. */
  maxBoxSize: number;
  /** Milliseconds now. Default `Date`. */
  clock?: { now(): number };
}

interface Entry {
  presentation: OnDemandPresentation | undefined;
  /** Why the last open failed (served until the next check). */
  error: SmoothError | undefined;
  checkedAt: number;
}

/** Misses and failures remembered at most; forgotten all at once beyond this. */
const MAX_ABSENT = 1000;

/** A presentation path relative to the root: `/`-separated, no empty, `.` or `..` segments, ending in `.ism`. */
export function isPresentationPath(rel: string): boolean {
  return /\.ism$/i.test(rel) && rel.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && !/[\\\0:]/.test(s) && s.length <= 255);
}

/** The on-demand presentations under one root: bounded, re-checked, opened once at a time. */
export class OnDemandCatalog {
  /** The handles every presentation reads through. */
  readonly pool: FilePool;
  readonly #o: CatalogOptions;
  readonly #root: string;
  readonly #clock: { now(): number };
  /** Open presentations, least recently used first. */
  readonly #open = new Map<string, Entry>();
  /** Missing presentations (`presentation` and `error` unset) and failed ones. */
  readonly #absent = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<OnDemandPresentation | undefined>>();
  #closed = false;

  constructor(options: CatalogOptions) {
    this.#o = options;
    this.#root = path.resolve(options.root);
    this.#clock = options.clock ?? Date;
    this.pool = new FilePool(options.maxOpenFiles);
  }

  /** Presentations open now. */
  get size(): number {
    return this.#open.size;
  }

  /**
   * The presentation of `root/rel`, opened or re-checked as needed.
   * @returns `undefined` when there is no such `.ism` file
   * @throws SmoothError ERR_TRAVERSAL for a path that is not a plain relative `.ism` path;
   *   ERR_BAD_DEFINITION when the presentation cannot be opened (the reason names the file)
   */
  get(rel: string): Promise<OnDemandPresentation | undefined> {
    if (!isPresentationPath(rel)) return Promise.reject(new SmoothError('ERR_TRAVERSAL', 'presentation path must be a relative path to a .ism file'));
    if (this.#closed) return Promise.reject(new SmoothError('ERR_BAD_DEFINITION', 'the on-demand catalog is closed'));
    const now = this.#clock.now();
    const fresh = (e: Entry | undefined): e is Entry => e !== undefined && now - e.checkedAt < this.#o.checkInterval;
    const open = this.#open.get(rel);
    if (fresh(open)) {
      this.#open.delete(rel);
      this.#open.set(rel, open);
      return Promise.resolve(open.presentation);
    }
    const absent = this.#absent.get(rel);
    if (fresh(absent)) return absent.error ? Promise.reject(absent.error) : Promise.resolve(undefined);
    let p = this.#inflight.get(rel);
    if (!p) {
      p = this.#check(rel).finally(() => this.#inflight.delete(rel));
      this.#inflight.set(rel, p);
    }
    return p;
  }

  async #check(rel: string): Promise<OnDemandPresentation | undefined> {
    const file = path.join(this.#root, ...rel.split('/'));
    if (!file.startsWith(this.#root + path.sep)) throw new SmoothError('ERR_TRAVERSAL', 'presentation path leaves the root');
    const now = this.#clock.now();
    const old = this.#open.get(rel);
    // A presentation whose media files only grew (an archive being written) is extended, not reopened.
    if (old?.presentation && (await old.presentation.refresh()) !== 'changed') {
      old.checkedAt = now;
      this.#open.delete(rel);
      this.#open.set(rel, old);
      return old.presentation;
    }
    if (old) this.#close(rel, old);
    if ((await stampOf(file)).size < 0) {
      this.#remember(rel, { presentation: undefined, error: undefined, checkedAt: now });
      return undefined;
    }
    try {
      const presentation = await OnDemandPresentation.open(file, {
        root: this.#root,
        files: this.pool,
        formatter: this.#o.formatter,
        maxBoxSize: this.#o.maxBoxSize,
      });
      if (this.#closed) {
        this.#forget(presentation);
        throw new SmoothError('ERR_BAD_DEFINITION', 'the on-demand catalog is closed');
      }
      this.#absent.delete(rel);
      this.#open.set(rel, { presentation, error: undefined, checkedAt: now });
      this.#bound();
      return presentation;
    } catch (err) {
      const error = isSmoothError(err) ? err : new SmoothError('ERR_BAD_DEFINITION', `on-demand presentation ${rel}: ${(err as Error).message}`);
      this.#remember(rel, { presentation: undefined, error, checkedAt: now });
      throw error;
    }
  }

  #remember(rel: string, entry: Entry): void {
    if (this.#absent.size >= MAX_ABSENT) this.#absent.clear();
    this.#absent.set(rel, entry);
  }

  /** Closes the least recently used presentations beyond the bound. */
  #bound(): void {
    for (const [rel, e] of this.#open) {
      if (this.#open.size <= this.#o.maxPresentations) break;
      this.#close(rel, e);
    }
  }

  #close(rel: string, e: Entry): void {
    this.#open.delete(rel);
    if (e.presentation) this.#forget(e.presentation);
  }

  /** Its handles go (a read in progress keeps its own until it ends): the files may have changed. */
  #forget(p: OnDemandPresentation): void {
    for (const f of p.mediaFiles) this.pool.forget(f);
  }

  /** Closes every presentation and file handle; later lookups fail. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [rel, e] of [...this.#open]) this.#close(rel, e);
    this.#absent.clear();
    await this.pool.close();
  }
}
