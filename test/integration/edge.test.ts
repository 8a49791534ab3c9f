/**
 * The edge cache (`liveSmooth.edge`) with real players, in front of two redundant origins:
 * - two live-smooth origins, A and B, fed the same live push by one ffmpeg (`tee` muxer: identical
 *   bytes and times), so the same URL gives the same fragment with the same ETag on both;
 * - one edge, `upstream: [A, B]`, mounted in two host apps: a "site" with the host's own layers (a
 *   hand-written cookie parser, express-session with an explicit MemoryStore, a /login route and an auth
 *   check in front of the edge: 401 without a session), where dash.js in headless Chromium logs in and
 *   plays the DASH output; and a plain app where two GStreamer `mssdemux` players play the Smooth
 *   manifest, the second a few seconds after the first (a second viewer: its fragments come from the
 *   edge's cache);
 * - origin A is closed (server closed, its sockets destroyed) while all three play: the edge fails over
 *   to B and every player goes on without an error and without a hole in its media.
 *
 * The players run concurrently (about a minute for the file on 2 cores). A player whose tool is missing
 * is skipped outside CI and fails in CI. `PLAYERS_DEBUG=1` writes the players' logs to `test-output/`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import express from 'express';
import session from 'express-session';
import type { Browser } from 'playwright-core';
import { EdgeHandler, liveSmooth } from '../../lib';
import { launchPlayerBrowser } from '../helpers/browser';
import { Push, pushTee } from '../helpers/ffmpeg';
import { GstRun, ptsSummary, runGst } from '../helpers/gst';
import { PagePlay, gstSummary, playPage, waitFor } from '../helpers/live-play';
import { TestServer, liveServer, startServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, gstLaunchPath, withTools } from '../helpers/tools';

declare module 'express-session' {
  interface SessionData {
    user: string;
  }
}

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const OUTPUT = path.join(__dirname, '..', '..', 'test-output');

const FPS = 25;
/** Seconds each GStreamer player runs (under `timeout`). */
const GST_SECONDS = 30;
/** The second GStreamer player starts this long after the first. */
const SECOND_VIEWER_AFTER_MS = 4000;
/** Origin A is closed this long after the players started. */
const CLOSE_A_AFTER_MS = 12_000;
/** Media each player must play: most of its run (it buffers a moment first). */
const MIN_MEDIA_SECONDS = 20;
/** dash.js: stop once `currentTime` advanced this much, or after the wall-clock bound. */
const DASH_SECONDS = 24;
const DASH_WALL_SECONDS = 40;
/** Upper bound of the push; afterAll stops it long before. */
const PUSH_SECONDS = 120;
const BITRATES = [800, 300];

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
/** A bound for a race: its timer does not keep the test process alive once the race is won. */
const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

function writeLog(name: string, text: string): void {
  if (!DEBUG) return;
  mkdirSync(OUTPUT, { recursive: true });
  writeFileSync(path.join(OUTPUT, `edge-${name}.log`), text);
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// ---------------------------------------------------------------------------------------------------
// The host apps around the edge

type Client = 'gstreamer' | 'chromium' | 'other';

/** One response of the edge: to whom, what, how, and when (ms since the players started). */
interface Served {
  app: 'site' | 'open';
  client: Client;
  url: string;
  status: number;
  cache: string;
  at: number;
  /** The host's cookie parser ran before the edge and saw the session cookie. */
  sessionCookie: boolean;
}

interface Sites {
  edge: EdgeHandler;
  /** The app with cookies, sessions and auth (dash.js). */
  site: string;
  /** The plain app (GStreamer). */
  open: string;
  served: Served[];
  servers: http.Server[];
  /** ms origin of `Served.at`. */
  t0: number;
}

function clientOf(ua: string): Client {
  if (/GStreamer/i.test(ua)) return 'gstreamer';
  return /Chrome/.test(ua) ? 'chromium' : 'other';
}

/** The host's own cookie parsing: `req.cookies` from the Cookie header (no cookie-parser). */
function parseCookies(req: express.Request, _res: express.Response, next: express.NextFunction): void {
  const cookies: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  (req as express.Request & { cookies: Record<string, string> }).cookies = cookies;
  next();
}

async function startSites(upstream: string[]): Promise<Sites> {
  const edge = liveSmooth.edge({ upstream, coolDown: 10_000 });
  const served: Served[] = [];
  const sites: Sites = { edge, site: '', open: '', served, servers: [], t0: Date.now() };
  const record =
    (app: Served['app']) =>
    (req: express.Request, res: express.Response, next: express.NextFunction): void => {
      const client = clientOf(req.headers['user-agent'] ?? '');
      const sessionCookie = 'sid' in ((req as express.Request & { cookies?: Record<string, string> }).cookies ?? {});
      res.on('finish', () =>
        served.push({ app, client, url: req.originalUrl, status: res.statusCode, cache: String(res.getHeader('x-cache') ?? ''), at: Date.now() - sites.t0, sessionCookie }),
      );
      next();
    };

  const site = express();
  site.use(parseCookies);
  site.use(session({ name: 'sid', secret: 'edge-test-secret', store: new session.MemoryStore(), resave: false, saveUninitialized: false }));
  site.get('/login', (req, res) => {
    req.session.user = 'viewer';
    res.type('text/plain').send('logged in\n');
  });
  site.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
  site.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'dash-hls-player.html')));
  site.get('/favicon.ico', (_req, res) => void res.status(204).end());
  const requireLogin = (req: express.Request, res: express.Response, next: express.NextFunction): void => {
    if (req.session.user) return next();
    res.status(401).type('text/plain').send('log in first\n');
  };
  site.use('/live', record('site'), requireLogin, edge);
  // The host's error handler: the edge answers its own errors and never passes any here.
  site.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).send(`host error handler: ${String(err)}`);
  });

  const open = express();
  open.use('/live', record('open'), edge);

  const siteServer = liveServer(site);
  const openServer = liveServer(open);
  sites.servers.push(siteServer, openServer);
  sites.site = await listen(siteServer);
  sites.open = await listen(openServer);
  return sites;
}

async function stopSites(s: Sites): Promise<void> {
  s.edge.close();
  for (const server of s.servers) {
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  }
}

// ---------------------------------------------------------------------------------------------------
// dash.js in headless Chromium, logged in on the site

interface DashResult extends PagePlay {
  login: { status: number; text: string };
}

async function runDash(browser: Browser, sites: Sites): Promise<DashResult> {
  let login = { status: 0, text: '' };
  const src = encodeURIComponent(`${sites.site}/live/ch1.isml/.mpd`);
  const played = await playPage(browser, `${sites.site}/player.html?player=dashjs&src=${src}${DEBUG ? '&debug=1' : ''}`, {
    seconds: DASH_SECONDS,
    wallSeconds: DASH_WALL_SECONDS,
    prepare: async (page) => {
      const r = await page.goto(`${sites.site}/login`);
      login = { status: r?.status() ?? 0, text: (await r?.text()) ?? '' };
    },
  });
  writeLog('dashjs', `${JSON.stringify(played.state, null, 1)}\n${played.samples.map((s) => JSON.stringify(s)).join('\n')}\n${played.console.join('\n')}\n`);
  return { ...played, login };
}

// ---------------------------------------------------------------------------------------------------

/** The first video fragment URL (path below the point) listed in a Smooth manifest at the top bitrate. */
function firstVideoFragment(manifest: string): string {
  const video = manifest.split('<StreamIndex').find((s) => /Type="video"/.test(s))!;
  const t = /<c\b[^>]*\bt="(\d+)"/.exec(video)![1];
  return `QualityLevels(${BITRATES[0]! * 1000})/Fragments(video=${t})`;
}

describe('edge cache in front of two redundant origins, with real players', () => {
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let sites: Sites | undefined;
  let encoder: Push | undefined;
  let browser: Browser | undefined;
  const children = new Set<ChildProcess>();
  let manifestAtStart = '';
  let gst1: Promise<Outcome<GstRun>> | undefined;
  let gst2: Promise<Outcome<GstRun>> | undefined;
  let dash: Promise<Outcome<DashResult>> | undefined;
  /** ms (since the players started) when origin A was closed. */
  let closedAt: Promise<number> | undefined;
  let all: Promise<unknown> | undefined;
  let began = 0;

  beforeAll(async () => {
    if (!FFMPEG) return; // the tests below skip or fail on their own
    began = Date.now();
    a = await startServer();
    b = await startServer();
    a.define('ch1.isml');
    b.define('ch1.isml');
    sites = await startSites([a.base, b.base]);
    encoder = pushTee({ ffmpeg: FFMPEG, url: '', urls: [`${a.base}/ch1.isml`, `${b.base}/ch1.isml`], seconds: PUSH_SECONDS, bitrates: BITRATES });
    const exited = encoder.done.then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the origins listed fragments:\n${stderr}`);
    });
    // dash.js starts a few segments behind the live edge: let both outputs list that much (on B, so
    // the edge's counters start with the players).
    const listed = (async () => {
      await waitFor(`${b!.base}/ch1.isml/.mpd`, (mpd) => (mpd.match(/<S\b/g) ?? []).length >= 2 * 3, 30_000, 'the MPD did not list 3 segments per set');
      const chunks = (m: string): number[] => [...m.matchAll(/<StreamIndex\b[^>]*\bChunks="(\d+)"/g)].map((x) => Number(x[1]));
      manifestAtStart = await waitFor(`${b!.base}/ch1.isml/Manifest`, (m) => chunks(m).length >= 2 && chunks(m).every((n) => n >= 3), 10_000, 'the manifest did not list 3 fragments');
    })();
    for (const p of [exited, listed]) p.catch(() => undefined);
    await Promise.race([listed, exited]);
    if (CHROMIUM) browser = await launchPlayerBrowser(CHROMIUM);

    const s = sites;
    s.t0 = Date.now();
    const manifest = `${s.open}/live/ch1.isml/Manifest`;
    const gst = (name: string): Promise<Outcome<GstRun>> =>
      settle(
        runGst(GST!, manifest, GST_SECONDS, children, DEBUG).then((r) => {
          writeLog(name, `${gstSummary(r)}\n${r.output}`);
          return r;
        }),
      );
    if (GST) gst1 = gst('gstreamer-1');
    if (browser) dash = settle(runDash(browser, s));
    if (GST) gst2 = sleep(SECOND_VIEWER_AFTER_MS).then(() => gst('gstreamer-2'));
    closedAt = (async () => {
      await sleep(CLOSE_A_AFTER_MS);
      const at = Date.now() - s.t0;
      await a!.crash();
      return at;
    })();
    all = Promise.all([gst1, gst2, dash, closedAt]);
    all.catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    // Normally long settled; after a failed or timed-out test, whatever still runs is cut short.
    await Promise.race([all, deadline(60_000)]);
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    if (sites) await stopSites(sites);
    await a?.close();
    await b?.close();
    if (began) console.log(`edge players: ${((Date.now() - began) / 1000).toFixed(1)} s from push start to teardown`);
  }, 30_000);

  withTools(['ffmpeg', FFMPEG])('twin origins serve the same fragment under the same ETag, byte for byte', async () => {
    const fragment = firstVideoFragment(manifestAtStart);
    const [ra, rb] = await Promise.all([a!.base, b!.base].map((base) => fetch(`${base}/ch1.isml/${fragment}`)));
    const [ba, bb] = await Promise.all([ra!, rb!].map(async (r) => Buffer.from(await r.arrayBuffer())));
    expect([ra!.status, rb!.status]).toEqual([200, 200]);
    expect(ra!.headers.get('etag')).toBeTruthy();
    expect(rb!.headers.get('etag')).toBe(ra!.headers.get('etag'));
    expect(bb!.equals(ba!)).toBe(true);
    // The CMAF segments of the DASH/HLS outputs too.
    const mpd = await fetch(`${b!.base}/ch1.isml/.mpd`).then((r) => r.text());
    const rep = /<Representation\b[^>]*\bid="([^"]+)"/.exec(mpd)![1]!;
    const t = /<S\b[^>]*\bt="(\d+)"/.exec(mpd)![1];
    const segment = `cmaf/${encodeURIComponent(rep)}/${t}.m4s`;
    const [sa, sb] = await Promise.all([a!.base, b!.base].map((base) => fetch(`${base}/ch1.isml/${segment}`)));
    const [ca, cb] = await Promise.all([sa!, sb!].map(async (r) => Buffer.from(await r.arrayBuffer())));
    expect([sa!.status, sb!.status]).toEqual([200, 200]);
    expect(sb!.headers.get('etag')).toBe(sa!.headers.get('etag'));
    expect(cb!.equals(ca!)).toBe(true);
  });

  withTools(['ffmpeg', FFMPEG])("the host's own layers stay in charge: no session, 401; after /login, the edge answers", async () => {
    const s = sites!;
    const denied = await fetch(`${s.site}/live/ch1.isml/Manifest`);
    expect([denied.status, await denied.text()]).toEqual([401, 'log in first\n']);
    const login = await fetch(`${s.site}/login`);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    expect(cookie).toMatch(/^sid=/);
    const allowed = await fetch(`${s.site}/live/ch1.isml/Manifest`, { headers: { Cookie: cookie } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('x-cache')).toMatch(/^(HIT|MISS|STALE|REVALIDATED)$/);
    expect(await allowed.text()).toContain('<SmoothStreamingMedia');
    // The edge sets no cookie of its own and leaves the session's alone.
    expect(allowed.headers.get('set-cookie')).toBeNull();
  });

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    `dash.js in headless Chromium logs in and plays the live DASH output through the edge for ${MIN_MEDIA_SECONDS} s, across the failover`,
    async () => {
      const r = await outcome(dash);
      const first = r.samples[0]!;
      const last = r.samples[r.samples.length - 1]!;
      const s = sites!;
      const mine = s.served.filter((x) => x.app === 'site' && x.client === 'chromium');
      const summary =
        `currentTime ${first.currentTime.toFixed(2)} -> ${last.currentTime.toFixed(2)} over ${(last.wall / 1000).toFixed(1)} s, frames ` +
        `${first.totalVideoFrames} -> ${last.totalVideoFrames}, audio bytes ${last.audioBytes}, waiting ${r.state.waiting}, ${mine.length} edge responses ` +
        `(${['HIT', 'MISS', 'STALE', 'REVALIDATED'].map((c) => `${c} ${mine.filter((x) => x.cache === c).length}`).join(', ')})`;
      console.log(`dash.js through the edge: ${summary}`);
      const context = `${summary}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-30).join('\n')}`;
      expect(r.login).toEqual({ status: 200, text: 'logged in\n' });
      expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
      expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
      expect(r.state.dynamic).toBe(true);
      expect(last.currentTime - first.currentTime).toBeGreaterThanOrEqual(MIN_MEDIA_SECONDS);
      expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual((MIN_MEDIA_SECONDS - 1) * FPS);
      expect(last.audioBytes).toBeGreaterThan(first.audioBytes);
      expect(last.paused).toBe(false);
      // Every media request went through the host's layers (its cookie parser saw the session) to the edge.
      expect(mine.filter((x) => /\.m4s$/.test(x.url)).length).toBeGreaterThan(10);
      expect(mine.every((x) => x.sessionCookie && x.status < 400)).toBe(true);
      // Its clock (the MPD's UTCTiming) came through the edge as well.
      expect(mine.some((x) => /\/ch1\.isml\/time$/.test(x.url) && x.status === 200)).toBe(true);
      // It played on after A was closed.
      const closed = await closedAt!;
      expect(mine.filter((x) => x.at > closed + 2000 && /\.m4s$/.test(x.url)).length).toBeGreaterThan(3);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    `two GStreamer players (mssdemux) play the Smooth stream through the edge for ${GST_SECONDS} s, the second from the edge's cache, across the failover`,
    async () => {
      const runs = [await outcome(gst1), await outcome(gst2)];
      const s = sites!;
      const mine = s.served.filter((x) => x.client === 'gstreamer');
      const fragments = mine.filter((x) => /\/Fragments\(/.test(x.url));
      const count = (c: string): number => fragments.filter((x) => x.cache === c).length;
      console.log(
        `GStreamer through the edge: ${runs.map(gstSummary).join(' | ')}; ${fragments.length} fragment responses: ` +
          `HIT ${count('HIT')}, MISS ${count('MISS')}, STALE ${count('STALE')}; statuses ${JSON.stringify(countBy(mine.map((x) => x.status)))}`,
      );
      for (const r of runs) {
        const context = `${gstSummary(r)}\n${r.output.slice(-4000)}`;
        const v = ptsSummary(r.video);
        expect({ errors: r.errors, context }).toEqual({ errors: [], context });
        // 124: stopped by `timeout`, i.e. still playing.
        expect({ code: r.code, context }).toEqual({ code: 124, context });
        expect(v.distinct).toBeGreaterThanOrEqual(MIN_MEDIA_SECONDS * FPS);
        expect(v.backwards).toBe(0);
        // A fragment lost in the failover would leave a hole of a whole fragment (2 s).
        expect(v.maxGap).toBeLessThan(1);
        expect(r.audio.length).toBeGreaterThan(0);
      }
      // 412 is the origin's "not yet" (passed on, kept a second at most); nothing else failed.
      expect(mine.filter((x) => x.status >= 400 && x.status !== 412).map((x) => `${x.status} ${x.url}`)).toEqual([]);
      // The second viewer's fragments (and the first's, for what the other fetched first) came from the cache.
      expect(count('HIT')).toBeGreaterThan(0);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG])('origin A closed mid-stream: the edge failed over to B and stuck to it, with no 5xx; the origins were asked less often than the edge answered', async () => {
    await all;
    const closed = await closedAt!;
    const s = sites!;
    const stats = s.edge.stats();
    const [sa, sb] = stats.upstreams;
    const after = s.served.filter((x) => x.at > closed);
    const errors = s.served.filter((x) => x.status >= 500);
    console.log(
      `edge: ${JSON.stringify({ ...stats, upstreams: undefined })}\n  upstream A: ${JSON.stringify(sa)}\n  upstream B: ${JSON.stringify(sb)}\n` +
        `  ${s.served.length} responses, ${after.length} after A closed at ${(closed / 1000).toFixed(1)} s, ${errors.length} 5xx`,
    );
    expect(encoder!.child.exitCode).toBeNull(); // ffmpeg pushed on to B
    expect(sa!.failures).toBeGreaterThan(0);
    expect(sa!.active).toBe(false);
    expect(sb!.active).toBe(true);
    expect(sb!.requests).toBeGreaterThan(0);
    expect(errors.map((x) => `${x.status} ${x.url}`)).toEqual([]);
    expect(after.filter((x) => x.status === 200).length).toBeGreaterThan(20);
    // Shielding: every player request counted once, upstream requests (failover attempts included) fewer.
    expect(stats.hits + stats.stale).toBeGreaterThan(0);
    expect(stats.upstreamRequests).toBeLessThan(s.served.length);
    expect(stats.bytesHeld).toBeLessThanOrEqual(stats.maxSize);
  }, 90_000);
});

function countBy(values: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
