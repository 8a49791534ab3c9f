/**
 * Pull publishing points (`sourceType=Pull`) against real origins fed by ffmpeg:
 * - a pulled point follows its upstream with the same times: once the upstream's stream ended, it
 *   serves the upstream's manifest and every fragment byte for byte, under the same ETags, and went
 *   through Starting and Started to Stopped as a pushed point does; it takes no pushes of its own;
 * - an upstream that fails is shown as the point's source (`upstream 503`), and nothing crashes;
 * - a chain with redundant origins and an edge, played by GStreamer and dash.js: ffmpeg feeds twin
 *   origins A1 and A2 (`tee`), B pulls [A1, A2], C pulls B, and `liveSmooth.edge` serves C; A1 is
 *   closed mid-stream, B goes on from A2, and the players notice nothing.
 */
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import express from 'express';
import type { Browser } from 'playwright-core';
import { EdgeHandler, PublishingPoint, SourceStatus, liveSmooth } from '../../lib';
import { launchPlayerBrowser } from '../helpers/browser';
import { Push, push, pushTee } from '../helpers/ffmpeg';
import { GstRun, ptsSummary, runGst } from '../helpers/gst';
import { PagePlay, gstSummary, playPage, playSummary, waitFor } from '../helpers/live-play';
import { TestServer, definePull, liveServer, startServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, gstLaunchPath, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const CHROMIUM = chromiumPath();
const FPS = 25;
const BITRATES = [600, 200];

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());


async function pointOf(server: TestServer, rel = 'ch1.isml'): Promise<PublishingPoint> {
  return (await server.handler.origin.resolve(rel))!;
}

/** Waits until `test` holds (polled), or fails with `what`. */
async function until(test: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out: ${what()}`);
    await sleep(200);
  }
}

/** `[bitrate, name, time]` of every fragment a Smooth manifest lists. */
function listed(manifest: string): Array<[number, string, bigint]> {
  const out: Array<[number, string, bigint]> = [];
  for (const si of manifest.split('<StreamIndex').slice(1)) {
    const name = /Name="([^"]+)"/.exec(si)![1]!;
    const bitrates = [...si.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1]));
    let t = 0n;
    for (const c of si.matchAll(/<c (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")?/g)) {
      if (c[1] !== undefined) t = BigInt(c[1]);
      for (let i = 0; i < Number(c[3] ?? 1); i++) {
        for (const b of bitrates) out.push([b, name, t]);
        t += BigInt(c[2]!);
      }
    }
  }
  return out;
}

/** Video fragment starts and durations a manifest lists. */
function videoTimeline(manifest: string): Array<{ t: bigint; d: bigint }> {
  const video = manifest.split('<StreamIndex').find((s) => /Type="video"/.test(s)) ?? '';
  const out: Array<{ t: bigint; d: bigint }> = [];
  let t = 0n;
  for (const c of video.matchAll(/<c (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")?/g)) {
    if (c[1] !== undefined) t = BigInt(c[1]);
    for (let i = 0; i < Number(c[3] ?? 1); i++) {
      out.push({ t, d: BigInt(c[2]!) });
      t += BigInt(c[2]!);
    }
  }
  return out;
}

describe('a pulled point', () => {
  let a: TestServer;
  let b: TestServer;
  let encoder: Push | undefined;
  const sources: Array<{ state: string; reason?: string }> = [];
  const states: string[] = [];

  beforeAll(async () => {
    a = await startServer();
    b = await startServer();
    a.define('ch1.isml', { startOnFirstRequest: 'true' });
    definePull(b, 'ch1.isml', [`${a.base}/ch1.isml`]);
    b.handler.origin.on('source', (e) => sources.push({ state: e.state, reason: e.reason }));
    b.handler.origin.on('state', (e) => states.push(e.state));
  });

  afterAll(async () => {
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    await b.close();
    await a.close();
  });

  withTools(['ffmpeg', FFMPEG])(
    'follows its upstream with the same times: at the end it serves the same manifest and fragments, byte for byte, under the same ETags',
    async () => {
      encoder = push({ ffmpeg: FFMPEG!, url: `${a.base}/ch1.isml`, seconds: 14, bitrates: BITRATES });
      await waitFor(`${a.base}/ch1.isml/Manifest`, (m) => listed(m).length > 0, 20_000, 'the upstream listed nothing');
      // Its first request starts the pulled point (startOnFirstRequest), as a player's would.
      expect((await fetch(`${b.base}/ch1.isml/Manifest`)).status).toBe(404);
      const pb = await pointOf(b);
      const pa = await pointOf(a);
      await until(() => pa.state === 'Stopped' && pb.state === 'Stopped', 40_000, () => `A ${pa.state}, B ${pb.state}, B source ${JSON.stringify(pb.source)}`);
      expect((await encoder.done).code).toBe(0);

      const [ma, mb] = await Promise.all([a, b].map((s) => fetch(`${s.base}/ch1.isml/Manifest`)));
      const [ta, tb] = await Promise.all([ma!.text(), mb!.text()]);
      expect(tb).toBe(ta);
      expect(mb!.headers.get('etag')).toBe(ma!.headers.get('etag'));
      const fragments = listed(ta);
      expect(fragments.length).toBeGreaterThan(3 * 6);
      for (const [bitrate, name, time] of fragments) {
        const url = `ch1.isml/QualityLevels(${bitrate})/Fragments(${name}=${time})`;
        const [ra, rb] = await Promise.all([a, b].map((s) => fetch(`${s.base}/${url}`)));
        const [ba, bb] = await Promise.all([ra!, rb!].map(async (r) => Buffer.from(await r.arrayBuffer())));
        expect([url, ra!.status, rb!.status]).toEqual([url, 200, 200]);
        expect([url, rb!.headers.get('etag')]).toEqual([url, ra!.headers.get('etag')]);
        expect([url, bb!.equals(ba!)]).toEqual([url, true]);
      }
      // The DASH output of the pulled point is built from the same media.
      const mpd = await fetch(`${b.base}/ch1.isml/.mpd`);
      expect(mpd.status).toBe(200);
      expect(states).toEqual(['Starting', 'Started', 'Stopping', 'Stopped']);
      expect(sources.map((s) => s.state)).toEqual(['waiting', 'connecting', 'pulling', 'ended']);
      expect(pb.source).toMatchObject({ state: 'ended', upstream: `${a.base}/ch1.isml` });
    },
    60_000,
  );

  it('takes no pushes of its own', async () => {
    const res = await fetch(`${b.base}/ch1.isml/Streams(ch1)`, { method: 'POST', body: '' });
    expect(res.status).toBe(409);
    expect(await res.text()).toMatch(/pulls from its sources \(sourceType=Pull\)/);
  });

  it('shows an upstream that fails as its source, and serves on', async () => {
    let asked = 0;
    const broken = http.createServer((_req, res) => {
      asked++;
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('busy\n');
    });
    await new Promise<void>((ok) => broken.listen(0, '127.0.0.1', ok));
    const upstream = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/live/ch2.isml`;
    try {
      definePull(b, 'ch2.isml', [upstream]);
      const seen: SourceStatus[] = [];
      b.handler.origin.on('source', (e) => {
        if (e.point === 'ch2.isml') seen.push(e);
      });
      expect((await fetch(`${b.base}/ch2.isml/Manifest`)).status).toBe(404);
      const p = await pointOf(b, 'ch2.isml');
      await until(() => p.source?.state === 'failing' && asked >= 2, 10_000, () => JSON.stringify(p.source));
      expect(p.source).toMatchObject({ state: 'failing', upstream, reason: 'upstream 503 for the manifest' });
      expect(p.state).toBe('Starting');
      const admin = liveSmooth.admin(b.handler.origin);
      const app = express().use('/admin', admin);
      const server = liveServer(app);
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      try {
        const json = (await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/publishing-points/ch2.isml`)).json()) as {
          source: { state: string; reason: string };
        };
        expect(json.source).toMatchObject({ state: 'failing', reason: 'upstream 503 for the manifest' });
      } finally {
        server.closeAllConnections();
        await new Promise<void>((ok) => server.close(() => ok()));
      }
      // A 503 is not "not there yet": it never reaches the point's clients as media.
      expect((await fetch(`${b.base}/ch2.isml/Manifest`)).status).toBe(404);
    } finally {
      broken.closeAllConnections();
      await new Promise<void>((ok) => broken.close(() => ok()));
    }
  });
});

// ---------------------------------------------------------------------------------------------------

/** Seconds each player runs, and what it must play of that. */
const GST_SECONDS = 30;
const MIN_MEDIA_SECONDS = 20;
const DASH_SECONDS = 22;
const DASH_WALL_SECONDS = 40;
/** A1 is closed this long after the players started. */
const CLOSE_AFTER_MS = 10_000;

describe('a chain of two pulled points over twin origins, behind an edge, with real players', () => {
  let a1: TestServer | undefined;
  let a2: TestServer | undefined;
  let b: TestServer | undefined;
  let c: TestServer | undefined;
  let edge: EdgeHandler | undefined;
  let site: http.Server | undefined;
  let siteBase = '';
  let encoder: Push | undefined;
  let browser: Browser | undefined;
  const children = new Set<ChildProcess>();
  const bSources: Array<{ state: string; upstream: string; reason?: string; at: number }> = [];
  let gst: Promise<Outcome<GstRun>> | undefined;
  let dash: Promise<Outcome<PagePlay>> | undefined;
  let closedAt: Promise<number> | undefined;
  let all: Promise<unknown> | undefined;

  beforeAll(async () => {
    if (!FFMPEG) return;
    [a1, a2, b, c] = await Promise.all([startServer(), startServer(), startServer(), startServer()]);
    a1.define('ch1.isml', { startOnFirstRequest: 'true' });
    a2.define('ch1.isml', { startOnFirstRequest: 'true' });
    definePull(b, 'ch1.isml', [`${a1.base}/ch1.isml`, `${a2.base}/ch1.isml`]);
    definePull(c, 'ch1.isml', [`${b.base}/ch1.isml`]);
    b.handler.origin.on('source', (e) => bSources.push({ state: e.state, upstream: e.upstream, reason: e.reason, at: Date.now() }));
    // The edge is mounted where the origin's points are (`/live`): the MPD's clock URL is a path.
    edge = liveSmooth.edge({ upstream: c.base });
    const app = express();
    app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
    app.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'dash-hls-player.html')));
    app.get('/favicon.ico', (_req, res) => void res.status(204).end());
    app.use('/live', edge);
    site = liveServer(app);
    await new Promise<void>((ok) => site!.listen(0, '127.0.0.1', ok));
    siteBase = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;

    encoder = pushTee({ ffmpeg: FFMPEG, url: '', urls: [`${a1.base}/ch1.isml`, `${a2.base}/ch1.isml`], seconds: 120, bitrates: BITRATES });
    const exited = encoder.done.then(({ code, stderr }): never => {
      throw new Error(`ffmpeg exited (${code}) before the chain listed fragments:\n${stderr}`);
    });
    // A request at the end of the chain starts C, whose puller's first request starts B.
    const ready = (async () => {
      await waitFor(`${a1!.base}/ch1.isml/Manifest`, (m) => listed(m).length > 0, 20_000, 'A1 listed nothing');
      await waitFor(`${siteBase}/live/ch1.isml/.mpd`, (mpd) => (mpd.match(/<S\b/g) ?? []).length >= 2 * 3, 40_000, 'the edge did not list 3 segments per set');
    })();
    for (const p of [exited, ready]) p.catch(() => undefined);
    await Promise.race([ready, exited]);
    if (CHROMIUM) browser = await launchPlayerBrowser(CHROMIUM);

    if (GST) gst = settle(runGst(GST, `${siteBase}/live/ch1.isml/Manifest`, GST_SECONDS, children));
    if (browser) {
      const src = encodeURIComponent(`${siteBase}/live/ch1.isml/.mpd`);
      dash = settle(playPage(browser, `${siteBase}/player.html?player=dashjs&src=${src}`, { seconds: DASH_SECONDS, wallSeconds: DASH_WALL_SECONDS }));
    }
    closedAt = (async () => {
      await sleep(CLOSE_AFTER_MS);
      const at = Date.now();
      await a1!.crash();
      return at;
    })();
    all = Promise.all([gst, dash, closedAt]);
    all.catch(() => undefined);
  }, 90_000);

  afterAll(async () => {
    await Promise.race([all, deadline(60_000)]);
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    if (encoder?.child.exitCode === null) encoder.child.kill('SIGKILL');
    await encoder?.done;
    edge?.close();
    if (site) {
      site.closeAllConnections();
      await new Promise<void>((ok) => site!.close(() => ok()));
    }
    for (const s of [c, b, a2, a1]) await s?.close();
  }, 30_000);

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    `GStreamer plays the end of the chain through the edge for ${GST_SECONDS} s, across the failover`,
    async () => {
      const r = await outcome(gst);
      const v = ptsSummary(r.video);
      const context = `${gstSummary(r)}\n${r.output.slice(-4000)}`;
      console.log(`GStreamer at the end of the chain: ${gstSummary(r)}`);
      expect({ errors: r.errors, context }).toEqual({ errors: [], context });
      expect({ code: r.code, context }).toEqual({ code: 124, context });
      expect(v.distinct).toBeGreaterThanOrEqual(MIN_MEDIA_SECONDS * FPS);
      expect(v.backwards).toBe(0);
      // A fragment lost in the failover would leave a hole of a whole fragment (2 s).
      expect(v.maxGap).toBeLessThan(1);
      expect(r.audio.length).toBeGreaterThan(0);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    `dash.js plays the chain's DASH output through the edge for ${MIN_MEDIA_SECONDS} s, across the failover`,
    async () => {
      const r = await outcome(dash);
      const first = r.samples[0]!;
      const last = r.samples[r.samples.length - 1]!;
      console.log(`dash.js at the end of the chain: ${playSummary(r)}`);
      const context = `${playSummary(r)}\nHTTP: ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-30).join('\n')}`;
      expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
      expect({ http: r.httpProblems, context }).toEqual({ http: [], context });
      expect(r.state.dynamic).toBe(true);
      expect(last.currentTime - first.currentTime).toBeGreaterThanOrEqual(MIN_MEDIA_SECONDS);
      expect(last.totalVideoFrames - first.totalVideoFrames).toBeGreaterThanOrEqual((MIN_MEDIA_SECONDS - 1) * FPS);
      expect(last.audioBytes).toBeGreaterThan(first.audioBytes);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG])('B failed over from A1 to A2 and went on from its last fragment: C lists every fragment, with the twins\' times and bytes', async () => {
    await all;
    const closed = await closedAt!;
    const after = bSources.filter((s) => s.at >= closed);
    console.log(`B's source after A1 closed: ${after.map((s) => `${s.state} ${s.upstream}${s.reason ? ` (${s.reason})` : ''}`).join(' | ')}`);
    expect(after.some((s) => s.state === 'failing' && s.upstream === `${a1!.base}/ch1.isml`)).toBe(true);
    expect(after[after.length - 1]).toMatchObject({ state: 'pulling', upstream: `${a2!.base}/ch1.isml` });
    const pc = await pointOf(c!);
    expect(pc.state).toBe('Started');
    // No gap and no repeat at the end of the chain, across the failover.
    const [mc, m2] = await Promise.all([c!, a2!].map((s) => fetch(`${s.base}/ch1.isml/Manifest`).then((r) => r.text())));
    const timeline = videoTimeline(mc!);
    expect(timeline.length).toBeGreaterThan(15);
    for (let i = 1; i < timeline.length; i++) expect([i, timeline[i]!.t]).toEqual([i, timeline[i - 1]!.t + timeline[i - 1]!.d]);
    // Every fragment C lists, A2 has at the same time, byte for byte under the same ETag.
    const twin = new Set(videoTimeline(m2!).map((f) => f.t));
    const shared = timeline.filter((f) => twin.has(f.t));
    expect(shared.length).toBeGreaterThan(10);
    for (const { t } of shared.slice(-6, -2)) {
      const url = `ch1.isml/QualityLevels(${BITRATES[0]! * 1000})/Fragments(video=${t})`;
      const [rc, r2] = await Promise.all([c!, a2!].map((s) => fetch(`${s.base}/${url}`)));
      const [bc, b2] = await Promise.all([rc!, r2!].map(async (r) => Buffer.from(await r.arrayBuffer())));
      expect([rc!.status, r2!.status]).toEqual([200, 200]);
      expect(rc!.headers.get('etag')).toBe(r2!.headers.get('etag'));
      expect(bc!.equals(b2!)).toBe(true);
    }
    expect(edge!.stats().hits + edge!.stats().stale).toBeGreaterThan(0);
  }, 90_000);
});
