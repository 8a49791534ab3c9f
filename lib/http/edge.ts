/**
 * The edge cache as middleware: `liveSmooth.edge({ upstream })` returns a `(req, res, next)` handler
 * for Express 5, `express.Router` or a plain `node:http` server that answers every GET and HEAD below
 * its mount point from the edge cache (`../edge`) and from the upstream origin(s) behind it. It reads
 * only the request's method, URL and conditional headers, and sets only its response's headers: the
 * host's sessions, cookies and auth run before it as they like.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import createDebug from 'debug';
import { isSmoothError } from '../errors';
import { EdgeAnswer, EdgeCache, EdgeEvents, EdgeStats } from '../edge/cache';
import type { EdgeOptions } from '../edge/options';
import { matches } from './conditional';
import { STATUS } from './status';

const debug = createDebug('live-smooth:edge');

/** The edge middleware, with its cache. */
export interface EdgeHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The framework-free cache behind the handler. */
  readonly cache: EdgeCache;
  /** Counters and sizes: hits, misses, stale, upstream requests, bytes held, per-upstream failures. */
  stats(): EdgeStats;
  /** Adds an event listener (isolated: one that throws or rejects is counted and logged). */
  on<K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): EdgeHandler;
  /** Removes an event listener. */
  off<K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): EdgeHandler;
  /** Drops the cache and aborts upstream requests in flight; later requests get `503`. */
  close(): void;
}

/** Headers a 304 carries (RFC 9110 §15.4.5), from what the full response would have. */
const NOT_MODIFIED_HEADERS = ['cache-control', 'date', 'etag', 'expires', 'last-modified', 'access-control-allow-origin', 'access-control-expose-headers', 'age', 'x-cache'];


/**
 * A client that asks not to be served from a cache without revalidation (a reload): `no-cache` or
 * `max-age=0`, or `Pragma: no-cache` without a `Cache-Control`.
 */
function wantsRevalidation(req: IncomingMessage): boolean {
  const cc = req.headers['cache-control'];
  if (cc !== undefined) return /(^|,)\s*(no-cache|max-age\s*=\s*"?0"?)\s*(,|$)/i.test(cc);
  const pragma = req.headers.pragma;
  return pragma !== undefined && /no-cache/i.test(pragma);
}

/**
 * Creates the edge middleware: a caching reverse proxy for a remote live-smooth origin (or several, for
 * failover). Mount it where the origin's points should appear: `app.use('/live', liveSmooth.edge({
 * upstream: 'http://origin:3000/live' }))` serves `/live/ch1.isml/Manifest` from
 * `http://origin:3000/live/ch1.isml/Manifest`. Only `GET` and `HEAD` are answered (anything else `405`);
 * every path below the mount point goes upstream (nothing is passed to `next`). Upstream failures
 * answer `502` or `504`, too many upstream requests in flight `503`, each with a short text reason.
 * @throws SmoothError ERR_INVALID_OPTION for an invalid option
 */
export function edge(options: EdgeOptions): EdgeHandler {
  const cache = new EdgeCache(options);
  const clock = cache.options.clock;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      text(req, res, 405, 'method not allowed: the edge serves GET and HEAD', { Allow: 'GET, HEAD' });
      return;
    }
    cache.get(req.url ?? '/', { revalidate: wantsRevalidation(req) }).then(
      (answer) => {
        try {
          respond(req, res, answer);
        } catch (err) {
          if (answer.kind === 'stream') answer.cancel();
          fail(req, res, err);
        }
      },
      (err: unknown) => fail(req, res, err),
    );
  };

  const respond = (req: IncomingMessage, res: ServerResponse, a: EdgeAnswer): void => {
    if (res.headersSent || res.destroyed) {
      if (a.kind === 'stream') a.cancel();
      return;
    }
    const head = req.method === 'HEAD';
    if (a.kind === 'stream') {
      const headers: Record<string, string> = { ...a.headers, 'x-cache': a.cache };
      headers.date ??= new Date(clock.now()).toUTCString();
      if (a.length !== undefined) headers['content-length'] = String(a.length);
      res.writeHead(a.status, headers);
      if (head) {
        a.cancel();
        res.end();
        return;
      }
      pipeline(Readable.from(a.body), res, (err) => {
        // The status line is gone: all that is left is to cut the response short.
        if (err) {
          debug('%s: streamed body failed: %s', req.url, err.message);
          a.cancel();
          res.destroy();
        }
      });
      return;
    }
    const e = a.entry;
    const headers: Record<string, string> = { ...e.headers, 'x-cache': a.cache };
    headers.date ??= new Date(clock.now()).toUTCString();
    if (e.life.store) headers.age = String(a.age);
    if (e.status === 200 && e.etag !== undefined && matches(req.headers['if-none-match'], e.etag)) {
      const short: Record<string, string> = {};
      for (const name of NOT_MODIFIED_HEADERS) if (headers[name] !== undefined) short[name] = headers[name];
      res.writeHead(304, short);
      res.end();
      return;
    }
    headers['content-length'] = String(e.body.length);
    res.writeHead(e.status, headers);
    res.end(head ? undefined : e.body);
  };

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    const smooth = isSmoothError(err) ? err : undefined;
    if (!smooth) debug('internal error: %O', err);
    else debug('%s %s: %s', req.method, req.url, smooth.message);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = smooth ? STATUS[smooth.code] : 500;
    text(req, res, status, smooth ? `edge: ${smooth.message}` : 'edge: internal error', status === 503 ? { 'Retry-After': '1' } : {});
  };

  const text = (req: IncomingMessage, res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void => {
    if (res.headersSent || res.destroyed) return;
    const body = `${message}\n`;
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const out: EdgeHandler = Object.assign(handler, {
    cache,
    stats: () => cache.stats(),
    on: <K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): EdgeHandler => {
      cache.on(event, listener);
      return out;
    },
    off: <K extends keyof EdgeEvents>(event: K, listener: (e: EdgeEvents[K]) => unknown): EdgeHandler => {
      cache.off(event, listener);
      return out;
    },
    close: () => cache.close(),
  });
  return out;
}
