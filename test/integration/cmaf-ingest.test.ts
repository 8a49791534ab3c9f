/**
 * CMAF ingest (DASH-IF live media ingest, one long POST per track) on an ordinary `.isml` point, from
 * a real encoder: ffmpeg's mp4 muxer in `cmaf` mode pushes two H.264 bitrates to
 * `Streams(video-<b>k.cmfv)` and AAC to `Streams(audio.cmfa)`, live. The point lists them as the
 * StreamIndexes `video` (two quality levels) and `audio` with the encoder's times, serves them as
 * Smooth fragments (with `tfxd` and `tfrf`), DASH and HLS; GStreamer and dash.js (Smooth), dash.js
 * (DASH) and hls.js (HLS) play them. The encoder's end (its `mfra`) stops the point.
 */
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { launchPlayerBrowser } from '../helpers/browser';
import { Push, push } from '../helpers/ffmpeg';
import { GstRun, ptsSummary, runGst } from '../helpers/gst';
import { PagePlay, gstSummary, playPage, playSummary, waitFor } from '../helpers/live-play';
import { TestServer, startServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, gstLaunchPath, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const FPS = 25;
const BITRATES = [600, 200];
const PUSH_SECONDS = 45;
const GST_SECONDS = 25;
const PAGE_SECONDS = 15;
const PAGE_WALL_SECONDS = 35;

const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

/** Segments an MPD lists in all (each S counts 1 + its `r`). */
function segmentCount(mpd: string): number {
  return [...mpd.matchAll(/<S\b[^>]*>/g)].reduce((n, m) => n + 1 + Number(/\br="(\d+)"/.exec(m[0])?.[1] ?? 0), 0);
}

describe('CMAF ingest from ffmpeg, played as Smooth, DASH and HLS', () => {
  let s: TestServer | undefined;
  let pages: http.Server | undefined;
  let pagesBase = '';
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
    app.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'dash-hls-player.html')));
    // The page with dash.js's MSS bundle, for the Smooth output.
    app.get('/mss.html', (_req, res) => res.sendFile(path.join(__dirname, 'archive-player.html')));
    app.get('/favicon.ico', (_req, res) => void res.status(204).end());
    pages = http.createServer(app);
    await new Promise<void>((ok) => pages!.listen(0, '127.0.0.1', ok));
    pagesBase = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;

    encoder = push({ ffmpeg: FFMPEG, url: `${s.base}/ch1.isml`, seconds: PUSH_SECONDS, bitrates: BITRATES, cmaf: true });
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
    if (GST) gst = settle(runGst(GST, `${s.base}/ch1.isml/Manifest`, GST_SECONDS, children));
    if (browser) {
      const page = (html: string, player: string, src: string): Promise<Outcome<PagePlay>> =>
        settle(playPage(browser!, `${pagesBase}/${html}?player=${player}&src=${encodeURIComponent(src)}`, { seconds: PAGE_SECONDS, wallSeconds: PAGE_WALL_SECONDS }));
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

  withTools(['ffmpeg', FFMPEG])('the point lists the CMAF tracks as StreamIndexes, with the encoder\'s times, and serves Smooth fragments with tfxd', async () => {
    const video = manifest.split('<StreamIndex').find((x) => /Type="video"/.test(x))!;
    const audio = manifest.split('<StreamIndex').find((x) => /Type="audio"/.test(x))!;
    expect(video).toMatch(/Name="video"/);
    expect([...video.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => b - a)).toEqual(BITRATES.map((b) => b * 1000));
    expect(audio).toMatch(/Name="audio"[\s\S]*FourCC="AACL"/);
    expect(video).toMatch(/FourCC="H264"/);
    // ffmpeg's CMAF times start at 0 in each track's own timescale (tfdt).
    const t = /<c t="(\d+)"/.exec(video)![1]!;
    expect(t).toBe('0');
    const r = await fetch(`${s!.base}/ch1.isml/QualityLevels(${BITRATES[1]! * 1000})/Fragments(video=${t})`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(r.status).toBe(200);
    expect(body.includes(Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex'))).toBe(true); // tfxd
    const point = (await s!.handler.origin.resolve('ch1.isml'))!;
    expect(point.streams.map((x) => x.id).sort()).toEqual(['audio.cmfa', ...BITRATES.map((b) => `video-${b}k.cmfv`)].sort());
  });

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(`GStreamer (mssdemux) plays the Smooth output for ${GST_SECONDS} s`, async () => {
    const r = await outcome(gst);
    const v = ptsSummary(r.video);
    const context = `${gstSummary(r)}\n${r.output.slice(-4000)}`;
    console.log(`GStreamer on CMAF ingest: ${gstSummary(r)}`);
    expect({ errors: r.errors, context }).toEqual({ errors: [], context });
    expect({ code: r.code, context }).toEqual({ code: 124, context });
    expect(v.distinct).toBeGreaterThanOrEqual((GST_SECONDS - 8) * FPS);
    expect(v.maxGap).toBeLessThan(1);
    expect(r.audio.length).toBeGreaterThan(0);
  }, 90_000);

  for (const [label, which] of [
    ['dash.js plays the DASH output', () => dash],
    ['hls.js plays the HLS output', () => hls],
    ['dash.js (MSS) plays the Smooth output', () => mss],
  ] as const) {
    withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(`${label} for ${PAGE_SECONDS} s`, async () => {
      const r = await outcome(which());
      const first = r.samples[0]!;
      const last = r.samples[r.samples.length - 1]!;
      console.log(`${label} (CMAF ingest): ${playSummary(r)}`);
      const context = `${playSummary(r)}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-30).join('\n')}`;
      expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
      expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
      expect(last.currentTime - first.currentTime).toBeGreaterThanOrEqual(PAGE_SECONDS);
      expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual((PAGE_SECONDS - 1) * FPS);
      expect(last.audioBytes).toBeGreaterThan(first.audioBytes);
    }, 90_000);
  }

  withTools(['ffmpeg', FFMPEG])('the encoder\'s end of stream (its mfra on every track) stops the point', async () => {
    await all;
    const { code } = await encoder!.done;
    expect(code).toBe(0);
    const point = (await s!.handler.origin.resolve('ch1.isml'))!;
    const end = Date.now() + 10_000;
    while (point.state !== 'Stopped' && Date.now() < end) await new Promise((ok) => setTimeout(ok, 200));
    expect(point.state).toBe('Stopped');
  }, 90_000);
});
