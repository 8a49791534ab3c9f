/**
 * The origin: the registry of publishing points under one root folder, framework-free. A point exists
 * while its `.isml` file exists; the file is re-checked at most every `definitionCheckInterval` ms and
 * re-read when it changes. Which points were started is remembered in a state file, so they come back
 * `Starting` after a restart. Definitions and the state file are the file-system access of the core
 * (a store on disk is the host's choice).
 *
 * Symbolic links under the root are followed only while they stay inside it: a definition whose real
 * path leaves the root's real path is treated as missing (never read, never served), and the management
 * API refuses to create or write one (ERR_TRAVERSAL). Files are replaced atomically through a temp file
 * of a unique name, and the writes to one definition run one after the other.
 *
 * The host creates it with {@link createOrigin} and hands it to every part that serves it (the
 * middleware, the management API): they meet through this object, never through a shared registry.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { PointSettings, pullSources, readDefinition, resolveSettings, writeDefinition } from './definition';
import { SmoothError, isSmoothError } from './errors';
import { LiveSmoothOptions, ResolvedOptions, layersFor, resolveOptions } from './options';
import { PublishingPoint } from './point';
import { PointEvents, PointState, SafeEmitter, describeError } from './point/events';
import { SharedLimits, sharedLimits } from './point/limits';
import { anchorFromJson, anchorToJson } from './point/anchor';
import { Archiver } from './archive';
import { replaceFile } from './files';
import { OnDemandCatalog } from './ondemand/catalog';
import { Puller } from './pull';

const debug = createDebug('live-smooth:origin');

interface Entry {
  point: PublishingPoint | undefined;
  checkedAt: number;
  mtimeMs: number;
  size: number;
}

/** Negative lookups remembered at most; the cache of missing names is dropped beyond this. */
const MAX_MISSING = 1000;
/** Bounds of a scan of the root for definitions (management API listing). */
const MAX_SCAN_DEPTH = 8;
const MAX_SCAN_FILES = 10_000;

/** The error code of a failed file-system call. */
const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Whether `real` is `realRoot` or under it (both real, absolute paths). */
const within = (realRoot: string, real: string): boolean =>
  real === realRoot || real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep);

/** A definition path relative to the root: `/`-separated, no empty, `.` or `..` segments, ending in `.isml`. */
export function isPointPath(rel: string): boolean {
  const segments = rel.split('/');
  return (
    /\.isml$/i.test(rel) &&
    segments.every((s) => s !== '' && s !== '.' && s !== '..' && !/[\\\0:]/.test(s) && s.length <= 255)
  );
}

/** Every event a point raises, forwarded by its origin with the same payload (which names the point). */
const FORWARDED: ReadonlyArray<keyof PointEvents> = [
  'state',
  'trackHeader',
  'fragment',
  'streamStarted',
  'streamEnded',
  'fragmentTrimmed',
  'anchor',
  'inputRejected',
  'encoderRestart',
  'fragmentDropped',
  'source',
  'failure',
];

/**
 * Creates the origin serving the publishing points under `root`. Create one per root and process, and
 * pass it to `liveSmooth(origin)` and `liveSmooth.admin(origin)`.
 * @throws SmoothError ERR_INVALID_OPTION for an invalid option
 */
export function createOrigin(root: string, options?: LiveSmoothOptions): Origin {
  if (typeof root !== 'string' || root === '') throw new SmoothError('ERR_INVALID_OPTION', 'root folder is required');
  return new Origin(root, resolveOptions(options));
}

/**
 * The publishing points under `root`; forwards every point's events, each listener isolated: one that
 * throws is counted in {@link Origin.failures} and reported as a `failure` event.
 */
export class Origin extends SafeEmitter<PointEvents> {
  /** Absolute media root. */
  readonly root: string;
  readonly options: ResolvedOptions;
  readonly #entries = new Map<string, Entry>();
  /** Ingest connections open over all points (`maxIngestConnections`) and their byte budget (`maxBytes`). */
  readonly #limits: SharedLimits;
  readonly #inflight = new Map<string, Promise<PublishingPoint | undefined>>();
  /** Per definition, the tail of its queue of writes and deletions (management API): one at a time. */
  readonly #queues = new Map<string, Promise<void>>();
  readonly #stateFile: string | undefined;
  #missing = 0;
  #saving: NodeJS.Timeout | undefined;
  /** Writes of the state file, one after the other, so an older snapshot never lands last. */
  #written: Promise<void> = Promise.resolve();
  #closed = false;
  #listenerFailures = 0;
  /** Writes the live archives of points whose settings list `Archives`. */
  readonly archiver: Archiver;
  /** The pullers of `sourceType=Pull` points, by point path. */
  readonly #pullers = new Map<string, Puller>();
  /** The on-demand presentations (`*.ism`) under the root, opened as requested, within their bounds. */
  readonly onDemand: OnDemandCatalog;

  /** Prefer {@link createOrigin}, which validates the options. */
  constructor(root: string, options: ResolvedOptions) {
    super((event, err, args) => {
      this.#listenerFailures++;
      const message = describeError(err);
      debug('origin %s listener failed: %s', event, message);
      const point = (args[0] as { point?: unknown } | undefined)?.point;
      if (event !== 'failure') {
        this.emit('failure', { point: typeof point === 'string' ? point : '', source: 'listener', event, message, error: err });
      }
    });
    this.root = path.resolve(root);
    this.options = options;
    this.#limits = sharedLimits(options);
    this.archiver = new Archiver(
      {
        root: path.resolve(this.root, options.archiveRoot ?? 'archives'),
        base: this.root,
        queueBytes: options.archiveQueueBytes,
        syncInterval: options.archiveSyncInterval,
        manifest: options.manifest,
        now: () => options.clock.now(),
      },
      (e) => this.emit('archive', e),
    );
    this.onDemand = new OnDemandCatalog({
      root: this.root,
      formatter: options.manifest,
      maxPresentations: options.maxOnDemandPresentations,
      maxOpenFiles: options.maxOpenFiles,
      checkInterval: options.definitionCheckInterval,
      maxBoxSize: options.maxBoxSize,
      clock: options.clock,
    });
    this.#stateFile =
      options.stateFile === false ? undefined : path.resolve(options.stateFile ?? path.join(this.root, '.live-smooth-state.json'));
    this.#restore();
  }

  /** Listeners of this origin's events that threw or rejected (those of the points count in each point). */
  get failures(): number {
    return this.#listenerFailures;
  }

  /** The origin's byte budget: bytes its points hold in memory now (`used`), and `maxBytes`. */
  get memory(): { used: number; max: number } {
    return { used: this.#limits.budget.used, max: this.#limits.budget.max };
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
   * Finds the point whose definition is `root/rel` (`rel` validated by the caller, see
   * {@link isPointPath}), reading or re-reading the file as needed.
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

  /** Absolute path of a definition; refuses anything that would leave the root. */
  #file(rel: string): string {
    const file = path.join(this.root, ...rel.split('/'));
    if (!isPointPath(rel) || !file.startsWith(this.root + path.sep)) {
      throw new SmoothError('ERR_TRAVERSAL', 'publishing point path must be a relative path to a .isml file');
    }
    return file;
  }

  /**
   * The real path of a definition when it exists and stays inside the root's real path; `undefined`
   * when it is missing, cannot be resolved, or its real path (through a symbolic link) leaves the root.
   */
  async #realFile(rel: string, file: string): Promise<string | undefined> {
    try {
      const [realRoot, real] = await Promise.all([fs.realpath(this.root), fs.realpath(file)]);
      if (within(realRoot, real) && real !== realRoot) return real;
      debug('%s: resolves outside the root, treated as missing', rel);
    } catch {
      // missing, a dangling link or a loop: no definition
    }
    return undefined;
  }

  /**
   * Refuses (ERR_TRAVERSAL) to create or write `target` (a definition or its folder) unless its real
   * path, or that of its nearest existing parent, is inside the root's real path. A dangling symbolic
   * link on the way is refused too: where it leads cannot be checked.
   * @returns the real path of the nearest existing parent-or-self of `target`
   */
  async #contained(rel: string, target: string): Promise<string> {
    const realRoot = await fs.realpath(this.root);
    for (let p = target; ; p = path.dirname(p)) {
      let real: string;
      try {
        real = await fs.realpath(p);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'ELOOP') throw new SmoothError('ERR_TRAVERSAL', `${rel}: too many levels of symbolic links`);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        const link = await fs.lstat(p).then(
          (st) => st.isSymbolicLink(),
          () => false,
        );
        if (link) throw new SmoothError('ERR_TRAVERSAL', `${rel}: goes through a symbolic link that leads nowhere`);
        if (p === this.root || path.dirname(p) === p) throw err;
        continue;
      }
      if (!within(realRoot, real)) {
        throw new SmoothError('ERR_TRAVERSAL', `${rel}: resolves outside the root (through a symbolic link)`);
      }
      return real;
    }
  }

  /** Runs `task` after every earlier write or deletion of `rel` settled (one at a time per definition). */
  #serial<T>(rel: string, task: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(rel) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(rel, tail);
    void tail.then(() => {
      if (this.#queues.get(rel) === tail) this.#queues.delete(rel);
    });
    return run;
  }

  async #check(rel: string): Promise<PublishingPoint | undefined> {
    let file: string;
    try {
      file = this.#file(rel);
    } catch {
      return undefined;
    }
    const now = this.options.clock.now();
    const entry = this.#entries.get(rel);
    // Only the real path is read, and only when it stays inside the root; otherwise it is missing.
    const real = await this.#realFile(rel, file);
    let stat: { mtimeMs: number; size: number; isFile(): boolean } | undefined;
    try {
      stat = real === undefined ? undefined : await fs.stat(real);
    } catch {
      stat = undefined;
    }
    if (!stat || !stat.isFile()) {
      if (entry?.point) {
        debug('%s: definition removed, closing the point', rel);
        this.archiver.end(rel, 'definition removed');
        this.#close(entry.point);
        this.#save();
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
    let settings: PointSettings | undefined;
    let sources: string[] = [];
    let reason: string | undefined;
    try {
      ({ settings, sources } = this.#settings(rel, await fs.readFile(real!, 'utf8')));
    } catch (err) {
      reason = isSmoothError(err) ? err.message : `cannot read definition: ${(err as Error).message}`;
    }
    point ??= this.#create(rel, settings ?? resolveSettings(layersFor(this.options, rel)));
    if (settings) point.configure(settings);
    else {
      debug('%s: %s', rel, reason);
      console.error(`live-smooth: ${rel}: ${reason}`);
      point.fail(reason!);
    }
    this.#follow(point, settings, sources);
    this.#entries.set(rel, { point, checkedAt: now, mtimeMs: stat.mtimeMs, size: stat.size });
    return point;
  }

  /** Effective settings of `rel` given its file text (IIS defaults < site < mappings < file), and its pull sources. */
  #settings(rel: string, text: string): { settings: PointSettings; sources: string[] } {
    const def = readDefinition(text);
    const settings = resolveSettings([...layersFor(this.options, rel), def.overrides], def.sources);
    return { settings, sources: settings.sourceType === 'Pull' ? pullSources(def.sources) : [] };
  }

  /** Starts, updates or stops the puller of `point` as its definition says. */
  #follow(point: PublishingPoint, settings: PointSettings | undefined, sources: string[]): void {
    const puller = this.#pullers.get(point.path);
    if (settings?.sourceType === 'Pull' && sources.length > 0) {
      if (puller) puller.setSources(sources);
      else this.#pullers.set(point.path, new Puller(point, sources, { maxFragmentBytes: this.options.maxBoxSize, clock: this.options.clock }));
    } else if (puller) {
      puller.close();
      this.#pullers.delete(point.path);
    }
  }

  /** Closes a point and its puller. */
  #close(point: PublishingPoint): void {
    this.#pullers.get(point.path)?.close();
    this.#pullers.delete(point.path);
    point.close();
  }

  #create(rel: string, settings: PointSettings): PublishingPoint {
    const point = new PublishingPoint(rel, settings, this.options, this.#limits);
    const source = point as EventEmitter;
    const target = this as EventEmitter;
    for (const name of FORWARDED) source.on(name, (event: unknown) => target.emit(name, event));
    point.on('state', () => this.#save());
    point.on('anchor', () => this.#save());
    this.archiver.watch(point);
    return point;
  }

  #forgetMissing(): void {
    for (const [rel, e] of this.#entries) if (!e.point) this.#entries.delete(rel);
    this.#missing = 0;
  }

  /**
   * Lists every definition under the root (management API): known points and files not requested yet.
   * The scan is bounded in depth and count; hidden folders are skipped, and so are linked folders (a
   * linked definition is listed when it stays inside the root).
   */
  async list(): Promise<PublishingPoint[]> {
    const found: string[] = [];
    const walk = async (dir: string, rel: string[], depth: number): Promise<void> => {
      if (depth > MAX_SCAN_DEPTH || found.length >= MAX_SCAN_FILES) return;
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.name.startsWith('.') || found.length >= MAX_SCAN_FILES) continue;
        const next = [...rel, e.name];
        if (e.isDirectory()) await walk(path.join(dir, e.name), next, depth + 1);
        else if ((e.isFile() || e.isSymbolicLink()) && isPointPath(next.join('/'))) found.push(next.join('/'));
      }
    };
    await walk(this.root, [], 0);
    const points = await Promise.all(found.sort().map((rel) => this.resolve(rel)));
    return points.filter((p): p is PublishingPoint => p !== undefined);
  }

  /**
   * Creates or updates a definition (management API). Only an Idle point's settings may change (or a
   * point in Error, to repair it). Writes to one definition are applied one after the other in call
   * order, each on the file the previous one left (the last writer wins where they disagree).
   * @returns the point and whether the file was created
   * @throws SmoothError ERR_POINT_STATE (409) when the point is busy, ERR_BAD_DEFINITION (400) for bad
   *   values, ERR_TRAVERSAL (400) when the definition or a folder on its way is a symbolic link that
   *   leaves the root
   */
  write(rel: string, changes: Record<string, unknown>): Promise<{ point: PublishingPoint; created: boolean }> {
    return this.#serial(rel, () => this.#write(rel, changes));
  }

  async #write(rel: string, changes: Record<string, unknown>): Promise<{ point: PublishingPoint; created: boolean }> {
    const file = this.#file(rel);
    await fs.mkdir(this.root, { recursive: true });
    await this.#contained(rel, file); // before anything is read or created through a link
    const existing = await this.resolve(rel);
    if (existing && existing.state !== 'Idle' && existing.state !== 'Error') {
      throw new SmoothError('ERR_POINT_STATE', `settings change only while Idle; ${rel} is ${existing.state} (shut it down first)`);
    }
    let text = '';
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      text = '';
    }
    const updated = writeDefinition(text, changes);
    if (existing?.state !== 'Error') this.#settings(rel, updated); // refuse contradictions before writing
    await fs.mkdir(path.dirname(file), { recursive: true });
    // The folder checked again now that it exists, and written through its real path.
    const dir = await this.#contained(rel, path.dirname(file));
    await replaceFile(path.join(dir, path.basename(file)), updated);
    // Re-read now, into the same point object: encoders already attached to it stay attached. A check
    // started before the write may have read the old file: wait for it, then check afresh.
    for (let p = this.#inflight.get(rel); p; p = this.#inflight.get(rel)) await p.catch(() => undefined);
    const entry = this.#entries.get(rel);
    if (entry) {
      entry.checkedAt = -Infinity;
      entry.mtimeMs = NaN;
    }
    const point = await this.resolve(rel);
    if (!point) throw new SmoothError('ERR_BAD_DEFINITION', `${rel} could not be read back`);
    return { point, created: existing === undefined };
  }

  /**
   * Deletes an Idle point's definition (management API), in turn with the writes to it.
   * @returns false when there was no such point
   * @throws SmoothError ERR_POINT_STATE (409) when the point is not Idle
   */
  remove(rel: string): Promise<boolean> {
    return this.#serial(rel, () => this.#remove(rel));
  }

  async #remove(rel: string): Promise<boolean> {
    const file = this.#file(rel);
    const point = await this.resolve(rel);
    if (!point) return false;
    if (point.state !== 'Idle' && point.state !== 'Error') {
      throw new SmoothError('ERR_POINT_STATE', `only an Idle point can be deleted; ${rel} is ${point.state}`);
    }
    await fs.rm(file, { force: true });
    this.archiver.end(rel, 'point deleted');
    this.#close(point);
    this.#entries.delete(rel);
    this.#save();
    return true;
  }

  /** Reads the state file: points that were started come back Starting, waiting for their encoders. */
  #restore(): void {
    if (!this.#stateFile) return;
    let saved: { points?: Record<string, string>; anchors?: Record<string, unknown> };
    try {
      saved = JSON.parse(readFileSync(this.#stateFile, 'utf8')) as typeof saved;
    } catch {
      return; // no state yet (or unreadable: start clean rather than refuse to start)
    }
    for (const [rel, state] of Object.entries(saved.points ?? {})) {
      if (!isPointPath(rel)) continue;
      const anchor = anchorFromJson(saved.anchors?.[rel]);
      this.resolve(rel)
        .then((point) => point?.restore(state as PointState, anchor))
        .catch((err: unknown) => debug('%s: cannot restore its state: %s', rel, describeError(err)));
    }
  }

  /** Writes the state file soon (coalesced): the points that are Starting or Started. */
  #save(): void {
    if (!this.#stateFile || this.#saving || this.#closed) return;
    const file = this.#stateFile;
    this.#saving = setTimeout(() => {
      this.#saving = undefined;
      const points: Record<string, PointState> = {};
      const anchors: Record<string, ReturnType<typeof anchorToJson>> = {};
      for (const p of this.points()) {
        if (p.state !== 'Starting' && p.state !== 'Started') continue;
        points[p.path] = p.state;
        if (p.anchor) anchors[p.path] = anchorToJson(p.anchor);
      }
      this.#written = this.#written
        .then(() => replaceFile(file, `${JSON.stringify({ points, anchors }, null, 2)}\n`))
        .catch((err: Error) => debug('cannot write state file: %s', err.message));
    }, 100);
    this.#saving.unref();
  }

  /** Closes every point and forgets them. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#saving);
    // The archives end with their mfra and manifests; `archiver.idle()` resolves when that is on disk.
    void this.archiver.close();
    void this.onDemand.close();
    for (const e of this.#entries.values()) if (e.point) this.#close(e.point);
    this.#entries.clear();
    this.#missing = 0;
  }
}
