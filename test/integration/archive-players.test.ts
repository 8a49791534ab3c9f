/**
 * A live archive played on demand by real players: ffmpeg pushes 3 minutes (three H.264 bitrates + AAC,
 * 2 s GOPs, one POST) to a point with `Archives` and `archiveSegmentLength` 60, faster than real time
 * (no `-re`: the ingest takes fragments as fast as they come), and ends the stream. The point stops and
 * the archive is three or more presentations that together hold every fragment the point listed, once
 * and in order. ffprobe and mp4box read every `.ismv`/`.isma` without an error, and every presentation,
 * served on demand by the same handler, is played from its start to its end, video and audio decoded,
 * without an error, by:
 * - GStreamer's mssdemux (fakesinks with `sync=false`: as fast as it decodes);
 * - dash.js 5 with its MSS module and Shaka Player 4 (the last Shaka with Smooth), each a page of one
 *   headless Chromium at `playbackRate` {@link BROWSER_RATE}: `currentTime` must reach the end (`ended`
 *   fires; dash.js now and then stays at the end without it, which counts as the end reached too);
 * - VLC 3 at `--rate` {@link VLC_RATE} (it drops the audio above 4), `--play-and-exit`.
 * Each player must have fetched every fragment of every stream the presentation lists.
 *
 * Shaka Player 4.16 plays only on-demand Smooth presentations whose times start at 0 (it sets the
 * append window to [0, Duration] and places fragments at their manifest times): a finished archive
 * presentation is served from 0 (its `.ism`'s `timeShift`, its earliest start, comes off every time),
 * so every segment plays in every player as served.
 *
 * GStreamer and the two browser players play a presentation at once, the presentations one after the
 * other; VLC (real time at its rate, little CPU) plays all presentations at once meanwhile. On 2 cores
 * the file takes about 70 s: 20 s of push, 10 s per presentation for the browsers, 17 s for VLC. A
 * player whose tool is missing is skipped outside CI and fails in CI.
 * `PLAYERS_DEBUG=1` writes the players' logs to `test-output/archive-<player>-<segment>.log`.
 */
import { ChildProcess, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { launchPlayerBrowser } from '../helpers/browser';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import type { ArchiveEvent, ArchiveStatus } from '../../lib/archive';
import { archiveJson } from '../../lib/http/admin';
import { openSource } from '../../lib/ismv/source';
import { parseMoov } from '../../lib/mp4/boxes';
import { children } from '../../lib/mp4/reader';
import { Push, push } from '../helpers/ffmpeg';
import { GstRun, gstPipeline, ptsSummary, runGst } from '../helpers/gst';
import { mp4boxExtract } from '../helpers/mp4box';
import { get, parseManifest, until } from '../helpers/raw-ingest';
import { isml, liveServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, ffprobePath, gstLaunchPath, vlcPath, withTool, withTools } from '../helpers/tools';
import { VlcRun, runVlc } from '../helpers/vlc';

const FFMPEG = ffmpegPath();
const FFPROBE = ffprobePath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const VLC = vlcPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const OUTPUT = path.join(__dirname, '..', '..', 'test-output');

const PUSH_SECONDS = 180;
const SEGMENT_SECONDS = 60;
const BITRATES = [800, 400, 200];
const AUDIO_BITRATE = 96_000;
const FPS = 25;
const FRAGMENT_SECONDS = 2;
/** `playbackRate` of the browser players: a 60 s presentation plays in under 10 s. */
const BROWSER_RATE = 8;
/** How close to its end (s) `currentTime` must get: the last video frame's start, at 25 fps, is 40 ms before it. */
const END_TOLERANCE = 0.05;
/** VLC's `--rate`: the highest at which VLC 3 still plays the audio (resampled). */
const VLC_RATE = 4;
/** Wall-clock limit of one player on one presentation (they need 1 to 20 s). */
const RUN_SECONDS = 60;
const POINT = 'ch1.isml';

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

function writeLog(name: string, text: string): void {
  if (!DEBUG) return;
  mkdirSync(OUTPUT, { recursive: true });
  writeFileSync(path.join(OUTPUT, `archive-${name}.log`), text);
}

// ---------------------------------------------------------------------------------------------------
// Server: liveSmooth at /live, the player page and the players' builds from node_modules.

type Client = 'gstreamer' | 'vlc' | 'chromium' | 'ffmpeg' | 'other';

interface Served {
  client: Client;
  url: string;
  status: number;
}

interface Site {
  origin: string;
  /** `…/live` */
  base: string;
  served: Served[];
  /** State changes, refused input and archive events, for failure messages. */
  events: string[];
  archives: ArchiveEvent[];
  rejected: string[];
  root: string;
  handler: LiveSmoothHandler;
  server: http.Server;
}

function clientOf(ua: string): Client {
  if (/GStreamer/i.test(ua)) return 'gstreamer';
  if (/VLC/i.test(ua)) return 'vlc';
  if (/Lavf/.test(ua)) return 'ffmpeg';
  return /Chrome/.test(ua) ? 'chromium' : 'other';
}

async function startSite(): Promise<Site> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-archive-players-'));
  writeFileSync(path.join(root, POINT), isml({ publishing: 'Fragments;Streams;Archives', archiveSegmentLength: String(SEGMENT_SECONDS) }));
  const handler = liveSmooth(root);
  const served: Served[] = [];
  const events: string[] = [];
  const archives: ArchiveEvent[] = [];
  const rejected: string[] = [];
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  handler.origin.on('state', (e) => events.push(`${at()} state ${e.state} (${e.reason})`));
  handler.origin.on('inputRejected', (e) => rejected.push(`${at()} ${e.code} ${e.message}`));
  handler.origin.on('archive', (e) => {
    archives.push(e);
    events.push(`${at()} archive ${e.state} ${path.relative(root, e.folder)}${e.message ? ` (${e.message})` : ''}`);
  });
  const app = express();
  app.use((req, res, next) => {
    const client = clientOf(req.headers['user-agent'] ?? '');
    res.on('finish', () => served.push({ client, url: req.originalUrl, status: res.statusCode }));
    next();
  });
  app.use('/live', handler);
  app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
  app.use('/shaka4', express.static(path.dirname(require.resolve('shaka-player-4'))));
  app.use('/isoboxer', express.static(path.dirname(require.resolve('codem-isoboxer'))));
  app.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'archive-player.html')));
  // Chromium asks for it; a 404 would show up as a console error of the page.
  app.get('/favicon.ico', (_req, res) => res.status(204).end());
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, base: `${origin}/live`, served, events, archives, rejected, root, handler, server };
}

async function stopSite(site: Site): Promise<void> {
  site.handler.origin.close();
  await site.handler.origin.archiver.idle();
  site.server.closeAllConnections();
  await new Promise<void>((ok) => site.server.close(() => ok()));
  rmSync(site.root, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------
// Presentations

/** One archived presentation as the on-demand handler serves it. */
interface Presentation {
  segment: number;
  folder: string;
  /** `…/live/archives/ch1/<session>/<segment>/ch1.ism/Manifest` */
  manifestUrl: string;
  /** Path of the manifest URL without `Manifest`, to pick the fragment requests of this presentation. */
  prefix: string;
  /** Per StreamIndex: type, name and the start times it lists. */
  streams: Array<{ type: string; name: string; times: bigint[] }>;
  /** The `.ism`'s `timeShift` (10 MHz ticks): the served times plus it are the files' (live) times. */
  shift: bigint;
  /** Seconds: first video start, end of the video, end of the longest stream, and the manifest's `Duration`. */
  start: number;
  videoEnd: number;
  end: number;
  duration: number;
  /** The `.ismv`/`.isma` files. */
  files: string[];
}

async function presentationOf(site: Site, status: ArchiveStatus): Promise<Presentation> {
  const manifestUrl = `${site.base}/${archiveJson(status, site.root).url as string}`;
  const r = await get(manifestUrl);
  if (r.status !== 200) throw new Error(`${manifestUrl}: ${r.status} ${r.text}`);
  const m = parseManifest(r.text);
  const video = m.streams.find((s) => s.type === 'video')!;
  const endOf = (s: (typeof m.streams)[number]): number => Number(s.fragments[s.fragments.length - 1]!.t + s.fragments[s.fragments.length - 1]!.d) / s.timescale;
  const source = await openSource([status.ism]);
  await source.close();
  return {
    segment: status.segment,
    folder: status.folder,
    manifestUrl,
    prefix: new URL(manifestUrl).pathname.replace(/Manifest$/, ''),
    streams: m.streams.map((s) => ({ type: s.type, name: s.name, times: s.fragments.map((c) => c.t) })),
    shift: BigInt(/<meta name="timeShift" content="(\d+)"/.exec(readFileSync(status.ism, 'utf8'))?.[1] ?? '0'),
    start: Number(video.fragments[0]!.t) / video.timescale,
    videoEnd: endOf(video),
    end: Math.max(...m.streams.map(endOf)),
    duration: Number(m.root.Duration) / 1e7,
    files: [...new Set(source.tracks.map((t) => t.file))].sort(),
  };
}

/** Fragment times listed but never fetched (status 200) among `urls`, per stream: empty when all were. */
function unfetched(p: Presentation, urls: Array<{ url: string; status: number }>): string[] {
  const got = new Set<string>();
  for (const { url, status } of urls) {
    const m = /Fragments\(([^=)]+)=(\d+)\)/.exec(decodeURIComponent(url));
    if (status === 200 && m && url.includes(p.prefix)) got.add(`${m[1]}=${m[2]}`);
  }
  return p.streams.flatMap((s) => {
    const missing = s.times.filter((t) => !got.has(`${s.name}=${t}`));
    return missing.length ? [`${s.name}: ${missing.length} of ${s.times.length} (first ${missing[0]})`] : [];
  });
}

function servedTo(site: Site, client: Client, p: Presentation): Served[] {
  return site.served.filter((s) => s.client === client && s.url.startsWith(p.prefix));
}

// ---------------------------------------------------------------------------------------------------
// Browser players (dash.js MSS and Shaka Player 4), one page each, sampled until `ended`.

type BrowserPlayer = 'dashjs' | 'shaka4';

interface PageState {
  player: string;
  version: string | undefined;
  errors: string[];
  events: unknown[];
  playingAt: number | undefined;
  endedAt: number | undefined;
  startTime: number | undefined;
  duration: number | undefined;
  dynamic: boolean | undefined;
  waiting: number;
}

interface Sample {
  wall: number;
  currentTime: number;
  playbackRate: number;
  totalVideoFrames: number;
  droppedVideoFrames: number;
  audioBytes: number;
  ended: boolean;
}

interface BrowserResult {
  samples: Sample[];
  state: PageState;
  /** Responses >= 400 and failed requests the page saw. */
  httpProblems: string[];
  responses: Array<{ url: string; status: number }>;
  console: string[];
  /** Wall seconds from page load to `ended` (or to the last sample). */
  seconds: number;
}

const SAMPLE_JS = `(() => {
  const v = document.querySelector('video');
  const q = v.getVideoPlaybackQuality();
  return {
    currentTime: v.currentTime,
    playbackRate: v.playbackRate,
    totalVideoFrames: q.totalVideoFrames,
    droppedVideoFrames: q.droppedVideoFrames,
    audioBytes: v.webkitAudioDecodedByteCount || 0,
    ended: v.ended,
  };
})()`;

async function runBrowser(browser: Browser, site: Site, player: BrowserPlayer, p: Presentation): Promise<BrowserResult> {
  const page = await browser.newPage({ viewport: { width: 640, height: 360 } });
  const consoleLines: string[] = [];
  const httpProblems: string[] = [];
  const responses: Array<{ url: string; status: number }> = [];
  const started = Date.now();
  const stamp = (): string => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  page.on('console', (m) => consoleLines.push(`${stamp()} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${stamp()} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A player cancels its own request when it switches bitrate: the fragment is fetched at the other one.
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
    httpProblems.push(`failed ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    responses.push({ url: r.url(), status: r.status() });
    if (DEBUG) consoleLines.push(`${stamp()} HTTP ${r.status()} ${r.url()}`);
    if (r.status() >= 400) httpProblems.push(`${r.status()} ${r.url()}`);
  });
  try {
    const src = encodeURIComponent(p.manifestUrl);
    await page.goto(`${site.origin}/player.html?player=${player}&rate=${BROWSER_RATE}&src=${src}${DEBUG ? '&debug=1' : ''}`);
    const state = (): Promise<PageState> => page.evaluate('window.__player') as Promise<PageState>;
    const samples: Sample[] = [];
    // dash.js now and then stops at the very end without firing `ended` (its last segments are all
    // in, every frame decoded): a player that stays at the end for 2 s has played to the end too.
    const end = p.end - p.start - END_TOLERANCE;
    let atEndSince: number | undefined;
    for (;;) {
      const sample = { wall: Date.now() - started, ...((await page.evaluate(SAMPLE_JS)) as Omit<Sample, 'wall'>) };
      samples.push(sample);
      atEndSince = sample.currentTime >= end ? (atEndSince ?? sample.wall) : undefined;
      if (sample.ended || sample.wall >= RUN_SECONDS * 1000 || (atEndSince !== undefined && sample.wall - atEndSince >= 2000)) break;
      if ((await state()).errors.length > 0) break;
      await sleep(250);
    }
    const s = await state();
    const result: BrowserResult = {
      samples,
      state: s,
      httpProblems,
      responses,
      console: consoleLines,
      seconds: (s.endedAt !== undefined ? s.endedAt : samples[samples.length - 1]!.wall) / 1000,
    };
    writeLog(
      `${player}-${p.segment}`,
      `${browserSummary(result)}\nstate: ${JSON.stringify(s, null, 1)}\nHTTP problems:\n${httpProblems.join('\n')}\n` +
        `samples:\n${samples.map((x) => JSON.stringify(x)).join('\n')}\nconsole:\n${consoleLines.join('\n')}\n`,
    );
    return result;
  } finally {
    await page.context().close();
  }
}

function browserSummary(r: BrowserResult): string {
  const last = r.samples[r.samples.length - 1]!;
  return (
    `${r.state.player} ${r.state.version}, ${r.state.dynamic ? 'dynamic' : 'static'}, duration ${r.state.duration?.toFixed(2)}: ` +
    `currentTime ${r.state.startTime?.toFixed(2)} -> ${last.currentTime.toFixed(2)} at rate ${last.playbackRate}, ` +
    `${r.state.endedAt !== undefined ? 'ended' : 'no ended event'} after ${r.seconds.toFixed(1)} s wall, frames ${last.totalVideoFrames} ` +
    `(dropped ${last.droppedVideoFrames}), audio bytes ${last.audioBytes}, waiting ${r.state.waiting}`
  );
}

function expectBrowserPlayed(label: string, r: BrowserResult, p: Presentation): void {
  const last = r.samples[r.samples.length - 1]!;
  const length = p.end - p.start;
  const missing = unfetched(p, r.responses);
  const text = browserSummary(r);
  console.log(`${label} on segment ${p.segment} (${p.start}-${p.end.toFixed(2)} s): ${text}`);
  const context = `${text}\nHTTP: ${JSON.stringify(r.httpProblems)}\nnot fetched: ${JSON.stringify(missing)}\nevents: ${JSON.stringify(r.state.events)}\nconsole:\n${r.console.slice(-40).join('\n')}`;
  expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
  expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
  expect({ dynamic: r.state.dynamic, context }).toEqual({ dynamic: false, context });
  // From the start (the players count a presentation's time from its first fragment) to the end.
  expect({ startTime: r.state.startTime, context }).toEqual({ startTime: expect.any(Number), context });
  expect(r.state.startTime!).toBeLessThan(0.5);
  const reached = r.state.endedAt !== undefined || last.currentTime >= length - END_TOLERANCE;
  expect({ reachedTheEnd: reached, context }).toEqual({ reachedTheEnd: true, context });
  expect(last.currentTime).toBeGreaterThanOrEqual(length - FRAGMENT_SECONDS);
  expect(last.playbackRate).toBe(BROWSER_RATE);
  // Every fragment fetched, checked first: a frame count short of it would hide which one was skipped.
  expect({ missing, context }).toEqual({ missing: [], context });
  // The frames decoded (dropped ones too: those were decoded and not shown in time at 8x), and the audio.
  // Shaka Player 4 has decoded 44 frames fewer (1456 of 1500) of one presentation in some runs on two
  // busy cores, every fragment fetched, to its end without an error: two fragments' worth is allowed.
  expect(last.totalVideoFrames).toBeGreaterThanOrEqual((length - 2 * FRAGMENT_SECONDS) * FPS);
  expect(last.audioBytes).toBeGreaterThanOrEqual(0.9 * (AUDIO_BITRATE / 8) * length);
}

// ---------------------------------------------------------------------------------------------------

/** What each player did with one presentation (with the wall seconds of the process players). */
interface Results {
  gst: GstRun & { seconds: number };
  dashjs: BrowserResult;
  shaka4: BrowserResult;
  vlc: VlcRun & { seconds: number };
}

type Runs = { [K in keyof Results]?: Promise<Outcome<Results[K]>> };

const timed = async <T extends object>(run: Promise<T>): Promise<T & { seconds: number }> => {
  const t0 = Date.now();
  const r = await run;
  return Object.assign(r, { seconds: (Date.now() - t0) / 1000 });
};

describe('a 3-minute live archive in 60 s segments, played on demand by real players', () => {
  let site: Site | undefined;
  let browser: Browser | undefined;
  const procs = new Set<ChildProcess>();
  let encoder: Push | undefined;
  let pushed: { code: number | null; stderr: string; seconds: number } | undefined;
  let live: ReturnType<typeof parseManifest> | undefined;
  let statuses: ArchiveStatus[] = [];
  let presentations: Presentation[] = [];
  const runs = new Map<number, Runs>();
  /** Every player run, settled (the player tests and afterAll wait for it). */
  let all: Promise<unknown> | undefined;
  let began = 0;

  beforeAll(async () => {
    if (!FFMPEG) return; // the tests below skip or fail on their own
    began = Date.now();
    site = await startSite();
    const s = site;
    encoder = push({ ffmpeg: FFMPEG, url: `${s.base}/${POINT}`, seconds: PUSH_SECONDS, bitrates: BITRATES, realtime: false });
    // Bounded: a push that has not ended by then is killed (and the tests say so).
    const limit = setTimeout(() => encoder!.child.kill('SIGKILL'), 100_000).unref();
    pushed = { ...(await encoder.done), seconds: (Date.now() - began) / 1000 };
    clearTimeout(limit);
    // ffmpeg's end of stream (its mfra) stops the point, which finishes the last segment.
    await until(() => s.handler.origin.cached(POINT)?.state === 'Stopped', 15_000, 100).catch(() => undefined);
    await until(() => s.handler.origin.archiver.list(POINT).every((a) => a.state !== 'writing'), 15_000, 100).catch(() => undefined);
    await s.handler.origin.archiver.idle();
    live = parseManifest((await get(`${s.base}/${POINT}/Manifest`)).text);
    statuses = s.handler.origin.archiver.list(POINT).sort((a, b) => a.segment - b.segment);
    presentations = await Promise.all(statuses.filter((a) => a.state === 'finished').map((a) => presentationOf(s, a)));
    console.log(
      `archive players: push of ${PUSH_SECONDS} s took ${pushed.seconds.toFixed(1)} s (ffmpeg exit ${pushed.code}); ` +
        `presentations ${presentations.map((p) => `${p.segment}: ${p.start}-${p.end.toFixed(2)} s`).join(', ')}`,
    );
    if (CHROMIUM) browser = await launchPlayerBrowser(CHROMIUM);
    const b = browser;
    for (const p of presentations) runs.set(p.segment, {});
    // VLC plays in real time at its rate (4x: 15 s a presentation) on little CPU: on every presentation
    // at once. The other players one presentation after the other, all of them at once.
    if (VLC) {
      for (const p of presentations) {
        runs.get(p.segment)!.vlc = settle(
          timed(runVlc(VLC, p.manifestUrl, RUN_SECONDS, procs, false, VLC_RATE)).then((v) => {
            writeLog(`vlc-${p.segment}`, `${v.summary}\n${v.output}`);
            return v;
          }),
        );
      }
    }
    all = (async () => {
      for (const p of presentations) {
        const r = runs.get(p.segment)!;
        if (GST) {
          r.gst = settle(
            timed(runGst(GST, p.manifestUrl, RUN_SECONDS, procs, DEBUG, gstPipeline(p.manifestUrl, false))).then((g) => {
              writeLog(`gstreamer-${p.segment}`, `${gstSummary(g)}\n${g.output}`);
              return g;
            }),
          );
        }
        if (b) {
          r.dashjs = settle(runBrowser(b, s, 'dashjs', p));
          r.shaka4 = settle(runBrowser(b, s, 'shaka4', p));
        }
        await Promise.all([r.gst, r.dashjs, r.shaka4]);
      }
      await Promise.all(presentations.map((p) => runs.get(p.segment)!.vlc));
    })();
    all.catch(() => undefined);
  }, 150_000);

  afterAll(async () => {
    // Normally long settled; after a failed or timed-out test, whatever still runs is cut short.
    await Promise.race([all, new Promise((ok) => setTimeout(ok, 30_000).unref())]);
    for (const child of procs) child.kill('SIGKILL');
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    await browser?.close();
    if (site) await stopSite(site);
    if (began) console.log(`archive players: ${((Date.now() - began) / 1000).toFixed(1)} s from push start to teardown`);
  }, 60_000);

  const PLAYERS_MS = 240_000;
  /** Each presentation's run of one player, after all of them finished. */
  const each = async <K extends keyof Results>(player: K, check: (r: Results[K], p: Presentation) => void): Promise<void> => {
    await all;
    expect(presentations.length).toBeGreaterThanOrEqual(3);
    for (const p of presentations) check(await outcome(runs.get(p.segment)![player] as Promise<Outcome<Results[K]>> | undefined), p);
  };

  withTool('ffmpeg', FFMPEG)(
    'the push ends the point; the archive is 3 or more finished presentations that join without a gap or a repeat',
    () => {
      const s = site!;
      const context = `ffmpeg exit ${pushed!.code}: ${pushed!.stderr}\nevents:\n${s.events.join('\n')}`;
      expect({ code: pushed!.code, stderr: pushed!.stderr, context }).toEqual({ code: 0, stderr: '', context });
      expect({ rejected: s.rejected, context }).toEqual({ rejected: [], context });
      expect({ state: s.handler.origin.cached(POINT)?.state, context }).toEqual({ state: 'Stopped', context });
      expect({ states: statuses.map((a) => [a.segment, a.state]), context }).toEqual({ states: statuses.map((a) => [a.segment, 'finished']), context });
      expect(statuses.length).toBeGreaterThanOrEqual(3);
      expect(statuses.map((a) => a.segment)).toEqual(statuses.map((_, i) => i));
      expect(s.archives.filter((e) => e.state === 'failed')).toEqual([]);
      // The live manifest (the whole event: no DVR window) lists 3 minutes per stream.
      for (const stream of live!.streams) {
        const last = stream.fragments[stream.fragments.length - 1]!;
        expect(Number(last.t + last.d) / 1e7).toBeGreaterThanOrEqual(PUSH_SECONDS - FRAGMENT_SECONDS);
      }
      for (const stream of live!.streams) {
        // Together the presentations list every fragment the point listed, once, in order.
        // Served from 0: the .ism's timeShift (10 MHz, as these times) gives back the live times.
        const segments = presentations.map((p) => p.streams.find((x) => x.type === stream.type)!.times.map((t) => t + p.shift));
        expect([stream.type, segments.flat()]).toEqual([stream.type, stream.fragments.map((c) => c.t)]);
        // Each cuts within half a fragment of a multiple of the segment length.
        segments.forEach((times, i) => expect(Math.abs(Number(times[0]!) / 1e7 - SEGMENT_SECONDS * i)).toBeLessThanOrEqual(FRAGMENT_SECONDS / 2));
      }
      for (const p of presentations) expect(p.files.map((f) => path.basename(f))).toEqual(['audio_96000.isma', 'video_200000.ismv', 'video_400000.ismv', 'video_800000.ismv']);
    },
  );

  withTools(['ffmpeg', FFMPEG], ['ffprobe', FFPROBE])(
    'ffprobe reads every .ismv and .isma without an error',
    () => {
      expect(presentations.length).toBeGreaterThanOrEqual(3);
      for (const p of presentations) {
        for (const f of p.files) {
          const r = spawnSync(FFPROBE!, ['-v', 'error', '-show_entries', 'stream=codec_name:format=duration', '-of', 'csv=p=0', f], { encoding: 'utf8' });
          const name = path.relative(site!.root, f);
          expect([name, r.status, r.stderr]).toEqual([name, 0, '']);
          const [codec, duration] = r.stdout.trim().split('\n');
          expect([name, codec]).toEqual([name, f.endsWith('.isma') ? 'aac' : 'h264']);
          expect(Number(duration)).toBeGreaterThan(p.end - p.start - FRAGMENT_SECONDS);
        }
      }
    },
  );

  withTool('ffmpeg', FFMPEG)(
    'mp4box reads every .ismv and .isma without an error: every sample, as long as the fragments say',
    async () => {
      expect(presentations.length).toBeGreaterThanOrEqual(3);
      for (const p of presentations) {
        const source = await openSource([path.join(p.folder, 'ch1.ism')]);
        await source.close();
        for (const f of p.files) {
          const bytes = readFileSync(f);
          const moov = [...children(bytes)].find((b) => b.type === 'moov')!;
          const extracted = mp4boxExtract(parseMoov(moov).tracks[0]!.trackId, [bytes]);
          const track = source.tracks.find((t) => t.file === f)!;
          const name = path.relative(site!.root, f);
          expect([name, extracted.codec.split('.')[0]]).toEqual([name, f.endsWith('.isma') ? 'mp4a' : 'avc1']);
          // mp4box's sample durations add up to the fragments' (tfxd) durations, in the track's timescale;
          // the session's first audio fragment starts before 0 (ffmpeg's AAC priming, an AAC frame) and
          // is listed from 0, so its samples last that much longer.
          const sampleTicks = (BigInt(extracted.samples.reduce((n, x) => n + x.duration, 0)) * 10_000_000n) / BigInt(extracted.timescale);
          const fragmentTicks = track.fragments.reduce((n, x) => n + x.duration, 0n);
          const priming = p.segment === 0 && f.endsWith('.isma') ? sampleTicks - fragmentTicks : 0n;
          expect(priming >= 0n && priming <= (2n * 1024n * 10_000_000n) / 48_000n).toBe(true);
          expect([name, sampleTicks - priming]).toEqual([name, fragmentTicks]);
          if (f.endsWith('.ismv')) expect([name, extracted.samples.length]).toEqual([name, track.fragments.length * FRAGMENT_SECONDS * FPS]);
          expect(extracted.samples[0]!.sync).toBe(true);
        }
      }
    },
  );

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'GStreamer mssdemux plays every presentation from its first to its last frame, video and audio, no error',
    async () => {
      await each('gst', (r, p) => {
        const v = ptsSummary(r.video);
        const missing = unfetched(p, servedTo(site!, 'gstreamer', p));
        const failed = servedTo(site!, 'gstreamer', p).filter((x) => x.status >= 400).map((x) => `${x.status} ${x.url}`);
        const text =
          `gst-launch exit ${r.code} after ${r.seconds.toFixed(1)} s, ${gstSummary(r)}` +
          `${failed.length ? `, HTTP errors: ${failed.join(', ')}` : ''}`;
        console.log(`GStreamer on segment ${p.segment} (${p.start}-${p.end.toFixed(2)} s): ${text}`);
        const context = `${text}\nnot fetched: ${JSON.stringify(missing)}\n${r.output.slice(-6000)}`;
        expect({ errors: r.errors, context }).toEqual({ errors: [], context });
        // 0: the pipeline reached its end of stream (124 would be `timeout` stopping it).
        expect({ code: r.code, context }).toEqual({ code: 0, context });
        expect(failed).toEqual([]);
        expect({ missing, context }).toEqual({ missing: [], context });
        // The first and last frames of the presentation; gst-launch misses a few fakesink messages, at
        // either end (under load, the first two: measured once at 0.08 s), so both allow 0.1 s.
        expect(Math.abs(Math.min(...r.video) - p.start)).toBeLessThan(0.1);
        expect(Math.max(...r.video)).toBeGreaterThanOrEqual(p.videoEnd - 0.1);
        expect(v.distinct).toBeGreaterThanOrEqual(0.95 * (p.end - p.start) * FPS);
        expect(v.backwards).toBe(0);
        expect(v.maxGap).toBeLessThan(1);
        // Unsynchronised, gst-launch reports only some buffers: the audio must be seen within a fragment
        // of either end.
        expect(Math.max(...r.audio)).toBeGreaterThanOrEqual(p.end - FRAGMENT_SECONDS);
        expect(Math.min(...r.audio)).toBeLessThanOrEqual(p.start + FRAGMENT_SECONDS);
      });
    },
    PLAYERS_MS,
  );

  for (const player of ['dashjs', 'shaka4'] as const) {
    const label = player === 'dashjs' ? 'dash.js (MSS)' : 'Shaka Player 4 (MSS)';
    withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
      `${label} in headless Chromium plays every presentation from its start to its end at ${BROWSER_RATE}x, video and audio decoded, no error`,
      async () => {
        await each(player, (r, p) => expectBrowserPlayed(label, r, p));
      },
      PLAYERS_MS,
    );
  }

  withTools(['ffmpeg', FFMPEG], ['VLC', VLC])(
    `VLC 3 plays every presentation to its end at ${VLC_RATE}x: frames and audio decoded, no error`,
    async () => {
      await each('vlc', (r, p) => {
        const length = p.end - p.start;
        const missing = unfetched(p, servedTo(site!, 'vlc', p));
        const last = r.stats[r.stats.length - 1];
        // VLC's libavcodec logs `decode_slice_header error` a few times when it switches to a bitrate of
        // another picture size (helpers/vlc.ts): allowed only with such a switch, every other error line not.
        const switchLines = r.errors.filter((e) => /\] decode_slice_header error$/.test(e));
        const errors = r.errors.filter((e) => !switchLines.includes(e));
        const videoLevels = new Set(servedTo(site!, 'vlc', p).filter((x) => /Fragments\(video=/.test(x.url)).map((x) => /QualityLevels\((\d+)/.exec(x.url)?.[1]));
        const text =
          `${r.summary} in ${r.seconds.toFixed(1)} s (${(last?.videoDecoded ?? 0) / 2} pictures decoded, ${last?.framesLost ?? '?'} lost, video bitrates ${[...videoLevels].join('/')}` +
          `${switchLines.length ? `, ${switchLines.length} decode_slice_header lines` : ''})`;
        console.log(`VLC on segment ${p.segment} (${p.start}-${p.end.toFixed(2)} s): ${text}`);
        const context = `${text}\nnot fetched: ${JSON.stringify(missing)}\n${r.output.slice(-6000)}`;
        // --play-and-exit: VLC exits by itself at the end of the input.
        expect({ code: r.code, stoppedByTimeout: r.stoppedByTimeout, context }).toEqual({ code: 0, stoppedByTimeout: false, context });
        expect({ eof: r.eof, context }).toEqual({ eof: true, context });
        expect({ errors, context }).toEqual({ errors: [], context });
        if (switchLines.length) expect(videoLevels.size).toBeGreaterThan(1);
        expect({ http: r.httpErrors, context }).toEqual({ http: [], context });
        expect({ missing, context }).toEqual({ missing: [], context });
        // Pictures decoded (VLC counts each twice, helpers/vlc.ts), shown or not. The stats are asked once a
        // second and the last answer may come a second or two (wall) before the end: up to 2 x rate s of media.
        expect((last?.videoDecoded ?? 0) / 2).toBeGreaterThanOrEqual((length - 2 * VLC_RATE) * FPS);
        // The audio output got the presentation, resampled to 1/rate of its length. VLC may drop what its
        // audio output still holds when it exits at the end of the input (every fragment was fetched, above):
        // up to a fragment more than that, measured once on a loaded machine (56.8 of 60 s).
        expect(r.audioSeconds * VLC_RATE).toBeGreaterThanOrEqual(length - 2 * FRAGMENT_SECONDS);
      });
    },
    PLAYERS_MS,
  );
});

function gstSummary(r: GstRun): string {
  const v = ptsSummary(r.video);
  const a = ptsSummary(r.audio);
  const first = (x: number[]): string => (x.length ? Math.min(...x).toFixed(2) : '-');
  const last = (x: number[]): string => (x.length ? Math.max(...x).toFixed(2) : '-');
  return (
    `${v.distinct} video frames ${first(r.video)}-${last(r.video)} s (largest gap ${v.maxGap.toFixed(2)} s), ` +
    `${a.distinct} audio buffers ${first(r.audio)}-${last(r.audio)} s`
  );
}
