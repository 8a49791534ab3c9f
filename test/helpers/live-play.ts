/**
 * Playing a live stream in the test page (`integration/dash-hls-player.html`) in headless Chromium and
 * judging what GStreamer decoded: shared by the tests that put real players behind pulls and edges.
 */
import type { Browser, Page } from 'playwright-core';
import { GstRun, ptsSummary } from './gst';

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

/** Polls `url` until `ready` accepts its body. */
export async function waitFor(url: string, ready: (body: string) => boolean, timeoutMs: number, what: string): Promise<string> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    const res = await fetch(url).catch(() => undefined);
    if (res?.ok) {
      last = await res.text();
      if (ready(last)) return last;
    }
    await sleep(500);
  }
  throw new Error(`${what} within ${timeoutMs} ms; last ${url}:\n${last}`);
}

/** The page's `window.__player`. */
export interface PageState {
  errors: string[];
  warnings: string[];
  playingAt: number | undefined;
  waiting: number;
  dynamic: boolean | undefined;
}

/** The video element once a second after the first `playing`. */
export interface Sample {
  /** ms since the first sample. */
  wall: number;
  currentTime: number;
  totalVideoFrames: number;
  audioBytes: number;
  paused: boolean;
}

/** What a page played. */
export interface PagePlay {
  samples: Sample[];
  state: PageState;
  /** Responses >= 400 and failed requests (a player's own cancellations left out). */
  httpProblems: string[];
  console: string[];
}

const SAMPLE_JS = `(() => {
  const v = document.querySelector('video');
  const q = v.getVideoPlaybackQuality();
  return { currentTime: v.currentTime, totalVideoFrames: q.totalVideoFrames, audioBytes: v.webkitAudioDecodedByteCount || 0, paused: v.paused };
})()`;

/**
 * Opens `pageUrl` (the test page with `?player=…&src=…`) in a fresh browser context, after `prepare`
 * (e.g. a login that leaves a cookie), waits up to 30 s for playback, then samples until `currentTime`
 * advanced `seconds` (plus one) or `wallSeconds` passed.
 */
export async function playPage(
  browser: Browser,
  pageUrl: string,
  o: { seconds: number; wallSeconds: number; prepare?: (page: Page) => Promise<void> },
): Promise<PagePlay> {
  const context = await browser.newContext({ viewport: { width: 640, height: 360 } });
  const page = await context.newPage();
  const consoleLines: string[] = [];
  const httpProblems: string[] = [];
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  page.on('console', (m) => consoleLines.push(`${stamp()} ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`${stamp()} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return; // the player cancelled it (a bitrate switch)
    httpProblems.push(`failed ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) httpProblems.push(`${r.status()} ${r.url()}`);
  });
  try {
    await o.prepare?.(page);
    await page.goto(pageUrl);
    const state = (): Promise<PageState> => page.evaluate('window.__player') as Promise<PageState>;
    try {
      await page.waitForFunction('window.__player && (window.__player.playingAt !== undefined || window.__player.errors.length > 0)', undefined, { timeout: 30_000 });
    } catch (err) {
      const s = await state();
      throw new Error(`no playback within 30 s: ${(err as Error).message}\nerrors: ${JSON.stringify(s.errors)}\nHTTP: ${JSON.stringify(httpProblems)}`);
    }
    const samples: Sample[] = [];
    const start = Date.now();
    for (;;) {
      const sample = { wall: Date.now() - start, ...((await page.evaluate(SAMPLE_JS)) as Omit<Sample, 'wall'>) };
      samples.push(sample);
      if (sample.currentTime - samples[0]!.currentTime >= o.seconds + 1 || sample.wall >= o.wallSeconds * 1000) break;
      if ((await state()).errors.length > 0) break;
      await sleep(1000);
    }
    return { samples, state: await state(), httpProblems, console: consoleLines };
  } finally {
    await context.close();
  }
}

/** One line about a page's playback. */
export function playSummary(r: PagePlay): string {
  const first = r.samples[0]!;
  const last = r.samples[r.samples.length - 1]!;
  return (
    `currentTime ${first.currentTime.toFixed(2)} -> ${last.currentTime.toFixed(2)} over ${(last.wall / 1000).toFixed(1)} s, frames ` +
    `${first.totalVideoFrames} -> ${last.totalVideoFrames}, audio bytes ${last.audioBytes}, waiting ${r.state.waiting}`
  );
}

/** One line about a GStreamer run. */
export function gstSummary(r: GstRun): string {
  const v = ptsSummary(r.video);
  const a = ptsSummary(r.audio);
  return (
    `gst-launch exit ${r.code}, ${v.distinct} video frames over ${v.span.toFixed(1)} s (largest gap ${v.maxGap.toFixed(2)} s), ` +
    `${a.distinct} audio buffers over ${a.span.toFixed(1)} s`
  );
}
