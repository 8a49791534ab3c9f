/**
 * The `live-smooth/player` entry. `player()`: a request handler that serves the sample player page
 * (`player/page.ts`) at its mount root, the two dash.js bundles it needs from the `dashjs` package
 * and, when it is installed, hls.js from the `hls.js` package (optional peer dependencies, resolved
 * when a handler is made), so the page works offline and without a CDN. Express
 * (`app.use('/', player())`) or plain `node:http` (`http.createServer(player())`).
 */
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { SmoothError } from '../errors';
import { playerPage } from '../player/page';

/** Options of {@link player}. */
export interface PlayerOptions {
  /**
   * Smooth manifest URL the page plays when its URL has no `?src=` (its DASH and HLS URLs are derived
   * from it for the format selector); relative URLs resolve against the page.
   * Default `live/live.isml/Manifest` (the point `live.isml` under a `liveSmooth` mounted at `/live`,
   * next to a player mounted at `/`).
   */
  manifest?: string;
  /** Page title. Default `live-smooth player`. */
  title?: string;
}

/** A handler for `node:http` or Express; `next` is called for every URL it does not serve. */
export type PlayerHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/** The dash.js files the page loads, served from the package's UMD build directory. */
const BUNDLES = new Set(['dash.all.min.js', 'dash.mss.min.js']);

/** [file, size] of an installed bundle, or `undefined` when the package is not installed. */
function installed(resolve: () => string, name: string): [string, number] | undefined {
  try {
    const file = path.join(path.dirname(resolve()), name);
    return [file, statSync(file).size];
  } catch {
    return undefined;
  }
}

function invalid(message: string): SmoothError {
  return new SmoothError('ERR_INVALID_OPTION', message);
}

/**
 * Creates the player handler. It answers `GET`/`HEAD` for its root (the page; a root URL without a
 * trailing slash under Express is redirected to one, so the page's relative URLs resolve), for
 * `dashjs/dash.all.min.js` and `dashjs/dash.mss.min.js`, and for `hlsjs/hls.min.js` when hls.js is
 * installed; everything else goes to `next()` (or 404).
 * @throws SmoothError ERR_INVALID_OPTION for a bad option, or when the `dashjs` package cannot be found
 */
export function player(options: PlayerOptions = {}): PlayerHandler {
  const manifest = options.manifest ?? 'live/live.isml/Manifest';
  const title = options.title ?? 'live-smooth player';
  if (typeof manifest !== 'string' || manifest === '' || manifest.length > 2048) {
    throw invalid('option manifest must be a non-empty URL string');
  }
  if (typeof title !== 'string' || title.length > 200) throw invalid('option title must be a string of at most 200 characters');
  /** Bundle name → [file, size]; looked up once, the installed package does not change under us. */
  const bundles = new Map<string, [string, number]>();
  try {
    // The package's `require` entry is dist/modern/umd/dash.all.min.js; the MSS bundle sits beside it.
    const dir = path.dirname(require.resolve('dashjs'));
    for (const name of BUNDLES) bundles.set(name, [path.join(dir, name), statSync(path.join(dir, name)).size]);
  } catch {
    throw invalid('the dashjs package (with dash.all.min.js and dash.mss.min.js) is not installed: player() serves its bundles; npm install dashjs');
  }
  // hls.js is optional: without it the page's HLS choice uses the browser's own HLS (Safari, iOS).
  const hls = installed(() => require.resolve('hls.js'), 'hls.min.js');
  const page = Buffer.from(playerPage({ manifest, title }), 'utf8');

  return (req, res, next) => {
    const pass = (): void => {
      if (next) next();
      else {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('Not Found\n');
      }
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return pass();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const search = q === -1 ? '' : url.slice(q);
    if (pathname === '/' || pathname === '' || pathname === '/index.html') {
      // Under Express, `/watch` and `/watch/` both reach the root; the page's `dashjs/…` URLs need the slash.
      const original = (req as IncomingMessage & { originalUrl?: string }).originalUrl?.split('?')[0];
      if (pathname !== '/index.html' && original !== undefined && !original.endsWith('/')) {
        // Leading slashes collapsed: `//host` would make the Location point at another site.
        res.writeHead(301, { Location: `/${original.replace(/^\/+/, '')}/${search}` });
        res.end();
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': page.length,
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    }
    const bundle = pathname.startsWith('/dashjs/') ? bundles.get(pathname.slice(8)) : pathname === '/hlsjs/hls.min.js' ? hls : undefined;
    if (!bundle) return pass();
    const [file, size] = bundle;
    res.writeHead(200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Content-Length': size,
      'Cache-Control': 'public, max-age=3600',
      'X-Content-Type-Options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };
}

export { playerPage } from '../player/page';
export type { PlayerPageConfig } from '../player/page';
