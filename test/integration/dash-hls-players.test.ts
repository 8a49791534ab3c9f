/**
 * Real DASH and HLS players against one live Smooth push (three H.264 bitrates + AAC, one POST, 2 s
 * fragments), first live, then, after the encoder ended the stream, on demand:
 * - dash.js (plain DASH, no MSS module), Shaka Player with the MPD, Shaka Player with the HLS master and
 *   hls.js, each a page of one headless Chromium; the page comes from another origin than the media, as
 *   on a real site (so the MPD's UTCTiming path must be resolved against the MPD, not the page);
 * - GStreamer (`uridecodebin3`: hlsdemux2 / dashdemux2), ffprobe and ffmpeg's HLS demuxer.
 *
 * Live, every browser player advances `currentTime` by more than {@link LIVE_SECONDS} s with frames and
 * audio decoded and no error, GStreamer decodes {@link GST_LIVE_SECONDS} s of the HLS master and of the
 * MPD, ffprobe lists every variant and the audio with their codecs and ffmpeg decodes 10 s of all of
 * them. Then ffmpeg is stopped with SIGINT, which makes it finish the ismv with its `mfra` (end of
 * stream): the MPD turns static and the playlists end, and every player, GStreamer on the MPD too, plays
 * the on-demand presentation from its start for more than {@link VOD_SECONDS} s.
 *
 * GStreamer 1.22's dashdemux2 buffers 30 s of media before it starts a live MPD (its buffering threshold
 * falls back to `max-buffering-time`, 30 s, instead of 10 s: fixed in 1.24, where DASH streams get the
 * default threshold). It starts the MPD's `suggestedPresentationDelay` behind the live edge and the
 * rest arrives in real time, so its run is {@link GST_DASH_LIVE_RUN} s long: about half of it waiting.
 *
 * All players of a phase run concurrently (on 2 cores the file takes about two minutes, most of it the live phase). A player whose
 * tool is missing is skipped outside CI and fails in CI. `PLAYERS_DEBUG=1` writes each player's log to
 * `test-output/dash-hls-<player>.log` (the browser players at debug level); GStreamer honours `GST_DEBUG`.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { launchPlayerBrowser } from '../helpers/browser';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { Push, push } from '../helpers/ffmpeg';
import { GstRun, ptsSummary, runGst, uriPipeline } from '../helpers/gst';
import { waitFor } from '../helpers/live-play';
import { isml, liveServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, ffprobePath, gstLaunchPath, withTool, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const FFPROBE = ffprobePath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const OUTPUT = path.join(__dirname, '..', '..', 'test-output');

/** Live media each browser player must play (its `currentTime` advance). */
const LIVE_SECONDS = 30;
/** On-demand media each player must play from the start. */
const VOD_SECONDS = 10;
/** Wall-clock limits of a browser run after its first `playing`: room for a stall or two on 2 cores. */
const LIVE_WALL_SECONDS = 45;
const VOD_WALL_SECONDS = 25;
/** GStreamer runs under `timeout` this long; it must decode most of it (it buffers a moment first). */
const GST_LIVE_RUN = 40;
const GST_LIVE_SECONDS = LIVE_SECONDS;
/** dashdemux2 (1.22) first buffers 30 s of the live MPD, which arrive in real time (see above). */
const GST_DASH_LIVE_RUN = 70;
const GST_VOD_RUN = 16;
const FPS = 25;
/** Upper bound of the push; the test stops it with SIGINT long before (afterAll kills it otherwise). */
const PUSH_SECONDS = 150;
/**
 * The SIGINT comes this long after a video fragment arrived: ffmpeg cuts its last fragments where the
 * signal lands, here into a fragment of a frame or two, which the ingest leaves out (under 100 ms) while
 * the end of stream still ends the point.
 */
const STOP_AFTER_FRAGMENT_MS = 30;
const BITRATES = [800, 400, 200];
const SIZES = [
  [640, 360],
  [480, 270],
  [320, 180],
];



const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
/** A bound for a race: its timer does not keep the test process alive once the race is won. */
const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

function writeLog(name: string, text: string): void {
  if (!DEBUG) return;
  mkdirSync(OUTPUT, { recursive: true });
  writeFileSync(path.join(OUTPUT, `dash-hls-${name}.log`), text);
}

// ---------------------------------------------------------------------------------------------------
// Servers: the media (liveSmooth at /live) and, on another port (another origin), the player page
// with the players' builds from node_modules.

type Client = 'gstreamer' | 'ffmpeg' | 'chromium' | 'other';

interface Served {
  client: Client;
  url: string;
  status: number;
}

interface Site {
  /** `…/live/ch1.isml` */
  point: string;
  /** Origin of the player page. */
  pages: string;
  served: Served[];
  /** The point's state changes and stream ends, for failure messages. */
  events: string[];
  root: string;
  handler: LiveSmoothHandler;
  servers: http.Server[];
}

function clientOf(ua: string): Client {
  if (/GStreamer/i.test(ua)) return 'gstreamer';
  if (/Lavf/.test(ua)) return 'ffmpeg';
  return /Chrome/.test(ua) ? 'chromium' : 'other';
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startSite(): Promise<Site> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-dash-hls-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml());
  const handler = liveSmooth(root);
  const served: Served[] = [];
  const events: string[] = [];
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  handler.origin.on('state', (e) => events.push(`${at()} state ${e.state} (${e.reason})`));
  handler.origin.on('streamEnded', (e) => events.push(`${at()} stream ${e.streamId} ended: ${e.reason}`));
  handler.origin.on('inputRejected', (e) => events.push(`${at()} input rejected: ${e.code} ${e.message}`));
  const media = express();
  media.use((req, res, next) => {
    const client = clientOf(req.headers['user-agent'] ?? '');
    res.on('finish', () => served.push({ client, url: req.originalUrl, status: res.statusCode }));
    next();
  });
  media.use('/live', handler);
  const mediaServer = liveServer(media);

  const pages = express();
  pages.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
  pages.use('/shaka', express.static(path.dirname(require.resolve('shaka-player'))));
  pages.use('/hlsjs', express.static(path.dirname(require.resolve('hls.js'))));
  pages.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'dash-hls-player.html')));
  // Chromium asks for it; a 404 would show up as a console error of the page.
  pages.get('/favicon.ico', (_req, res) => res.status(204).end());
  const pageServer = http.createServer(pages);

  const origin = await listen(mediaServer);
  return { point: `${origin}/live/ch1.isml`, pages: await listen(pageServer), served, events, root, handler, servers: [mediaServer, pageServer] };
}

async function stopSite(site: Site): Promise<void> {
  site.handler.origin.close();
  for (const s of site.servers) {
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }
  rmSync(site.root, { recursive: true, force: true });
}

/** Resolves when the point receives its next video fragment: a GOP boundary of the push. */
function nextVideoFragment(site: Site): Promise<void> {
  return new Promise((ok) => {
    const on = (e: { track: string }): void => {
      if (!e.track.startsWith('video')) return;
      site.handler.origin.off('fragment', on);
      ok();
    };
    site.handler.origin.on('fragment', on);
  });
}

/** Responses >= 400 one non-browser client got. */
function failedFor(site: Site, client: Client): string[] {
  return site.served.filter((s) => s.client === client && s.status >= 400).map((s) => `${s.status} ${s.url}`);
}

/** Segments an MPD lists per AdaptationSet (S elements with their repeats). */
function mpdSegmentCounts(mpd: string): number[] {
  return mpd
    .split('<AdaptationSet')
    .slice(1)
    .map((set) => [...set.matchAll(/<S\b[^>]*\/>/g)].reduce((n, m) => n + 1 + Number(/\br="(\d+)"/.exec(m[0])?.[1] ?? 0), 0));
}

// ---------------------------------------------------------------------------------------------------
// Browser players: one page each, sampled once a second after the first `playing`.

type PlayerKind = 'dashjs' | 'shaka' | 'hlsjs';

interface BrowserSpec {
  /** Name in test titles, logs and file names. */
  label: string;
  player: PlayerKind;
  src: string;
  /** Stop once `currentTime` advanced this much (plus a second), or after `wallSeconds`. */
  seconds: number;
  wallSeconds: number;
}

interface PageState {
  player: string;
  version: string | undefined;
  errors: string[];
  warnings: string[];
  events: unknown[];
  playingAt: number | undefined;
  waiting: number;
  dynamic: boolean | undefined;
}

interface Sample {
  /** Wall-clock ms since the first sample. */
  wall: number;
  currentTime: number;
  totalVideoFrames: number;
  droppedVideoFrames: number;
  audioBytes: number;
  paused: boolean;
  readyState: number;
}

interface BrowserResult {
  samples: Sample[];
  state: PageState;
  /** Responses >= 400 and failed requests the page saw. */
  httpProblems: string[];
  console: string[];
  /** Media segments fetched (`cmaf/<rep>/<t>.m4s`), per representation. */
  segments: Map<string, number>;
  /** Requests of the point's clock (`<name>.isml/time`). */
  clockRequests: number;
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

async function runBrowser(browser: Browser, site: Site, spec: BrowserSpec): Promise<BrowserResult> {
  const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
  const consoleLines: string[] = [];
  const httpProblems: string[] = [];
  const segments = new Map<string, number>();
  let clockRequests = 0;
  const started = Date.now();
  const stamp = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  page.on('console', (m) => consoleLines.push(`${stamp()} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${stamp()} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A player cancels its own request when it switches bitrate (Shaka does on a down-switch): the
    // server did nothing wrong, and the segment is fetched at the other bitrate.
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
    httpProblems.push(`failed ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    const url = r.url();
    if (DEBUG) consoleLines.push(`${stamp()} HTTP ${r.status()} ${url}`);
    if (r.status() >= 400) httpProblems.push(`${r.status()} ${url}`);
    const segment = /\/cmaf\/([^/]+)\/\d+\.m4s$/.exec(url);
    if (segment && r.status() === 200) segments.set(decodeURIComponent(segment[1]!), (segments.get(decodeURIComponent(segment[1]!)) ?? 0) + 1);
    if (/\.isml\/time$/.test(url)) clockRequests++;
  });
  try {
    const src = encodeURIComponent(spec.src);
    await page.goto(`${site.pages}/player.html?player=${spec.player}&src=${src}${DEBUG ? '&debug=1' : ''}`);
    const state = (): Promise<PageState> => page.evaluate('window.__player') as Promise<PageState>;
    try {
      await page.waitForFunction('window.__player && (window.__player.playingAt !== undefined || window.__player.errors.length > 0)', undefined, {
        timeout: 30000,
      });
    } catch (err) {
      const s = await state();
      throw new Error(
        `${spec.label} did not start playing within 30 s: ${(err as Error).message}\n` +
          `errors: ${JSON.stringify(s.errors)}\nHTTP: ${JSON.stringify(httpProblems)}\nconsole:\n${consoleLines.slice(-40).join('\n')}`,
      );
    }
    const samples: Sample[] = [];
    const start = Date.now();
    for (;;) {
      const wall = Date.now() - start;
      const sample = { wall, ...((await page.evaluate(SAMPLE_JS)) as Omit<Sample, 'wall'>) };
      samples.push(sample);
      const advance = sample.currentTime - samples[0]!.currentTime;
      if (advance >= spec.seconds + 1 || wall >= spec.wallSeconds * 1000) break;
      if ((await state()).errors.length > 0) break;
      await sleep(1000);
    }
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: path.join(OUTPUT, `dash-hls-${spec.label}.png`) });
    const result = { samples, state: await state(), httpProblems, console: consoleLines, segments, clockRequests };
    writeLog(
      spec.label,
      `${summary(result)}\nstate: ${JSON.stringify(result.state, null, 1)}\nHTTP problems:\n${httpProblems.join('\n')}\n` +
        `samples:\n${samples.map((s) => JSON.stringify(s)).join('\n')}\nconsole:\n${consoleLines.join('\n')}\n`,
    );
    return result;
  } finally {
    await page.context().close();
  }
}

function summary(r: BrowserResult): string {
  const first = r.samples[0]!;
  const last = r.samples[r.samples.length - 1]!;
  const segments = [...r.segments].map(([rep, n]) => `${rep}: ${n}`).join(', ');
  return (
    `${r.state.player} ${r.state.version}, ${r.state.dynamic ? 'dynamic' : 'static'}: currentTime ${first.currentTime.toFixed(2)} -> ` +
    `${last.currentTime.toFixed(2)} (+${(last.currentTime - first.currentTime).toFixed(2)} s) over ${(last.wall / 1000).toFixed(1)} s wall, ` +
    `frames ${first.totalVideoFrames} -> ${last.totalVideoFrames} (dropped ${last.droppedVideoFrames}), audio bytes ` +
    `${first.audioBytes} -> ${last.audioBytes}, waiting ${r.state.waiting}, segments {${segments}}, clock requests ${r.clockRequests}`
  );
}

/**
 * Non-fatal hls.js errors that say nothing about the stream: playback waited for data (a busy machine),
 * or hls.js aborted a load of its own (`INTERNAL_ABORTED`, e.g. a fragment of a level it switched away
 * from; the page's own cancellations are left out of the HTTP problems likewise).
 */
const STALLS = /^hls\.js error (mediaError (bufferStalledError|bufferNudgeOnStall)|networkError aborted)\b/;

function expectPlayed(label: string, r: BrowserResult, o: { seconds: number; dynamic: boolean; fromStart: boolean }): void {
  const first = r.samples[0]!;
  const last = r.samples[r.samples.length - 1]!;
  const text = summary(r);
  console.log(`${label}: ${text}${r.state.warnings.length ? `\n  warnings: ${r.state.warnings.join('\n    ')}` : ''}`);
  const context = `${text}\nwarnings: ${JSON.stringify(r.state.warnings)}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-40).join('\n')}`;
  expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
  expect({ warnings: r.state.warnings.filter((w) => !STALLS.test(w)), context }).toEqual({ warnings: [], context });
  // Not-yet-available segments are 404 by design, but a player that follows the MPD or playlist never asks for one.
  expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
  expect({ dynamic: r.state.dynamic, context }).toEqual({ dynamic: o.dynamic, context });
  if (o.fromStart) expect(first.currentTime).toBeLessThan(1);
  expect(last.currentTime - first.currentTime).toBeGreaterThanOrEqual(o.seconds);
  expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual((o.seconds - 1) * FPS);
  expect(last.audioBytes).toBeGreaterThan(first.audioBytes);
  expect(last.paused).toBe(false);
}

// ---------------------------------------------------------------------------------------------------
// ffprobe and ffmpeg

interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], children: Set<ChildProcess>, timeoutMs: number): Promise<ProcessRun> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      ok({ code, stdout, stderr });
    });
  });
}

interface ProbeStream {
  index: number;
  codec_name: string;
  codec_type: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

interface Probe {
  programs: Array<{ tags?: { variant_bitrate?: string }; streams: ProbeStream[] }>;
  streams: ProbeStream[];
}

async function probeHls(ffprobe: string, url: string, children: Set<ChildProcess>): Promise<Probe> {
  const r = await run(
    ffprobe,
    ['-v', 'error', '-show_entries', 'program=program_id:program_tags=variant_bitrate:stream=index,codec_name,codec_type,width,height,sample_rate,channels', '-of', 'json', url],
    children,
    30000,
  );
  writeLog('ffprobe', `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  if (r.code !== 0 || r.stderr.trim() !== '') throw new Error(`ffprobe exited ${r.code}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
}

/** Frames per stream index that ffmpeg decoded from the first `seconds` of every stream of `url`. */
async function ffmpegDecode(ffmpeg: string, url: string, seconds: number, children: Set<ChildProcess>, name: string): Promise<{ frames: Map<number, number>; stderr: string; code: number | null }> {
  // framecrc: one line per decoded frame and stream, after decoding (so a decode error shows on stderr).
  const r = await run(ffmpeg, ['-hide_banner', '-nostdin', '-v', 'error', '-i', url, '-map', '0:v', '-map', '0:a', '-t', String(seconds), '-f', 'framecrc', '-'], children, 60000);
  writeLog(name, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  const frames = new Map<number, number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+),/.exec(line);
    if (m) frames.set(Number(m[1]), (frames.get(Number(m[1])) ?? 0) + 1);
  }
  return { frames, stderr: r.stderr, code: r.code };
}

function expectDecoded(label: string, r: { frames: Map<number, number>; stderr: string; code: number | null }, seconds: number): void {
  const text = `exit ${r.code}, frames per output stream ${JSON.stringify([...r.frames])}`;
  console.log(`${label}: ${text}`);
  expect({ code: r.code, stderr: r.stderr, text }).toEqual({ code: 0, stderr: '', text });
  // `-map 0:v -map 0:a`: the three video streams (25 fps) first, then the audio (1024-sample AAC frames at 48 kHz).
  const counts = [...r.frames.entries()].sort(([a], [b]) => a - b).map(([, n]) => n);
  expect(counts).toHaveLength(BITRATES.length + 1);
  counts.forEach((n, i) => expect(n).toBeGreaterThanOrEqual(i === BITRATES.length ? Math.floor(((seconds - 1) * 48000) / 1024) : (seconds - 1) * FPS));
}

function gstSummary(r: GstRun): string {
  const v = ptsSummary(r.video);
  const a = ptsSummary(r.audio);
  return (
    `gst-launch exit ${r.code}, ${v.distinct} video frames over ${v.span.toFixed(1)} s from ${r.video[0]?.toFixed(2)} (largest gap ` +
    `${v.maxGap.toFixed(2)} s), ${a.distinct} audio buffers over ${a.span.toFixed(1)} s (largest gap ${a.maxGap.toFixed(2)} s)`
  );
}

function expectGst(label: string, r: GstRun, site: Site, seconds: number, start?: number): void {
  const v = ptsSummary(r.video);
  const a = ptsSummary(r.audio);
  const text = gstSummary(r);
  console.log(`${label}: ${text}`);
  const context = `${text}\n${r.output.slice(-6000)}`;
  expect({ errors: r.errors, context }).toEqual({ errors: [], context });
  // 124: stopped by `timeout`, i.e. still playing (an early exit means it gave up).
  expect({ code: r.code, context }).toEqual({ code: 124, context });
  expect(v.distinct).toBeGreaterThanOrEqual(seconds * FPS);
  expect(a.span).toBeGreaterThanOrEqual(seconds - 1);
  expect(v.backwards).toBe(0);
  // A missing or misplaced segment leaves a hole of a whole fragment (2 s); the fakesink messages
  // gst-launch misses (see helpers/gst.ts), more of them on a loaded machine, leave shorter ones.
  expect(v.maxGap).toBeLessThan(1);
  if (start !== undefined) expect(Math.abs(Math.min(...r.video) - start)).toBeLessThan(0.05);
  expect(failedFor(site, 'gstreamer')).toEqual([]);
}

// ---------------------------------------------------------------------------------------------------

const LIVE_BROWSERS = (point: string): BrowserSpec[] => [
  { label: 'dashjs-live', player: 'dashjs', src: `${point}/.mpd`, seconds: LIVE_SECONDS, wallSeconds: LIVE_WALL_SECONDS },
  { label: 'shaka-dash-live', player: 'shaka', src: `${point}/.mpd`, seconds: LIVE_SECONDS, wallSeconds: LIVE_WALL_SECONDS },
  { label: 'shaka-hls-live', player: 'shaka', src: `${point}/.m3u8`, seconds: LIVE_SECONDS, wallSeconds: LIVE_WALL_SECONDS },
  { label: 'hlsjs-live', player: 'hlsjs', src: `${point}/.m3u8`, seconds: LIVE_SECONDS, wallSeconds: LIVE_WALL_SECONDS },
];

const VOD_BROWSERS = (point: string): BrowserSpec[] =>
  LIVE_BROWSERS(point).map((s) => ({ ...s, label: s.label.replace('-live', '-vod'), seconds: VOD_SECONDS, wallSeconds: VOD_WALL_SECONDS }));

type BrowserRuns = Map<string, Promise<Outcome<BrowserResult>>>;

describe('real DASH and HLS players on one live push, then on demand', () => {
  let site: Site | undefined;
  let encoder: Push | undefined;
  let browser: Browser | undefined;
  const children = new Set<ChildProcess>();
  const live: BrowserRuns = new Map();
  const vod: BrowserRuns = new Map();
  let gstLive: Promise<Outcome<GstRun>> | undefined;
  let gstLiveDash: Promise<Outcome<GstRun>> | undefined;
  let probeLive: Promise<Outcome<Probe>> | undefined;
  let decodeLive: Promise<Outcome<Awaited<ReturnType<typeof ffmpegDecode>>>> | undefined;
  /** The end of stream: encoder exit, and when the MPD turned static (ms after the SIGINT). */
  let ended: Promise<Outcome<{ code: number | null; staticAfterMs: number; mpd: string; playlist: string }>> | undefined;
  let gstVodDash: Promise<Outcome<GstRun>> | undefined;
  let gstVodHls: Promise<Outcome<GstRun>> | undefined;
  let decodeVod: Promise<Outcome<Awaited<ReturnType<typeof ffmpegDecode>>>> | undefined;
  /** Everything of both phases, settled (afterAll waits for it). */
  let all: Promise<unknown> | undefined;
  let began = 0;

  beforeAll(async () => {
    if (!FFMPEG) return; // the tests below skip or fail on their own
    began = Date.now();
    site = await startSite();
    const s = site;
    encoder = push({ ffmpeg: FFMPEG, url: s.point, seconds: PUSH_SECONDS, bitrates: BITRATES });
    const exited = encoder.done.then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the outputs listed fragments:\n${stderr}`);
    });
    // hls.js starts three target durations from the live edge: every output must list that much.
    const listed = (async () => {
      await waitFor(`${s.point}/.mpd`, (mpd) => mpdSegmentCounts(mpd).length >= 2 && mpdSegmentCounts(mpd).every((n) => n >= 3), 30000, 'the MPD did not list 3 segments per set');
      await waitFor(`${s.point}/cmaf/audio=96000/index.m3u8`, (m) => (m.match(/#EXTINF/g) ?? []).length >= 3, 10000, 'the audio playlist did not list 3 segments');
    })();
    for (const p of [exited, listed]) p.catch(() => undefined);
    await Promise.race([listed, exited]);
    if (CHROMIUM) browser = await launchPlayerBrowser(CHROMIUM);

    // Live phase: every player at once.
    const b = browser;
    if (b) for (const spec of LIVE_BROWSERS(s.point)) live.set(spec.label, settle(runBrowser(b, s, spec)));
    /** GStreamer on one of the point's documents for `seconds`. */
    const gst = (doc: string, seconds: number, name: string): Promise<Outcome<GstRun>> =>
      settle(
        runGst(GST!, `${s.point}/${doc}`, seconds, children, DEBUG, uriPipeline(`${s.point}/${doc}`)).then((r) => {
          writeLog(name, `${gstSummary(r)}\n${r.output}`);
          return r;
        }),
      );
    if (GST) {
      gstLive = gst('.m3u8', GST_LIVE_RUN, 'gstreamer-hls-live');
      gstLiveDash = gst('.mpd', GST_DASH_LIVE_RUN, 'gstreamer-dash-live');
    }
    if (FFPROBE) probeLive = settle(probeHls(FFPROBE, `${s.point}/.m3u8`, children));
    decodeLive = settle(ffmpegDecode(FFMPEG, `${s.point}/.m3u8`, 10, children, 'ffmpeg-hls-live'));

    // End of stream once every live run is over, then the on-demand phase.
    all = (async () => {
      await Promise.all([...live.values(), gstLive, gstLiveDash, probeLive, decodeLive]);
      ended = settle(
        (async () => {
          await Promise.race([nextVideoFragment(s), deadline(5000)]);
          await sleep(STOP_AFTER_FRAGMENT_MS);
          const stoppedAt = Date.now();
          encoder!.child.kill('SIGINT');
          const { code, stderr } = await encoder!.done;
          const mpd = await waitFor(`${s.point}/.mpd`, (t) => t.includes('type="static"'), 10000, 'the MPD did not turn static').catch((err: Error) => {
            throw new Error(`${err.message}\nffmpeg exit ${code} ${stderr}\npoint events:\n${s.events.join('\n')}`);
          });
          const staticAfterMs = Date.now() - stoppedAt;
          const playlist = await waitFor(`${s.point}/cmaf/video=800000/index.m3u8`, (t) => t.includes('#EXT-X-ENDLIST'), 5000, 'the playlist did not end');
          return { code, staticAfterMs, mpd, playlist };
        })(),
      );
      const end = await ended;
      if (!end.ok) return;
      if (b) for (const spec of VOD_BROWSERS(s.point)) vod.set(spec.label, settle(runBrowser(b, s, spec)));
      if (GST) {
        gstVodDash = gst('.mpd', GST_VOD_RUN, 'gstreamer-dash-vod');
        gstVodHls = gst('.m3u8', GST_VOD_RUN, 'gstreamer-hls-vod');
      }
      decodeVod = settle(ffmpegDecode(FFMPEG, `${s.point}/.m3u8`, 10, children, 'ffmpeg-hls-vod'));
      await Promise.all([...vod.values(), gstVodDash, gstVodHls, decodeVod]);
    })();
    all.catch(() => undefined);
  }, 60000);

  afterAll(async () => {
    // Normally long settled; after a failed or timed-out test, whatever still runs is cut short.
    await Promise.race([all, deadline(40000)]);
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    if (site) await stopSite(site);
    if (began) console.log(`DASH/HLS players: ${((Date.now() - began) / 1000).toFixed(1)} s from push start to teardown`);
  }, 60000);

  const PHASE_MS = 150000;
  /** The on-demand phase is over; throws why it never began (the end of stream failed). */
  const onDemandDone = async (): Promise<{ mpd: string }> => {
    await all;
    return outcome(ended);
  };

  describe('live', () => {
    for (const spec of LIVE_BROWSERS('')) {
      withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
        `${spec.label}: plays more than ${LIVE_SECONDS} s of the live stream in headless Chromium, video and audio, no error`,
        async () => {
          const r = await outcome(live.get(spec.label));
          expectPlayed(spec.label, r, { seconds: LIVE_SECONDS, dynamic: true, fromStart: false });
          // The MPD's UTCTiming is a path below the point: dash.js finds it from the MPD's URL, not the
          // page's origin. (Shaka asks no clock when the SegmentTimeline gives the live edge.)
          if (spec.player === 'dashjs') expect(r.clockRequests).toBeGreaterThan(0);
          // Video and audio came as separate CMAF tracks (HLS: the EXT-X-MEDIA rendition).
          expect([...r.segments.keys()].some((k) => k.startsWith('video='))).toBe(true);
          expect([...r.segments.keys()].some((k) => k.startsWith('audio='))).toBe(true);
        },
        PHASE_MS,
      );
    }

    withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
      `GStreamer (hlsdemux2) decodes ${GST_LIVE_SECONDS} s of the live HLS master's video and audio`,
      async () => {
        expectGst('GStreamer HLS live', await outcome(gstLive), site!, GST_LIVE_SECONDS);
      },
      PHASE_MS,
    );

    withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
      `GStreamer (dashdemux2) decodes ${GST_LIVE_SECONDS} s of the live MPD's video and audio`,
      async () => {
        expectGst('GStreamer DASH live', await outcome(gstLiveDash), site!, GST_LIVE_SECONDS);
      },
      PHASE_MS,
    );

    withTools(['ffmpeg', FFMPEG], ['ffprobe', FFPROBE])(
      'ffprobe lists every variant of the live HLS master with its codecs and size, and the audio rendition',
      async () => {
        const probe = await outcome(probeLive);
        console.log(`ffprobe: ${JSON.stringify(probe.programs.map((p) => [p.tags?.variant_bitrate, p.streams.map((s) => `${s.codec_name} ${s.width ?? s.sample_rate}`)]))}`);
        expect(probe.programs).toHaveLength(BITRATES.length);
        const variants = probe.programs.map((p) => ({
          bitrate: Number(p.tags?.variant_bitrate),
          video: p.streams.filter((s) => s.codec_type === 'video').map((s) => [s.codec_name, s.width, s.height]),
          audio: p.streams.filter((s) => s.codec_type === 'audio').map((s) => [s.codec_name, Number(s.sample_rate), s.channels]),
        }));
        // BANDWIDTH is the video bitrate plus the audio's (96 kbit/s).
        const expected = BITRATES.map((kbps, i) => ({ bitrate: (kbps + 96) * 1000, video: [['h264', ...SIZES[i]!]], audio: [['aac', 48000, 2]] }));
        expect(variants.sort((a, b) => b.bitrate - a.bitrate)).toEqual(expected);
      },
      PHASE_MS,
    );

    withTool('ffmpeg', FFMPEG)(
      'ffmpeg decodes 10 s of every variant and the audio of the live HLS master without an error',
      async () => {
        expectDecoded('ffmpeg HLS live', await outcome(decodeLive), 10);
      },
      PHASE_MS,
    );
  });

  describe('after end of stream, on demand', () => {
    withTool('ffmpeg', FFMPEG)(
      'ffmpeg stopped with SIGINT ends the stream: the MPD turns static and the playlists end',
      async () => {
        await all;
        const end = await outcome(ended);
        console.log(`end of stream: ffmpeg exit ${end.code}, MPD static ${end.staticAfterMs} ms after the SIGINT`);
        expect(end.mpd).toMatch(/mediaPresentationDuration="PT\d+(\.\d+)?S"/);
        expect(end.playlist).toContain('#EXT-X-ENDLIST');
      },
      PHASE_MS,
    );

    for (const spec of VOD_BROWSERS('')) {
      withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
        `${spec.label}: plays the on-demand presentation from its start for more than ${VOD_SECONDS} s, no error`,
        async () => {
          await onDemandDone();
          expectPlayed(spec.label, await outcome(vod.get(spec.label)), { seconds: VOD_SECONDS, dynamic: false, fromStart: true });
        },
        PHASE_MS,
      );
    }

    withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
      `GStreamer (dashdemux2) decodes the static MPD from its first segment for ${VOD_SECONDS} s`,
      async () => {
        const end = await onDemandDone();
        expectGst('GStreamer DASH on demand', await outcome(gstVodDash), site!, VOD_SECONDS, firstSegmentSeconds(end.mpd));
      },
      PHASE_MS,
    );

    withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
      `GStreamer (hlsdemux2) decodes the ended HLS master from its first segment for ${VOD_SECONDS} s`,
      async () => {
        const end = await onDemandDone();
        expectGst('GStreamer HLS on demand', await outcome(gstVodHls), site!, VOD_SECONDS, firstSegmentSeconds(end.mpd));
      },
      PHASE_MS,
    );

    withTool('ffmpeg', FFMPEG)(
      'ffmpeg decodes the first 10 s of every variant and the audio of the ended HLS master without an error',
      async () => {
        await onDemandDone();
        expectDecoded('ffmpeg HLS on demand', await outcome(decodeVod), 10);
        expect(failedFor(site!, 'ffmpeg')).toEqual([]);
      },
      PHASE_MS,
    );
  });
});

/** Media time (s) of the video AdaptationSet's first segment: where GStreamer's first pts must be. */
function firstSegmentSeconds(mpd: string): number {
  const video = mpd.split('<AdaptationSet').find((s) => s.includes('contentType="video"'))!;
  const timescale = Number(/timescale="(\d+)"/.exec(video)![1]);
  return Number(/<S t="(\d+)"/.exec(video)![1]) / timescale;
}
