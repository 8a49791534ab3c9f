/**
 * The origin: the registry of publishing points under one root folder. A point exists while its
 * `.isml` file exists; the file is re-checked at most every `definitionCheckInterval` ms and re-read
 * when it changes.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { readDefinition } from './definition';
import { isSmoothError } from './errors';
import type { ResolvedOptions } from './options';
import { PointEvents, PublishingPoint } from './point';

const debug = createDebug('live-smooth:origin');

interface Entry {
  point: PublishingPoint | undefined;
  checkedAt: number;
  mtimeMs: number;
  size: number;
}

/** Negative lookups remembered at most; the cache of missing names is dropped beyond this. */
const MAX_MISSING = 1000;

/** Registry of publishing points under `root`; forwards every point's events. */
export class Origin extends EventEmitter<PointEvents> {
  /** Absolute media root. */
  readonly root: string;
  readonly options: ResolvedOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<PublishingPoint | undefined>>();
  #missing = 0;

  constructor(root: string, options: ResolvedOptions) {
    super();
    this.root = path.resolve(root);
    this.options = options;
  }

  /** Points known now, by path relative to the root. */
  points(): PublishingPoint[] {
    return [...this.#entries.values()].flatMap((e) => (e.point ? [e.point] : []));
  }

  /**
   * The point for `rel` when the cached check is fresh: a point, `null` when the file is known to be
   * missing, or `undefined` when the file must be checked with {@link resolve}.
   */
  cached(rel: string): PublishingPoint | null | undefined {
    const e = this.#entries.get(rel);
    if (!e || this.options.clock.now() - e.checkedAt >= this.options.definitionCheckInterval) return undefined;
    return e.point ?? null;
  }

  /**
   * Finds the point whose definition is `root/rel` (`rel` already validated: no `..`, no empty or
   * absolute segments), reading or re-reading the file as needed.
   */
  resolve(rel: string): Promise<PublishingPoint | undefined> {
    const cached = this.cached(rel);
    if (cached !== undefined) return Promise.resolve(cached ?? undefined);
    let p = this.#inflight.get(rel);
    if (!p) {
      p = this.#check(rel).finally(() => this.#inflight.delete(rel));
      this.#inflight.set(rel, p);
    }
    return p;
  }

  async #check(rel: string): Promise<PublishingPoint | undefined> {
    const file = path.join(this.root, ...rel.split('/'));
    if (!file.startsWith(this.root + path.sep)) return undefined; // defence in depth; routes already refuse this
    const now = this.options.clock.now();
    const entry = this.#entries.get(rel);
    let stat: { mtimeMs: number; size: number; isFile(): boolean } | undefined;
    try {
      stat = await fs.stat(file);
    } catch {
      stat = undefined;
    }
    if (!stat || !stat.isFile()) {
      if (entry?.point) {
        debug('%s: definition removed, closing the point', rel);
        entry.point.close();
      }
      if (!entry?.point && this.#missing >= MAX_MISSING) this.#forgetMissing();
      if (!entry || entry.point) this.#missing++;
      this.#entries.set(rel, { point: undefined, checkedAt: now, mtimeMs: 0, size: 0 });
      return undefined;
    }
    if (entry?.point && entry.mtimeMs === stat.mtimeMs && entry.size === stat.size) {
      entry.checkedAt = now;
      return entry.point;
    }
    if (entry && !entry.point) this.#missing--;
    let point = entry?.point;
    try {
      const text = await fs.readFile(file, 'utf8');
      const settings = readDefinition(text, this.options.defaults);
      if (point) point.configure(settings);
      else point = this.#create(rel, settings);
    } catch (err) {
      const reason = isSmoothError(err) ? err.message : `cannot read definition: ${(err as Error).message}`;
      debug('%s: %s', rel, reason);
      console.error(`live-smooth: ${rel}: ${reason}`);
      point ??= this.#create(rel, this.options.defaults);
      point.fail(reason);
    }
    this.#entries.set(rel, { point, checkedAt: now, mtimeMs: stat.mtimeMs, size: stat.size });
    return point;
  }

  #create(rel: string, settings: PublishingPoint['settings']): PublishingPoint {
    const point = new PublishingPoint(rel, { ...settings }, this.options);
    // Every point event is re-emitted by the origin with the same payload (which names the point).
    const source = point as EventEmitter;
    const target = this as EventEmitter;
    for (const name of ['state', 'streamStarted', 'streamEnded', 'fragmentAdded', 'fragmentTrimmed', 'inputRejected']) {
      source.on(name, (event: unknown) => target.emit(name, event));
    }
    return point;
  }

  #forgetMissing(): void {
    for (const [rel, e] of this.#entries) if (!e.point) this.#entries.delete(rel);
    this.#missing = 0;
  }

  /** Closes every point and forgets them. */
  close(): void {
    for (const e of this.#entries.values()) e.point?.close();
    this.#entries.clear();
    this.#missing = 0;
  }
}
