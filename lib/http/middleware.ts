/**
 * The HTTP edge: `liveSmooth(origin)` returns a `(req, res, next)` handler for Express 5,
 * `express.Router` or a plain `node:http` server that serves the origin's publishing points, and the
 * on-demand presentations under its root (`ondemand.ts`). It answers only URLs below `<name>.isml/`
 * (or `<name>.ism/`) whose definition (or presentation) file exists under the origin's root, and passes
 * everything else to `next()`. It needs no session, cookie or body parser and changes none.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import createDebug from 'debug';
import { SmoothError, isSmoothError } from '../errors';
import type { LiveSmoothOptions } from '../options';
import { Origin, createOrigin } from '../origin';
import { outputFormats } from '../definition';
import { TIME_URL_PLACEHOLDER } from '../manifest/output';
import { escapeAttr } from '../manifest/xml';
import type { TrackType } from '../model';
import type { FragmentLookup, PackagedFragment, PublishingPoint, RenderedManifest } from '../point';
import { contentTag, liveMaxAge } from '../point';
import { matches } from './conditional';
import { cmafIngest, cmafTrackName } from '../ingest/smooth';
import type { IngestSession } from '../point/session';
import type { ResponseOutput } from '../point/stats';
import { isThenable } from '../store/types';
import { IngestDecision, authorizeIngest } from './auth';
import type { OnDemandCatalog } from '../ondemand/catalog';
import { onDemandHandler } from './ondemand';
import { PointRoute, Resource, parseRoute } from './routes';
import { STATUS } from './status';
import { isUpload, uploadHandler } from './upload';

const debugHttp = createDebug('live-smooth:http');
const debugIngest = createDebug('live-smooth:ingest');

/** The middleware function, with the origin it serves. */
export interface LiveSmoothHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The framework-free origin: publishing points, their state and events. */
  readonly origin: Origin;
  /** The on-demand presentations (`.ism`) it serves; `close()` it to release their file handles. */
  readonly onDemand: OnDemandCatalog;
}

/**
 * True when `req` is an ingest request: a Smooth ingest POST (`….isml/Streams(…)` or
 * `….isml/Events(…)/Streams(…)`), or a CMAF upload: a PUT or POST below a `.isml` of an MPD or a segment
 * named as encoders name them (`.mpd`, `.m4s`, `.mp4`, `.m4v`, `.m4a`, `.cmfv`/`.cmfa`/`.cmft`/`.cmfm`,
 * `.header`).
 * Use it in host body parsers' `type` option so they leave ingest bodies alone:
 * `express.raw({ type: (req) => !isIngest(req) })`.
 */
export function isIngest(req: IncomingMessage): boolean {
  if (req.method !== 'POST' && req.method !== 'PUT') return false;
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
  let path = url.split('?')[0]!;
  try {
    path = decodeURIComponent(path);
  } catch {
    return false;
  }
  if (req.method === 'POST' && /\.isml\/(events\([^/]*\)\/)?streams\([^/]*\)\/?$/i.test(path)) return true;
  // A CMAF upload: an MPD or a segment by the names encoders give them (ffmpeg: `.mpd`, `.m4s`).
  return /\.isml\/[^?]*\.(mpd|m4s|mp4|m4v|m4a|cmf[vatm]|header)$/i.test(path);
}

/**
 * After refusing an ingest POST, the request is still read (and its bytes discarded) for at most this
 * long before the connection closes: closing a socket while its peer still sends makes the kernel answer
 * with a reset, and an encoder that is busy writing then sees only `ECONNRESET`, never the status and
 * its reason. Reading on lets the answer arrive first; the bound keeps a peer that streams forever from
 * holding the connection. The drain ends earlier when the peer ends its body or closes.
 */
export const REFUSAL_DRAIN_MS = 2000;

const checkedServers = new WeakSet<Server>();
let warned = false;

/**
 * The server settings that keep idle sockets bounded while ingest POSTs stay unlimited, checked once
 * per server (Node's defaults with `requestTimeout: 0` leave sockets that never send a request open
 * forever: `headersTimeout` then defaults to `min(60 s, requestTimeout)` = 0).
 */
function checkServer(server: Server): void {
  if (checkedServers.has(server)) return;
  checkedServers.add(server);
  if (typeof server.headersTimeout !== 'number') return; // not a node:http(s) server: nothing to check
  const problems: string[] = [];
  if (server.requestTimeout > 0) {
    debugIngest(
      'server.requestTimeout is %d ms: live ingest POSTs will be cut after that; create the server with { requestTimeout: 0 }',
      server.requestTimeout,
    );
    problems.push(`requestTimeout is ${server.requestTimeout} ms, which cuts live ingest POSTs (set it to 0)`);
  }
  if (!(server.headersTimeout > 0)) {
    problems.push('headersTimeout is 0, so sockets that send no request or send their headers slowly are never closed (set e.g. 10000)');
  }
  if (!(server.keepAliveTimeout > 0)) {
    problems.push('keepAliveTimeout is 0, so idle keep-alive sockets are never closed (keep e.g. 5000)');
  }
  if (!(typeof server.maxConnections === 'number' && server.maxConnections > 0 && Number.isFinite(server.maxConnections))) {
    problems.push('maxConnections is not set, so nothing bounds the open sockets (set it below the file descriptor limit)');
  }
  if (problems.length === 0) return;
  for (const p of problems) debugHttp('server setting: %s', p);
  if (warned) return;
  warned = true;
  process.emitWarning(
    `live-smooth: HTTP server settings: ${problems.join('; ')}. Recommended for live ingest with bounded idle sockets: ` +
      'http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, app) and server.maxConnections = 1000.',
    { code: 'LIVE_SMOOTH_SERVER_SETTINGS' },
  );
}

/** The output a fragment part's responses count as. */
const PART_OUTPUT: Readonly<Record<'Fragments' | 'FragmentInfo' | 'RawFragments', ResponseOutput>> = {
  Fragments: 'fragment',
  FragmentInfo: 'fragment_info',
  RawFragments: 'raw_fragment',
};

const PLACEHOLDER_BYTES = Buffer.byteLength(TIME_URL_PLACEHOLDER);

/**
 * The absolute path of the point's `time` URL, from the path a request for one of its resources came
 * by (mount point included): the MPD's `UTCTiming` must not depend on how a player resolves it.
 */
function timePath(req: IncomingMessage): string | undefined {
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
  const m = /^(\/[^?#]*?\.isml)\//i.exec(url);
  return m ? `${m[1]}/time` : undefined;
}

/** The output a failure inside dispatch counts as: the one the resource would have been answered as. */
function outputOf(resource: Resource): ResponseOutput {
  if (resource.kind === 'ingest' || resource.kind === 'manifest') return resource.kind;
  if (resource.kind === 'output') return resource.format;
  if (resource.kind === 'cmaf') return resource.part === 'init' ? 'cmaf_init' : resource.part === 'playlist' ? 'm3u8' : 'cmaf_segment';
  if (resource.kind === 'fragment' && resource.part !== 'KeyFrames') return PART_OUTPUT[resource.part];
  return 'other';
}

/** Content-Type of a track's fragments and segments. */
function mediaType(type: TrackType): string {
  return type === 'video' ? 'video/mp4' : type === 'audio' ? 'audio/mp4' : 'application/mp4';
}


/**
 * Creates the middleware.
 * @param source - the origin to serve (`createOrigin(root, options)`), or the folder holding the `.isml`
 *   publishing point definitions (nested folders allowed), for which a new origin is created
 * @param options - see {@link LiveSmoothOptions}; only with a folder (an origin has its options)
 * @throws SmoothError ERR_INVALID_OPTION for an invalid option
 */
export function liveSmooth(source: Origin | string, options?: LiveSmoothOptions): LiveSmoothHandler {
  let origin: Origin;
  if (source instanceof Origin) {
    if (options !== undefined) {
      throw new SmoothError('ERR_INVALID_OPTION', 'options go to createOrigin(root, options) when liveSmooth() is given an origin');
    }
    origin = source;
  } else {
    origin = createOrigin(source, options);
  }
  const resolved = origin.options;

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    const pass = (): void => {
      if (next) next();
      else send(res, 404, 'not found');
    };
    let route: PointRoute | undefined;
    try {
      route = parseRoute(req.url ?? '/');
    } catch (err) {
      reply(res, err);
      return;
    }
    if (!route) return pass();
    if (route.onDemand) {
      res.setHeader('Date', httpDate());
      return onDemand(req, res, route, () => {
        res.removeHeader('Date');
        pass();
      });
    }
    const found = route;
    if (isUpload(req.method, found.resource)) upload.receive(req, res);
    // An encoder pushing to a point that does not exist is told so and let go: passed on, its endless
    // body would keep a host's 404 from ever being sent (Express answers once a body has ended).
    const missing = (): void =>
      (found.resource.kind === 'ingest' && req.method === 'POST') || isUpload(req.method, found.resource)
        ? refuse(req, res, undefined, new SmoothError('ERR_NO_POINT', `no publishing point ${found.point}`))
        : pass();
    const cached = origin.cached(found.point);
    if (cached === null) return missing();
    if (cached) return dispatch(req, res, cached, found.resource);
    origin.resolve(found.point).then(
      (point) => (point ? dispatch(req, res, point, found.resource) : missing()),
      (err: unknown) => reply(res, err),
    );
  };

  // The Date header comes from the clock that places segments in time (the MPD's availability, the
  // `time` endpoint), not from Node's own: players that sync to it then agree with the MPD, also under
  // an injected clock. It has whole seconds, so the string is built once per second.
  let dateSecond = Number.NaN;
  let dateText = '';
  const httpDate = (): string => {
    const second = Math.floor(resolved.clock.now() / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      dateText = new Date(second * 1000).toUTCString();
    }
    return dateText;
  };

  const dispatch = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, resource: Resource): void => {
    const server = (req.socket as { server?: Server }).server;
    if (server) checkServer(server);
    res.setHeader('Date', httpDate());
    try {
      if (req.method === 'OPTIONS') return preflight(res, point);
      if (isUpload(req.method, resource)) return upload.serve(req, res, point);
      if (resource.kind === 'ingest') {
        if (req.method !== 'POST') return answer(res, point, 'other', 405, 'ingest needs POST', { Allow: 'POST' });
        return ingest(req, res, point, resource.streamId);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, point, 'other', 405, 'method not allowed', { Allow: 'GET, HEAD' });
      if (point.state === 'Error') return answer(res, point, 'other', 500, `publishing point error: ${point.error ?? 'unknown'}`);
      if (resource.kind === 'unknown') return answer(res, point, 'other', 404, resource.reason);
      if (resource.kind === 'time') return clock(req, res, point);
      const offered = outputFormats(point.settings.formats);
      if (resource.kind === 'output' && !offered[resource.format === 'mpd' ? 'dash' : 'hls']) {
        return answer(res, point, 'other', 404, `this publishing point does not offer ${resource.format === 'mpd' ? 'DASH' : 'HLS'} (its formats setting)`);
      }
      if (resource.kind === 'cmaf' && !offered.dash && !offered.hls) {
        return answer(res, point, 'other', 404, 'this publishing point offers neither DASH nor HLS (its formats setting)');
      }
      if (!point.serving) {
        point.clientRequest();
        return answer(res, point, 'other', 404, `publishing point is ${point.state}: no live content yet`);
      }
      if (resource.kind === 'manifest') return manifest(req, res, point, 'manifest', point.manifest());
      if (resource.kind === 'output') {
        if (resource.format === 'm3u8') return manifest(req, res, point, 'm3u8', point.hlsMaster());
        return manifest(req, res, point, 'mpd', point.mpd(), timePath(req));
      }
      if (resource.kind === 'cmaf') return cmaf(req, res, point, resource);
      return fragment(req, res, point, resource);
    } catch (err) {
      reply(res, err, point, outputOf(resource));
    }
  };

  const cors = (res: ServerResponse): void => {
    if (resolved.cors !== false) res.setHeader('Access-Control-Allow-Origin', resolved.cors);
  };

  const preflight = (res: ServerResponse, point: PublishingPoint): void => {
    point.responses.count('other', 204);
    cors(res);
    res.writeHead(204, {
      'Access-Control-Allow-Methods': 'GET, HEAD, POST, OPTIONS',
      'Access-Control-Max-Age': '86400',
      'Content-Length': '0',
    });
    res.end();
  };

  /** Answers with a short plain-text `message`; with `end` false the whole answer is written but the response left open. */
  const send = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, end = true): void => {
    if (res.headersSent) return;
    cors(res);
    const body = message === '' ? '' : `${message}\n`;
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      'Cache-Control': 'no-store',
      ...headers,
    });
    const data = res.req?.method === 'HEAD' ? undefined : body;
    if (end) res.end(data);
    else if (data) res.write(data);
  };

  /**
   * {@link send} for a request that reached `point`, counted there as `output` when the status goes out
   * (counted where it is written: nothing listens on the response).
   */
  const answer = (
    res: ServerResponse,
    point: PublishingPoint,
    output: ResponseOutput,
    status: number,
    message: string,
    headers?: Record<string, string>,
    end?: boolean,
  ): void => {
    if (!res.headersSent) point.responses.count(output, status);
    send(res, status, message, headers, end);
  };

  /** Answers an error; counted as `output` when the request reached `point`, and as a refusal for an encoder. */
  const reply = (res: ServerResponse, err: unknown, point?: PublishingPoint, output: ResponseOutput = 'other'): void => {
    const smooth = isSmoothError(err) ? err : undefined;
    if (!smooth) debugHttp('internal error: %O', err);
    const status = smooth ? STATUS[smooth.code] : 500;
    const message = smooth ? smooth.message : 'internal error';
    if (!point) return send(res, status, message);
    if (output === 'ingest') point.responses.refused(smooth ? smooth.code : 'internal');
    answer(res, point, output, status, message);
  };

  /**
   * Answers an encoder with an error and closes the connection: ffmpeg never reads the status while it
   * pushes, so the server has to end the exchange. The whole answer goes out at once; the rest of the
   * body is then read and discarded until the encoder ends or closes it, or for at most
   * {@link REFUSAL_DRAIN_MS}, and only then does the response end, which (with `Connection: close`) has
   * Node send a FIN and close the socket. Closing at once would reset a connection that still has
   * incoming data, and the encoder could lose the answer with it. The refusal counts on the point by
   * its code even when an answer was already under way: the encoder is cut for that reason all the same.
   * `status` replaces the code's where a protocol says otherwise (DASH-IF ingest, `upload.ts`).
   */
  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    point: PublishingPoint | undefined,
    err: unknown,
    headers: Record<string, string> = {},
    status = isSmoothError(err) ? STATUS[err.code] : 500,
  ): void => {
    const smooth = isSmoothError(err) ? err : undefined;
    if (!smooth) debugIngest('internal error: %O', err);
    point?.responses.refused(smooth ? smooth.code : 'internal');
    // An answer already under way (not ours to replace) may not say Connection: close: close after it.
    if (res.headersSent) {
      if (res.writableFinished) req.socket.destroySoon();
      else res.once('finish', () => req.socket.destroySoon());
    }
    const message = smooth ? smooth.message : 'internal error';
    if (point) answer(res, point, 'ingest', status, message, { ...headers, Connection: 'close' }, false);
    else send(res, status, message, { ...headers, Connection: 'close' }, false);
    const discard = (): void => undefined;
    let timer: NodeJS.Timeout | undefined;
    const close = (): void => {
      if (timer) clearTimeout(timer);
      req.removeListener('data', discard);
      req.removeListener('end', close);
      req.removeListener('close', close);
      if (!res.writableEnded) res.end();
    };
    if (req.complete || req.readableEnded || req.destroyed) return close();
    timer = setTimeout(() => {
      debugIngest('refused encoder still sending after %d ms: closing', REFUSAL_DRAIN_MS);
      close();
    }, REFUSAL_DRAIN_MS).unref();
    req.on('data', discard);
    req.once('end', close);
    req.once('close', close);
    req.resume();
  };

  /**
   * Sends a rendered manifest (Smooth, MPD or HLS playlist). An MPD's `UTCTiming` URL is made absolute
   * here, per request, from the path the request came by (`timePath`), since the rendering is shared by
   * every client and players resolve it against the page rather than the MPD.
   */
  const manifest = (
    req: IncomingMessage,
    res: ServerResponse,
    point: PublishingPoint,
    output: ResponseOutput,
    m: RenderedManifest & { timeAt?: number },
    timePath?: string,
  ): void => {
    cors(res);
    const cacheControl = m.maxAge > 0 ? `public, max-age=${m.maxAge}` : 'no-cache';
    if (matches(req.headers['if-none-match'], m.etag)) {
      point.responses.count(output, 304);
      res.writeHead(304, { ETag: m.etag, 'Cache-Control': cacheControl });
      res.end();
      return;
    }
    // The parts around the placeholder are views of the shared rendering: nothing is copied per request.
    const at = timePath === undefined ? -1 : (m.timeAt ?? -1);
    const path = at === -1 ? undefined : Buffer.from(escapeAttr(timePath!), 'utf8');
    point.responses.count(output, 200);
    res.writeHead(200, {
      'Content-Type': m.contentType,
      'Content-Length': String(path ? m.body.length - PLACEHOLDER_BYTES + path.length : m.body.length),
      'Cache-Control': cacheControl,
      ETag: m.etag,
      'Last-Modified': new Date(m.lastModified).toUTCString(),
    });
    if (req.method === 'HEAD') res.end();
    else if (!path) res.end(m.body);
    else {
      res.cork();
      res.write(m.body.subarray(0, at));
      res.write(path);
      res.end(m.body.subarray(at + PLACEHOLDER_BYTES));
    }
  };

  /** The wall clock as DASH `UTCTiming` (`http-iso`) reads it: ISO 8601 with milliseconds, never cached. */
  const clock = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint): void => {
    const body = new Date(resolved.clock.now()).toISOString();
    point.responses.count('other', 200);
    cors(res);
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  /** `cmaf/<rep>/…`: an init segment, a media segment (DASH and HLS), or an HLS media playlist. */
  const cmaf = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, r: Extract<Resource, { kind: 'cmaf' }>): void => {
    if (r.part === 'playlist') {
      const m = point.hlsMedia(r.rep);
      if (!m) return answer(res, point, 'm3u8', 404, `no representation ${r.rep}`);
      return manifest(req, res, point, 'm3u8', m);
    }
    if (r.part === 'init') {
      const header = point.initSegment(r.rep);
      if (!header) return answer(res, point, 'cmaf_init', 404, `no representation ${r.rep}`);
      let etag = initTags.get(header.init);
      if (etag === undefined) {
        etag = `"i${contentTag(header.init)}"`;
        initTags.set(header.init, etag);
      }
      cors(res);
      // A new session may describe the track differently under the same id: revalidated every time
      // (by its ETag: an edge asks with If-None-Match and gets a 304 while the track stays the same).
      if (matches(req.headers['if-none-match'], etag)) {
        point.responses.count('cmaf_init', 304);
        res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache' });
        res.end();
        return;
      }
      point.responses.count('cmaf_init', 200);
      res.writeHead(200, {
        'Content-Type': mediaType(header.info.type),
        'Content-Length': String(header.init.length),
        'Cache-Control': 'no-cache',
        ETag: etag,
      });
      res.end(req.method === 'HEAD' ? undefined : header.init);
      return;
    }
    const found = point.segment(r.rep, r.time);
    // DASH-IF and USP: 404 for a segment not available yet, 410 for one that left the window.
    if (found.status === 'not-yet') return answer(res, point, 'cmaf_segment', 404, `segment ${r.time} of ${r.rep} is not available yet`);
    if (found.status === 'expired') return answer(res, point, 'cmaf_segment', 410, found.reason);
    if (found.status === 'not-found') return answer(res, point, 'cmaf_segment', 404, found.reason);
    const etag = `"c${found.found.etag.slice(2)}`;
    cors(res);
    if (matches(req.headers['if-none-match'], etag)) {
      point.responses.count('cmaf_segment', 304);
      res.writeHead(304, { ETag: etag, 'Cache-Control': fragmentCacheControl });
      res.end();
      return;
    }
    const packaged = point.cmafSegment(found.found, { decodeTimeOffset: found.decodeTimeOffset });
    const send = (p: PackagedFragment | undefined): void => {
      if (!p) return answer(res, point, 'cmaf_segment', 404, `segment ${r.time} of ${r.rep} left the window`);
      point.responses.count('cmaf_segment', 200);
      writeFragment(req, res, 'Fragments', found.found.track.type, etag, fragmentCacheControl, p);
    };
    if (isThenable(packaged)) {
      Promise.resolve(packaged).then(send, (err: unknown) => reply(res, err, point, 'cmaf_segment'));
    } else {
      send(packaged);
    }
  };

  const fragmentCacheControl = `public, max-age=${resolved.fragmentMaxAge}, immutable`;
  /**
   * A fragment whose tfrf can still grow: kept as long as a manifest (about half its duration), so a
   * cache never holds a shorter tfrf for long.
   */
  const growingCacheControl = (found: Extract<FragmentLookup, { status: 'ok' }>): string => {
    const age = liveMaxAge(Number(found.fragment.duration) / found.track.timescale);
    return age > 0 ? `public, max-age=${age}` : 'no-cache';
  };

  /** Init segments' ETags, computed once per init segment (a new session's header is a new Buffer). */
  const initTags = new WeakMap<Buffer, string>();

  const fragment = (
    req: IncomingMessage,
    res: ServerResponse,
    point: PublishingPoint,
    r: Extract<Resource, { kind: 'fragment' }>,
  ): void => {
    if (r.part === 'KeyFrames') return answer(res, point, 'other', 404, 'KeyFrames is not supported by this origin');
    respond(req, res, point, r.part, point.lookup(r.track, r.bitrate, r.attributes, r.time), false);
  };

  const respond = (
    req: IncomingMessage,
    res: ServerResponse,
    point: PublishingPoint,
    part: 'Fragments' | 'FragmentInfo' | 'RawFragments',
    found: FragmentLookup,
    waited: boolean,
  ): void => {
    if (found.status === 'not-yet') return answer(res, point, PART_OUTPUT[part], 412, '');
    if (found.status === 'not-found') return answer(res, point, PART_OUTPUT[part], 404, found.reason);
    // The newest fragment of a live track: answer once the next exists, so the tfrf announces it.
    const wait = waited || part === 'RawFragments' ? undefined : point.awaitSuccessor(found);
    if (wait) {
      wait.then(() => {
        if (res.destroyed) return;
        try {
          respond(req, res, point, part, point.again(found), true);
        } catch (err) {
          reply(res, err, point, PART_OUTPUT[part]);
        }
      });
      return;
    }
    // Only the moof holds the tfrf: raw sample bytes never change.
    const fixed = found.complete || part === 'RawFragments';
    const etag = `"${found.etag.slice(1, -1)}${fixed ? '' : `.${found.tfrf}`}.${part}"`;
    const cacheControl = fixed ? fragmentCacheControl : growingCacheControl(found);
    cors(res);
    if (matches(req.headers['if-none-match'], etag)) {
      point.responses.count(PART_OUTPUT[part], 304);
      res.writeHead(304, { ETag: etag, 'Cache-Control': cacheControl });
      res.end();
      return;
    }
    const packaged = point.smoothFragment(found);
    // A store in memory answers at once: no Promise (and no extra turn of the event loop) per request.
    if (isThenable(packaged)) {
      Promise.resolve(packaged).then(
        (p) => deliver(req, res, point, part, found, etag, cacheControl, p),
        (err: unknown) => reply(res, err, point, PART_OUTPUT[part]),
      );
    } else {
      deliver(req, res, point, part, found, etag, cacheControl, packaged);
    }
  };

  /** Sends a packaged fragment: its header, then the stored sample bytes as they are (never a copy). */
  const deliver = (
    req: IncomingMessage,
    res: ServerResponse,
    point: PublishingPoint,
    part: 'Fragments' | 'FragmentInfo' | 'RawFragments',
    found: Extract<FragmentLookup, { status: 'ok' }>,
    etag: string,
    cacheControl: string,
    p: PackagedFragment | undefined,
  ): void => {
    if (!p) return answer(res, point, PART_OUTPUT[part], 404, `no fragment of ${found.track.name} at ${found.time} (it left the window)`);
    point.responses.count(PART_OUTPUT[part], 200);
    writeFragment(req, res, part, found.track.type, etag, cacheControl, p);
  };

  /** Writes a packaged fragment's response: its header, then the stored sample bytes as they are (never a copy). */
  const writeFragment = (
    req: IncomingMessage,
    res: ServerResponse,
    part: 'Fragments' | 'FragmentInfo' | 'RawFragments',
    type: TrackType,
    etag: string,
    cacheControl: string,
    p: PackagedFragment,
  ): void => {
    const stream = Buffer.isBuffer(p.data) ? undefined : p.data;
    const length = part === 'FragmentInfo' ? p.moofSize : part === 'RawFragments' ? p.dataSize : p.head.length + p.dataSize;
    res.writeHead(200, {
      'Content-Type': mediaType(type),
      'Content-Length': String(length),
      'Cache-Control': cacheControl,
      ETag: etag,
      'Last-Modified': new Date(p.storedAt).toUTCString(),
    });
    if (req.method === 'HEAD' || part === 'FragmentInfo') {
      stream?.destroy();
      res.end(req.method === 'HEAD' ? undefined : p.head.subarray(0, p.moofSize));
      return;
    }
    if (part === 'Fragments') {
      res.cork();
      res.write(p.head);
    }
    if (!stream) {
      res.end(p.data as Buffer);
      return;
    }
    pipeline(stream, res, (err) => {
      // The status line is gone: all that is left is to cut the response short.
      if (err) {
        debugHttp('fragment body failed: %s', err.message);
        res.destroy();
      }
    });
    if (part === 'Fragments') res.uncork();
  };

  const ingest = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, streamId: string): void => {
    if (req.readableEnded || req.readableDidRead || (req as { body?: unknown }).body !== undefined) {
      // A host body parser read the stream first; the fragments are gone.
      return reply(
        res,
        new SmoothError(
          'ERR_BODY_CONSUMED',
          'ingest body was consumed by a body parser mounted before live-smooth; exempt ingest with isIngest(req)',
        ),
        point,
        'ingest',
      );
    }
    // Who may push is decided before the point sees the POST (the probe too). The body waits unread
    // (paused) while a hook decides.
    const decision = authorizeIngest(req, point, resolved.ingestAuth);
    if (!isThenable(decision)) return admitted(req, res, point, streamId, decision);
    decision.then(
      (d) => {
        if (req.destroyed || res.destroyed) return;
        try {
          admitted(req, res, point, streamId, d);
        } catch (err) {
          refuse(req, res, point, err);
        }
      },
      (err: unknown) => refuse(req, res, point, err),
    );
  };

  const admitted = (req: IncomingMessage, res: ServerResponse, point: PublishingPoint, streamId: string, decision: IngestDecision): void => {
    if (!decision.ok) {
      debugIngest('%s: stream %s from %s refused: %s', point.path, streamId, req.socket.remoteAddress, decision.error.message);
      return refuse(req, res, point, decision.error, decision.headers);
    }
    if (point.settings.sourceType === 'Pull') {
      throw new SmoothError('ERR_POINT_STATE', 'this publishing point pulls from its sources (sourceType=Pull); it takes no pushes');
    }
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (!chunked && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0')) {
      // Probe POST (MS-SSTR 3.3.4.1): say whether a stream would be accepted.
      point.checkIngest();
      point.responses.count('ingest', 200);
      cors(res);
      res.writeHead(200, { 'Content-Length': '0', 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    let conn: IngestSession;
    try {
      // `Streams(video-800k.cmfv)`: a CMAF track (DASH-IF live media ingest) on the same point.
      const parser = (cmafTrackName(streamId) !== undefined ? cmafIngest(streamId) : resolved.ingest)({ maxBoxSize: resolved.maxBoxSize });
      conn = point.openIngest(streamId, req.socket.remoteAddress, parser, decision.identity);
    } catch (err) {
      return refuse(req, res, point, err);
    }
    debugIngest('%s: stream %s from %s as %s', point.path, streamId, req.socket.remoteAddress, decision.identity);
    conn.onKill = () => {
      if (done) return;
      stop();
      refuse(req, res, point, new SmoothError('ERR_POINT_STATE', `publishing point is ${point.state}: stream closed`));
    };
    req.socket.setTimeout(0);
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (resolved.ingestIdleTimeout === 0) return;
      if (idle) idle.refresh();
      else idle = setTimeout(idleOut, resolved.ingestIdleTimeout).unref();
    };
    const stop = (): void => {
      done = true;
      if (idle) clearTimeout(idle);
      req.removeListener('data', onData);
    };
    const fail = (err: unknown, reason: 'error' | 'disconnected' = 'error'): void => {
      if (done) return;
      stop();
      conn.abort(reason, isSmoothError(err) ? err : undefined);
      refuse(req, res, point, err);
    };
    const idleOut = (): void => {
      if (!conn.sparseOnly) return fail(new SmoothError('ERR_INGEST_IDLE', 'no data from the encoder within the idle timeout'), 'disconnected');
      // Azure's encoders close a sparse POST between events and reopen it with its header: an idle one
      // is closed as they would, not reported as a failing encoder.
      if (done) return;
      stop();
      conn.abort('disconnected');
      refuse(req, res, point, new SmoothError('ERR_INGEST_IDLE', 'sparse stream idle: closed; reopen it with its header for the next event'));
    };
    const onData = (chunk: Buffer): void => {
      arm();
      try {
        conn.write(chunk);
      } catch (err) {
        fail(err);
      }
    };
    req.on('data', onData);
    req.on('end', () => {
      if (done) return;
      try {
        conn.finish();
      } catch (err) {
        fail(err);
        return;
      }
      stop();
      // The connection may carry other requests next (keep-alive): give it back the server's idle timeout.
      req.socket.setTimeout((req.socket as { server?: Server }).server?.timeout ?? 0);
      point.responses.count('ingest', 200);
      cors(res);
      res.writeHead(200, { 'Content-Length': '0', 'Cache-Control': 'no-store' });
      res.end();
    });
    req.on('close', () => {
      if (done) return;
      stop();
      conn.abort('disconnected');
    });
    req.on('error', () => undefined); // 'close' follows and handles it
    arm();
  };

  const onDemand = onDemandHandler(origin, { cors, send, matches, mediaType });
  const upload = uploadHandler({ options: resolved, cors, refuse });

  return Object.assign(handler, { origin, onDemand: origin.onDemand });
}
