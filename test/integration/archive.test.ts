/**
 * Live archives: a point whose `publishing` lists `Archives` writes each session as on-demand Smooth
 * presentations (per track `.ismv`/`.isma` with `mfra`, `.ism`, `.ismc`), whole or cut into segments of
 * `archiveSegmentLength`; the files read back as the fragments the point stored, replay as ingest, and
 * a disk that fails or falls behind stops the archive while the point goes on serving. Sparse tracks
 * (captions, SCTE-35 ad markers) are archived with the media and served on demand as they were live.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { registerMetrics } from '../../lib';
import { parseExposition } from '../helpers/prometheus';
import * as path from 'node:path';
import { ArchiveEvent, Archiver, JOURNAL } from '../../lib/archive';
import { archiveJson } from '../../lib/http/admin';
import { startEncoder } from '../../lib/encoder';
import { openSource } from '../../lib/ismv/source';
import { SCTE35_SCHEME } from '../../lib/model';
import { UUID_TFRF, UUID_TFXD, parseTfxd } from '../../lib/mp4/boxes';
import { children, findChild } from '../../lib/mp4/reader';
import { cat, fragment, ftyp, lsmBox, lsmSmil, moov, payload } from '../helpers/fmp4';
import { adSpec, captionSpec, videoSpec } from '../helpers/sparse';
import { RawPost, fixture, fragmentsOfRound, get, parseManifest, tfxdOf, until } from '../helpers/raw-ingest';
import { startServer, TestServer } from '../helpers/server';
import { ffprobePath, withTool } from '../helpers/tools';
import { spawnSync } from 'node:child_process';

const FFPROBE = ffprobePath();
const ARCHIVES = { publishing: 'Fragments;Streams;Archives' };

/** Pushes `rounds` of the fixture (4 s each, 1 s fragments) to `point`, then its end of stream. */
async function pushSession(srv: TestServer, point: string, rounds: number, end = true): Promise<RawPost> {
  const post = new RawPost(`${srv.base}/${point}/Streams(s)`);
  await post.write(fixture().header);
  for (let r = 0; r < rounds; r++) await post.write(Buffer.concat(fragmentsOfRound(r)));
  if (end) {
    await post.write(fixture().mfra);
    await post.end();
  }
  return post;
}

/** Every folder under `dir` that holds a `.ism`, with its files. */
function presentations(dir: string): Array<{ folder: string; files: string[] }> {
  const out: Array<{ folder: string; files: string[] }> = [];
  const walk = (d: string): void => {
    const entries = readdirSync(d, { withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => e.name).sort();
    if (files.some((f) => f.endsWith('.ism'))) out.push({ folder: d, files });
    for (const e of entries) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return out.sort((a, b) => a.folder.localeCompare(b.folder, 'en', { numeric: true }));
}

/** The tfra entries of a file's `mfra` (version 1), found from its `mfro`. */
function tfraTimes(file: Buffer): bigint[] {
  expect(file.toString('latin1', file.length - 12, file.length - 8)).toBe('mfro');
  const mfraSize = file.readUInt32BE(file.length - 4);
  const mfra = file.subarray(file.length - mfraSize);
  const tfra = [...children(mfra.subarray(8))].find((b) => b.type === 'tfra')!;
  expect(tfra.data[8]).toBe(1); // version
  const n = tfra.data.readUInt32BE(20);
  const times: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const at = 24 + i * 19;
    const time = tfra.data.readBigUInt64BE(at);
    const offset = Number(tfra.data.readBigUInt64BE(at + 8));
    // The entry points at a moof whose tfxd has that time.
    expect(file.toString('latin1', offset + 4, offset + 8)).toBe('moof');
    const moofSize = file.readUInt32BE(offset);
    expect(tfxdOf(file.subarray(offset, offset + moofSize)).time).toBe(time);
    times.push(time);
  }
  return times;
}

describe('live archive', () => {
  let srv: TestServer;
  const events: ArchiveEvent[] = [];

  beforeAll(async () => {
    srv = await startServer();
    srv.handler.origin.on('archive', (e) => events.push(e));
  });

  afterAll(async () => {
    await srv?.close();
  });

  it('a session becomes one on-demand presentation: a file per track with mfra, .ism and .ismc, the fragments the point stored', async () => {
    srv.define('events/one.isml', ARCHIVES);
    // While the session's files are being finished, the archive is still listed (as being written).
    const listedAtStop: string[] = [];
    srv.handler.origin.once('streamStarted', () => {
      srv.handler.origin.cached('events/one.isml')!.on('state', (e) => {
        if (e.state === 'Stopped') listedAtStop.push(...srv.handler.origin.archiver.list('events/one.isml').map((a) => a.state));
      });
    });
    await pushSession(srv, 'events/one.isml', 3);
    // The end of stream stops the point, which finishes the archive.
    await until(() => events.find((e) => e.point === 'events/one.isml' && e.state === 'finished'));
    const live = parseManifest((await get(`${srv.base}/events/one.isml/Manifest`)).text);

    const found = presentations(path.join(srv.root, 'archives', 'events', 'one'));
    expect(found).toHaveLength(1);
    const { folder, files } = found[0]!;
    expect(path.basename(path.dirname(folder))).toBe('one');
    expect(path.basename(folder)).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    expect(files).toEqual(['audio_32000.isma', 'one.ism', 'one.ismc', 'video_100000.ismv', 'video_50000.ismv']);

    // Each file: ftyp, the Live Server Manifest, moov, fragments, and a tfra listing every fragment.
    for (const f of files.filter((n) => /\.ism[va]$/.test(n))) {
      const bytes = readFileSync(path.join(folder, f));
      const types = [...children(bytes)].map((b) => b.type);
      expect(types.slice(0, 3)).toEqual(['ftyp', 'uuid', 'moov']);
      expect(types[types.length - 1]).toBe('mfra');
      const stream = live.streams.find((s) => s.type === (f.endsWith('.isma') ? 'audio' : 'video'))!;
      expect(tfraTimes(bytes)).toEqual(stream.fragments.map((c) => c.t));
    }
    // The .ism opens as a presentation whose tracks hold exactly what the point listed.
    const source = await openSource([path.join(folder, 'one.ism')]);
    expect(source.tracks.map((t) => `${t.info.type}/${t.info.bitrate}`).sort()).toEqual(['audio/32000', 'video/100000', 'video/50000']);
    for (const t of source.tracks) {
      const stream = live.streams.find((s) => s.type === t.info.type)!;
      expect(t.fragments.map((f) => [f.time, f.duration])).toEqual(stream.fragments.map((c) => [c.t, c.d]));
    }
    await source.close();
    const ismc = readFileSync(path.join(folder, 'one.ismc'), 'utf8');
    expect(ismc).not.toContain('IsLive');
    expect(parseManifest(ismc).streams.map((s) => s.fragments.length)).toEqual(live.streams.map((s) => s.fragments.length));
    expect(events.filter((e) => e.point === 'events/one.isml').map((e) => e.state)).toEqual(['writing', 'finished']);
    expect(listedAtStop).toEqual(['writing']);
    // Prometheus: what the archives wrote, nothing waiting, one presentation finished.
    const registry = new Registry();
    registerMetrics(srv.handler.origin, { registry });
    const m = parseExposition(await registry.metrics());
    const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
      m.series.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;
    const written = files.filter((n) => /\.ism[va]$/.test(n)).reduce((n, f) => n + statSync(path.join(folder, f)).size, 0);
    expect(value('live_smooth_archive_written_bytes_total')).toBe(written);
    expect(value('live_smooth_archive_queue_bytes')).toBe(0);
    expect(value('live_smooth_archives_total', { state: 'finished' })).toBe(1);
    expect(value('live_smooth_archives_writing')).toBe(0);
  });

  withTool('ffprobe', FFPROBE)('ffprobe reads every archive file without an error', async () => {
    const { folder, files } = presentations(path.join(srv.root, 'archives', 'events', 'one'))[0]!;
    for (const f of files.filter((n) => /\.ism[va]$/.test(n))) {
      const r = spawnSync(FFPROBE!, ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', path.join(folder, f)], { encoding: 'utf8' });
      expect([f, r.status, r.stderr]).toEqual([f, 0, '']);
      expect(r.stdout.trim()).toBe(f.endsWith('.isma') ? 'aac' : 'h264');
    }
  });

  it('an archive file POSTed to a point replays its track', async () => {
    const { folder } = presentations(path.join(srv.root, 'archives', 'events', 'one'))[0]!;
    srv.define('replay.isml');
    const body = readFileSync(path.join(folder, 'video_100000.ismv'));
    const post = new RawPost(`${srv.base}/replay.isml/Streams(v)`);
    await post.write(body);
    await post.end();
    await until(() => srv.handler.origin.cached('replay.isml')?.state === 'Stopped');
    const m = parseManifest((await get(`${srv.base}/replay.isml/Manifest`)).text);
    const archived = (await openSource([path.join(folder, 'video_100000.ismv')])).tracks[0]!;
    expect(m.streams.map((s) => [s.type, s.bitrates])).toEqual([['video', [100000]]]);
    expect(m.streams[0]!.fragments.map((c) => c.t)).toEqual(archived.fragments.map((f) => f.time));
  });

  it('the simulated encoder replays an archive presentation (.ism): every track, every fragment', async () => {
    const { folder } = presentations(path.join(srv.root, 'archives', 'events', 'one'))[0]!;
    srv.define('replay2.isml');
    const encoder = await startEncoder({ url: `${srv.base}/replay2.isml`, files: [path.join(folder, 'one.ism')], loops: 1, speed: Infinity });
    await encoder.done;
    await until(() => srv.handler.origin.cached('replay2.isml')?.state === 'Stopped');
    const replayed = parseManifest((await get(`${srv.base}/replay2.isml/Manifest`)).text);
    const archived = parseManifest(readFileSync(path.join(folder, 'one.ismc'), 'utf8'));
    expect(replayed.streams.map((st) => [st.type, st.bitrates])).toEqual(archived.streams.map((st) => [st.type, st.bitrates]));
    for (const [i, st] of replayed.streams.entries()) {
      expect(st.fragments.map((c) => c.d)).toEqual(archived.streams[i]!.fragments.map((c) => c.d));
    }
  });

  it('archiveSegmentLength 60 cuts 140 s into three presentations that play on their own and join without a gap or a repeat', async () => {
    srv.define('seg.isml', { ...ARCHIVES, archiveSegmentLength: '60' });
    await pushSession(srv, 'seg.isml', 35);
    await until(() => srv.handler.origin.archiver.list('seg.isml').filter((a) => a.state === 'finished').length === 3);
    await srv.handler.origin.archiver.idle();
    const found = presentations(path.join(srv.root, 'archives', 'seg'));
    expect(found.map((p) => path.basename(p.folder))).toEqual(['0', '1', '2']);
    const byType = new Map<string, bigint[][]>();
    for (const p of found) {
      const source = await openSource([path.join(p.folder, 'seg.ism')]);
      expect(source.tracks).toHaveLength(3);
      for (const t of source.tracks) {
        const k = `${t.info.type}/${t.info.bitrate}`;
        byType.set(k, [...(byType.get(k) ?? []), t.fragments.map((f) => f.time)]);
      }
      await source.close();
    }
    const live = parseManifest((await get(`${srv.base}/seg.isml/Manifest`)).text);
    for (const [k, segments] of byType) {
      // Together the segments hold every fragment the point stored, once, in order.
      const stored = live.streams.find((s) => s.type === k.split('/')[0])!.fragments.map((c) => c.t);
      expect([k, segments.flat()]).toEqual([k, stored]);
      // Video cuts exactly on the minute (1 s fragments from 0); audio within half a fragment of it.
      const starts = segments.map((s) => Number(s[0]!) / 1e7);
      for (const [i, s] of starts.entries()) expect(Math.abs(s - 60 * i)).toBeLessThanOrEqual(0.5);
    }
    // Served on demand, each presentation starts at 0: its .ism's timeShift (its earliest start, 10 MHz
    // ticks) comes off every time, in the .ismc and in the fragments, whose samples are the files'.
    for (const [i, p] of found.entries()) {
      const shift = BigInt(/<meta name="timeShift" content="(\d+)"/.exec(readFileSync(path.join(p.folder, 'seg.ism'), 'utf8'))?.[1] ?? '0');
      const earliest = [...byType.values()].map((segments) => segments[i]![0]!).reduce((a, b) => (a < b ? a : b));
      expect(shift).toBe(earliest);
      const base = `${srv.base}/${path.relative(srv.root, p.folder).split(path.sep).join('/')}/seg.ism`;
      const served = parseManifest((await get(`${base}/Manifest`)).text);
      expect(served.streams.map((st) => st.fragments[0]!.t).reduce((a, b) => (a < b ? a : b))).toBe(0n);
      for (const st of served.streams) {
        const files = byType.get(`${st.type}/${st.bitrates[0]}`)![i]!;
        expect(st.fragments.map((c) => c.t)).toEqual(files.map((t) => t - shift));
        const f = await get(`${base}/QualityLevels(${st.bitrates[0]})/Fragments(${st.name}=${st.fragments[1]!.t})`);
        expect([f.status, tfxdOf(f.body).time]).toEqual([200, st.fragments[1]!.t]);
      }
    }
  });

  it('an encoder that reconnects and resends, then restarts from 0, is archived once and in order, as the point stores it', async () => {
    srv.define('again.isml', ARCHIVES);
    const ended: string[] = [];
    srv.handler.origin.on('streamEnded', (e) => e.point === 'again.isml' && ended.push(e.reason));
    const drop = async (post: RawPost): Promise<void> => {
      const before = ended.length;
      post.destroy();
      await until(() => ended.length > before);
    };
    const first = await pushSession(srv, 'again.isml', 3, false);
    await drop(first);
    // The reconnect resends the last fragment of each track (duplicates), and goes on.
    const second = new RawPost(`${srv.base}/again.isml/Streams(s)`);
    await second.write(fixture().header);
    await second.write(Buffer.concat(fragmentsOfRound(2).slice(-3)));
    for (let r = 3; r < 5; r++) await second.write(Buffer.concat(fragmentsOfRound(r)));
    await drop(second);
    // A restart: the encoder's times begin at 0 again (encoderRestart=continue shifts them on).
    const third = new RawPost(`${srv.base}/again.isml/Streams(s)`);
    await third.write(fixture().header);
    for (let r = 0; r < 2; r++) await third.write(Buffer.concat(fragmentsOfRound(r)));
    await third.write(fixture().mfra);
    await third.end();
    await until(() => events.find((e) => e.point === 'again.isml' && e.state === 'finished'));
    const live = parseManifest((await get(`${srv.base}/again.isml/Manifest`)).text);
    const { folder } = presentations(path.join(srv.root, 'archives', 'again'))[0]!;
    const source = await openSource([path.join(folder, 'again.ism')]);
    await source.close();
    for (const t of source.tracks) {
      const stream = live.streams.find((st) => st.type === t.info.type)!;
      expect(t.fragments.map((f) => f.time)).toEqual(stream.fragments.map((c) => c.t));
      // 5 rounds, then 2 more after the restart: 28 fragments of 1 s per track, none twice.
      expect(t.fragments).toHaveLength(28);
      expect(new Set(t.fragments.map((f) => f.time)).size).toBe(28);
    }
  });

  it('encoderRestart=reset starts a new session: a second presentation in a folder of its own, even within the same second', async () => {
    srv.define('reset.isml', { ...ARCHIVES, encoderRestart: 'reset' });
    const ended: string[] = [];
    srv.handler.origin.on('streamEnded', (e) => e.point === 'reset.isml' && ended.push(e.reason));
    const first = await pushSession(srv, 'reset.isml', 2, false);
    first.destroy();
    await until(() => ended.length > 0);
    await pushSession(srv, 'reset.isml', 2);
    await until(() => srv.handler.origin.archiver.list('reset.isml').filter((a) => a.state === 'finished').length === 2);
    const [a, b] = srv.handler.origin.archiver.list('reset.isml');
    expect(a!.folder).not.toBe(b!.folder);
    expect([a!.fragments, b!.fragments]).toEqual([24, 24]);
  });

  it('a session being written plays on demand (start-over) from the same handler, at the times of the live window', async () => {
    srv.define('now.isml', ARCHIVES);
    const post = await pushSession(srv, 'now.isml', 3, false);
    await until(() => (srv.handler.origin.archiver.list('now.isml')[0]?.fragments ?? 0) >= 36 && srv.handler.origin.archiver.queue.pending === 0);
    const [status] = srv.handler.origin.archiver.list('now.isml');
    expect(status!.state).toBe('writing');
    const url = archiveJson(status!, srv.root).url as string;
    expect(url).toMatch(/^archives\/now\/[^/]+\/now\.ism\/Manifest$/);
    const vod = await get(`${srv.base}/${url}`);
    expect(vod.status).toBe(200);
    expect(vod.text).not.toContain('IsLive');
    const archived = parseManifest(vod.text);
    const live = parseManifest((await get(`${srv.base}/now.isml/Manifest`)).text);
    for (const stream of live.streams) {
      const times = archived.streams.find((st) => st.type === stream.type)!.fragments.map((c) => c.t);
      // The live window lists what the lookahead allows; the archive has those, at the same times, and more.
      expect(times.slice(0, stream.fragments.length)).toEqual(stream.fragments.map((c) => c.t));
      const last = times[times.length - 1]!;
      const fragmentUrl = `${srv.base}/${url.replace(/Manifest$/, '')}QualityLevels(${stream.bitrates[0]})/Fragments(${stream.name}=${last})`;
      const f = await get(fragmentUrl);
      expect([f.status, tfxdOf(f.body).time]).toEqual([200, last]);
    }
    // More of the session arrives: the presentation grows in place (only the files' new bytes are read).
    const rel = url.replace(/\/Manifest$/, '');
    const opened = await srv.handler.origin.onDemand.get(rel);
    for (let r = 3; r < 5; r++) await post.write(Buffer.concat(fragmentsOfRound(r)));
    await until(() => srv.handler.origin.archiver.list('now.isml')[0]!.fragments >= 60 && srv.handler.origin.archiver.queue.pending === 0);
    const grown = await until(async () => {
      const m = parseManifest((await get(`${srv.base}/${url}`)).text);
      return m.streams[0]!.fragments.length > archived.streams[0]!.fragments.length ? m : undefined;
    });
    expect(grown.streams.map((st) => st.fragments.length)).toEqual([20, 20]);
    expect(await srv.handler.origin.onDemand.get(rel)).toBe(opened);
    await post.write(fixture().mfra);
    await post.end();
  });

  describe('with sparse tracks', () => {
    const S = 10_000_000n;
    /** Where the media starts: the on-demand presentation lists from there as 0. */
    const START = 10n * S;
    const video = videoSpec();
    const captions = { ...captionSpec(1), language: 'eng' };
    const ads = adSpec(2);
    const caption = (i: number): Buffer => Buffer.from(`<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="en"><body><div><p>line ${i}</p></div></body></tt>`);
    const splice = (i: number): Buffer => Buffer.from(`fc302000000000000000fff00506fe000dbba0000a00080${i}`, 'hex');
    /** Captions at 0, 1, 2 and 5 s (a gap); ad markers at 2.5 s (a 2 s break) and 6 s (of unknown duration, 0). */
    const CAPTIONS = [0n, 1n, 2n, 5n].map((s, i) => ({ time: START + s * S, duration: S, body: caption(i) }));
    const ADS = [
      { time: START + 25n * (S / 10n), duration: 2n * S, body: splice(0) },
      { time: START + 6n * S, duration: 0n, body: splice(1) },
    ];
    let folder = '';
    let ismc = '';

    /** The `c` lines of a StreamIndex. */
    const cLines = (text: string, name: string): string[] => {
      const m = new RegExp(`<StreamIndex[^>]* Name="${name}"[^>]*>([\\s\\S]*?)</StreamIndex>`).exec(text);
      return m ? [...m[1]!.matchAll(/<c[ >/][^\n]*/g)].map((c) => c[0]) : [];
    };
    const openTag = (text: string, name: string): string => new RegExp(`<StreamIndex[^>]* Name="${name}"[^>]*>`).exec(text)?.[0] ?? '';
    /** The mdat payload of a fragment response, and its moof's traf. */
    const parts = (body: Buffer): { data: Buffer; traf: ReturnType<typeof findChild> } => {
      const boxes = [...children(body)];
      const moofBox = boxes.find((b) => b.type === 'moof')!;
      const mdatBox = boxes.find((b) => b.type === 'mdat')!;
      return { data: mdatBox.data.subarray(mdatBox.headerSize), traf: findChild(moofBox, 'traf') };
    };

    it('archives captions and ad markers with the media: their files, the .ism params, the .ismc sparse StreamIndexes', async () => {
      srv.define('events/sparse.isml', ARCHIVES);
      const media = new RawPost(`${srv.base}/events/sparse.isml/Streams(media)`);
      await media.write(cat(ftyp(), lsmBox(lsmSmil([video])), moov([video])));
      await media.write(fragment(1, [{ trackId: 1, time: START, samples: [payload(100, 1)] }]));
      // The archive starts with the media: the sparse stream (a POST of its own, as Azure sends it) follows.
      await until(() => (srv.handler.origin.archiver.list('events/sparse.isml')[0]?.fragments ?? 0) >= 1);
      const sparse = new RawPost(`${srv.base}/events/sparse.isml/Streams(sparse)`);
      await sparse.write(cat(ftyp(), lsmBox(lsmSmil([captions, ads])), moov([captions, ads])));
      let n = 100;
      for (const c of CAPTIONS) await sparse.write(fragment(n++, [{ trackId: 1, time: c.time, duration: c.duration, samples: [c.body] }]));
      for (const a of ADS) await sparse.write(fragment(n++, [{ trackId: 2, time: a.time, duration: a.duration, samples: [a.body] }]));
      await until(() => (srv.handler.origin.archiver.list('events/sparse.isml')[0]?.fragments ?? 0) >= 1 + CAPTIONS.length + ADS.length);
      for (let i = 1; i < 8; i++) await media.write(fragment(1 + i, [{ trackId: 1, time: START + BigInt(i) * S, samples: [payload(100, 1 + i)] }]));
      await sparse.end();
      await media.write(fixture().mfra);
      await media.end();
      await until(() => events.find((e) => e.point === 'events/sparse.isml' && e.state === 'finished'));
      await srv.handler.origin.archiver.idle();

      const found = presentations(path.join(srv.root, 'archives', 'events', 'sparse'));
      expect(found).toHaveLength(1);
      folder = found[0]!.folder;
      expect(found[0]!.files).toEqual(['ads_0.ismv', 'captions_1000.ismv', 'sparse.ism', 'sparse.ismc', 'video_800000.ismv']);
      const [status] = srv.handler.origin.archiver.list('events/sparse.isml');
      // Seconds of media: the events do not make the presentation longer.
      expect([status!.tracks, status!.fragments, status!.duration]).toEqual([3, 8 + CAPTIONS.length + ADS.length, 8]);

      // Each sparse file: every event, the duration-0 ones too, with the bytes that were ingested.
      const archived = await openSource([path.join(folder, 'sparse.ism')], { sparse: true });
      try {
        const byName = new Map(archived.tracks.map((t) => [t.info.name, t]));
        expect([...byName.keys()]).toEqual(['video', 'captions', 'ads']);
        for (const [name, list] of [['captions', CAPTIONS], ['ads', ADS]] as const) {
          const t = byName.get(name)!;
          expect(t.fragments.map((f) => [f.time, f.duration])).toEqual(list.map((c) => [c.time, c.duration]));
          for (const [i, c] of list.entries()) expect(await archived.samples(t, i, 1 << 16)).toEqual(c.body);
        }
        expect(byName.get('captions')!.info).toMatchObject({ parent: 'video', manifestOutput: false, fourCC: 'TTML', subtype: 'CAPT', language: 'eng' });
        expect(byName.get('ads')!.info).toMatchObject({ parent: 'video', manifestOutput: true, fourCC: 'DATA', subtype: 'DATA', scheme: SCTE35_SCHEME });
      } finally {
        await archived.close();
      }
      // The encoder's default read of the presentation: the media only.
      const mediaOnly = await openSource([path.join(folder, 'sparse.ism')]);
      await mediaOnly.close();
      expect(mediaOnly.tracks.map((t) => t.info.name)).toEqual(['video']);

      const ism = readFileSync(path.join(folder, 'sparse.ism'), 'utf8');
      expect(ism).toMatch(/<textstream src="captions_1000.ismv" systemBitrate="1000" systemLanguage="eng">[\s\S]*?<param name="parentTrackName" value="video"[\s\S]*?<\/textstream>/);
      expect(ism).toMatch(/<textstream src="ads_0.ismv" systemBitrate="0">[\s\S]*?<param name="Scheme" value="urn:scte:scte35:2013:bin"[\s\S]*?<\/textstream>/);
      expect(ism).toContain(`<meta name="timeShift" content="${START}" />`);

      ismc = readFileSync(path.join(folder, 'sparse.ismc'), 'utf8');
      expect(openTag(ismc, 'captions')).toMatch(/Type="text" Name="captions" Subtype="CAPT" Language="eng" Chunks="4" QualityLevels="1" TimeScale="10000000" ParentStreamIndex="video"/);
      expect(openTag(ismc, 'captions')).not.toContain('ManifestOutput');
      expect(openTag(ismc, 'ads')).toMatch(/ParentStreamIndex="video" ManifestOutput="TRUE"/);
      // Times less the media's start; the gap says its t.
      expect(cLines(ismc, 'captions')).toEqual(['<c t="0" d="10000000"/>', '<c d="10000000"/>', '<c d="10000000"/>', '<c t="50000000" d="10000000"/>']);
      expect(cLines(ismc, 'ads')).toEqual(ADS.map((a) => `<c t="${a.time - START}" d="${a.duration}"><f i="0">${a.body.toString('base64')}</f></c>`));
      expect(parseManifest(ismc).root.Duration).toBe(String(8n * S));
    });

    it('serves the archive on demand: the manifest lists the sparse StreamIndexes, Fragments(captions=t) serves the ingested bytes without tfrf', async () => {
      const base = `${srv.base}/${path.relative(srv.root, folder).split(path.sep).join('/')}/sparse.ism`;
      const manifest = await get(`${base}/Manifest`);
      expect(manifest.status).toBe(200);
      expect(manifest.text).toBe(ismc);
      for (const [name, bitrate, list] of [['captions', 1000, CAPTIONS], ['ads', 0, ADS]] as const) {
        for (const c of list) {
          const t = c.time - START;
          const r = await get(`${base}/QualityLevels(${bitrate})/Fragments(${name}=${t})`);
          expect([r.status, r.headers['content-type']]).toEqual([200, 'application/mp4']);
          const { data, traf } = parts(r.body);
          expect(data.equals(c.body)).toBe(true);
          expect(findChild(traf!, 'uuid', UUID_TFRF)).toBeUndefined();
          expect(parseTfxd(findChild(traf!, 'uuid', UUID_TFXD)!)).toMatchObject({ time: t, duration: c.duration });
        }
      }
      // Between events there is nothing to serve.
      expect((await get(`${base}/QualityLevels(1000)/Fragments(captions=30000000)`)).status).toBe(404);
      // Without its .ismc the presentation's manifest is rendered from the files: the same document.
      const copy = path.join(srv.root, 'vod', 'sparse-copy');
      mkdirSync(path.dirname(copy), { recursive: true });
      cpSync(folder, copy, { recursive: true });
      rmSync(path.join(copy, 'sparse.ismc'));
      const rendered = await get(`${srv.base}/vod/sparse-copy/sparse.ism/Manifest`);
      expect([rendered.status, rendered.text]).toEqual([200, ismc]);
    });

    it('an archive with sparse tracks left unfinished is mended: the same .ismc, the samples of <f> read back from its file', async () => {
      const root = path.join(srv.root, 'crashed');
      const copy = path.join(root, 'sparse');
      mkdirSync(root, { recursive: true });
      cpSync(folder, copy, { recursive: true });
      rmSync(path.join(copy, 'sparse.ismc'));
      // Each file as a killed process leaves it: no mfra, and half a fragment more of the ad track.
      for (const f of ['ads_0.ismv', 'captions_1000.ismv', 'video_800000.ismv']) {
        const file = path.join(copy, f);
        const bytes = readFileSync(file);
        truncateSync(file, bytes.length - bytes.readUInt32BE(bytes.length - 4));
      }
      const extra = fragment(9, [{ trackId: 1, time: START + 7n * S, duration: 0n, samples: [splice(9)] }]);
      writeFileSync(path.join(copy, 'ads_0.ismv'), extra.subarray(0, extra.length - 3), { flag: 'a' });
      writeFileSync(path.join(root, JOURNAL), JSON.stringify([copy]));
      const recovered: ArchiveEvent[] = [];
      const archiver = new Archiver(
        { root, base: srv.root, queueBytes: 1 << 20, syncInterval: 1000, manifest: srv.handler.origin.options.manifest, now: () => Date.now() },
        (e) => recovered.push(e),
      );
      await archiver.recovered;
      await archiver.close();
      expect(recovered).toEqual([expect.objectContaining({ state: 'finished', folder: copy })]);
      expect(readFileSync(path.join(copy, 'sparse.ismc'), 'utf8')).toBe(ismc);
      const types = [...children(readFileSync(path.join(copy, 'ads_0.ismv')))].map((b) => b.type);
      expect(types.slice(-3)).toEqual(['moof', 'mdat', 'mfra']);
    });
  });

  it('archiveSegmentLength under 60 s is refused with the reason', async () => {
    srv.define('short.isml', { ...ARCHIVES, archiveSegmentLength: '30' });
    const r = await get(`${srv.base}/short.isml/Manifest`);
    expect(r.status).toBe(500);
    expect(r.text).toContain('at least 60 seconds');
  });
});

describe('an archive that cannot be written', () => {
  let srv: TestServer;
  const events: ArchiveEvent[] = [];

  afterEach(async () => {
    await srv?.close();
    events.length = 0;
  });

  const start = async (options: Parameters<typeof startServer>[0]): Promise<void> => {
    srv = await startServer(options);
    srv.handler.origin.on('archive', (e) => events.push(e));
  };

  it('a folder that cannot be made (a file in the way) fails the archive with its code; the point serves on', async () => {
    await start({});
    writeFileSync(path.join(srv.root, 'archives'), 'not a folder');
    srv.define('ch.isml', ARCHIVES);
    await pushSession(srv, 'ch.isml', 2, false);
    const failed = await until(() => events.find((e) => e.state === 'failed'));
    expect(failed.code).toMatch(/^(ENOTDIR|EEXIST)$/);
    expect((await get(`${srv.base}/ch.isml/Manifest`)).status).toBe(200);
    expect(srv.handler.origin.archiver.list('ch.isml')[0]?.state).toBe('failed');
  });

  it('a disk that falls behind the write queue stops the archive (ERR_ARCHIVE_BEHIND), never the ingest', async () => {
    await start({ archiveQueueBytes: 4096 });
    srv.define('ch.isml', ARCHIVES);
    await pushSession(srv, 'ch.isml', 3, false);
    const failed = await until(() => events.find((e) => e.state === 'failed'));
    expect(failed.code).toBe('ERR_ARCHIVE_BEHIND');
    const m = parseManifest((await get(`${srv.base}/ch.isml/Manifest`)).text);
    expect(m.streams[0]!.fragments.length).toBeGreaterThan(8);
    await srv.handler.origin.archiver.idle();
    expect(srv.handler.origin.archiver.queue.pending).toBe(0);
  });
});
