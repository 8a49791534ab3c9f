/**
 * `npm start` as a user runs it: the package is built, `node examples/server.js` starts (PORT=0), and
 * within 15 s its manifest lists fragments of the bundled sample that the simulated encoder pushes. The
 * sample player page then plays in headless Chromium for 15 s, lists the three quality levels, shows the
 * one pinned by the user and goes back to automatic. Ctrl-C (SIGINT) ends the push with end of stream
 * and exits with status 0.
 *
 * The build runs here because CI runs `npm test` on a fresh clone, where `dist/` does not exist yet.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { chromiumPath, withTool } from '../helpers/tools';

const ROOT = path.join(__dirname, '..', '..');
const OUTPUT = path.join(ROOT, 'test-output');
const CHROMIUM = chromiumPath();
const DEBUG = !!process.env.PLAYERS_DEBUG;
const PLAY_SECONDS = 15;

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

/** Runs `test` on a page of a fresh headless Chromium that plays without a gesture, collecting its console in `log`. */
async function withPage(test: (page: Page, log: string[]) => Promise<void>): Promise<void> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
    const log: string[] = [];
    page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    await test(page, log);
  } finally {
    await browser.close();
  }
}

describe('npm start (examples/server.js)', () => {
  let child: ChildProcess | undefined;
  let output = '';
  let spawnedAt = 0;
  let urls: { player: string; manifest: string } | undefined;

  beforeAll(async () => {
    // As `npm run build` does: a stale dist/ could hold modules that moved (a `point.js` beside `point/`).
    rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
    spawnedAt = Date.now();
    child = spawn(process.execPath, ['examples/server.js'], { cwd: ROOT, env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (DEBUG) process.stderr.write(d);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    const until = Date.now() + 10_000;
    while (!/^manifest: \S+$/m.test(output)) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`the demo did not print its URLs:\n${output}`);
      await sleep(50);
    }
    urls = { player: /^player: +(\S+)$/m.exec(output)![1]!, manifest: /^manifest: +(\S+)$/m.exec(output)![1]! };
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((ok) => child!.once('exit', ok));
    }
  });

  it('serves a manifest with fragments within 15 s', async () => {
    let last = '';
    while (Date.now() - spawnedAt < 15_000) {
      const res = await fetch(urls!.manifest).catch(() => undefined);
      last = res?.ok ? await res.text() : `${res?.status}`;
      // The demo's sparse tracks (captions, ad markers) are text StreamIndexes beside video and audio.
      const streams = last.split('<StreamIndex').slice(1).filter((s) => /^ Type="(video|audio)"/.test(s));
      if (streams.length === 2 && streams.every((s) => /<c [^>]*d="\d+"/.test(s))) break;
      await sleep(250);
    }
    expect({ seconds: (Date.now() - spawnedAt) / 1000 < 15, manifest: last }).toEqual({ seconds: true, manifest: last });
    expect(last).toContain('IsLive="TRUE"');
    const media = last.split('<StreamIndex').filter((s) => /^ Type="(video|audio)"/.test(s)).join('');
    expect(media.match(/<QualityLevel /g)).toHaveLength(4); // 3 video bitrates + AAC
    const page = await fetch(urls!.player);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('"manifest":"live/live.isml/Manifest"');
  });

  withTool('Chromium', CHROMIUM)(
    'the player page plays for 15 s in Chromium, lists the quality levels and pins one',
    async () => {
      await withPage(async (page, log) => {
        await page.goto(urls!.player);
        const state = (): Promise<{ errors: string[]; levels: Array<{ id: string; width: number; bandwidth: number }>; rendered: Array<{ id: string }> }> =>
          page.evaluate('window.__player') as never;
        await page.waitForFunction('window.__player && window.__player.playingAt !== undefined', undefined, { timeout: 30_000 }).catch(async (err: Error) => {
          throw new Error(`the player did not start: ${err.message}\n${JSON.stringify(await state())}\n${log.slice(-30).join('\n')}`);
      });
      const time = (): Promise<number> => page.evaluate('document.querySelector("video").currentTime') as Promise<number>;
      const text = (id: string): Promise<string> => page.locator(`[data-testid=${id}]`).innerText();
      const t0 = await time();
      const began = Date.now();
      const { levels } = await state();
      expect(levels.map((l) => l.bandwidth)).toEqual([90_000, 174_000, 351_000].map((b) => expect.closeTo(b, -4)));
      expect(await page.locator('[data-testid=level] option').allInnerTexts()).toEqual([
        'Auto',
        ...levels.map((l) => expect.stringContaining(`${Math.round(l.bandwidth / 1000)} kbit/s`)),
      ]);
      // Pin the lowest level: the page says so and the video shows it.
      await sleep(3000);
      await page.selectOption('[data-testid=level]', levels[0]!.id);
      await page.waitForFunction(`document.querySelector('video').videoWidth === ${levels[0]!.width}`, undefined, { timeout: 10_000 });
      expect(await text('quality')).toMatch(/^level 1 of 3: 320×180 \(pinned\)$/);
      expect(await text('bitrate')).toMatch(/^\d+ kbit\/s$/);
      expect(await text('buffer')).toMatch(/^video \d+\.\d s, audio \d+\.\d s$/);
      await page.selectOption('[data-testid=level]', 'auto');
      while (Date.now() - began < PLAY_SECONDS * 1000) await sleep(500);
      const advance = (await time()) - t0;
      mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, 'player-page.png') });
      const s = await state();
      console.log(`player page: +${advance.toFixed(1)} s in ${((Date.now() - began) / 1000).toFixed(1)} s, levels shown ${s.rendered.map((r) => r.id).join(' → ')}`);
      expect({ errors: s.errors, log: s.errors.length ? log.slice(-30) : [] }).toEqual({ errors: [], log: [] });
      expect(advance).toBeGreaterThanOrEqual(PLAY_SECONDS - 2);
      expect(new Set(s.rendered.map((r) => r.id)).size).toBeGreaterThan(1);
      expect(await text('quality')).toMatch(/\(auto\)$/);
      });
    },
    90_000,
  );

  withTool('Chromium', CHROMIUM)(
    'the player page plays the same point as DASH (dash.js) and HLS (hls.js), chosen with its format selector',
    async () => {
      await withPage(async (page, log) => {
        await page.goto(urls!.player);
        for (const format of ['dash', 'hls'] as const) {
          // Choosing a format reloads the page with ?format=…
          await Promise.all([page.waitForURL(new RegExp(`format=${format}`)), page.selectOption('[data-testid=format]', format)]);
          const state = (): Promise<{ errors: string[]; format: string; levels: unknown[] }> => page.evaluate('window.__player') as never;
          await page.waitForFunction('window.__player && window.__player.playingAt !== undefined', undefined, { timeout: 30_000 }).catch(async (err: Error) => {
            throw new Error(`${format}: the player did not start: ${err.message}\n${JSON.stringify(await state())}\n${log.slice(-30).join('\n')}`);
          });
          const time = (): Promise<number> => page.evaluate('document.querySelector("video").currentTime') as Promise<number>;
          const t0 = await time();
          await sleep(8000);
          const s = await state();
          expect(s.format).toBe(format);
          expect(await page.locator('[data-testid=manifest]').innerText()).toMatch(format === 'dash' ? /\/\.mpd$/ : /\/\.m3u8$/);
          expect(s.levels).toHaveLength(3);
          expect({ format, errors: s.errors, log: s.errors.length ? log.slice(-30) : [] }).toEqual({ format, errors: [], log: [] });
          expect((await time()) - t0).toBeGreaterThan(6);
        }
      });
    },
    120_000,
  );

  it('stops cleanly on Ctrl-C: the encoder sends end of stream, the process exits with 0', async () => {
    let timer: NodeJS.Timeout | undefined;
    const exited = new Promise<number | string | null>((ok) => {
      child!.once('exit', (code) => ok(code));
      timer = setTimeout(() => ok('still running after 10 s'), 10_000);
    });
    child!.kill('SIGINT');
    const code = await exited;
    clearTimeout(timer);
    expect({ code, output }).toEqual({ code: 0, output });
    expect(output).toContain('encoder:  end of stream sent');
  }, 15_000);
});
