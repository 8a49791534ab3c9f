/**
 * The Prometheus scrape endpoint: `liveSmooth.metrics(origin)` returns a handler the host mounts where,
 * and behind whatever auth, it wants (nothing is exposed unless it is mounted). It answers `GET` and
 * `HEAD` on any path below its mount point with the registry's text format; the values are read from
 * the points at that moment (`../metrics.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import createDebug from 'debug';
import type { Registry } from 'prom-client';
import { SmoothError } from '../errors';
import { MetricsOptions, registerMetrics } from '../metrics';
import { Origin } from '../origin';
import type { LiveSmoothHandler } from './middleware';

const debug = createDebug('live-smooth:metrics');

/** The scrape handler, with the origin it reports on and the registry it serves. */
export interface MetricsHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  readonly origin: Origin;
  readonly registry: Registry;
}

/**
 * Creates the scrape handler for an origin (`createOrigin(root)`, or the `liveSmooth` handler that
 * serves it). `options.registry` is a registry of the host's to register on and serve (with whatever
 * else it holds); by default a registry of its own.
 * @throws SmoothError ERR_INVALID_OPTION for anything but an origin or a handler, or a registry that
 *   already reports on another origin
 */
export function metrics(source: Origin | LiveSmoothHandler, options?: MetricsOptions): MetricsHandler {
  let origin: Origin;
  if (source instanceof Origin) origin = source;
  else if (typeof source === 'function' && source.origin instanceof Origin) origin = source.origin;
  else {
    // A root path would make a second origin for the same folder, whose points nobody pushes to.
    throw new SmoothError('ERR_INVALID_OPTION', 'liveSmooth.metrics() needs the origin (createOrigin(root)) or the liveSmooth handler that serves it');
  }
  const registry = registerMetrics(origin, options);

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      const text = 'method not allowed\n';
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
      return;
    }
    registry.metrics().then(
      (text) => {
        if (res.headersSent || res.destroyed) return;
        res.writeHead(200, {
          'Content-Type': registry.contentType,
          'Content-Length': String(Buffer.byteLength(text)),
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
        });
        res.end(method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        // A host metric's collect function failed: the scrape fails as a whole, as prom-client reports it.
        debug('scrape failed: %O', err);
        if (res.headersSent || res.destroyed) return;
        const text = 'metrics collection failed\n';
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-store' });
        res.end(text);
      },
    );
  };
  return Object.assign(handler, { origin, registry });
}
