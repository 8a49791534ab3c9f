/**
 * On-demand presentations and their catalog, on small `.ismv` files built in code: the client manifest
 * (built, or the `.ismc`'s bytes), lookups by exact time, fragment responses (tfxd at the listed time,
 * a tfrf of the input dropped, the file's samples), `src` kept inside the root, and the catalog's
 * re-check, reopen on change, coalesced opens, bounded LRU and failures remembered only for a while.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isSmoothError } from '../../../lib/errors';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import { UUID_TFRF, UUID_TFXD, parseTfxd } from '../../../lib/mp4/boxes';
import { Box, children, findChild } from '../../../lib/mp4/reader';
import { OnDemandCatalog, isPresentationPath } from '../../../lib/ondemand/catalog';
import { OnDemandPresentation } from '../../../lib/ondemand/presentation';
import { FilePool } from '../../../lib/ondemand/pool';
import { cat, fragment, ftyp, mfra, moov, payload, tfrf } from '../../helpers/fmp4';
import { AUDIO_SAMPLE, FRAGMENT, ismv, tracksOf } from '../../helpers/ismv';

let root: string;
let now = 0;
const clock = { now: () => now };
const formatter = new SmoothManifestFormatter();
const catalogs: OnDemandCatalog[] = [];
const pools: FilePool[] = [];

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'live-smooth-od-'));
  now = 1_000_000;
});
afterEach(async () => {
  await Promise.all([...catalogs.splice(0), ...pools.splice(0)].map((c) => c.close()));
  rmSync(root, { recursive: true, force: true });
  jest.restoreAllMocks();
});

function write(rel: string, data: Buffer | string): string {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, data);
  return file;
}

/** A `.ism` naming video tracks 1 and 2 and audio track 3 of `src`. */
function ism(src = 'clip.ismv', metas: Record<string, string> = {}): string {
  const head = Object.entries(metas).map(([n, c]) => `<meta name="${n}" content="${c}"/>`).join('');
  return `<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><head>${head}</head><body><switch>
  <video src="${src}" systemBitrate="300000"><param name="trackID" value="1" valuetype="data"/></video>
  <video src="${src}" systemBitrate="150000"><param name="trackID" value="2" valuetype="data"/></video>
  <audio src="${src}" systemBitrate="64000"><param name="trackID" value="3" valuetype="data"/></audio>
</switch></body></smil>`;
}

function catalog(o: Partial<{ maxPresentations: number; maxOpenFiles: number; checkInterval: number }> = {}): OnDemandCatalog {
  const c = new OnDemandCatalog({
    root,
    formatter,
    maxPresentations: o.maxPresentations ?? 8,
    maxOpenFiles: o.maxOpenFiles ?? 4,
    checkInterval: o.checkInterval ?? 1000,
    maxBoxSize: 1 << 24,
    clock,
  });
  catalogs.push(c);
  return c;
}

function open(rel: string): Promise<OnDemandPresentation> {
  const pool = new FilePool(4);
  pools.push(pool);
  return OnDemandPresentation.open(path.join(root, rel), { root, files: pool, formatter, maxBoxSize: 1 << 24 });
}

function trafOf(moof: Buffer): Box {
  const m = [...children(moof)][0]!;
  return findChild(m, 'traf')!;
}

describe('OnDemandPresentation', () => {
  it('renders the client manifest: not live, Duration, StreamIndexes by type, bitrates ascending, priming clamped', async () => {
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000], fragments: 3 }));
    write('vod/a.ism', ism());
    const p = await open('vod/a.ism');
    const text = p.manifest.body.toString();
    expect(p.manifest.fromFile).toBe(false);
    expect(text).not.toContain('IsLive');
    expect(text).toContain(`Duration="${3n * FRAGMENT}"`);
    expect(p.streams.map((s) => [s.type, s.tracks.map((t) => t.info.bitrate)])).toEqual([
      ['video', [150_000, 300_000]],
      ['audio', [64_000]],
    ]);
    // The audio's first fragment starts one sample before 0: listed from 0, its end kept.
    expect(p.streams[1]!.tracks[0]!.listed[0]).toEqual({ time: 0n, duration: FRAGMENT });
    expect(p.streams[1]!.tracks[0]!.source.fragments[0]!.time).toBe(-AUDIO_SAMPLE);
    expect(text.match(/<c /g)).toHaveLength(6);
  });

  it('finds fragments by exact time and serves the moof with its tfxd and the mdat as in the file', async () => {
    const bytes = ismv({ video: [300_000, 150_000], fragments: 3 });
    write('vod/clip.ismv', bytes);
    write('vod/a.ism', ism());
    const p = await open('vod/a.ism');
    expect(p.lookup(150_000, [], 'video', FRAGMENT + 1n)).toEqual({ status: 'not-found', reason: `no fragment of video at ${FRAGMENT + 1n}` });
    expect(p.lookup(1, [], 'video', 0n)).toMatchObject({ status: 'not-found', reason: 'no quality level 1 for video' });
    expect(p.lookup(150_000, [['lang', 'en']], 'video', 0n)).toMatchObject({ status: 'not-found' });
    expect(p.lookup(150_000, [], 'subs', 0n)).toMatchObject({ status: 'not-found', reason: 'no track named subs' });
    const found = p.lookup(64_000, [], 'audio', 0n);
    if (found.status !== 'ok') throw new Error(found.reason);
    const f = await p.read(found);
    expect(parseTfxd(findChild(trafOf(f.moof), 'uuid', UUID_TFXD)!)).toMatchObject({ time: 0n, duration: FRAGMENT });
    // The mdat is the file's own box, byte for byte.
    expect(bytes.indexOf(f.mdat)).toBeGreaterThan(0);
    const a = p.lookup(300_000, [], 'video', FRAGMENT);
    const b = p.lookup(150_000, [], 'video', FRAGMENT);
    expect(a.status === 'ok' && b.status === 'ok' && a.etag !== b.etag).toBe(true);
  });

  it('serves times less the .ism\'s timeShift: lookups, the manifest and the fragment\'s tfxd; a bad value refuses the presentation', async () => {
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000], fragments: 3 }));
    write('vod/s.ism', ism('clip.ismv', { timeShift: String(FRAGMENT) }));
    const p = await open('vod/s.ism');
    expect(p.streams[0]!.tracks[0]!.listed.map((f) => f.time)).toEqual([0n, FRAGMENT]);
    expect(p.lookup(150_000, [], 'video', 2n * FRAGMENT).status).toBe('not-found');
    const found = p.lookup(150_000, [], 'video', FRAGMENT);
    if (found.status !== 'ok') throw new Error(found.reason);
    const f = await p.read(found);
    expect(parseTfxd(findChild(trafOf(f.moof), 'uuid', UUID_TFXD)!)).toMatchObject({ time: FRAGMENT, duration: FRAGMENT });
    expect(p.manifest.body.toString()).toContain(`Duration="${2n * FRAGMENT}"`);
    for (const bad of ['-1', 'x', '99999999999999999999']) {
      write('vod/bad.ism', ism('clip.ismv', { timeShift: bad }));
      await expect(open('vod/bad.ism')).rejects.toThrow(/timeShift/);
    }
  });

  it.each([
    ['one traf per moof', false],
    ['several trafs per moof', true],
  ])('drops a tfrf the input carries (%s)', async (_name, multi) => {
    const tracks = tracksOf({ video: [300_000] });
    const parts: Buffer[] = [ftyp(), moov(tracks)];
    let seq = 1;
    for (let i = 0; i < 3; i++) {
      const trafs = tracks.map((t) => ({
        trackId: t.trackId,
        time: BigInt(i) * FRAGMENT,
        duration: FRAGMENT,
        samples: [payload(100, t.trackId * 10 + i), payload(80, t.trackId * 10 + i + 5)],
        extra: [tfrf([{ time: BigInt(i + 1) * FRAGMENT, duration: FRAGMENT }])],
      }));
      if (multi) parts.push(fragment(seq++, trafs));
      else for (const t of trafs) parts.push(fragment(seq++, [t]));
    }
    write('vod/tfrf.ismv', cat(...parts, mfra()));
    write('vod/t.ism', `<smil><body><switch>
      <video src="tfrf.ismv" systemBitrate="300000"><param name="trackID" value="1"/></video>
      <audio src="tfrf.ismv" systemBitrate="64000"><param name="trackID" value="2"/></audio></switch></body></smil>`);
    const p = await open('vod/t.ism');
    for (const name of ['video', 'audio']) {
      const found = p.lookup(name === 'video' ? 300_000 : 64_000, [], name, FRAGMENT);
      if (found.status !== 'ok') throw new Error(found.reason);
      const f = await p.read(found);
      const traf = trafOf(f.moof);
      expect(findChild(traf, 'uuid', UUID_TFRF)).toBeUndefined();
      expect(parseTfxd(findChild(traf, 'uuid', UUID_TFXD)!)).toMatchObject({ time: FRAGMENT, duration: FRAGMENT });
      expect(f.mdat.length).toBe(8 + 180);
    }
  });

  it('serves the .ismc as its bytes: the one clientManifestRelativePath names, else <name>.ismc', async () => {
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000] }));
    write('vod/a.ism', ism());
    write('vod/a.ismc', '<SmoothStreamingMedia from="a.ismc"/>');
    write('vod/b.ism', ism('clip.ismv', { clientManifestRelativePath: 'sub/other.ismc' }));
    write('vod/sub/other.ismc', '<SmoothStreamingMedia from="other"/>');
    const a = await open('vod/a.ism');
    expect([a.manifest.fromFile, a.manifest.body.toString()]).toEqual([true, '<SmoothStreamingMedia from="a.ismc"/>']);
    const b = await open('vod/b.ism');
    expect(b.manifest.body.toString()).toBe('<SmoothStreamingMedia from="other"/>');
    expect(a.manifest.etag).not.toBe(b.manifest.etag);
  });

  it('refuses media files and client manifests outside the root, however they are spelled', async () => {
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000] }));
    writeFileSync(path.join(root, '..', `${path.basename(root)}-outside.ismv`), ismv({ video: [300_000, 150_000] }));
    const outside = `../../${path.basename(root)}-outside.ismv`;
    write('vod/up.ism', ism(outside));
    write('vod/abs.ism', ism(path.join(root, '..', `${path.basename(root)}-outside.ismv`)));
    write('vod/c.ism', ism('clip.ismv', { clientManifestRelativePath: '../../x.ismc' }));
    try {
      await expect(open('vod/up.ism')).rejects.toThrow(/^on-demand presentation vod\/up\.ism: media file .* lies outside the media root$/);
      await expect(open('vod/abs.ism')).rejects.toThrow(/lies outside the media root/);
      await expect(open('vod/c.ism')).rejects.toThrow(/the client manifest lies outside the media root/);
    } finally {
      rmSync(path.join(root, '..', `${path.basename(root)}-outside.ismv`), { force: true });
    }
  });
});

describe('OnDemandCatalog', () => {
  beforeEach(() => {
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000], fragments: 3 }));
    write('vod/a.ism', ism());
  });

  it('accepts only plain relative .ism paths; a missing file is undefined', async () => {
    expect(['a.ism', 'x/y/a.ISM'].every(isPresentationPath)).toBe(true);
    expect(['a.isml', '../a.ism', 'x//a.ism', '/a.ism', 'x/./a.ism', 'c:a.ism', 'x\\a.ism'].some(isPresentationPath)).toBe(false);
    const c = catalog();
    await expect(c.get('../vod/a.ism')).rejects.toMatchObject({ code: 'ERR_TRAVERSAL' });
    await expect(c.get('vod/none.ism')).resolves.toBeUndefined();
  });

  it('trusts an open presentation for checkInterval, then re-checks and reopens it when a file changed', async () => {
    const c = catalog();
    const p1 = await c.get('vod/a.ism');
    expect(p1).toBeDefined();
    now += 999;
    expect(await c.get('vod/a.ism')).toBe(p1);
    now += 1;
    expect(await c.get('vod/a.ism')).toBe(p1); // re-checked: nothing changed
    write('vod/clip.ismv', ismv({ video: [300_000, 150_000], fragments: 4 }));
    expect(await c.get('vod/a.ism')).toBe(p1); // within the interval of the last check
    now += 1000;
    const p2 = await c.get('vod/a.ism');
    expect(p2).not.toBe(p1);
    expect(p2!.lookup(300_000, [], 'video', 3n * FRAGMENT).status).toBe('ok');
    // An .ismc that appears is a change too; so is a new modification time alone.
    write('vod/a.ismc', '<SmoothStreamingMedia/>');
    now += 1000;
    const p3 = await c.get('vod/a.ism');
    expect(p3!.manifest.fromFile).toBe(true);
    utimesSync(path.join(root, 'vod/a.ism'), new Date(5000), new Date(5000));
    now += 1000;
    expect(await c.get('vod/a.ism')).not.toBe(p3);
    // A removed .ism is a missing presentation.
    rmSync(path.join(root, 'vod/a.ism'));
    now += 1000;
    expect(await c.get('vod/a.ism')).toBeUndefined();
  });

  it('coalesces concurrent opens of one presentation', async () => {
    const spy = jest.spyOn(OnDemandPresentation, 'open');
    const c = catalog();
    const got = await Promise.all([c.get('vod/a.ism'), c.get('vod/a.ism'), c.get('vod/a.ism')]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(new Set(got).size).toBe(1);
  });

  it('remembers a failure for checkInterval only, with a reason naming the file', async () => {
    write('vod/broken.ism', ism('later.ismv'));
    const spy = jest.spyOn(OnDemandPresentation, 'open');
    const c = catalog();
    const first = await c.get('vod/broken.ism').catch((e: unknown) => e);
    expect(isSmoothError(first) && first.code).toBe('ERR_BAD_DEFINITION');
    expect((first as Error).message).toMatch(/^on-demand presentation vod\/broken\.ism: vod\/later\.ismv: cannot open/);
    await expect(c.get('vod/broken.ism')).rejects.toBe(first);
    expect(spy).toHaveBeenCalledTimes(1);
    write('vod/later.ismv', ismv({ video: [300_000, 150_000] }));
    now += 1000;
    await expect(c.get('vod/broken.ism')).resolves.toBeDefined();
    expect(spy).toHaveBeenCalledTimes(2);
  });

  it('keeps at most maxPresentations open, closing the least recently used', async () => {
    write('vod/b.ism', ism());
    write('vod/c.ism', ism());
    const c = catalog({ maxPresentations: 2 });
    const a = await c.get('vod/a.ism');
    const b = await c.get('vod/b.ism');
    expect(await c.get('vod/a.ism')).toBe(a); // a is now the most recent
    await c.get('vod/c.ism');
    expect(c.size).toBe(2);
    expect(await c.get('vod/a.ism')).toBe(a);
    const b2 = await c.get('vod/b.ism');
    expect(b2).not.toBe(b);
    // Reads still work through the shared, bounded pool.
    const found = b2!.lookup(64_000, [], 'audio', FRAGMENT);
    if (found.status !== 'ok') throw new Error(found.reason);
    await expect(b2!.read(found)).resolves.toMatchObject({ mdat: expect.any(Buffer) });
    expect(c.pool.size).toBeLessThanOrEqual(4);
  });
});
