/**
 * The edge's side of the origins: one GET per request path with failover across the configured
 * upstreams, a timeout per exchange, a bound on the bytes read, no redirects followed, and a count of
 * requests in flight. Uses `fetch` (the global one by default); knows nothing of the edge's clients.
 */
import createDebug from 'debug';
import { SmoothError, describeNetworkError as describe } from '../errors';
import type { ResolvedEdgeOptions } from './options';

const debug = createDebug('live-smooth:edge');

/** What the edge reports of one upstream (`edge.stats().upstreams`). */
export interface UpstreamStats {
  /** The URL as configured. */
  readonly url: string;
  /** The one requests go to first (the edge sticks to the last that answered). */
  readonly active: boolean;
  /** Requests sent to it (each failover attempt counts). */
  readonly requests: number;
  /** Network errors, timeouts, 5xx and malformed answers. */
  readonly failures: number;
  /** ms until it is tried first again; 0 when it is not cooling down. */
  readonly coolingDown: number;
  /** Why it last failed. */
  readonly lastFailure: string | undefined;
}

/** Reported on every failed exchange with an upstream (the request then goes to the next, if any). */
export interface UpstreamFailureEvent {
  /** Index in `options.upstream`. */
  readonly upstream: number;
  readonly url: string;
  readonly path: string;
  readonly reason: string;
  /** The status, when the upstream answered with a 5xx. */
  readonly status: number | undefined;
}

/** Reported when the edge moves to another upstream (one answered after the one it stuck to failed). */
export interface FailoverEvent {
  readonly from: number;
  readonly to: number;
  readonly url: string;
}

/** A whole upstream answer, read into memory. */
export interface BufferedAnswer {
  /** Index of the upstream that answered. */
  readonly upstream: number;
  readonly status: number;
  readonly headers: Headers;
  /** The body; `undefined` when it is larger than the limit (then it was not read to the end). */
  readonly body: Buffer | undefined;
}

/** An upstream answer whose body is passed on as it arrives. */
export interface StreamedAnswer {
  readonly upstream: number;
  readonly status: number;
  readonly headers: Headers;
  /** Its `Content-Length`, when it sent one. */
  readonly length: number | undefined;
  /** The body's chunks; iterating it to the end (or breaking off) releases the upstream request. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Drops the body unread (a `HEAD`, a client gone) and releases the upstream request. */
  cancel(): void;
}

/** The edge's own sink for what {@link Upstreams} reports. */
export interface UpstreamReports {
  failure(e: UpstreamFailureEvent): void;
  failover(e: FailoverEvent): void;
}

/** An exchange that failed because of the upstream: the next one is tried. */
class Failure extends Error {
  constructor(
    message: string,
    readonly timeout: boolean,
    readonly status?: number,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
/** Longest request path (and query) the edge forwards; Node itself takes 16 KiB of headers. */
export const MAX_PATH_LENGTH = 8192;

function contentLength(headers: Headers): number | undefined {
  const v = headers.get('content-length');
  if (v === null) return undefined;
  if (!/^\d{1,15}$/.test(v.trim())) throw new Failure(`sent a malformed Content-Length (${JSON.stringify(v.slice(0, 40))})`, false);
  return Number(v.trim());
}

/** The failover state of the configured upstreams, and the exchanges with them. */
export class Upstreams {
  readonly #o: ResolvedEdgeOptions;
  readonly #closed: AbortSignal;
  readonly #report: UpstreamReports;
  readonly #state: Array<{ requests: number; failures: number; coolUntil: number; lastFailure: string | undefined }>;
  #active = 0;
  #inflight = 0;
  #requests = 0;

  /**
   * @param closed - aborts every exchange in flight (the edge was closed)
   * @param report - told of each failure and each change of upstream
   */
  constructor(options: ResolvedEdgeOptions, closed: AbortSignal, report: UpstreamReports) {
    this.#o = options;
    this.#closed = closed;
    this.#report = report;
    this.#state = options.upstreams.map(() => ({ requests: 0, failures: 0, coolUntil: 0, lastFailure: undefined }));
  }

  /** Upstream requests sent so far (each failover attempt counts). */
  get requests(): number {
    return this.#requests;
  }

  /** Upstream requests in flight now. */
  get inflight(): number {
    return this.#inflight;
  }

  /**
   * The cache key of a request path (path and query below the mount point): dot segments resolved and
   * the URL normalised as WHATWG URL parsing does, so one resource has one key and no path can climb
   * above an upstream's prefix.
   * @throws SmoothError ERR_BAD_URL for a path that is not one
   */
  static key(path: string): string {
    if (typeof path !== 'string' || !path.startsWith('/') || path.length > MAX_PATH_LENGTH || /[\0-\x20\x7f]/.test(path)) {
      throw new SmoothError('ERR_BAD_URL', 'malformed request path');
    }
    let url: URL;
    try {
      // Pasted after a fixed origin, never resolved against one: `//host/x` stays a path.
      url = new URL(`http://edge.invalid${path}`);
    } catch {
      throw new SmoothError('ERR_BAD_URL', 'malformed request path');
    }
    if (url.host !== 'edge.invalid') throw new SmoothError('ERR_BAD_URL', 'malformed request path');
    return url.pathname + url.search;
  }

  /** The upstreams in the order a request tries them: the sticky one, the others, then those cooling down. */
  order(): number[] {
    const now = this.#o.clock.now();
    const n = this.#state.length;
    const ready: number[] = [];
    const cooling: number[] = [];
    for (let k = 0; k < n; k++) {
      const i = (this.#active + k) % n;
      (this.#state[i]!.coolUntil > now ? cooling : ready).push(i);
    }
    cooling.sort((a, b) => this.#state[a]!.coolUntil - this.#state[b]!.coolUntil);
    return [...ready, ...cooling];
  }

  /** Each upstream's counters and state. */
  stats(): UpstreamStats[] {
    const now = this.#o.clock.now();
    return this.#o.upstreams.map((u, i) => {
      const s = this.#state[i]!;
      return {
        url: u.url,
        active: i === this.#active,
        requests: s.requests,
        failures: s.failures,
        coolingDown: Math.max(0, s.coolUntil - now),
        lastFailure: s.lastFailure,
      };
    });
  }

  /**
   * GETs `key` and reads the whole body, up to `limit` bytes (past it the body is dropped and the
   * answer comes back without one). With `etag` the request is conditional (`If-None-Match`).
   * @throws SmoothError ERR_UPSTREAM_FAILED or ERR_UPSTREAM_TIMEOUT when every upstream failed,
   *   ERR_EDGE_BUSY when `maxUpstreamRequests` are in flight
   */
  async buffered(key: string, etag: string | undefined, limit: number): Promise<BufferedAnswer> {
    const release = this.#acquire();
    try {
      return await this.#failover(key, async (i, url) => {
        const { res, done } = await this.#send(i, url, etag);
        try {
          if (res.status === 304) {
            await res.body?.cancel().catch(() => undefined);
            return { upstream: i, status: 304, headers: res.headers, body: EMPTY };
          }
          let declared: number | undefined;
          try {
            declared = contentLength(res.headers);
          } catch (err) {
            await res.body?.cancel().catch(() => undefined);
            throw err;
          }
          if (declared !== undefined && declared > limit) {
            await res.body?.cancel().catch(() => undefined);
            return { upstream: i, status: res.status, headers: res.headers, body: undefined };
          }
          return { upstream: i, status: res.status, headers: res.headers, body: await this.#readAll(res, limit, done) };
        } finally {
          done.finish();
        }
      });
    } finally {
      release();
    }
  }

  /**
   * GETs `key` and passes the body on as it arrives, with the timeout between chunks and at most
   * `maxResponseSize` bytes (more ends the body with an error).
   * @throws as {@link Upstreams.buffered}, and ERR_UPSTREAM_FAILED for a declared length over `maxResponseSize`
   */
  async streamed(key: string): Promise<StreamedAnswer> {
    const release = this.#acquire();
    try {
      return await this.#failover(key, async (i, url) => {
        const { res, done } = await this.#send(i, url, undefined);
        let length: number | undefined;
        try {
          length = contentLength(res.headers);
        } catch (err) {
          done.finish();
          await res.body?.cancel().catch(() => undefined);
          throw err;
        }
        if (length !== undefined && length > this.#o.maxResponseSize) {
          done.finish();
          await res.body?.cancel().catch(() => undefined);
          // Not the upstream's fault: no failover, no cool-down.
          throw new SmoothError('ERR_UPSTREAM_FAILED', `upstream response of ${length} bytes exceeds the edge's maxResponseSize`);
        }
        const reader = res.body?.getReader();
        let over = false;
        const finish = (): void => {
          if (over) return;
          over = true;
          done.finish();
          reader?.cancel().catch(() => undefined);
          release();
        };
        const limit = this.#o.maxResponseSize;
        async function* chunks(): AsyncGenerator<Uint8Array> {
          try {
            let total = 0;
            while (reader) {
              done.refresh();
              const { done: end, value } = await reader.read();
              if (end) return;
              total += value.length;
              if (total > limit) throw new SmoothError('ERR_UPSTREAM_FAILED', "upstream response exceeds the edge's maxResponseSize");
              yield value;
            }
          } finally {
            finish();
          }
        }
        return { upstream: i, status: res.status, headers: res.headers, length, body: chunks(), cancel: finish };
      });
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Takes an upstream request slot (released once, however often the returned function is called). */
  #acquire(): () => void {
    if (this.#closed.aborted) throw new SmoothError('ERR_EDGE_BUSY', 'the edge is closed');
    if (this.#inflight >= this.#o.maxUpstreamRequests) {
      throw new SmoothError('ERR_EDGE_BUSY', `the edge has ${this.#o.maxUpstreamRequests} upstream requests in flight (maxUpstreamRequests)`);
    }
    this.#inflight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inflight--;
    };
  }

  /** Runs `attempt` on each upstream in {@link order} until one answers. */
  async #failover<T>(key: string, attempt: (i: number, url: string) => Promise<T>): Promise<T> {
    const reasons: string[] = [];
    let timeouts = 0;
    for (const i of this.order()) {
      const base = this.#o.upstreams[i]!;
      const url = `${base.origin}${base.prefix}${key}`;
      try {
        const out = await attempt(i, url);
        this.#succeeded(i);
        return out;
      } catch (err) {
        if (this.#closed.aborted) throw new SmoothError('ERR_EDGE_BUSY', 'the edge is closed');
        if (!(err instanceof Failure)) throw err;
        if (err.timeout) timeouts++;
        reasons.push(`upstream ${i + 1} of ${this.#state.length} ${err.message}`);
        this.#failed(i, key, err);
      }
    }
    throw new SmoothError(timeouts === reasons.length ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_UPSTREAM_FAILED', reasons.join('; '));
  }

  /**
   * Sends the GET and waits for the status line and headers. The returned `done` controls the timer,
   * which keeps running (for the body) until `finish()`.
   */
  async #send(i: number, url: string, etag: string | undefined): Promise<{ res: Response; done: { refresh(): void; finish(): void; timedOut(): boolean } }> {
    const ac = new AbortController();
    const onClose = (): void => ac.abort(this.#closed.reason);
    this.#closed.addEventListener('abort', onClose, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error('timeout'));
    }, this.#o.timeout);
    timer.unref();
    const done = {
      refresh: () => void timer.refresh(),
      finish: () => {
        clearTimeout(timer);
        this.#closed.removeEventListener('abort', onClose);
      },
      timedOut: () => timedOut,
    };
    this.#state[i]!.requests++;
    this.#requests++;
    // Identity: the edge keeps and forwards bodies as sent (fetch would decompress and keep the
    // Content-Encoding header); manual redirects: a 3xx is the client's to follow, not the edge's.
    const headers: Record<string, string> = { ...this.#o.upstreamHeaders, 'accept-encoding': 'identity' };
    if (!('user-agent' in headers)) headers['user-agent'] = 'live-smooth-edge';
    if (etag !== undefined) headers['if-none-match'] = etag;
    let res: Response;
    try {
      // A throwing fetch plugin is a failed exchange like any other.
      res = await Promise.resolve().then(() => this.#o.fetch(url, { method: 'GET', headers, redirect: 'manual', signal: ac.signal }));
    } catch (err) {
      done.finish();
      throw new Failure(timedOut ? `timed out after ${this.#o.timeout} ms` : `failed: ${describe(err)}`, timedOut);
    }
    if (!res || typeof res.status !== 'number' || typeof res.headers?.get !== 'function') {
      done.finish();
      throw new Failure('answered with something that is not an HTTP response', false);
    }
    if (res.status >= 500 || res.status < 200) {
      done.finish();
      await res.body?.cancel().catch(() => undefined);
      throw new Failure(`answered ${res.status}`, false, res.status);
    }
    if (res.status === 304 && etag === undefined) {
      done.finish();
      await res.body?.cancel().catch(() => undefined);
      throw new Failure('answered 304 to an unconditional request', false, 304);
    }
    return { res, done };
  }

  /** Reads a body to its end; `undefined` past `limit` bytes (the rest is left unread). */
  async #readAll(res: Response, limit: number, done: { timedOut(): boolean }): Promise<Buffer | undefined> {
    if (!res.body) return EMPTY;
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        total += value.length;
        if (total > limit) {
          await reader.cancel().catch(() => undefined);
          return undefined;
        }
        chunks.push(value);
      }
    } catch (err) {
      throw new Failure(done.timedOut() ? `timed out after ${this.#o.timeout} ms` : `broke off its body: ${describe(err)}`, done.timedOut());
    }
    return Buffer.concat(chunks, total);
  }

  #succeeded(i: number): void {
    if (this.#active === i) return;
    const from = this.#active;
    this.#active = i;
    debug('failover: upstream %d -> %d (%s)', from + 1, i + 1, this.#o.upstreams[i]!.url);
    this.#report.failover({ from, to: i, url: this.#o.upstreams[i]!.url });
  }

  #failed(i: number, path: string, err: Failure): void {
    const s = this.#state[i]!;
    s.failures++;
    s.lastFailure = err.message;
    s.coolUntil = this.#o.clock.now() + this.#o.coolDown;
    debug('upstream %d (%s) %s for %s', i + 1, this.#o.upstreams[i]!.url, err.message, path);
    this.#report.failure({ upstream: i, url: this.#o.upstreams[i]!.url, path, reason: err.message, status: err.status });
  }
}
