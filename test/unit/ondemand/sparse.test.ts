/**
 * Sparse tracks (captions, SCTE-35 ad markers) of an on-demand presentation, as a live archive keeps
 * them: a file per track named by `<textstream>`s with `parentTrackName`. They are text StreamIndexes
 * with their `ParentStreamIndex`, listed with their gaps (explicit `t`) and their events of duration 0,
 * the samples in `<f>` where `manifestOutput` asks; `Fragments(captions=t)` serves the file's bytes
 * without tfrf; the encoder's default read of the same `.ism` leaves them out.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Source, openSource } from '../../../lib/ismv/source';
import { onDemandSnapshot, shiftedFragment } from '../../../lib/manifest/ondemand';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import { MANIFEST_OUTPUT_MAX, SCTE35_SCHEME, TrackInfo } from '../../../lib/model';
import { UUID_TFRF, UUID_TFXD, parseTfxd } from '../../../lib/mp4/boxes';
import { children, findChild } from '../../../lib/mp4/reader';
import { FilePool } from '../../../lib/ondemand/pool';
import { OnDemandPresentation } from '../../../lib/ondemand/presentation';
import { TrackSpec, cat, fragment, ftyp, lsmBox, lsmSmil, mfra, moov, payload } from '../../helpers/fmp4';
import { adSpec, captionSpec, videoSpec } from '../../helpers/sparse';

const S = 10_000_000n;
const formatter = new SmoothManifestFormatter();
let root: string;
const pools: FilePool[] = [];

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'live-smooth-od-sparse-'));
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  rmSync(root, { recursive: true, force: true });
});

const video = videoSpec(1, 300000);
const captions = captionSpec(1, { manifestOutput: 'false' });
const ads = adSpec(1, { FourCC: 'DATA' });

interface Event {
  time: bigint;
  duration: bigint;
  body: Buffer;
}

/** An archive-like file of one track: ftyp, its Live Server Manifest, moov, a fragment per event, and (when `finished`) an mfra. */
function trackFile(spec: TrackSpec, events: readonly Event[], finished = true): Buffer {
  const parts = [ftyp(), lsmBox(lsmSmil([spec])), moov([spec])];
  events.forEach((e, i) => parts.push(fragment(i + 1, [{ trackId: 1, time: e.time, duration: e.duration, samples: [e.body] }])));
  if (finished) parts.push(mfra());
  return cat(...parts);
}

/** A `<switch>` element of an `.ism` naming `src` with the spec's params. */
function element(spec: TrackSpec, src: string): string {
  const tag = spec.kind === 'text' ? 'textstream' : spec.kind;
  const params = Object.entries({ trackID: '1', ...spec.params })
    .map(([n, v]) => `<param name="${n}" value="${v}" valuetype="data"/>`)
    .join('');
  return `<${tag} src="${src}" systemBitrate="${spec.bitrate}">${params}</${tag}>`;
}

function ism(elements: string[], metas: Record<string, string> = {}): string {
  const head = Object.entries(metas).map(([n, c]) => `<meta name="${n}" content="${c}"/>`).join('');
  return `<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><head>${head}</head><body><switch>${elements.join('')}</switch></body></smil>`;
}

function write(rel: string, data: Buffer | string): string {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, data);
  return file;
}

function open(rel: string): Promise<OnDemandPresentation> {
  const pool = new FilePool(4);
  pools.push(pool);
  return OnDemandPresentation.open(path.join(root, rel), { root, files: pool, formatter, maxBoxSize: 1 << 24 });
}

const videoEvents = (from: bigint, count: number): Event[] =>
  Array.from({ length: count }, (_, i) => ({ time: from + BigInt(i) * S, duration: S, body: payload(200, i + 1) }));
const caption = (i: number): Buffer => Buffer.from(`<tt xmlns="http://www.w3.org/ns/ttml"><body><p>${i}</p></body></tt>`);
const splice = (i: number): Buffer => Buffer.from(`fc302000000000000000fff00506fe000dbba0000a00080${i}`, 'hex');

/** The `c` lines of a StreamIndex. */
function cLines(text: string, name: string): string[] {
  const m = new RegExp(`<StreamIndex[^>]* Name="${name}"[^>]*>([\\s\\S]*?)</StreamIndex>`).exec(text);
  return m ? [...m[1]!.matchAll(/<c[ >/][^\n]*/g)].map((c) => c[0]) : [];
}

describe('an on-demand presentation with sparse tracks', () => {
  /** Video 10..16 s; captions at 10, 11 and 14 s; ad markers at 12.5 s (duration 0) and 15 s (1 s). */
  function presentation(metas: Record<string, string> = { timeShift: String(10n * S) }): { captions: Event[]; ads: Event[] } {
    const c = [10n, 11n, 14n].map((s, i) => ({ time: s * S, duration: S, body: caption(i) }));
    const a = [
      { time: 125n * (S / 10n), duration: 0n, body: splice(0) },
      { time: 15n * S, duration: S, body: splice(1) },
    ];
    write('vod/video.ismv', trackFile(video, videoEvents(10n * S, 6)));
    write('vod/captions.ismv', trackFile(captions, c));
    write('vod/ads.ismv', trackFile(ads, a));
    write('vod/p.ism', ism([element(video, 'video.ismv'), element(captions, 'captions.ismv'), element(ads, 'ads.ismv')], metas));
    return { captions: c, ads: a };
  }

  it('lists them as text StreamIndexes with their parent: gaps with t, events of duration 0, <f> where ManifestOutput', async () => {
    const { ads: a } = presentation();
    const p = await open('vod/p.ism');
    expect(p.manifest.fromFile).toBe(false);
    const text = p.manifest.body.toString();
    expect(p.streams.map((s) => s.name)).toEqual(['video', 'captions', 'ads']);
    expect(text).toMatch(/<StreamIndex Type="text" Name="captions" Subtype="CAPT" Chunks="3" QualityLevels="1" TimeScale="10000000" ParentStreamIndex="video" Url=/);
    expect(text).toMatch(/<StreamIndex Type="text" Name="ads" Subtype="DATA" Chunks="2" QualityLevels="1" TimeScale="10000000" ParentStreamIndex="video" ManifestOutput="TRUE" Url=/);
    expect(cLines(text, 'captions')).toEqual(['<c t="0" d="10000000"/>', '<c d="10000000"/>', '<c t="40000000" d="10000000"/>']);
    expect(cLines(text, 'ads')).toEqual([
      `<c t="25000000" d="0"><f i="0">${a[0]!.body.toString('base64')}</f></c>`,
      `<c t="50000000" d="10000000"><f i="0">${a[1]!.body.toString('base64')}</f></c>`,
    ]);
    // The media says how long the presentation is.
    expect(text).toContain(`Duration="${6n * S}"`);
    expect(p.streams[2]!.tracks[0]!.info).toMatchObject({ parent: 'video', manifestOutput: true, scheme: SCTE35_SCHEME, fourCC: 'DATA' });
  });

  it('serves a sparse fragment at its listed time: the file\'s sample, a tfxd (duration 0 kept), no tfrf', async () => {
    const { captions: c, ads: a } = presentation();
    const p = await open('vod/p.ism');
    for (const [name, bitrate, time, event] of [
      ['captions', 1000, 40_000_000n, c[2]!],
      ['ads', 0, 25_000_000n, a[0]!],
    ] as const) {
      const found = p.lookup(bitrate, [], name, time);
      if (found.status !== 'ok') throw new Error(found.reason);
      const f = await p.read(found);
      const traf = findChild([...children(f.moof)][0]!, 'traf')!;
      expect(parseTfxd(findChild(traf, 'uuid', UUID_TFXD)!)).toMatchObject({ time, duration: event.duration });
      expect(findChild(traf, 'uuid', UUID_TFRF)).toBeUndefined();
      expect(f.mdat.subarray(8).equals(event.body)).toBe(true);
    }
    expect(p.lookup(1000, [], 'captions', 20_000_000n)).toEqual({ status: 'not-found', reason: 'no fragment of captions at 20000000' });
  });

  it('the .ismc, when there is one, is served as its bytes; the encoder\'s default read leaves the sparse tracks out', async () => {
    presentation();
    write('vod/p.ismc', '<SmoothStreamingMedia/>');
    const p = await open('vod/p.ism');
    expect(p.manifest.body.toString()).toBe('<SmoothStreamingMedia/>');
    expect(p.lookup(0, [], 'ads', 25_000_000n).status).toBe('ok');
    const source = await openSource([path.join(root, 'vod/p.ism')]);
    await source.close();
    expect(source.tracks.map((t) => t.info.name)).toEqual(['video']);
    // A file of a sparse track alone is no input for the encoder either.
    await expect(openSource([path.join(root, 'vod/ads.ismv')])).rejects.toThrow(/only sparse ones/);
  });

  it('a sparse event before the start is left out, one across it listed from 0; a sample too large for <f> is not carried', async () => {
    const big = Buffer.alloc(MANIFEST_OUTPUT_MAX + 1, 0xfc);
    write('vod/video.ismv', trackFile(video, videoEvents(10n * S, 3)));
    write('vod/ads.ismv', trackFile(ads, [
      { time: 8n * S, duration: 0n, body: splice(0) },
      { time: 9n * S, duration: 2n * S, body: splice(1) },
      { time: 11n * S, duration: 0n, body: big },
    ]));
    write('vod/p.ism', ism([element(video, 'video.ismv'), element(ads, 'ads.ismv')], { timeShift: String(10n * S) }));
    const p = await open('vod/p.ism');
    expect(cLines(p.manifest.body.toString(), 'ads')).toEqual([`<c t="0" d="10000000"><f i="0">${splice(1).toString('base64')}</f></c>`, '<c d="0"/>']);
    expect(p.lookup(0, [], 'ads', 10_000_000n).status).toBe('ok');
  });

  it('an .ism of sparse tracks alone is refused; a sparse track with no event in the presentation lists none; media never lasts 0', async () => {
    write('vod/video.ismv', trackFile(video, videoEvents(10n * S, 2)));
    write('vod/captions.ismv', trackFile(captions, [{ time: 5n * S, duration: S, body: caption(0) }]));
    write('vod/only.ism', ism([element(captions, 'captions.ismv')]));
    await expect(open('vod/only.ism')).rejects.toThrow(/lists no video or audio tracks/);
    write('vod/e.ism', ism([element(video, 'video.ismv'), element(captions, 'captions.ismv')], { timeShift: String(10n * S) }));
    const p = await open('vod/e.ism');
    expect(p.manifest.body.toString()).toMatch(/Name="captions"[^>]* Chunks="0"/);
    expect(cLines(p.manifest.body.toString(), 'captions')).toEqual([]);
    // Only an event may last 0 ticks.
    write('vod/zero.ismv', trackFile(video, [...videoEvents(10n * S, 1), { time: 11n * S, duration: 0n, body: payload(10, 1) }]));
    write('vod/zero.ism', ism([element(video, 'zero.ismv')]));
    await expect(open('vod/zero.ism')).rejects.toThrow(/track 1: a fragment's duration is 0/);
  });

  it('being written (start-over), it grows with its events, whose samples are read once for <f>', async () => {
    const a = [{ time: 2n * S, duration: 0n, body: splice(0) }];
    write('vod/video.ismv', trackFile(video, videoEvents(0n, 3), false));
    write('vod/ads.ismv', trackFile(ads, a, false));
    write('vod/g.ism', ism([element(video, 'video.ismv'), element(ads, 'ads.ismv')]));
    const reads = jest.spyOn(Source.prototype, 'samples');
    const p = await open('vod/g.ism');
    expect(cLines(p.manifest.body.toString(), 'ads')).toHaveLength(1);
    appendFileSync(path.join(root, 'vod/ads.ismv'), fragment(9, [{ trackId: 1, time: 3n * S, duration: 0n, samples: [splice(1)] }]));
    expect(await p.refresh()).toBe('grown');
    expect(reads).toHaveBeenCalledTimes(2);
    reads.mockRestore();
    expect(cLines(p.manifest.body.toString(), 'ads')).toEqual([
      `<c t="20000000" d="0"><f i="0">${splice(0).toString('base64')}</f></c>`,
      `<c t="30000000" d="0"><f i="0">${splice(1).toString('base64')}</f></c>`,
    ]);
  });
});

describe('onDemandSnapshot and shiftedFragment', () => {
  const info = (o: Partial<TrackInfo>): TrackInfo => ({
    type: 'text',
    name: 'ads',
    bitrate: 0,
    customAttributes: [],
    fourCC: 'DATA',
    codecPrivateData: '',
    timescale: 1000,
    subtype: 'DATA',
    language: undefined,
    ...o,
  });

  it('lists every start of a sparse StreamIndex\'s QualityLevels, the first to have it winning', () => {
    const p1 = Buffer.from('a');
    const p2 = Buffer.from('b');
    const snap = onDemandSnapshot([
      { info: info({ type: 'video', name: 'video', bitrate: 1, fourCC: 'H264' }), fragments: [{ time: 0n, duration: 10_000n }] },
      { info: info({ parent: 'video', manifestOutput: true, bitrate: 2 }), fragments: [{ time: 1000n, duration: 0n, payload: p2 }, { time: 3000n, duration: 0n }] },
      { info: info({ parent: 'video', manifestOutput: true, bitrate: 1 }), fragments: [{ time: 1000n, duration: 0n, payload: p1 }, { time: 2000n, duration: 0n }] },
      // A last event beyond the media does not lengthen the presentation.
      { info: info({ name: 'late', parent: 'video' }), fragments: [{ time: 50_000n, duration: 1000n }] },
    ]);
    expect(snap.duration).toBe(100_000_000n);
    const ads = snap.streams.find((s) => s.name === 'ads')!;
    expect([ads.parent, ads.manifestOutput, ads.qualityLevels.map((q) => q.bitrate)]).toEqual(['video', true, [1, 2]]);
    expect(ads.fragments.map((f) => [f.time, f.payload])).toEqual([[1000n, p1], [2000n, undefined], [3000n, undefined]]);
    expect(snap.streams.find((s) => s.name === 'video')!.parent).toBeUndefined();
  });

  it('shifts a fragment: clamped at 0 with its end kept, left out when it ends by 0; a sparse event of duration 0 kept from 0 on', () => {
    expect(shiftedFragment(100n, 50n, 120n, false)).toEqual({ time: 0n, duration: 30n });
    expect(shiftedFragment(100n, 20n, 120n, true)).toBeUndefined();
    expect(shiftedFragment(100n, 0n, 120n, true)).toBeUndefined();
    expect(shiftedFragment(120n, 0n, 120n, true)).toEqual({ time: 0n, duration: 0n });
    expect(shiftedFragment(120n, 0n, 120n, false)).toBeUndefined();
  });
});
