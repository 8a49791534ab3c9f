/**
 * Sparse tracks through the DASH and HLS outputs, judged by real players in headless Chromium. The
 * simulated encoder pushes a 6 s clip (H.264 + AAC, 2 s fragments) at UTC times, with its caption track
 * (one TTML document per video fragment, reading `live-smooth hh:mm:ss` = the fragment start on the
 * UTC clock, its times relative to the sample as Smooth has them) and SCTE-35 ad markers (a
 * `splice_insert` every {@link MARKER_EVERY} s announcing a {@link BREAK_SECONDS} s break) in its
 * `-sparse` POST. Four pages play at once:
 *
 * - Shaka Player 5 on the MPD, captions on: every caption cue it shows reads the UTC time of its own
 *   start (the presentation start date + the cue's start), so the TTML times were moved from their
 *   sample onto the media timeline, and cues come for the whole of the playback;
 * - Shaka Player 5 on the master playlist: the same of the IMSC1 subtitle rendition;
 * - hls.js on the master playlist, its IMSC1 subtitle rendition selected: likewise against hls.js's
 *   program date-time of the playing position; and every ad marker the Smooth manifest lists shows up in
 *   its `dateRanges` with the same start and the same splice_info_section as `SCTE35-OUT`;
 * - dash.js on the MPD: the MPD EventStream's SCTE-35 events fire (`onReceive` and, as playback passes
 *   them, `onStart`) at the markers' times on dash.js's timeline, carrying the same splice_info_section.
 *
 * Outside CI a missing ffmpeg or Chromium skips the tests; with CI=true it fails them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import type { Browser, Page } from 'playwright-core';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { SimulatedEncoder } from '../../lib/encoder';
import { launchPlayerBrowser } from '../helpers/browser';
import { waitFor } from '../helpers/live-play';
import { isml, liveServer } from '../helpers/server';
import { outcome, settle, type Outcome } from '../helpers/settle';
import { chromiumPath, ffmpegPath, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const CHROMIUM = chromiumPath();
/** Seconds of the clip the encoder loops. */
const LOOP = 6;
/** Seconds of media the encoder sends at once, so players find a window to start in. */
const BACKLOG = 8;
const MARKER_EVERY = 4;
const BREAK_SECONDS = 2;
/** Media each page plays (its `currentTime` advance), and the wall-clock bound of that. */
const PLAY_SECONDS = 14;
const WALL_SECONDS = 30;
const TS = 10_000_000;

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
const deadline = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms).unref());

/** 320x180 H.264 with 2 s GOPs and AAC stereo, as ffmpeg's `-f ismv` writes them. */
function makeClip(ffmpeg: string, file: string): void {
  // prettier-ignore
  execFileSync(ffmpeg, [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-map', '0:v', '-map', '1:a', '-t', String(LOOP), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v', '200k',
    '-c:a', 'aac', '-b:a', '64k', '-ac', '2', '-movflags', 'frag_keyframe', '-f', 'ismv', file,
  ]);
}

/** `hh:mm:ss` of whole UTC seconds, as the encoder writes into its captions. */
function clock(seconds: number): string {
  const s = ((Math.floor(seconds) % 86_400) + 86_400) % 86_400;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

/** A caption cue a page showed. */
interface Cue {
  label: string;
  mode: string;
  start: number;
  end: number;
  text: string;
}

/** An SCTE-35 event dash.js fired. */
interface Scte35Event {
  mode: 'onReceive' | 'onStart';
  id: number;
  time: number;
  duration: number;
  data: string;
  at: number;
}

/** A date range of hls.js's level details. */
interface DateRangeSeen {
  id: string;
  start: number;
  planned: number | null;
  out: string | undefined;
}

interface PageRun {
  version: string;
  errors: string[];
  httpProblems: string[];
  textTracks: string[];
  played: number;
  cues: Cue[];
  /** Wall-clock ms of presentation time 0 (Shaka), or of the playing position minus currentTime (hls.js). */
  zeroDate: number | undefined;
  scte35: Scte35Event[];
  dateRanges: DateRangeSeen[];
  console: string[];
}

/** An ad marker as the Smooth manifest lists it. */
interface Marker {
  /** UTC ms of the event (its fragment's time; the encoder's delta is 0). */
  at: number;
  /** The splice_info_section, base64. */
  section: string;
}

const ZERO_DATE_JS = `(() => {
  const p = window.__instance;
  const v = document.querySelector('video');
  if (window.__player.player === 'shaka') {
    const d = p.getPresentationStartTimeAsDate();
    return d ? d.getTime() : undefined;
  }
  if (window.__player.player === 'hlsjs') {
    const d = p.playingDate;
    return d ? d.getTime() - v.currentTime * 1000 : undefined;
  }
  return undefined;
})()`;

const DATE_RANGES_JS = `(() => {
  const hls = window.__instance;
  if (window.__player.player !== 'hlsjs' || !hls) return [];
  const details = hls.latestLevelDetails || (hls.levels[hls.currentLevel] || {}).details;
  if (!details || !details.dateRanges) return [];
  return Object.values(details.dateRanges).map((r) => ({
    id: r.id, start: r.startDate.getTime(), planned: r.plannedDuration, out: r.attr['SCTE35-OUT'],
  }));
})()`;

async function play(browser: Browser, pages: string, player: string, src: string): Promise<PageRun> {
  const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
  const page: Page = await context.newPage();
  const consoleLines: string[] = [];
  const httpProblems: string[] = [];
  const t0 = Date.now();
  page.on('console', (m) => consoleLines.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') httpProblems.push(`failed ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) httpProblems.push(`${r.status()} ${r.url()}`);
  });
  try {
    await page.goto(`${pages}/player.html?player=${player}&sparse=1&src=${encodeURIComponent(src)}`);
    await page.waitForFunction('window.__player && (window.__player.playingAt !== undefined || window.__player.errors.length > 0)', undefined, { timeout: 25_000 });
    const currentTime = (): Promise<number> => page.evaluate('document.querySelector("video").currentTime') as Promise<number>;
    const first = await currentTime();
    const until = Date.now() + WALL_SECONDS * 1000;
    let now = first;
    while (now - first < PLAY_SECONDS && Date.now() < until) {
      if (((await page.evaluate('window.__player.errors.length')) as number) > 0) break;
      await sleep(1000);
      now = await currentTime();
    }
    const state = (await page.evaluate('window.__player')) as { version: string; errors: string[]; textTracks: string[]; scte35: Scte35Event[] };
    return {
      version: state.version,
      errors: state.errors,
      httpProblems,
      textTracks: state.textTracks,
      played: now - first,
      cues: (await page.evaluate('window.__cues()')) as Cue[],
      zeroDate: (await page.evaluate(ZERO_DATE_JS)) as number | undefined,
      scte35: state.scte35,
      dateRanges: (await page.evaluate(DATE_RANGES_JS)) as DateRangeSeen[],
      console: consoleLines,
    };
  } finally {
    await context.close();
  }
}

function context(r: PageRun): string {
  return `played ${r.played.toFixed(1)} s, text tracks ${JSON.stringify(r.textTracks)}, errors ${JSON.stringify(r.errors)}, HTTP ${JSON.stringify(r.httpProblems)}\nconsole:\n${r.console.slice(-25).join('\n')}`;
}

/**
 * The caption cues of a page that read a time, each with the UTC second its start stands for.
 * @param dateSlack - seconds the player's own date mapping may be off by, as long as every cue is off
 *   by the same: Shaka's HLS start date once came out a second late (its cues still 2 s apart, each
 *   reading its own start), while its DASH one and hls.js's never have
 */
function judgeCues(label: string, r: PageRun, dateSlack = 0): void {
  // Shaka's native displayer writes the TTML styling as WebVTT class spans (`<c.white.bg_black>`).
  const cues = r.cues.map((c) => ({ ...c, text: c.text.replace(/<[^>]*>/g, '') })).filter((c) => /^live-smooth \d{2}:\d{2}:\d{2}$/.test(c.text));
  const text = context(r);
  expect({ errors: r.errors, text }).toEqual({ errors: [], text });
  expect({ http: r.httpProblems, text }).toEqual({ http: [], text });
  expect(r.played).toBeGreaterThanOrEqual(PLAY_SECONDS - 1);
  expect(r.zeroDate).toBeDefined();
  // One caption per 2 s video fragment over the playback (a player keeps the cues it buffered ahead).
  const enough = cues.length >= Math.floor(PLAY_SECONDS / 2) - 1;
  expect({ enough, cues: r.cues.slice(0, 5), text }).toEqual({ enough: true, cues: r.cues.slice(0, 5), text });
  // Off by the same whole seconds for every cue, within the slack: the player's date mapping, not the cues.
  const offsets = new Set<number>();
  const wrong = cues.flatMap((c) => {
    // Rounded to the millisecond first: a cue at a whole second may come back as x.9999999.
    const utc = Math.round(r.zeroDate! + c.start * 1000) / 1000;
    const offset = [...Array(2 * dateSlack + 1).keys()].map((k) => k - dateSlack).find((k) => c.text === `live-smooth ${clock(utc + k)}`);
    if (offset !== undefined) offsets.add(offset);
    return offset !== undefined && Math.abs(c.end - c.start - 2) < 0.01 ? [] : [`${c.start}-${c.end} "${c.text}" at UTC ${clock(utc)}`];
  });
  if (offsets.size > 1) wrong.push(`cues off by different seconds: ${[...offsets].join(', ')}`);
  console.log(`${label} ${r.version}: ${cues.length} caption cues, first ${JSON.stringify(cues[0])}, ${wrong.length} at the wrong time; ${r.textTracks.join('; ')}`);
  expect(wrong).toEqual([]);
}

describe('captions and ad markers from the simulated encoder, in real DASH and HLS players', () => {
  let root: string | undefined;
  let handler: LiveSmoothHandler | undefined;
  const servers: http.Server[] = [];
  let encoder: SimulatedEncoder | undefined;
  let browser: Browser | undefined;
  let point = '';
  const runs = new Map<string, Promise<Outcome<PageRun>>>();
  let all: Promise<unknown> | undefined;
  let began = 0;

  beforeAll(async () => {
    if (!FFMPEG) return;
    began = Date.now();
    root = mkdtempSync(path.join(tmpdir(), 'live-smooth-sparse-'));
    const clip = path.join(root, 'clip.ismv');
    makeClip(FFMPEG, clip);
    writeFileSync(path.join(root, 'ch1.isml'), isml());
    handler = liveSmooth(root);
    const media = express();
    media.use('/live', handler);
    const mediaServer = liveServer(media);
    const site = express();
    site.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));
    site.use('/shaka', express.static(path.dirname(require.resolve('shaka-player'))));
    site.use('/hlsjs', express.static(path.dirname(require.resolve('hls.js'))));
    site.get('/player.html', (_req, res) => res.sendFile(path.join(__dirname, 'dash-hls-player.html')));
    site.get('/favicon.ico', (_req, res) => void res.status(204).end());
    const pageServer = http.createServer(site);
    for (const s of [mediaServer, pageServer]) {
      servers.push(s);
      await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    }
    const base = (s: http.Server): string => `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    point = `${base(mediaServer)}/live/ch1.isml`;
    encoder = await SimulatedEncoder.open({
      url: point,
      files: [clip],
      start: 'now',
      backlog: BACKLOG,
      captions: true,
      adMarkers: { every: MARKER_EVERY, duration: BREAK_SECONDS },
    });
    void encoder.start();
    // Captions listed with the media, and a marker in the window.
    await waitFor(`${point}/.mpd`, (mpd) => mpd.includes('contentType="text"') && mpd.includes('<Event '), 20_000, 'the MPD did not list captions and a marker');
    if (!CHROMIUM) return;
    browser = await launchPlayerBrowser(CHROMIUM);
    const pages = base(pageServer);
    runs.set('shaka', settle(play(browser, pages, 'shaka', `${point}/.mpd`)));
    runs.set('shaka-hls', settle(play(browser, pages, 'shaka', `${point}/.m3u8`)));
    runs.set('hlsjs', settle(play(browser, pages, 'hlsjs', `${point}/.m3u8`)));
    runs.set('dashjs', settle(play(browser, pages, 'dashjs', `${point}/.mpd`)));
    all = Promise.all(runs.values());
  }, 40_000);

  afterAll(async () => {
    await Promise.race([all, deadline(40_000)]);
    await browser?.close();
    await encoder?.stop();
    handler?.origin.close();
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((ok) => s.close(() => ok()));
    }
    if (root) rmSync(root, { recursive: true, force: true });
    if (began) console.log(`sparse players: ${((Date.now() - began) / 1000).toFixed(1)} s from clip to teardown`);
  }, 60_000);

  /** The ad markers the Smooth manifest lists now (its `<f>` carries each sample: Azure header + section). */
  async function markers(): Promise<Marker[]> {
    const manifest = await (await fetch(`${point}/Manifest`)).text();
    const ads = /<StreamIndex[^>]* Name="ads"[^>]*>([\s\S]*?)<\/StreamIndex>/.exec(manifest)?.[1] ?? '';
    const out: Marker[] = [];
    let next = 0n;
    for (const m of ads.matchAll(/<c( t="(\d+)")? d="(\d+)"><f i="0">([^<]+)<\/f><\/c>/g)) {
      const t = m[2] !== undefined ? BigInt(m[2]) : next;
      next = t + BigInt(m[3]!);
      // UTC ms, rounded as the outputs round their dates.
      const ms = BigInt(TS / 1000);
      out.push({ at: Number((t + ms / 2n) / ms), section: Buffer.from(m[4]!, 'base64').subarray(12).toString('base64') });
    }
    return out;
  }

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    'Shaka Player 5 (DASH) shows caption cues that read their own time: the TTML times are on the media timeline',
    async () => {
      judgeCues('Shaka (DASH)', await outcome(runs.get('shaka')));
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    'Shaka Player 5 (HLS) shows the IMSC1 subtitle rendition\'s cues at their times too',
    async () => {
      const r = await outcome(runs.get('shaka-hls'));
      judgeCues('Shaka (HLS)', r, 1);
      expect(r.textTracks.some((t) => t.includes('stpp.ttml.im1t'))).toBe(true);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    'hls.js shows the IMSC1 subtitle rendition, its cues reading their own time, and every listed marker as an EXT-X-DATERANGE',
    async () => {
      const r = await outcome(runs.get('hlsjs'));
      judgeCues('hls.js (HLS)', r);
      expect(r.textTracks.some((t) => t.includes('stpp.ttml.im1t'))).toBe(true);
      const listed = await markers();
      const seen = new Map(r.dateRanges.map((d) => [d.start, d]));
      console.log(`hls.js date ranges: ${r.dateRanges.length} (${JSON.stringify(r.dateRanges[0])}); the Smooth manifest lists ${listed.length} markers`);
      expect(r.dateRanges.length).toBeGreaterThanOrEqual(2);
      // Those of the Smooth listing hls.js's last playlist also had: same start, same section.
      const common = listed.filter((m) => seen.has(m.at));
      expect(common.length).toBeGreaterThanOrEqual(1);
      for (const m of common) {
        const d = seen.get(m.at)!;
        expect(d.out).toBe(`0x${Buffer.from(m.section, 'base64').toString('hex').toUpperCase()}`);
        expect(d.planned).toBe(BREAK_SECONDS);
      }
      // Markers every MARKER_EVERY s, whatever hls.js's playlist held.
      const starts = r.dateRanges.map((d) => d.start).sort((a, b) => a - b);
      for (let i = 1; i < starts.length; i++) expect((starts[i]! - starts[i - 1]!) % (MARKER_EVERY * 1000)).toBe(0);
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['Chromium', CHROMIUM])(
    'dash.js (DASH) fires the SCTE-35 events of the MPD EventStream at the markers\' times, with their splice_info_section',
    async () => {
      const r = await outcome(runs.get('dashjs'));
      const text = context(r);
      expect({ errors: r.errors, text }).toEqual({ errors: [], text });
      expect({ http: r.httpProblems, text }).toEqual({ http: [], text });
      const mpd = await (await fetch(`${point}/.mpd`)).text();
      // Presentation time 0 of the dynamic MPD: its availabilityStartTime.
      const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!);
      const byTime = new Map((await markers()).map((m) => [m.at, m]));
      const received = r.scte35.filter((e) => e.mode === 'onReceive');
      const started = r.scte35.filter((e) => e.mode === 'onStart');
      console.log(`dash.js ${r.version}: ${received.length} SCTE-35 events received, ${started.length} started (${JSON.stringify(started[0])})`);
      expect(received.length).toBeGreaterThanOrEqual(2);
      expect(started.length).toBeGreaterThanOrEqual(2);
      for (const e of [...received, ...started]) {
        const at = Math.round(ast + e.time * 1000);
        // On the marker grid: a whole number of MARKER_EVERY from one another, a break long.
        expect(e.duration).toBeCloseTo(BREAK_SECONDS, 6);
        const m = byTime.get(at);
        // Markers that left the Smooth window meanwhile are no longer listed there.
        if (m) expect(e.data).toBe(m.section);
      }
      const times = [...new Set(received.map((e) => Math.round(ast + e.time * 1000)))].sort((a, b) => a - b);
      for (let i = 1; i < times.length; i++) expect((times[i]! - times[i - 1]!) % (MARKER_EVERY * 1000)).toBe(0);
      expect(times.some((t) => byTime.has(t))).toBe(true);
      // onStart fires as playback reaches the event.
      for (const e of started) expect(Math.abs(e.at - e.time)).toBeLessThan(1);
    },
    90_000,
  );
});
