/**
 * The edge cache: what IIS Application Request Routing did in front of a Smooth origin, for any
 * live-smooth origin's Smooth, DASH and HLS URLs. A byte-bounded lru-cache of whole upstream
 * responses, keyed by request path; lru-cache's `fetchMethod` makes every concurrent miss of one URL
 * share one upstream request (the origin holds a request for the newest fragment until its successor
 * exists, and every player at the live edge asks for it at once). Framework-free: `http/edge.ts`
 * turns requests into {@link EdgeCache.get} calls and its answers into responses.
 */
import createDebug from 'debug';
import { LRUCache } from 'lru-cache';
import { SmoothError } from '../errors';
import { EdgeOptions, ResolvedEdgeOptions, resolveEdgeOptions } from './options';
import { Lifetime, lifetime } from './policy';
import { FailoverEvent, MAX_PATH_LENGTH, UpstreamFailureEvent, UpstreamStats, Upstreams } from './upstream';

const debug = createDebug('live-smooth:edge');

/** How a response was served: `X-Cache`. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'REVALIDATED';

/**
 * Upstream response headers the edge keeps and forwards (lower-case). Everything else is dropped:
 * hop-by-hop headers (`Connection`, `Keep-Alive`, `Transfer-Encoding`…), `Set-Cookie`, and
 * `Content-Length` and `Content-Encoding`, which the edge writes for the body it holds.
 */
export const FORWARDED_HEADERS: readonly string[] = Object.freeze([
  'access-control-allow-origin',
  'access-control-expose-headers',
  'allow',
  'cache-control',
  'content-language',
  'content-type',
  'date',
  'etag',
  'expires',
  'last-modified',
  'location',
  'retry-after',
  'timing-allow-origin',
  'www-authenticate',
]);

/** One upstream response as the edge holds it (or shares it among the requests that waited for it). */
export interface EdgeEntry {
  readonly status: number;
  /** The {@link FORWARDED_HEADERS} it came with (lower-case names). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly etag: string | undefined;
  /** Clock ms when it arrived, or was last revalidated. */
  readonly receivedAt: number;
  /** The upstream's own `Age` (seconds) when it arrived. */
  readonly upstreamAge: number;
  readonly life: Lifetime;
  /** It came from a 304 to the edge's conditional request (the body is the one held before). */
  readonly revalidated: boolean;
  /** Index of the upstream that answered. */
  readonly upstream: number;
  /** Larger than `maxEntrySize`: not held; each request streams it from upstream itself. */
  readonly pass: boolean;
}

/** What {@link EdgeCache.get} answers: a response held or shared, or one streamed through. */
export type EdgeAnswer =
  | {
      readonly kind: 'entry';
      readonly entry: EdgeEntry;
      readonly cache: CacheStatus;
      /** Seconds for the `Age` header: the upstream's age plus the time held. */
      readonly age: number;
    }
  | {
      readonly kind: 'stream';
      readonly cache: 'MISS';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly length: number | undefined;
      /** Iterate it to the end, or call `cancel()`: either releases the upstream request. */
      readonly body: AsyncIterable<Uint8Array>;
      cancel(): void;
    };

/** Counters of an edge since it was created (`edge.stats()`). */
export interface EdgeStats {
  /** Requests answered from a fresh held response. */
  readonly hits: number;
  /** Requests answered from an upstream response they waited for (new, or joined one in flight). */
  readonly misses: number;
  /** Requests answered from an expired response while one refresh ran. */
  readonly stale: number;
  /** Requests answered from a held response after a 304 to the edge's conditional request. */
  readonly revalidated: number;
  /** Of the misses and revalidations, the requests that joined an upstream request already in flight. */
  readonly coalesced: number;
  /** Requests streamed through uncached (larger than `maxEntrySize`). */
  readonly passes: number;
  /** Requests answered with an error of the edge's own (502, 503, 504, 400). */
  readonly errors: number;
  /** Upstream requests sent, each failover attempt counted. */
  readonly upstreamRequests: number;
  /** Upstream requests in flight now. */
  readonly upstreamInflight: number;
  /** Bytes the cache holds, as `maxSize` counts them. */
  readonly bytesHeld: number;
  /** Entries the cache holds (requests in flight for new URLs included). */
  readonly entries: number;
  readonly maxSize: number;
  /** Event listeners that threw or rejected. */
  readonly listenerFailures: number;
  /** Per upstream: requests, failures, cool-down, which is active. */
  readonly upstreams: readonly UpstreamStats[];
}

/** The edge's events and their payloads. */
export interface EdgeEvents {
  /** An exchange with an upstream failed (network error, timeout, 5xx, malformed answer). */
  upstreamFailure: UpstreamFailureEvent;
  /** The edge moved to another upstream. */
  failover: FailoverEvent;
}

/**
 * A client's `no-cache` (a reload; GStreamer sends `max-age=0` with every manifest refresh) makes a
 * held response be revalidated only once it is this old: one conditional upstream request per URL per
 * second at most, however many clients ask, which is what the shield is for.
 */
export const CLIENT_REVALIDATE_MIN_MS = 1000;

/** Bookkeeping counted per held entry besides its body, headers and key. */
const ENTRY_OVERHEAD = 512;
/** Room for an entry's headers and key on top of `maxEntrySize` (Node takes 16 KiB of headers). */
const HEADER_ALLOWANCE = 64 * 1024 + MAX_PATH_LENGTH;
const EMPTY = Buffer.alloc(0);
const NOT_STORED: Lifetime = Object.freeze({ store: false, fresh: 0, stale: 0, keep: 1, immutable: false });

function headerBytes(headers: Readonly<Record<string, string>>): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers)) n += k.length + v.length + 4;
  return n;
}

function forwarded(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const v = headers.get(name);
    if (v !== null) out[name] = v;
  }
  return out;
}

function ageOf(headers: Headers): number {
  const v = headers.get('age');
  return v !== null && /^\d{1,10}$/.test(v.trim()) ? Number(v.trim()) : 0;
}

/**
 * A caching reverse proxy's core for one or more live-smooth origins (see the README's "Edge cache").
 * Every bound is an option of {@link EdgeOptions} with a finite default.
 */
export class EdgeCache {
  /** The options in force. */
  readonly options: ResolvedEdgeOptions;
  readonly #lru: LRUCache<string, EdgeEntry>;
  readonly #upstreams: Upstreams;
  readonly #closed = new AbortController();
  readonly #listeners: { [K in keyof EdgeEvents]: Set<(e: EdgeEvents[K]) => unknown> } = { upstreamFailure: new Set(), failover: new Set() };
  readonly #counts = { hits: 0, misses: 0, stale: 0, revalidated: 0, coalesced: 0, passes: 0, errors: 0, listenerFailures: 0 };

  /** @throws SmoothError ERR_INVALID_OPTION for an invalid option */
  constructor(options: EdgeOptions) {
    this.options = resolveEdgeOptions(options);
    const o = this.options;
    this.#upstreams = new Upstreams(o, this.#closed.signal, {
      failure: (e) => this.#emit('upstreamFailure', e),
      failover: (e) => this.#emit('failover', e),
    });
    const maxEntrySize = Math.min(o.maxSize, o.maxEntrySize + HEADER_ALLOWANCE);
    // An answer that must not be kept reports a size over maxEntrySize: lru-cache then hands it to
    // every request waiting on the fetch and keeps nothing (and drops what it held for the key).
    const unstorable = maxEntrySize + 1;
    this.#lru = new LRUCache<string, EdgeEntry>({
      max: o.max,
      maxSize: o.maxSize,
      maxEntrySize,
      sizeCalculation: (e, key) => (e.life.store && !e.pass ? e.body.length + headerBytes(e.headers) + key.length + ENTRY_OVERHEAD : unstorable),
      perf: { now: () => o.clock.now() },
      // A refresh that fails leaves the expired response in place: it is still bounded by its stale
      // window, and without it the next request would find nothing to serve stale.
      noDeleteOnFetchRejection: true,
      // lru-cache aborts a fetch whose placeholder it evicts; the requests waiting on it still want
      // the answer, so the exchange goes on (the edge's own close() is what stops exchanges).
      ignoreFetchAbort: true,
      fetchMethod: (key, stale, { options: set }) => this.#fetch(key, stale, set),
    });
  }

  /**
   * The response for `path` (path and query below the mount point): held and fresh (`HIT`), expired
   * but within its stale window while one refresh runs (`STALE`), or after the one upstream request
   * all concurrent requests for the path share (`MISS`, `REVALIDATED` after a 304). A response larger
   * than `maxEntrySize` comes back as a stream. `revalidate` (a client's `no-cache`) makes a held
   * response be revalidated first, unless it is `immutable` or younger than
   * {@link CLIENT_REVALIDATE_MIN_MS}.
   * @throws SmoothError ERR_BAD_URL for a malformed path; ERR_UPSTREAM_FAILED, ERR_UPSTREAM_TIMEOUT
   *   when every upstream failed; ERR_EDGE_BUSY when `maxUpstreamRequests` are in flight or the edge is closed
   */
  async get(path: string, o: { revalidate?: boolean } = {}): Promise<EdgeAnswer> {
    try {
      const key = Upstreams.key(path);
      if (this.#closed.signal.aborted) throw new SmoothError('ERR_EDGE_BUSY', 'the edge is closed');
      return await this.#get(key, o.revalidate === true);
    } catch (err) {
      this.#counts.errors++;
      throw err;
    }
  }

  async #get(key: string, revalidate: boolean): Promise<EdgeAnswer> {
    const now = this.options.clock.now();
    const held = this.#lru.get(key, { allowStale: true, noDeleteOnStaleGet: true });
    if (held && !held.pass) {
      const age = now - held.receivedAt;
      const forced = revalidate && !held.life.immutable && age >= CLIENT_REVALIDATE_MIN_MS;
      if (!forced && age < held.life.fresh) {
        this.#counts.hits++;
        return { kind: 'entry', entry: held, cache: 'HIT', age: this.#age(held, now) };
      }
      if (!forced && age < held.life.fresh + held.life.stale) {
        // Starts the one refresh (or finds it running) and answers with what is held meanwhile.
        const stale = await this.#lru.fetch(key, { forceRefresh: true, allowStale: true });
        if (stale) {
          this.#counts.stale++;
          return { kind: 'entry', entry: stale, cache: 'STALE', age: this.#age(stale, now) };
        }
      }
    }
    const status: LRUCache.Status<string, EdgeEntry> = {};
    const got = await this.#lru.fetch(key, { forceRefresh: held !== undefined, allowStale: false, status });
    if (!got) throw new SmoothError('ERR_UPSTREAM_FAILED', 'no answer from upstream');
    if (status.fetch === 'inflight') this.#counts.coalesced++;
    if (got.pass) return this.#stream(key);
    this.#counts[got.revalidated ? 'revalidated' : 'misses']++;
    return { kind: 'entry', entry: got, cache: got.revalidated ? 'REVALIDATED' : 'MISS', age: this.#age(got, this.options.clock.now()) };
  }

  async #stream(key: string): Promise<EdgeAnswer> {
    const a = await this.#upstreams.streamed(key);
    this.#counts.passes++;
    return { kind: 'stream', cache: 'MISS', status: a.status, headers: forwarded(a.headers), length: a.length, body: a.body, cancel: a.cancel };
  }

  /** lru-cache's `fetchMethod`: one upstream exchange, shared by every request waiting for `key`. */
  async #fetch(key: string, stale: EdgeEntry | undefined, set: LRUCache.FetcherFetchOptions<string, EdgeEntry>): Promise<EdgeEntry> {
    const validator = stale && !stale.pass && stale.status === 200 ? stale.etag : undefined;
    const a = await this.#upstreams.buffered(key, validator, this.options.maxEntrySize);
    const now = this.options.clock.now();
    let entry: EdgeEntry;
    if (a.status === 304 && stale) {
      // RFC 9111 §4.3.4: the 304's headers update the held ones; the body stays.
      const headers = { ...stale.headers, ...forwarded(a.headers) };
      const view = { get: (name: string): string | null => (name === 'age' ? a.headers.get('age') : (headers[name] ?? null)) };
      entry = {
        ...stale,
        headers,
        etag: headers.etag ?? stale.etag,
        receivedAt: now,
        upstreamAge: ageOf(a.headers),
        life: lifetime(stale.status, view, key, this.options, now),
        revalidated: true,
        upstream: a.upstream,
      };
    } else if (a.body === undefined) {
      debug('%s: larger than maxEntrySize, streamed through uncached', key);
      entry = { status: a.status, headers: {}, body: EMPTY, etag: undefined, receivedAt: now, upstreamAge: 0, life: NOT_STORED, revalidated: false, upstream: a.upstream, pass: true };
    } else {
      entry = {
        status: a.status,
        headers: forwarded(a.headers),
        body: a.body,
        etag: a.headers.get('etag') ?? undefined,
        receivedAt: now,
        upstreamAge: ageOf(a.headers),
        life: lifetime(a.status, a.headers, key, this.options, now),
        revalidated: false,
        upstream: a.upstream,
        pass: false,
      };
    }
    if (entry.life.store) set.ttl = entry.life.keep;
    return entry;
  }

  #age(e: EdgeEntry, now: number): number {
    return e.upstreamAge + Math.max(0, Math.floor((now - e.receivedAt) / 1000));
  }

  /**
   * Adds a listener. Listeners are isolated: one that throws or rejects is counted
   * (`stats().listenerFailures`) and logged, and the edge goes on.
   */
  on<K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): this {
    this.#listeners[event].add(listener);
    return this;
  }

  /** Removes a listener added with {@link EdgeCache.on}. */
  off<K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): this {
    this.#listeners[event].delete(listener);
    return this;
  }

  #emit<K extends keyof EdgeEvents>(event: K, e: EdgeEvents[K]): void {
    for (const listener of this.#listeners[event]) {
      const failed = (err: unknown): void => {
        this.#counts.listenerFailures++;
        debug('%s listener failed: %O', event, err);
      };
      try {
        const r = listener(e);
        if (r && typeof (r as PromiseLike<unknown>).then === 'function') (r as PromiseLike<unknown>).then(undefined, failed);
      } catch (err) {
        failed(err);
      }
    }
  }

  /** Counters and sizes now. */
  stats(): EdgeStats {
    return {
      ...this.#counts,
      upstreamRequests: this.#upstreams.requests,
      upstreamInflight: this.#upstreams.inflight,
      bytesHeld: this.#lru.calculatedSize,
      entries: this.#lru.size,
      maxSize: this.options.maxSize,
      upstreams: this.#upstreams.stats(),
    };
  }

  /** Drops everything held and aborts the upstream requests in flight; later requests get `503`. */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new SmoothError('ERR_EDGE_BUSY', 'the edge is closed'));
    this.#lru.clear();
  }
}
