/**
 * The management API (the IIS Manager's role) and the live dashboard: `liveSmooth.admin(origin)` returns
 * a separate handler the host mounts where, and behind whatever auth, it wants. Nothing is exposed
 * unless it is mounted. JSON in and out; commands need `POST` with `Content-Type: application/json`,
 * which a plain HTML form cannot send cross-site (no CSRF by form).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import type { ArchiveStatus } from '../archive';
import createDebug from 'debug';
import { outputFormats } from '../definition';
import { SmoothError, isSmoothError } from '../errors';
import { Origin, isPointPath } from '../origin';
import type { PointCommand, PublishingPoint } from '../point';
import { DASHBOARD_HTML } from './dashboard';
import type { LiveSmoothHandler } from './middleware';
import { STATUS } from './status';

const debug = createDebug('live-smooth:admin');

/** Options of {@link admin}. */
export interface AdminOptions {
  /**
   * Where the `liveSmooth` middleware is mounted (`/live`, or a full `https://…/live`): each point's
   * `urls` (and the dashboard's links) then start with it. Default: none, the URLs are relative to the
   * middleware's mount point.
   */
  live?: string;
  /**
   * Where the sample player page (`live-smooth/player`) is mounted (`/player/`, or a full URL): the
   * dashboard then links each archive to it (`?src=<its Manifest>`). Default: archives link to their
   * Manifest.
   */
  player?: string;
  /** Interval of the `stats` events on `/events`, ms (at most 2000). Default `1000`. */
  statsInterval?: number;
  /** Most concurrent `/events` clients. Default `100`. */
  maxEventClients?: number;
}

/** The management handler, with the origin it manages. */
export interface AdminHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  readonly origin: Origin;
}

/** Bytes of events queued for one `/events` client that does not read before it is dropped. */
const MAX_EVENT_BACKLOG = 1024 * 1024;

/** Largest JSON body accepted. */
const MAX_BODY = 64 * 1024;
/** Deepest nesting of arrays and objects accepted in a JSON body (a settings object needs 1). */
const MAX_JSON_DEPTH = 32;
/** Most values looked at when checking a body the host already parsed (a 64 KiB body holds fewer). */
const MAX_JSON_VALUES = 100_000;

/**
 * Whether JSON `text` nests arrays and objects deeper than `max`: one linear pass that skips strings,
 * so a deep body is refused before any parser (or code walking its result) recurses into it. Text that
 * is not JSON is left for the parser to refuse.
 */
function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if ((c === 0x5d || c === 0x7d) && --depth < 0) return false; // not JSON: the parser says so
  }
  return false;
}

/**
 * The same bound for a value a host's body parser already built: an iterative walk (no recursion),
 * which also gives up on more than {@link MAX_JSON_VALUES} values (shared or cyclic references).
 */
function valueTooDeep(value: unknown, max = MAX_JSON_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let seen = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max || ++seen > MAX_JSON_VALUES) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return false;
}

const tooDeep = (): SmoothError =>
  new SmoothError('ERR_BAD_URL', `request body is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`);

/** JSON form of a publishing point (times as decimal strings: they exceed 2^53). */
/**
 * The player URLs of a point, by output, for the formats it offers: Smooth always, DASH and HLS as its
 * `formats` setting says; prefixed with `live` (the middleware's mount point) when given.
 */
export function pointUrls(p: PublishingPoint, live?: string): Record<string, string> {
  const prefix = live === undefined ? '' : `${live.replace(/\/+$/, '')}/`;
  const offered = outputFormats(p.settings.formats);
  const urls: Record<string, string> = { smooth: `${prefix}${p.path}/Manifest` };
  if (offered.dash) urls.dash = `${prefix}${p.path}/.mpd`;
  if (offered.hls) urls.hls = `${prefix}${p.path}/.m3u8`;
  return urls;
}

/**
 * An archive as the management API shows it: its folder relative to the media root when it lies under
 * it (then also `url`, its on-demand Manifest, prefixed with `live` as for {@link pointUrls}), else
 * absolute.
 */
export function archiveJson(a: ArchiveStatus, root: string, live?: string): Record<string, unknown> {
  const inside = path.relative(root, a.ism);
  const under = !inside.startsWith('..') && !path.isAbsolute(inside);
  const rel = under ? inside.split(path.sep).join('/') : undefined;
  const prefix = live === undefined ? '' : `${live.replace(/\/+$/, '')}/`;
  return {
    ism: rel ?? a.ism,
    url: rel === undefined ? null : `${prefix}${rel}/Manifest`,
    segment: a.segment,
    startedAt: new Date(a.startedAt).toISOString(),
    state: a.state,
    error: a.error ?? null,
    tracks: a.tracks,
    fragments: a.fragments,
    bytes: a.bytes,
    duration: a.duration,
  };
}

/** A point as the management API shows it; `live` as for {@link pointUrls}; `archives` from {@link archiveJson}. */
export function pointJson(p: PublishingPoint, live?: string, archives: ReadonlyArray<Record<string, unknown>> = []): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p.settings)) settings[k] = v ?? null;
  return {
    path: p.path,
    state: p.state,
    error: p.error ?? null,
    source: p.source ? { ...p.source, reason: p.source.reason ?? null } : null,
    settings,
    pendingSettings: p.pendingSettings !== undefined,
    urls: pointUrls(p, live),
    archives,
    bytes: p.bytes,
    memory: p.memory,
    failures: p.failures,
    ...p.encoderCounts,
    streams: p.streams.map((s) => ({ ...s, remoteAddress: s.remoteAddress ?? null })),
    tracks: p.trackStats.map((t) => ({
      key: t.key,
      type: t.info.type,
      name: t.info.name,
      bitrate: t.info.bitrate,
      fourCC: t.info.fourCC,
      timescale: t.info.timescale,
      incomingBitrate: t.incomingBitrate,
      lastFragmentTime: t.lastFragmentTime?.toString() ?? null,
      lastFragmentDuration: t.lastFragmentDuration?.toString() ?? null,
      fragments: t.fragments,
      bytes: t.bytes,
      requests: t.requests,
      notFound: t.notFound,
      notYetAvailable: t.notYetAvailable,
    })),
  };
}

/**
 * Creates the management handler for the points of an origin (`createOrigin(root)`, or the one a
 * `liveSmooth` handler serves). Relative to its mount point:
 * - `GET /` — the dashboard page;
 * - `GET /publishing-points`, `GET|PUT|DELETE /publishing-points/<path>`;
 * - `POST /publishing-points/<path>/start|stop|shutdown`;
 * - `GET /events` — Server-Sent Events: `state` on every change, `stats` every `statsInterval` ms.
 */
export function admin(source: Origin | LiveSmoothHandler, options?: AdminOptions): AdminHandler {
  const { statsInterval = 1000, maxEventClients = 100, live, player } = options ?? {};
  if (live !== undefined && (typeof live !== 'string' || !/^(\/|https?:\/\/)[^\s"'<>\\]*$/.test(live) || live.length > 2048)) {
    throw new SmoothError('ERR_INVALID_OPTION', "options.live must be the middleware's mount path ('/live') or an http(s) URL");
  }
  if (player !== undefined && (typeof player !== 'string' || !/^(\/|https?:\/\/)[^\s"'<>\\]*$/.test(player) || player.length > 2048)) {
    throw new SmoothError('ERR_INVALID_OPTION', "options.player must be the sample player's mount path ('/player/') or an http(s) URL");
  }
  /** An archive with, when it lies under the root and the player's mount is known, its sample player link. */
  const archive = (a: ArchiveStatus): Record<string, unknown> => {
    const j = archiveJson(a, origin.root, live);
    if (player !== undefined && typeof j.url === 'string') j.player = `${player}?src=${encodeURIComponent(j.url)}&format=smooth`;
    return j;
  };
  const describe = (p: PublishingPoint): Record<string, unknown> => pointJson(p, live, origin.archiver.list(p.path).map(archive));
  if (!Number.isInteger(statsInterval) || statsInterval < 50 || statsInterval > 2000) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.statsInterval must be an integer between 50 and 2000');
  }
  if (!Number.isInteger(maxEventClients) || maxEventClients < 1 || maxEventClients > 10_000) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.maxEventClients must be an integer between 1 and 10000');
  }
  let origin: Origin;
  if (source instanceof Origin) origin = source;
  else if (typeof source === 'function' && source.origin instanceof Origin) origin = source.origin;
  else {
    // A root path would make a second origin for the same folder, whose points the middleware never sees.
    throw new SmoothError('ERR_INVALID_OPTION', 'liveSmooth.admin() needs the origin (createOrigin(root)) or the liveSmooth handler it manages');
  }
  const clients = new Set<ServerResponse>();
  let ticker: NodeJS.Timeout | undefined;

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(text)),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(text);
  };
  const fail = (res: ServerResponse, err: unknown): void => {
    if (res.headersSent) return;
    if (isSmoothError(err)) {
      // A bad definition sent by the caller is the caller's error (400), not the server's (500).
      const status = err.code === 'ERR_BAD_DEFINITION' ? 400 : STATUS[err.code];
      return json(res, status, { error: err.message, code: err.code });
    }
    debug('internal error: %O', err);
    json(res, 500, { error: 'internal error' });
  };

  const isJson = (req: IncomingMessage): boolean => /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');

  /**
   * The JSON body: taken from a host parser that already read it, else read here. Bounded in size
   * ({@link MAX_BODY}) and nesting ({@link MAX_JSON_DEPTH}), checked before anything recurses into it.
   */
  const body = async (req: IncomingMessage): Promise<unknown> => {
    const parsed = (req as { body?: unknown }).body;
    if (req.readableEnded || req.readableDidRead) {
      if (valueTooDeep(parsed)) throw tooDeep();
      return parsed ?? {};
    }
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_BODY) throw new SmoothError('ERR_BAD_URL', `request body exceeds ${MAX_BODY} bytes`);
      parts.push(chunk);
    }
    const text = Buffer.concat(parts).toString('utf8').trim();
    if (text === '') return {};
    if (jsonTooDeep(text)) throw tooDeep();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new SmoothError('ERR_BAD_URL', 'request body is not valid JSON');
    }
  };

  const broadcast = (event: string, data: unknown): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of clients) {
      // A client that does not read would have every frame queued in memory: it goes instead.
      if (c.writableLength > MAX_EVENT_BACKLOG) {
        clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(frame);
    }
  };
  const stats = (): void => broadcast('stats', { publishingPoints: origin.points().map(describe) });
  origin.on('state', (e) => broadcast('state', { path: e.point, state: e.state, reason: e.reason ?? null }));

  const events = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= maxEventClients) return json(res, 503, { error: 'too many event clients' });
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: 2000\n\n`);
    clients.add(res);
    res.write(`event: stats\ndata: ${JSON.stringify({ publishingPoints: origin.points().map(describe) })}\n\n`);
    ticker ??= setInterval(stats, statsInterval).unref();
    req.on('close', () => {
      clients.delete(res);
      if (clients.size === 0 && ticker) {
        clearInterval(ticker);
        ticker = undefined;
      }
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> => {
    const url = (req.url ?? '/').split('?')[0]!;
    let segments: string[];
    try {
      segments = url.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
    } catch {
      return json(res, 400, { error: 'malformed percent-encoding' });
    }
    const method = req.method ?? 'GET';
    if (segments.length === 0) {
      if (method !== 'GET' && method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(DASHBOARD_HTML)),
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(method === 'HEAD' ? undefined : DASHBOARD_HTML);
      return;
    }
    if (segments.length === 1 && segments[0] === 'events' && method === 'GET') return events(req, res);
    if (segments[0] !== 'publishing-points') {
      if (next) return next();
      return json(res, 404, { error: 'not found' });
    }
    if (segments.length === 1) {
      if (method !== 'GET') return json(res, 405, { error: 'method not allowed' });
      return json(res, 200, { publishingPoints: (await origin.list()).map(describe) });
    }
    const last = segments[segments.length - 1]!;
    const command = ['start', 'stop', 'shutdown'].includes(last) && segments.length > 2 ? (last as PointCommand) : undefined;
    const rel = segments.slice(1, command ? -1 : undefined).join('/');
    if (!isPointPath(rel)) {
      return json(res, 400, { error: 'publishing point path must be a relative path ending in .isml, without . or .. segments' });
    }
    if (command) {
      if (method !== 'POST') return json(res, 405, { error: 'commands need POST' });
      if (!isJson(req)) return json(res, 415, { error: 'commands need Content-Type: application/json' });
      await body(req);
      const point = await origin.resolve(rel);
      if (!point) return json(res, 404, { error: `no publishing point ${rel}` });
      point.command(command);
      return json(res, 200, describe(point));
    }
    if (method === 'GET') {
      const point = await origin.resolve(rel);
      return point ? json(res, 200, describe(point)) : json(res, 404, { error: `no publishing point ${rel}` });
    }
    if (method === 'PUT') {
      if (!isJson(req)) return json(res, 415, { error: 'settings need Content-Type: application/json' });
      const changes = await body(req);
      if (!changes || typeof changes !== 'object' || Array.isArray(changes)) {
        return json(res, 400, { error: 'body must be an object of .isml settings' });
      }
      const { point, created } = await origin.write(rel, changes as Record<string, unknown>);
      return json(res, created ? 201 : 200, describe(point));
    }
    if (method === 'DELETE') {
      if (!(await origin.remove(rel))) return json(res, 404, { error: `no publishing point ${rel}` });
      res.writeHead(204, { 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    json(res, 405, { error: 'method not allowed' });
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    handle(req, res, next).catch((err: unknown) => fail(res, err));
  };
  return Object.assign(handler, { origin });
}
