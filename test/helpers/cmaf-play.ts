/**
 * The suite both CMAF ingest modes share: ffmpeg pushes two H.264 bitrates and AAC to `ch1.isml` of a
 * test server, live; once the MPD lists three segments per set and the Smooth manifest three tracks,
 * GStreamer (mssdemux) plays the Smooth output, and in Chromium dash.js the DASH output, hls.js the
 * HLS output and dash.js's MSS module the Smooth output, all at once. Each player has its test; the
 * caller adds its own around them.
 */
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { launchPlayerBrowser } from './browser';
import type { Push } from './ffmpeg';
import { GstRun, ptsSummary, runGst } from './gst';
import { PagePlay, gstSummary, playPage, playSummary, waitFor } from './live-play';
import { TestServer, startServer } from './server';
import { outcome, settle, type Outcome } from './settle';
import { chromiumPath, ffmpegPath, gstLaunchPath, withTools } from './tools';

export const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const FPS = 25;
const INTEGRATION = path.join(__dirname, '..', 'integration');

const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

/** Segments an MPD lists in all (each S counts 1 + its `r`). */
function segmentCount(mpd: string): number {
  return [...mpd.matchAll(/<S\b[^>]*>/g)].reduce((n, m) => n + 1 + Number(/\br="(\d+)"/.exec(m[0])?.[1] ?? 0), 0);
}

/** How the suite pushes and plays. */
export interface CmafPlayOptions {
  /** Names the push in the players' log lines (`CMAF ingest`). */
  label: string;
  /** Starts ffmpeg pushing to `point` (`http://…/live/ch1.isml`). */
  push(ffmpeg: string, point: string): Push;
  gstSeconds: number;
  pageSeconds: number;
  pageWallSeconds: number;
}

/** What the suite's tests read once `beforeAll` ran. */
export interface CmafPlay {
  readonly server: TestServer;
  readonly encoder: Push;
  /** The Smooth manifest once it listed three tracks. */
  readonly manifest: string;
  /** Settles once every player is done. */
  readonly players: Promise<unknown>;
}

/**
 * Registers the suite's `beforeAll`/`afterAll` (in the calling `describe`) and returns what its tests
 * read, and `playerTests()`, which defines the four players' tests where it is called.
 */
export function cmafPlaySuite(o: CmafPlayOptions): { play: CmafPlay; playerTests: () => void } {
  let s: TestServer | undefined;
  let pages: http.Server | undefined;
  let encoder: Push | undefined;
  let browser: Browser | undefined;
  const children = new Set<ChildProcess>();
  let manifest = '';
  let gst: Promise<Outcome<GstRun>> | undefined;
  let dash: Promise<Outcome<PagePlay>> | undefined;
  let hls: Promise<Outcome<PagePlay>> | undefined;
  let mss: Promise<Outcome<PagePlay>> | undefined;
  let all: Promise<unknown> | undefined;

  beforeAll(async () => {
    if (!FFMPEG) return;
    s = await startServer();
    s.define('ch1.isml', { startOnFirstRequest: 'true' });
    const app = express();
    app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
    app.use('/hlsjs', express.static(path.dirname(require.resolve('hls.js'))));
    app.get('/player.html', (_req, res) => res.sendFile(path.join(INTEGRATION, 'dash-hls-player.html')));
    // The page with dash.js's MSS bundle, for the Smooth output.
    app.get('/mss.html', (_req, res) => res.sendFile(path.join(INTEGRATION, 'archive-player.html')));
    app.get('/favicon.ico', (_req, res) => void res.status(204).end());
    pages = http.createServer(app);
    await new Promise<void>((ok) => pages!.listen(0, '127.0.0.1', ok));
    const pagesBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;

    encoder = o.push(FFMPEG, `${s.base}/ch1.isml`);
    const exited = encoder.done.then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the point listed fragments:\n${stderr}`);
    });
    const listed = (async () => {
      await waitFor(`${s!.base}/ch1.isml/.mpd`, (mpd) => segmentCount(mpd) >= 2 * 3, 30_000, 'the MPD did not list 3 segments per set');
      manifest = await waitFor(`${s!.base}/ch1.isml/Manifest`, (m) => (m.match(/<QualityLevel\b/g) ?? []).length === 3, 10_000, 'the manifest did not list 3 tracks');
    })();
    for (const p of [exited, listed]) p.catch(() => undefined);
    await Promise.race([listed, exited]);
    if (CHROMIUM) browser = await launchPlayerBrowser(CHROMIUM);
    if (GST) gst = settle(runGst(GST, `${s.base}/ch1.isml/Manifest`, o.gstSeconds, children));
    if (browser) {
      const page = (html: string, player: string, src: string): Promise<Outcome<PagePlay>> =>
        settle(playPage(browser!, `${pagesBase}/${html}?player=${player}&src=${encodeURIComponent(src)}`, { seconds: o.pageSeconds, wallSeconds: o.pageWallSeconds }));
      dash = page('player.html', 'dashjs', `${s.base}/ch1.isml/.mpd`);
      hls = page('player.html', 'hlsjs', `${s.base}/ch1.isml/.m3u8`);
      mss = page('mss.html', 'dashjs', `${s.base}/ch1.isml/Manifest`);
    }
    all = Promise.all([gst, dash, hls, mss]);
    all.catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    await Promise.race([all, deadline(60_000)]);
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    if (pages) {
      pages.closeAllConnections();
      await new Promise<void>((ok) => pages!.close(() => ok()));
    }
    await s?.close();
  }, 30_000);

  const playerTests = (): void => {
    withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(`GStreamer (mssdemux) plays the Smooth output for ${o.gstSeconds} s`, async () => {
      const r = await outcome(gst);
      const v = ptsSummary(r.video);
      const context = `${gstSummary(r)}\n${r.output.slice(-4000)}`;
      console.log(`GStreamer on ${o.label}: ${gstSummary(r)}`);
      expect({ errors: r.errors, context }).toEqual({ errors: [], context });
      expect({ code: r.code, context }).toEqual({ code: 124, context });
      expect(v.distinct).toBeGreaterThanOrEqual((o.gstSeconds - 8) * FPS);
      expect(v.maxGap).toBeLessThan(1);
      expect(r.audio.length).toBeGreaterThan(0);
    }, 90_000);

    for (const [label, which] of [
      ['dash.js plays the DASH output', () => dash],
      ['hls.js plays the HLS output', () => hls],
      ['dash.js (MSS) plays the Smooth output', () => mss],
    ] as const) {
      withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(`${label} for ${o.pageSeconds} s`, async () => {
        const r = await outcome(which());
        const first = r.samples[0]!;
        const last = r.samples[r.samples.length - 1]!;
        console.log(`${label} (${o.label}): ${playSummary(r)}`);
        const context = `${playSummary(r)}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-30).join('\n')}`;
        expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
        expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
        expect(last.currentTime - first.currentTime).toBeGreaterThanOrEqual(o.pageSeconds);
        expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual((o.pageSeconds - 1) * FPS);
        expect(last.audioBytes).toBeGreaterThan(first.audioBytes);
      }, 90_000);
    }
  };

  const play: CmafPlay = {
    get server() {
      return s!;
    },
    get encoder() {
      return encoder!;
    },
    get manifest() {
      return manifest;
    },
    get players() {
      return all ?? Promise.resolve();
    },
  };
  return { play, playerTests };
}
