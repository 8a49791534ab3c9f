/**
 * The HTTP side of on-demand presentations (`<name>.ism/Manifest` and
 * `<name>.ism/QualityLevels(<b>[,k=v])/Fragments(<name>=<t>)`), answered by the same `liveSmooth()`
 * handler as live points. The presentations themselves live in `ondemand/` (no req/res there).
 *
 * Caching: nothing about a presentation changes while its files stay the same, so fragments get the
 * live path's immutable `Cache-Control` (`fragmentMaxAge`). The manifest is kept a day at most
 * (`max-age=86400`, or `fragmentMaxAge` when shorter) and revalidates by ETag: republishing a
 * presentation under the same name changes its manifest first.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import createDebug from 'debug';
import { isSmoothError } from '../errors';
import type { TrackType } from '../model';
import type { OnDemandLookup, OnDemandPresentation } from '../ondemand/presentation';
import type { Origin } from '../origin';
import type { PointRoute } from './routes';
import { STATUS } from './status';

const debug = createDebug('live-smooth:http');

/** Longest `max-age` of an on-demand manifest, in seconds. */
const MANIFEST_MAX_AGE = 86400;

/** What the on-demand handler borrows from the middleware, so both answer alike. */
export interface OnDemandHttp {
  /** Sets the CORS header (the `cors` option). */
  cors(res: ServerResponse): void;
  /** Answers with a short plain-text reason, not cached. */
  send(res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void;
  /** Whether an `If-None-Match` header matches `etag`. */
  matches(header: string | undefined, etag: string): boolean;
  /** Content-Type of a track's fragments. */
  mediaType(type: TrackType): string;
}

/**
 * Creates the request handler of on-demand routes: `(req, res, route, pass)`, where `pass` hands the
 * request on (no such `.ism`: the host may serve something else there).
 */
export function onDemandHandler(
  origin: Origin,
  http: OnDemandHttp,
): (req: IncomingMessage, res: ServerResponse, route: PointRoute, pass: () => void) => void {
  const catalog = origin.onDemand;
  const root = origin.root;
  const fragmentCacheControl = `public, max-age=${origin.options.fragmentMaxAge}, immutable`;
  const manifestCacheControl = `public, max-age=${Math.min(MANIFEST_MAX_AGE, origin.options.fragmentMaxAge)}`;

  /** An error's status and reason; file names relative to the root, never the server's folders. */
  const fail = (res: ServerResponse, err: unknown): void => {
    if (!isSmoothError(err)) debug('on-demand request failed: %O', err);
    const status = isSmoothError(err) ? STATUS[err.code] : 500;
    const message = err instanceof Error ? err.message.split(root + path.sep).join('') : 'internal error';
    http.send(res, status, message);
  };

  const manifest = (req: IncomingMessage, res: ServerResponse, p: OnDemandPresentation): void => {
    const m = p.manifest;
    http.cors(res);
    if (http.matches(req.headers['if-none-match'], m.etag)) {
      res.writeHead(304, { ETag: m.etag, 'Cache-Control': manifestCacheControl });
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': m.contentType,
      'Content-Length': String(m.body.length),
      'Cache-Control': manifestCacheControl,
      ETag: m.etag,
      'Last-Modified': new Date(m.lastModified).toUTCString(),
    });
    res.end(req.method === 'HEAD' ? undefined : m.body);
  };

  const fragment = (req: IncomingMessage, res: ServerResponse, found: Extract<OnDemandLookup, { status: 'ok' }>, p: OnDemandPresentation): void => {
    http.cors(res);
    // Conditional requests are answered from the index: no file read.
    if (http.matches(req.headers['if-none-match'], found.etag)) {
      res.writeHead(304, { ETag: found.etag, 'Cache-Control': fragmentCacheControl });
      res.end();
      return;
    }
    p.read(found).then(
      (f) => {
        if (res.destroyed) return;
        const stamp = p.stamps.find((s) => s.file === found.track.source.file);
        res.writeHead(200, {
          'Content-Type': http.mediaType(found.track.info.type),
          'Content-Length': String(f.moof.length + f.mdat.length),
          'Cache-Control': fragmentCacheControl,
          ETag: found.etag,
          'Last-Modified': new Date(stamp?.mtimeMs ?? p.manifest.lastModified).toUTCString(),
        });
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        res.cork();
        res.write(f.moof);
        res.end(f.mdat);
      },
      (err: unknown) => fail(res, err),
    );
  };

  const serve = (req: IncomingMessage, res: ServerResponse, route: PointRoute, p: OnDemandPresentation): void => {
    const r = route.resource;
    if (req.method === 'OPTIONS') {
      http.cors(res);
      res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS', 'Access-Control-Max-Age': '86400', 'Content-Length': '0' });
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return http.send(res, 405, 'on-demand presentations answer GET and HEAD', { Allow: 'GET, HEAD' });
    }
    if (r.kind === 'manifest') return manifest(req, res, p);
    if (r.kind === 'fragment' && r.part === 'Fragments') {
      const found = p.lookup(r.bitrate, r.attributes, r.track, r.time);
      if (found.status === 'not-found') return http.send(res, 404, found.reason);
      return fragment(req, res, found, p);
    }
    if (r.kind === 'unknown') return http.send(res, 404, r.reason);
    if (r.kind === 'fragment') return http.send(res, 404, `${r.part} is not served for on-demand presentations`);
    return http.send(res, 404, 'not served for on-demand presentations (Manifest and Fragments only)');
  };

  return (req, res, route, pass) => {
    catalog
      .get(route.point)
      .then((p) => (p ? serve(req, res, route, p) : pass()))
      .catch((err: unknown) => fail(res, err));
  };
}
