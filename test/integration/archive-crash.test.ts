/**
 * An archive survives its server's `kill -9`: a real ffmpeg push to a server in a process of its own,
 * the server killed mid-event, and a new origin on the same root finds the unfinished archive (its
 * journal), cuts each file after its last complete fragment, closes it with an `mfra` and writes the
 * `.ismc`. The presentation then holds every fragment the killed server had listed, ffmpeg decodes
 * every file to its end without an error, and GStreamer plays it on demand from start to end.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createOrigin } from '../../lib';
import type { ArchiveEvent } from '../../lib/archive';
import { openSource } from '../../lib/ismv/source';
import { Push, push } from '../helpers/ffmpeg';
import { get, parseManifest, until } from '../helpers/raw-ingest';
import { ptsSummary, runGst } from '../helpers/gst';
import { isml, startServer } from '../helpers/server';
import { ffmpegPath, gstLaunchPath, withTool, withTools } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const GST = gstLaunchPath();
const REPO = path.join(__dirname, '..', '..');

/** Starts the server of `test/helpers/child-server.ts` on `root`; resolves with it and its base URL. */
async function childServer(root: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ['-r', path.join(REPO, 'test/helpers/ts-register.js'), path.join(REPO, 'test/helpers/child-server.ts'), root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    child.on('exit', (code) => fail(new Error(`server exited (${code}) before it listened`)));
  });
  return { child, base: `http://127.0.0.1:${port}/live` };
}

describe('an archive after kill -9', () => {
  let root: string;
  let server: ChildProcess | undefined;
  let encoder: Push | undefined;
  /** The mended session folder and its length (seconds of the first track). */
  let mended: { folder: string; seconds: number } | undefined;

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'live-smooth-crash-'));
  });

  afterAll(async () => {
    server?.kill('SIGKILL');
    encoder?.child.kill('SIGKILL');
    await encoder?.done;
    rmSync(root, { recursive: true, force: true });
  });

  withTool('ffmpeg', FFMPEG)(
    'a new origin on the same root mends it: every fragment the killed server listed plays, ffmpeg decodes each file',
    async () => {
      writeFileSync(path.join(root, 'ch.isml'), isml({ publishing: 'Fragments;Streams;Archives' }));
      const s = await childServer(root);
      server = s.child;
      encoder = push({ ffmpeg: FFMPEG!, url: `${s.base}/ch.isml`, seconds: 60, bitrates: [400, 200] });
      // Some fragments in, then the server dies mid-event (the encoder goes on writing into a dead socket).
      const listed = await until(
        async () => {
          const r = await get(`${s.base}/ch.isml/Manifest`).catch(() => undefined);
          if (r?.status !== 200) return undefined;
          const m = parseManifest(r.text);
          return m.streams.every((st) => st.fragments.length >= 4) ? m : undefined;
        },
        30_000,
        200,
      );
      server.kill('SIGKILL');
      await new Promise((ok) => server!.once('exit', ok));
      encoder.child.kill('SIGKILL');

      // The session folder was left with files that have no mfra.
      const sessions = readdirSync(path.join(root, 'archives', 'ch'));
      expect(sessions).toHaveLength(1);
      const folder = path.join(root, 'archives', 'ch', sessions[0]!);
      expect(readdirSync(folder)).not.toContain('ch.ismc');

      const origin = createOrigin(root, {});
      const events: ArchiveEvent[] = [];
      origin.on('archive', (e) => events.push(e));
      await origin.archiver.recovered;
      await origin.archiver.idle();
      origin.close();
      console.log(`recovered: ${JSON.stringify(events)}`);
      expect(events).toEqual([expect.objectContaining({ folder, state: 'finished', message: expect.stringMatching(/^recovered after an unclean stop/) })]);
      expect(readdirSync(folder)).toContain('ch.ismc');

      const source = await openSource([path.join(folder, 'ch.ism')]);
      await source.close();
      expect(source.tracks.map((t) => `${t.info.type}/${t.info.bitrate}`).sort()).toEqual(['audio/96000', 'video/200000', 'video/400000']);
      for (const t of source.tracks) {
        const stream = listed.streams.find((st) => st.type === t.info.type)!;
        // Everything listed before the kill is there (the archive may hold more: the lookahead, the queue).
        const times = t.fragments.map((f) => f.time);
        expect(times.slice(0, stream.fragments.length)).toEqual(stream.fragments.map((c) => c.t));
        const r = spawnSync(FFMPEG!, ['-v', 'error', '-i', t.file, '-f', 'null', '-'], { encoding: 'utf8' });
        expect([path.basename(t.file), r.status, r.stderr]).toEqual([path.basename(t.file), 0, '']);
      }
      mended = { folder, seconds: Number(source.tracks[0]!.fragments.reduce((n, f) => n + f.duration, 0n)) / source.tracks[0]!.info.timescale };
    },
    90_000,
  );

  withTools(['ffmpeg', FFMPEG], ['GStreamer (gst-launch-1.0)', GST])(
    'GStreamer plays the mended presentation on demand from the same root, start to end',
    async () => {
      expect(mended).toBeDefined();
      const srv = await startServer({}, '/live', root);
      try {
        const url = `${srv.base}/${path.relative(root, mended!.folder).split(path.sep).join('/')}/ch.ism/Manifest`;
        const r = await runGst(GST!, url, Math.ceil(mended!.seconds) + 20);
        const video = ptsSummary(r.video);
        const audio = ptsSummary(r.audio);
        const summary = `exit ${r.code}, video ${JSON.stringify(video)}, audio ${JSON.stringify(audio)}`;
        console.log(`GStreamer on the mended archive (${mended!.seconds.toFixed(1)} s): ${summary}`);
        const context = `${summary}\n${r.output.slice(-4000)}`;
        expect({ errors: r.errors, context }).toEqual({ errors: [], context });
        // It reached the end by itself (EOS), not the timeout.
        expect({ code: r.code, context }).toEqual({ code: 0, context });
        expect(video.span).toBeGreaterThan(mended!.seconds - 2.5);
        expect(audio.span).toBeGreaterThan(mended!.seconds - 2.5);
        expect(video.maxGap).toBeLessThan(1);
      } finally {
        await srv.close(true);
      }
    },
    90_000,
  );
});
