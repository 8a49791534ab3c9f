/**
 * Real players against a real live push: ffmpeg pushes three H.264 bitrates + AAC in one POST, and
 * GStreamer's mssdemux and dash.js (MSS, in headless Chromium) play the publishing point while it is
 * live.
 *
 * Both players run concurrently against the same push (it keeps the file at ~35 s instead of ~65 s):
 * `beforeAll` starts the server and the push, waits until the manifest lists fragments, then starts
 * each player whose tool exists; each test awaits its player's run and judges it.
 *
 * Environment: `PLAYERS_DEBUG=1` prints the players' logs (and sets dash.js to debug level); GStreamer
 * honours `GST_DEBUG` (e.g. `GST_DEBUG=mssdemux:5,adaptivedemux:5`).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { chromium } from 'playwright-core';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { Push, push } from '../helpers/ffmpeg';
import { runGst as runGstFor } from '../helpers/gst';
import { isml } from '../helpers/server';
import { chromiumPath, ffmpegPath, gstLaunchPath, withTool } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const OUTPUT = path.join(__dirname, '..', '..', 'test-output');

/** Seconds GStreamer runs (under `timeout`), and the media it must decode meanwhile. */
const GST_SECONDS = 22;
const GST_MIN_VIDEO_FRAMES = Math.ceil(0.8 * 20 * 25); // 80 % of 20 s at 25 fps = 400
/** Wall-clock seconds dash.js plays after its first `playing` event, and the media time it must advance. */
const DASH_SECONDS = 15;
const DASH_MIN_ADVANCE = 13;
/** The push outlasts both players; afterAll stops it. */
const PUSH_SECONDS = 60;

/** `it` when every tool exists; else {@link withTool}'s skip (or CI failure) for the first missing one. */
function withTools(...tools: Array<[string, string | undefined]>): jest.It {
  const missing = tools.find(([, p]) => !p);
  return missing ? withTool(missing[0], undefined) : it;
}

/** A settled background run: its result or its error, never an unhandled rejection. */
type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };
function settle<T>(p: Promise<T>): Promise<Outcome<T>> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}
async function outcome<T>(p: Promise<Outcome<T>> | undefined): Promise<T> {
  if (!p) throw new Error('the player was not started (see beforeAll)');
  const o = await p;
  if (!o.ok) throw o.error;
  return o.value;
}

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

// ---------------------------------------------------------------------------------------------------
// Server: liveSmooth at /live plus the player page and the dash.js bundles from node_modules.

/** One request the site answered: who asked (by User-Agent), what, and the status. */
interface Served {
  client: 'gstreamer' | 'chromium' | 'other';
  url: string;
  status: number;
}

interface Site {
  origin: string;
  served: Served[];
  /** `…/live/ch1.isml` */
  point: string;
  root: string;
  handler: LiveSmoothHandler;
  server: http.Server;
}

async function startSite(): Promise<Site> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-players-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml());
  const handler = liveSmooth(root);
  const served: Served[] = [];
  const app = express();
  app.use((req, res, next) => {
    const ua = req.headers['user-agent'] ?? '';
    const client = /GStreamer/i.test(ua) ? 'gstreamer' : /Chrome/.test(ua) ? 'chromium' : 'other';
    res.on('finish', () => served.push({ client, url: req.originalUrl, status: res.statusCode }));
    next();
  });
  app.use('/live', handler);
  // dash.all.min.js and dash.mss.min.js live next to the package's `require` entry.
  app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
  app.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'player.html')));
  const server = http.createServer({ requestTimeout: 0 }, app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return { origin, served, point: `${origin}/live/ch1.isml`, root, handler, server };
}

async function stopSite(site: Site): Promise<void> {
  site.handler.origin.close();
  site.server.closeAllConnections();
  await new Promise<void>((ok) => site.server.close(() => ok()));
  rmSync(site.root, { recursive: true, force: true });
}

/** Waits until every StreamIndex of the manifest lists at least `min` fragments. */
async function waitForFragments(manifestUrl: string, min: number, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const res = await fetch(manifestUrl).catch(() => undefined);
    if (res?.ok) {
      last = await res.text();
      const streams = last.split('<StreamIndex').slice(1);
      const counts = streams.map((s) => (s.match(/<c[\s/]/g) ?? []).length);
      // A `c` with `r` counts for several fragments, but two `c` lines are enough to be sure.
      const chunks = streams.map((s) => Number(/Chunks="(\d+)"/.exec(s)?.[1] ?? 0));
      if (streams.length >= 2 && counts.every((n) => n >= 1) && chunks.every((n) => n >= min)) return last;
    }
    await sleep(500);
  }
  throw new Error(`manifest did not list ${min} fragments per stream within ${timeoutMs} ms; last manifest:\n${last}`);
}

/** What one player fetched: fragment responses, fragments fetched more than once, and error statuses. */
function fetched(site: Site, client: Served['client']): { fragments: number; twice: string[]; failed: string[] } {
  const mine = site.served.filter((s) => s.client === client);
  const ok = mine.filter((s) => s.status === 200 && /\/Fragments\(/.test(s.url)).map((s) => s.url);
  const twice = [...new Set(ok.filter((u, i) => ok.indexOf(u) !== i))];
  const failed = mine.filter((s) => s.status >= 400).map((s) => `${s.status} ${s.url}`);
  return { fragments: ok.length, twice, failed };
}

// ---------------------------------------------------------------------------------------------------
// GStreamer

interface GstResult {
  code: number | null;
  /** `last-message` lines of the video sink (gst-launch reads the property when it handles the notify,
   * so a line can repeat the next buffer's message and miss one: count distinct pts for frames). */
  videoFrames: number;
  /** Distinct video pts decoded. */
  videoPts: number;
  audioBuffers: number;
  /** Last video pts seen, in seconds. */
  lastVideoPts: number | undefined;
  errors: string[];
  output: string;
}

async function runGst(gst: string, manifest: string, children: Set<ChildProcess>): Promise<GstResult> {
  const run = await runGstFor(gst, manifest, GST_SECONDS, children, DEBUG);
  return {
    code: run.code,
    videoFrames: run.video.length,
    videoPts: new Set(run.video).size,
    audioBuffers: run.audio.length,
    lastVideoPts: run.video[run.video.length - 1],
    errors: run.errors,
    output: run.output,
  };
}

// ---------------------------------------------------------------------------------------------------
// dash.js in headless Chromium

interface PlayerState {
  errors: string[];
  events: unknown[];
  playingAt: number | undefined;
  waiting: number;
}

interface Sample {
  /** Wall-clock ms since playback began. */
  wall: number;
  currentTime: number;
  totalVideoFrames: number;
  droppedVideoFrames: number;
  audioBytes: number;
  paused: boolean;
  readyState: number;
}

interface DashResult {
  samples: Sample[];
  state: PlayerState;
  /** Responses >= 400 and failed requests seen by the page. */
  httpProblems: string[];
  console: string[];
  requests: number;
}

const SAMPLE_JS = `(() => {
  const v = document.querySelector('video');
  const q = v.getVideoPlaybackQuality();
  return {
    currentTime: v.currentTime,
    totalVideoFrames: q.totalVideoFrames,
    droppedVideoFrames: q.droppedVideoFrames,
    audioBytes: v.webkitAudioDecodedByteCount || 0,
    paused: v.paused,
    readyState: v.readyState,
  };
})()`;

async function runDash(executablePath: string, site: Site, browsers: Set<{ close(): Promise<void> }>): Promise<DashResult> {
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--no-sandbox',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  browsers.add(browser);
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
    const consoleLines: string[] = [];
    const httpProblems: string[] = [];
    let requests = 0;
    page.on('console', (m) => {
      const line = `${m.type()}: ${m.text()}`;
      consoleLines.push(line);
      if (DEBUG) process.stderr.write(`[dash.js] ${line}\n`);
    });
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
    page.on('request', () => requests++);
    page.on('requestfailed', (r) => httpProblems.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) httpProblems.push(`${r.status()} ${r.url()}`);
    });
    const src = encodeURIComponent(`${site.point}/Manifest`);
    await page.goto(`${site.origin}/player.html?src=${src}${DEBUG ? '&debug=1' : ''}`);
    const state = (): Promise<PlayerState> => page.evaluate('window.__player') as Promise<PlayerState>;
    try {
      await page.waitForFunction('window.__player && window.__player.playingAt !== undefined', undefined, { timeout: 30000 });
    } catch (err) {
      const s = await state();
      throw new Error(
        `dash.js did not start playing within 30 s: ${(err as Error).message}\n` +
          `errors: ${JSON.stringify(s.errors)}\nHTTP: ${JSON.stringify(httpProblems)}\nconsole:\n${consoleLines.slice(-40).join('\n')}`,
      );
    }
    const samples: Sample[] = [];
    const start = Date.now();
    for (;;) {
      const wall = Date.now() - start;
      samples.push({ wall, ...((await page.evaluate(SAMPLE_JS)) as Omit<Sample, 'wall'>) });
      if (wall >= DASH_SECONDS * 1000) break;
      await sleep(Math.min(1000, DASH_SECONDS * 1000 - wall));
    }
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, 'dashjs.png') });
    return { samples, state: await state(), httpProblems, console: consoleLines, requests };
  } finally {
    browsers.delete(browser);
    await browser.close();
  }
}

// ---------------------------------------------------------------------------------------------------

describe('real players on a live push (ffmpeg, 3 bitrates + AAC in one POST)', () => {
  let site: Site | undefined;
  let pushed: Push | undefined;
  const children = new Set<ChildProcess>();
  const browsers = new Set<{ close(): Promise<void> }>();
  let gstRun: Promise<Outcome<GstResult>> | undefined;
  let dashRun: Promise<Outcome<DashResult>> | undefined;
  let began = 0;

  beforeAll(async () => {
    if (!FFMPEG || (!GST && !CHROMIUM)) return; // the tests below skip or fail on their own
    began = Date.now();
    site = await startSite();
    pushed = push({ ffmpeg: FFMPEG, url: site.point, seconds: PUSH_SECONDS, bitrates: [800, 400, 200] });
    const exited = pushed.done.then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the manifest listed fragments:\n${stderr}`);
    });
    const listed = waitForFragments(`${site.point}/Manifest`, 2, 20000);
    // Only the race's winner matters; the loser must not reject unhandled later (afterAll kills ffmpeg).
    for (const p of [exited, listed]) p.catch(() => undefined);
    const manifest = await Promise.race([listed, exited]);
    expect(manifest).toContain('IsLive="TRUE"');
    if (GST) gstRun = settle(runGst(GST, `${site.point}/Manifest`, children));
    if (CHROMIUM) dashRun = settle(runDash(CHROMIUM, site, browsers));
  }, 30000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([...browsers].map((b) => b.close().catch(() => undefined)));
    // Let the runs settle so nothing touches the server after it closed.
    await Promise.all([gstRun, dashRun]);
    if (pushed && pushed.child.exitCode === null) {
      pushed.child.kill('SIGKILL');
      await pushed.done;
    }
    if (site) await stopSite(site);
    if (began) console.log(`players: ${((Date.now() - began) / 1000).toFixed(1)} s from push start to teardown`);
  }, 20000);

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'GStreamer mssdemux decodes the live video and audio for ~20 s',
    async () => {
      const r = await outcome(gstRun);
      const http = fetched(site!, 'gstreamer');
      const summary =
        `gst-launch exit ${r.code}, ${r.videoPts} video frames (${r.videoFrames} sink messages, last pts ` +
        `${r.lastVideoPts?.toFixed(2)} s), ${r.audioBuffers} audio buffers, ${http.fragments} fragments fetched` +
        `${http.failed.length ? `, HTTP errors: ${http.failed.join(', ')}` : ''}`;
      console.log(`GStreamer: ${summary}`);
      const context = `${summary}\n${r.output.slice(-6000)}`;
      expect({ errors: r.errors, context }).toEqual({ errors: [], context });
      // 124: stopped by `timeout`, i.e. still playing after GST_SECONDS (an early exit means it gave up).
      expect({ code: r.code, context }).toEqual({ code: 124, context });
      expect(r.videoPts).toBeGreaterThanOrEqual(GST_MIN_VIDEO_FRAMES);
      expect(r.audioBuffers).toBeGreaterThan(0);
      // A fragment fetched twice is decoded twice (mssdemux got lost in the timeline, e.g. over `r` runs).
      expect(http.twice).toEqual([]);
    },
    60000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    'dash.js (MSS) in headless Chromium plays the live point for 15 s without errors',
    async () => {
      const r = await outcome(dashRun);
      const http = fetched(site!, 'chromium');
      const first = r.samples[0]!;
      const last = r.samples[r.samples.length - 1]!;
      const advance = last.currentTime - first.currentTime;
      const summary =
        `currentTime ${first.currentTime.toFixed(2)} -> ${last.currentTime.toFixed(2)} (+${advance.toFixed(2)} s) ` +
        `over ${(last.wall / 1000).toFixed(1)} s wall, frames ${first.totalVideoFrames} -> ${last.totalVideoFrames} ` +
        `(dropped ${last.droppedVideoFrames}), audio bytes ${last.audioBytes}, waiting events ${r.state.waiting}, ` +
        `${r.requests} requests, ${http.fragments} fragments fetched` +
        `${http.twice.length ? ` (fetched twice: ${http.twice.join(', ')})` : ''}`;
      console.log(`dash.js: ${summary}${r.httpProblems.length ? `\nHTTP: ${r.httpProblems.join('\n      ')}` : ''}`);
      const context = `${summary}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-40).join('\n')}`;
      expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
      expect(last.wall).toBeGreaterThanOrEqual(DASH_SECONDS * 1000);
      expect(advance).toBeGreaterThanOrEqual(DASH_MIN_ADVANCE);
      expect(last.totalVideoFrames).toBeGreaterThan(first.totalVideoFrames);
      expect(last.audioBytes).toBeGreaterThan(0);
      expect(last.paused).toBe(false);
    },
    90000,
  );
});
