/**
 * Sparse tracks on the Smooth output, from the simulated encoder's second POST (TTML captions, one per
 * video fragment naming its media time, and SCTE-35 ad markers): the manifest lists them as text
 * StreamIndexes of the video, up to its edge, the markers with their splice messages in `<f>`; their
 * fragments are served; the sample player (dash.js with its MSS module) shows the captions at the time
 * they name; GStreamer and VLC, which do not show Smooth text streams, play the media as before.
 */
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Browser } from 'playwright-core';
import { SimulatedEncoder, startEncoder } from '../../lib/encoder';
import { player } from '../../lib/http/player';
import { launchPlayerBrowser } from '../helpers/browser';
import { GstRun, ptsSummary, runGst } from '../helpers/gst';
import { gstSummary, waitFor } from '../helpers/live-play';
import { TestServer, definePull, startServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, gstLaunchPath, vlcPath, withTools } from '../helpers/tools';
import { VlcRun, runVlc } from '../helpers/vlc';

const GST = gstLaunchPath();
const VLC = vlcPath();
const CHROMIUM = chromiumPath();
const SAMPLE = path.join(__dirname, '..', '..', 'examples', 'media', 'sample.ismv');
const PLAY_SECONDS = 20;
const FPS = 25;
const TIMESCALE = 10_000_000;

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

/** A StreamIndex of `manifest` by name, and its `c` start times. */
function streamIndex(manifest: string, name: string): { text: string; times: bigint[] } {
  const text = manifest.split('<StreamIndex').find((x) => x.includes(` Name="${name}"`)) ?? '';
  const times: bigint[] = [];
  let next = 0n;
  for (const m of text.matchAll(/<c( t="(\d+)")?( d="(\d+)")?/g)) {
    const t = m[2] !== undefined ? BigInt(m[2]) : next;
    times.push(t);
    next = t + BigInt(m[4] ?? 0);
  }
  return { text, times };
}

/** `hh:mm:ss` of a media time in seconds, as the encoder writes it into each caption. */
function clock(seconds: number): string {
  const s = Math.floor(seconds) % 86_400;
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Seconds of an `hh:mm:ss` clock. */
function seconds(text: string): number {
  const [h, m, s] = text.split(':').map(Number) as [number, number, number];
  return h * 3600 + m * 60 + s;
}

interface PageCaptions {
  errors: string[];
  playingAt: number | undefined;
  captions: Array<{ text: string; at: number }>;
}

describe('sparse tracks (captions, SCTE-35 markers) on the Smooth output', () => {
  let s: TestServer | undefined;
  let pages: http.Server | undefined;
  let encoder: SimulatedEncoder | undefined;
  let browser: Browser | undefined;
  const children = new Set<ChildProcess>();
  let manifest = '';
  let gst: Promise<Outcome<GstRun>> | undefined;
  let vlc: Promise<Outcome<VlcRun>> | undefined;
  let mss: Promise<Outcome<{ state: PageCaptions; console: string[] }>> | undefined;
  let all: Promise<unknown> | undefined;

  beforeAll(async () => {
    s = await startServer();
    s.define('ch1.isml', { startOnFirstRequest: 'true' });
    definePull(s, 'pulled.isml', [`${s.base}/ch1.isml`]);
    pages = http.createServer(player({ manifest: `${s.base}/ch1.isml/Manifest`, title: 'captions' }));
    await new Promise<void>((ok) => pages!.listen(0, '127.0.0.1', ok));
    const pageUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}/`;
    encoder = await startEncoder({
      url: `${s.base}/ch1.isml`,
      files: [SAMPLE],
      backlog: 10,
      captions: true,
      adMarkers: { every: 6, duration: 4 },
    });
    manifest = await waitFor(`${s.base}/ch1.isml/Manifest`, (m) => streamIndex(m, 'ads').times.length >= 2, 30_000, 'the manifest did not list two ad markers');
    if (GST) gst = settle(runGst(GST, `${s.base}/ch1.isml/Manifest`, PLAY_SECONDS, children));
    if (VLC) vlc = settle(runVlc(VLC, `${s.base}/ch1.isml/Manifest`, PLAY_SECONDS, children));
    if (CHROMIUM) {
      browser = await launchPlayerBrowser(CHROMIUM);
      mss = settle(
        (async () => {
          const page = await browser!.newPage({ viewport: { width: 800, height: 600 } });
          const lines: string[] = [];
          page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
          page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
          await page.goto(pageUrl);
          await page.waitForFunction('window.__player && window.__player.playingAt !== undefined', undefined, { timeout: 30_000 });
          await sleep(PLAY_SECONDS * 1000);
          return { state: (await page.evaluate('window.__player')) as PageCaptions, console: lines };
        })(),
      );
    }
    all = Promise.all([gst, vlc, mss]);
    all.catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    await Promise.race([all, deadline(60_000)]);
    for (const child of children) child.kill('SIGKILL');
    await browser?.close();
    await encoder?.stop();
    if (pages) {
      pages.closeAllConnections();
      await new Promise<void>((ok) => pages!.close(() => ok()));
    }
    await s?.close();
  }, 30_000);

  it('lists captions and markers as text StreamIndexes of the video, up to its edge, the markers with their splice messages', async () => {
    expect(manifest).toMatch(/<StreamIndex Type="text" Name="captions" Subtype="CAPT" Language="en"[^>]* ParentStreamIndex="video"/);
    expect(manifest).toMatch(/<StreamIndex Type="text" Name="ads" Subtype="DATA"[^>]* ParentStreamIndex="video" ManifestOutput="TRUE"/);
    const video = streamIndex(manifest, 'video').times;
    const captions = streamIndex(manifest, 'captions').times;
    const ads = streamIndex(manifest, 'ads');
    // Nothing sparse beyond the newest video fragment listed; every caption starts with a video fragment.
    expect(captions.length).toBeGreaterThan(3);
    expect(captions[captions.length - 1]! <= video[video.length - 1]!).toBe(true);
    for (const t of [...captions, ...ads.times]) expect(video).toContain(t);
    // Each marker carries Azure's sparse sample: version, id, delta, then a splice_info_section (0xFC).
    const samples = [...ads.text.matchAll(/<f i="0">([^<]+)<\/f>/g)].map((m) => Buffer.from(m[1]!, 'base64'));
    expect(samples).toHaveLength(ads.times.length);
    for (const b of samples) {
      expect(b.readUInt32BE(0)).toBe(1);
      expect(b[12]).toBe(0xfc);
    }
    expect(new Set(samples.map((b) => b.readUInt32BE(4))).size).toBe(samples.length); // distinct event ids
  });

  it('serves sparse fragments: a caption names its own media time', async () => {
    const captions = streamIndex(manifest, 'captions').times;
    const t = captions[captions.length - 1]!;
    const bitrate = /Name="captions"[\s\S]*?<QualityLevel Index="0" Bitrate="(\d+)"/.exec(manifest)![1];
    const r = await fetch(`${s!.base}/ch1.isml/QualityLevels(${bitrate})/Fragments(captions=${t})`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(r.status).toBe(200);
    expect(body.includes(Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex'))).toBe(true); // tfxd
    expect(body.toString('latin1')).toContain(`live-smooth ${clock(Number(t) / TIMESCALE)}`);
    const ads = streamIndex(manifest, 'ads').times;
    const ad = await fetch(`${s!.base}/ch1.isml/QualityLevels(0)/Fragments(ads=${ads[0]})`);
    expect(ad.status).toBe(200);
  });

  it('a point pulling this one takes its media and says it leaves the sparse tracks out', async () => {
    const pulled = await waitFor(`${s!.base}/pulled.isml/Manifest`, (m) => streamIndex(m, 'video').times.length >= 3, 20_000, 'the pulled point did not list video');
    expect(pulled.match(/<StreamIndex Type="(\w+)"/g)).toEqual(['<StreamIndex Type="video"', '<StreamIndex Type="audio"']);
    const point = (await s!.handler.origin.resolve('pulled.isml'))!;
    expect(point.source).toMatchObject({ state: 'pulling', reason: expect.stringMatching(/^not pulled: .*captions.*ads|^not pulled: .*ads.*captions/) });
  });

  withTools(['Chromium', CHROMIUM])(`the sample player (dash.js, MSS) shows the captions at the times they name for ${PLAY_SECONDS} s`, async () => {
    const r = await outcome(mss);
    const context = `${JSON.stringify(r.state.captions)}\n${r.console.slice(-30).join('\n')}`;
    console.log(`sample player on Smooth with captions: ${r.state.captions.length} captions, first ${JSON.stringify(r.state.captions[0])}, last ${JSON.stringify(r.state.captions[r.state.captions.length - 1])}`);
    expect({ errors: r.state.errors, context }).toEqual({ errors: [], context });
    // One caption per 2 s fragment.
    expect(r.state.captions.length).toBeGreaterThanOrEqual(PLAY_SECONDS / 2 - 3);
    for (const c of r.state.captions) {
      const named = /^live-smooth (\d\d:\d\d:\d\d)$/.exec(c.text);
      expect({ caption: c, named: !!named }).toEqual({ caption: c, named: true });
      // Shown from the start of the fragment it names, for the fragment's 2 s (checked every 250 ms).
      const offset = c.at - seconds(named![1]!);
      expect({ caption: c, offset, early: offset < -0.5, late: offset > 2.5 }).toEqual({ caption: c, offset, early: false, late: false });
    }
  }, 90_000);

  withTools(['GStreamer (gst-launch-1.0)', GST])(`GStreamer (mssdemux) plays the media for ${PLAY_SECONDS} s beside the text streams`, async () => {
    const r = await outcome(gst);
    const v = ptsSummary(r.video);
    const context = `${gstSummary(r)}\n${r.output.slice(-4000)}`;
    console.log(`GStreamer with sparse tracks: ${gstSummary(r)}`);
    expect({ errors: r.errors, context }).toEqual({ errors: [], context });
    expect(v.distinct).toBeGreaterThanOrEqual((PLAY_SECONDS - 8) * FPS);
    expect(v.maxGap).toBeLessThan(1);
    expect(r.audio.length).toBeGreaterThan(0);
  }, 90_000);

  withTools(['VLC', VLC])(`VLC plays the media for ${PLAY_SECONDS} s beside the text streams`, async () => {
    const r = await outcome(vlc);
    console.log(`VLC with sparse tracks: ${r.summary}`);
    const context = `${r.summary}\n${r.output.slice(-4000)}`;
    expect({ http: r.httpErrors, eof: r.eof, context }).toEqual({ http: [], eof: false, context });
    expect(r.stoppedByTimeout).toBe(true);
    expect(r.videoFrames).toBeGreaterThanOrEqual((PLAY_SECONDS - 8) * FPS);
    expect(r.audioSeconds).toBeGreaterThan(PLAY_SECONDS - 8);
  }, 90_000);
});
