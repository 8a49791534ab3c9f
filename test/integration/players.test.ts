/**
 * Real players against real live pushes: GStreamer's mssdemux, dash.js (MSS, in headless Chromium) and
 * VLC 3 each play for more than 30 s, in every ingest case a deployment meets:
 * - one POST with three H.264 bitrates + AAC, times from 0;
 * - one POST per track, from separate ffmpeg processes;
 * - UTC-scale times (`-output_ts_offset`): above 2^53, with odd audio starts that players holding times
 *   in doubles (dash.js) round;
 * - an ffmpeg killed mid-stream and started again to the same URL (its times from 0 again): the point
 *   continues the timeline, and the manifest grows again as soon as the new encoder delivers.
 *
 * The three players run concurrently against the same push (each case takes ~45 s, not three times
 * that); the cases run one after the other. A player whose tool is missing is skipped outside CI and
 * fails in CI.
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
import type { PublishingPoint } from '../../lib/point';
import { Push, PushOptions, push, pushTracks } from '../helpers/ffmpeg';
import { ptsSummary, runGst } from '../helpers/gst';
import { isml, liveServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, gstLaunchPath, vlcPath, withTools } from '../helpers/tools';
import { VlcRun, runVlc } from '../helpers/vlc';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const VLC = vlcPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const OUTPUT = path.join(__dirname, '..', '..', 'test-output');

/** Seconds each player plays (GStreamer and VLC under `timeout`; dash.js after its first `playing`). */
const PLAY_SECONDS = 32;
/** Media each player must decode meanwhile: most of it (a restart leaves a gap of a few seconds). */
const MIN_VIDEO_SECONDS = 24;
const FPS = 25;
/** The push outlasts the players; afterAll stops it. */
const PUSH_SECONDS = 90;
/** Fragment duration of the pushes (`-g 50` at 25 fps). */
const FRAGMENT_SECONDS = 2;

interface Case {
  name: string;
  push: Partial<PushOptions> & { processes?: boolean };
  /** Kill the encoder this many seconds after the players started, and start it again at once. */
  restartAfter?: number;
}

const CASES: Case[] = [
  { name: 'one POST, times from 0', push: {} },
  { name: 'one POST per track from separate ffmpeg processes', push: { processes: true } },
  { name: 'UTC-scale times above 2^53 (-output_ts_offset 1764000000)', push: { tsOffset: 1_764_000_000 } },
  { name: 'ffmpeg killed and restarted mid-stream', push: {}, restartAfter: 10 },
];



const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

// ---------------------------------------------------------------------------------------------------
// Server: liveSmooth at /live plus the player page and the dash.js bundles from node_modules.

type Client = 'gstreamer' | 'chromium' | 'vlc' | 'other';

/** One request the site answered: who asked (by User-Agent), what, and the status. */
interface Served {
  client: Client;
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

function clientOf(ua: string): Client {
  if (/GStreamer/i.test(ua)) return 'gstreamer';
  if (/VLC/i.test(ua)) return 'vlc';
  return /Chrome/.test(ua) ? 'chromium' : 'other';
}

async function startSite(): Promise<Site> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-players-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml());
  const handler = liveSmooth(root);
  const served: Served[] = [];
  const app = express();
  app.use((req, res, next) => {
    const client = clientOf(req.headers['user-agent'] ?? '');
    res.on('finish', () => served.push({ client, url: req.originalUrl, status: res.statusCode }));
    next();
  });
  app.use('/live', handler);
  // dash.all.min.js and dash.mss.min.js live next to the package's `require` entry.
  app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
  app.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'player.html')));
  const server = liveServer(app);
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
      const chunks = streams.map((s) => Number(/Chunks="(\d+)"/.exec(s)?.[1] ?? 0));
      if (streams.length >= 2 && chunks.every((n) => n >= min)) return last;
    }
    await sleep(500);
  }
  throw new Error(`manifest did not list ${min} fragments per stream within ${timeoutMs} ms; last manifest:\n${last}`);
}

/** What one player fetched: fragment responses, fragments fetched more than once, and error statuses. */
function fetched(site: Site, client: Client): { fragments: number; twice: string[]; failed: string[] } {
  const mine = site.served.filter((s) => s.client === client);
  const ok = mine.filter((s) => s.status === 200 && /\/Fragments\(/.test(s.url)).map((s) => s.url);
  const twice = [...new Set(ok.filter((u, i) => ok.indexOf(u) !== i))];
  const failed = mine.filter((s) => s.status >= 400).map((s) => `${s.status} ${s.url}`);
  return { fragments: ok.length, twice, failed };
}

// ---------------------------------------------------------------------------------------------------
// Encoders

/** The push of a case: one ffmpeg, or one per track. */
interface Encoders {
  pushes: Push[];
  kill(): Promise<void>;
}

function encode(c: Case, url: string): Encoders {
  const o: PushOptions = { ffmpeg: FFMPEG!, url, seconds: PUSH_SECONDS, bitrates: [800, 400, 200], ...c.push };
  const pushes = c.push.processes ? pushTracks(o) : [push(o)];
  return {
    pushes,
    kill: async () => {
      for (const p of pushes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await Promise.all(pushes.map((p) => p.done));
    },
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

async function runDash(executablePath: string, site: Site, shot: string, browsers: Set<{ close(): Promise<void> }>): Promise<DashResult> {
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
      if (wall >= PLAY_SECONDS * 1000) break;
      await sleep(Math.min(1000, PLAY_SECONDS * 1000 - wall));
    }
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, shot) });
    return { samples, state: await state(), httpProblems, console: consoleLines, requests };
  } finally {
    browsers.delete(browser);
    await browser.close();
  }
}

// ---------------------------------------------------------------------------------------------------

/** What the point did around an encoder restart, measured in this process. */
interface RestartLog {
  /** Wall ms of the restarted encoder's first fragment (the `encoderRestart` event). */
  at?: number;
  action?: string;
  /** Fragments listed then, and wall ms when the manifest first listed more. */
  listedThen?: number;
  grewAt?: number;
}

function pointOf(site: Site): PublishingPoint | undefined {
  return site.handler.origin.points().find((p) => p.path === 'ch1.isml');
}

function listedCount(site: Site): number {
  const point = pointOf(site);
  return point ? point.snapshot().streams.reduce((n, s) => n + s.fragments.length, 0) : 0;
}

describe.each(CASES)('real players on a live push: $name', (c) => {
  let site: Site | undefined;
  let encoders: Encoders | undefined;
  let restarted: Encoders | undefined;
  const children = new Set<ChildProcess>();
  const browsers = new Set<{ close(): Promise<void> }>();
  let gstRun: Promise<Outcome<Awaited<ReturnType<typeof runGst>>>> | undefined;
  let dashRun: Promise<Outcome<DashResult>> | undefined;
  let vlcRun: Promise<Outcome<VlcRun>> | undefined;
  let restartDone: Promise<void> | undefined;
  const restart: RestartLog = {};
  let began = 0;
  const tag = c.name.split(' ')[0]!.toLowerCase();

  beforeAll(async () => {
    if (!FFMPEG || (!GST && !CHROMIUM && !VLC)) return; // the tests below skip or fail on their own
    began = Date.now();
    site = await startSite();
    const s = site;
    encoders = encode(c, s.point);
    const exited = Promise.race(encoders.pushes.map((p) => p.done)).then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the manifest listed fragments:\n${stderr}`);
    });
    const listed = waitForFragments(`${s.point}/Manifest`, 2, 25000);
    // Only the race's winner matters; the loser must not reject unhandled later (afterAll kills ffmpeg).
    for (const p of [exited, listed]) p.catch(() => undefined);
    const manifest = await Promise.race([listed, exited]);
    expect(manifest).toContain('IsLive="TRUE"');
    if (GST) gstRun = settle(runGst(GST, `${s.point}/Manifest`, PLAY_SECONDS, children, DEBUG));
    if (CHROMIUM) dashRun = settle(runDash(CHROMIUM, s, `dashjs-${tag}.png`, browsers));
    if (VLC) vlcRun = settle(runVlc(VLC, `${s.point}/Manifest`, PLAY_SECONDS, children, DEBUG));
    if (c.restartAfter !== undefined) {
      s.handler.origin.on('encoderRestart', (e) => {
        restart.at ??= Date.now();
        restart.action ??= e.action;
        restart.listedThen ??= listedCount(s);
      });
      s.handler.origin.on('fragment', () => {
        if (restart.listedThen !== undefined && restart.grewAt === undefined && listedCount(s) > restart.listedThen) restart.grewAt = Date.now();
      });
      restartDone = (async () => {
        await sleep(c.restartAfter! * 1000);
        await encoders!.kill();
        restarted = encode(c, s.point);
      })();
    }
  }, 40000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await Promise.all([...browsers].map((b) => b.close().catch(() => undefined)));
    // Let the runs settle so nothing touches the server after it closed.
    await Promise.all([gstRun, dashRun, vlcRun, restartDone]);
    await encoders?.kill();
    await restarted?.kill();
    if (site) await stopSite(site);
    if (began) console.log(`players (${c.name}): ${((Date.now() - began) / 1000).toFixed(1)} s from push start to teardown`);
  }, 30000);

  if (c.restartAfter !== undefined) {
    withTools(['ffmpeg', FFMPEG])(
      'the restarted encoder continues the timeline: the manifest grows again within two fragment durations',
      async () => {
        await restartDone;
        await Promise.all([gstRun, dashRun, vlcRun]);
        const counts = pointOf(site!)!.encoderCounts;
        console.log(`restart: ${JSON.stringify(restart)} counts ${JSON.stringify(counts)}`);
        expect(restart.action).toBe('continue');
        expect(counts.restarts).toBe(1);
        expect(counts.refused).toBe(0);
        expect(restart.grewAt).toBeDefined();
        expect(restart.grewAt! - restart.at!).toBeLessThanOrEqual(2 * FRAGMENT_SECONDS * 1000);
      },
      90000,
    );
  }

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    `GStreamer mssdemux decodes video and audio for ${PLAY_SECONDS} s`,
    async () => {
      const r = await outcome(gstRun);
      const http = fetched(site!, 'gstreamer');
      const video = ptsSummary(r.video);
      const summary =
        `gst-launch exit ${r.code}, ${video.distinct} video frames over ${video.span.toFixed(1)} s (largest gap ` +
        `${video.maxGap.toFixed(2)} s), ${r.audio.length} audio buffers, ${http.fragments} fragments fetched` +
        `${http.failed.length ? `, HTTP errors: ${http.failed.join(', ')}` : ''}`;
      console.log(`GStreamer (${c.name}): ${summary}`);
      const context = `${summary}\n${r.output.slice(-6000)}`;
      expect({ errors: r.errors, context }).toEqual({ errors: [], context });
      // 124: stopped by `timeout`, i.e. still playing after PLAY_SECONDS (an early exit means it gave up).
      expect({ code: r.code, context }).toEqual({ code: 124, context });
      expect(video.distinct).toBeGreaterThanOrEqual(MIN_VIDEO_SECONDS * FPS);
      expect(r.audio.length).toBeGreaterThan(0);
      expect(http.failed.filter((f) => !f.startsWith('412 '))).toEqual([]);
      // A fragment fetched twice is decoded twice (mssdemux got lost in the timeline, e.g. over `r` runs).
      expect(http.twice).toEqual([]);
    },
    90000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    `dash.js (MSS) in headless Chromium plays for ${PLAY_SECONDS} s without errors`,
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
      console.log(`dash.js (${c.name}): ${summary}${r.httpProblems.length ? `\nHTTP: ${r.httpProblems.join('\n      ')}` : ''}`);
      const context = `${summary}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-40).join('\n')}`;
      expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
      expect(last.wall).toBeGreaterThanOrEqual(PLAY_SECONDS * 1000);
      expect(advance).toBeGreaterThanOrEqual(MIN_VIDEO_SECONDS);
      expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual(MIN_VIDEO_SECONDS * FPS);
      expect(last.audioBytes).toBeGreaterThan(0);
      expect(last.paused).toBe(false);
      // 412 on the edge is how dash.js finds it; anything else (a 404 for a rounded time) is a failure.
      expect(r.httpProblems.filter((p) => !p.startsWith('412 '))).toEqual([]);
    },
    90000,
  );

  withTools(['ffmpeg', FFMPEG], ['VLC', VLC])(
    `VLC 3 plays for ${PLAY_SECONDS} s: no HTTP error, no EOF, frames and audio decoded`,
    async () => {
      const r = await outcome(vlcRun);
      const http = fetched(site!, 'vlc');
      const summary = `${r.summary}, ${http.fragments} fragments fetched${http.failed.length ? `, HTTP errors: ${http.failed.join(', ')}` : ''}`;
      console.log(`VLC (${c.name}): ${summary}`);
      const context = `${summary}\n${r.output.slice(-6000)}`;
      expect({ stoppedByTimeout: r.stoppedByTimeout, context }).toEqual({ stoppedByTimeout: true, context });
      expect({ eof: r.eof, context }).toEqual({ eof: false, context });
      expect({ failed: http.failed, context }).toEqual({ failed: [], context });
      expect(r.videoFrames).toBeGreaterThanOrEqual(MIN_VIDEO_SECONDS * FPS);
      expect(r.audioSeconds).toBeGreaterThanOrEqual(MIN_VIDEO_SECONDS);
    },
    90000,
  );
});
