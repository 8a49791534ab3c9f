/**
 * An archive survives its server's `kill -9`: a real ffmpeg push to a server in a process of its own,
 * the server killed mid-event, and a new origin on the same root finds the unfinished archive (its
 * journal), cuts each file after its last complete fragment, closes it with an `mfra` and writes the
 * `.ismc`. The presentation then holds every fragment the killed server had listed, and ffmpeg decodes
 * every file to its end without an error.
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
import { isml } from '../helpers/server';
import { ffmpegPath, withTool } from '../helpers/tools';

const FFMPEG = ffmpegPath();
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
    },
    90_000,
  );
});
