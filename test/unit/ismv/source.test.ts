/**
 * The simulated encoder's input and header: files read into tracks and fragment indexes, `.ism`
 * presentations, the header boxes (ftyp, Live Server Manifest, moov) accepted by the library's own ingest
 * parser with the same track descriptions, escaping, fragments built per loop, and a clear error naming
 * the file for every bad input.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open as fsOpen } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { buildFragment } from '../../../lib/ismv/fragment';
import { streamHeader } from '../../../lib/ismv/header';
import { liveServerManifestText, renderSmil } from '../../../lib/ismv/lsm';
import { FileHandles, Source, openSource } from '../../../lib/ismv/source';
import { LoopTimeline } from '../../../lib/encoder/timeline';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import { parseLiveServerManifest } from '../../../lib/ingest/header';
import { UUID_LIVE_SERVER_MANIFEST, liveServerManifestText as lsmText } from '../../../lib/mp4/boxes';
import { children } from '../../../lib/mp4/reader';
import { box, cat, fragment, fullBox, ftyp, lsmBox, lsmSmil, mfra, moov, payload } from '../../helpers/fmp4';
import { AUDIO_SAMPLE, ismv, tracksOf } from '../../helpers/ismv';

let dir: string;
const opened: Source[] = [];
beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-source-'))));
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, data: Buffer | string): string {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
}

async function open(...files: string[]): Promise<Source> {
  const s = await openSource(files);
  opened.push(s);
  return s;
}

function ingest(bytes: Buffer): IngestEvent[] {
  const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
  return [...parser.push(bytes), ...parser.end()];
}

/** File handles that record the position of every read (opened per use, closed after). */
function spyingHandles(reads: number[]): FileHandles {
  return {
    async use(f, fn) {
      const fh = await fsOpen(f, 'r');
      const read = fh.read.bind(fh) as (...a: unknown[]) => unknown;
      (fh as unknown as { read: unknown }).read = (...a: unknown[]) => {
        reads.push(a[3] as number);
        return read(...a);
      };
      try {
        return await fn(fh);
      } finally {
        await fh.close();
      }
    },
  };
}

describe('openSource', () => {
  it('reads every video and audio track with its fragment index and measured bitrate', async () => {
    const src = await open(file('two.ismv', ismv({ video: [300_000, 150_000], fragments: 3 })));
    expect(src.tracks.map((t) => [t.info.type, t.info.name, t.fileTrackId, t.fragments.length])).toEqual([
      ['video', 'video', 1, 3],
      ['video', 'video', 2, 3],
      ['audio', 'audio', 3, 3],
    ]);
    expect(src.tracks[2]!.fragments.map((f) => [f.time, f.duration])).toEqual([
      [-AUDIO_SAMPLE, 20_000_000n + AUDIO_SAMPLE],
      [20_000_000n, 20_000_000n],
      [40_000_000n, 20_000_000n],
    ]);
    // avcC-derived codec data; the audio bitrate from esds; video bitrates measured (distinct, rounded).
    expect(src.tracks[0]!.info.fourCC).toBe('H264');
    expect(src.tracks[0]!.info.codecPrivateData.startsWith('00000001')).toBe(true);
    expect(src.tracks[2]!.info).toMatchObject({ fourCC: 'AACL', bitrate: 64_000, samplingRate: 48_000, channels: 2 });
    expect(new Set(src.tracks.map((t) => t.info.bitrate)).size).toBe(3);
  });

  it('reads an .ism presentation: its files, trackIDs, bitrates, names and languages', async () => {
    const a = file('a_300.ismv', ismv({ video: [300_000], audio: false }));
    file('b_150.ismv', ismv({ video: [150_000], audio: false }));
    file('sound.isma', ismv({ video: [], audio: true }));
    const ism = renderSmil([
      { type: 'video', trackId: 1, bitrate: 300_000, params: [] },
      { type: 'video', trackId: 1, bitrate: 150_000, params: [] },
      { type: 'audio', trackId: 1, bitrate: 64_000, language: 'fr', params: [['trackName', 'audio_fr']] },
    ]);
    let n = 0;
    const src = await open(file('show.ism', ism.replace(/src="Streams"/g, () => `src="${['a_300.ismv', 'b_150.ismv', 'sound.isma'][n++]}"`)));
    expect(src.tracks.map((t) => [path.basename(t.file), t.info.bitrate, t.info.name, t.info.language])).toEqual([
      ['a_300.ismv', 300_000, 'video', undefined],
      ['b_150.ismv', 150_000, 'video', undefined],
      ['sound.isma', 64_000, 'audio_fr', 'fr'],
    ]);
    expect(src.tracks[0]!.file).toBe(a);
  });

  it('uses a file’s own Live Server Manifest box (a replayed live archive)', async () => {
    const tracks = tracksOf({});
    const smil = lsmSmil(tracks.map((t) => ({ ...t, params: { trackName: t.kind === 'video' ? 'cam1' : 'audio', systemBitrate: String(t.bitrate) } })));
    const body = ismv({});
    const ft = ftyp('isml', 1, ['piff', 'iso2']);
    const archive = cat(ft, lsmBox(smil), body.subarray(ft.length));
    const src = await open(file('archive.ismv', archive));
    expect(src.tracks.map((t) => [t.info.name, t.info.bitrate])).toEqual([['cam1', 300_000], ['audio', 64_000]]);
  });

  it.each([
    ['empty.ismv', Buffer.alloc(0), /empty\.ismv: the file is empty/],
    ['text.ismv', Buffer.from('hello, this is not a movie at all\n'), /text\.ismv: not an MP4\/ISMV file/],
    ['not-fragmented.mp4', cat(ftyp(), moov(tracksOf({}))), /not-fragmented\.mp4: not fragmented: no moof boxes/],
    ['no-tracks.ismv', cat(ftyp(), moov([]), fragment(1, [{ trackId: 1, time: 0, samples: [payload(4, 1)] }]), mfra()), /no-tracks\.ismv: no video or audio tracks/],
    ['truncated.ismv', ismv({}).subarray(0, 3000), /truncated\.ismv: truncated: box 'm(oof|dat)' at offset \d+ declares \d+ bytes but only \d+ remain/],
    ['moof-only.ismv', cat(ismv({}).subarray(0, ismv({}).indexOf('mdat') - 4)), /moof-only\.ismv: truncated/],
  ])('%s gets a clear error naming the file', async (name, data, message) => {
    const p = file(name, data);
    await expect(openSource([p])).rejects.toMatchObject({ code: 'ERR_ENCODER_INPUT', file: p, message });
  });

  it('a file still being written (growing) is read up to its last complete fragment, wherever it is cut', async () => {
    const whole = ismv({});
    const complete = (await open(file('whole.ismv', whole))).tracks.map((t) => t.fragments.length);
    const lastMoof = whole.lastIndexOf('moof') - 4;
    const lastMdat = whole.lastIndexOf('mdat') - 4;
    for (const cut of [lastMoof + 3, lastMoof + 8, lastMdat + 6, lastMdat + whole.readUInt32BE(lastMdat) - 1]) {
      const p = file(`growing-${cut}.ismv`, whole.subarray(0, cut));
      await expect(openSource([p])).rejects.toMatchObject({ code: 'ERR_ENCODER_INPUT' });
      const src = await openSource([p], { growing: true });
      // The cut fragment is left out; every other one is there.
      expect(src.tracks.map((t) => t.fragments.length).reduce((a, b) => a + b)).toBe(complete.reduce((a, b) => a + b) - 1);
      await src.close();
    }
  });

  it('a growing source goes on from where its last scan stopped: grow() reads only what the file gained', async () => {
    const whole = ismv({});
    const full = (await open(file('grow-whole.ismv', whole))).tracks.map((t) => t.fragments.length);
    const lastMdat = whole.lastIndexOf('mdat') - 4;
    const cut = lastMdat + 5; // inside the last fragment
    const p = file('grow.ismv', whole.subarray(0, cut));
    const reads: number[] = [];
    const handles = spyingHandles(reads);
    const src = await openSource([p], { growing: true, files: handles });
    expect(src.tracks.map((t) => t.fragments.length).reduce((a, b) => a + b)).toBe(full.reduce((a, b) => a + b) - 1);
    // Nothing new: no fragment added.
    expect(await src.grow()).toBe(0);
    appendFileSync(p, whole.subarray(cut));
    reads.length = 0;
    expect(await src.grow()).toBe(1);
    expect(src.tracks.map((t) => t.fragments.length)).toEqual(full);
    // It resumed at the cut fragment's moof: nothing before it was read again.
    expect(Math.min(...reads)).toBe(whole.lastIndexOf('moof') - 4);
  });

  it('a finished file is indexed from its tfra (randomAccess): one moof read per track, the same index and bytes as a scan', async () => {
    // The helper's ismv ends with an empty mfra: give it tfras (v1, signed times) and an mfro.
    const body = ismv({ video: [300_000, 150_000], fragments: 4 });
    const plain = body.subarray(0, body.length - 8);
    const scanned = await openSource([file('ra-scan.ismv', body)]);
    const tfras = [1, 2, 3].map((id) => {
      const list = scanned.tracks.find((t) => t.fileTrackId === id)!.fragments;
      const entries = Buffer.alloc(list.length * 19);
      list.forEach((f, i) => {
        entries.writeBigInt64BE(f.time, i * 19);
        entries.writeBigUInt64BE(BigInt(f.moofOffset), i * 19 + 8);
        entries.fill(1, i * 19 + 16, i * 19 + 19);
      });
      const head = Buffer.alloc(12);
      head.writeUInt32BE(id, 0);
      head.writeUInt32BE(list.length, 8);
      return fullBox('tfra', 1, 0, head, entries);
    });
    const mfroBody = Buffer.alloc(4);
    const inner = Buffer.concat(tfras);
    mfroBody.writeUInt32BE(8 + inner.length + 16);
    const p = file('ra.ismv', Buffer.concat([plain, box('mfra', inner, fullBox('mfro', 0, 0, mfroBody))]));
    const reads: number[] = [];
    const handles = spyingHandles(reads);
    const src = await openSource([p], { randomAccess: true, files: handles });
    const moofs = new Set(scanned.tracks.flatMap((t) => t.fragments.map((f) => f.moofOffset)));
    // Of the 12 moofs, only the last of each track was read, and the first one's header (where the
    // header boxes end).
    expect(moofs.size).toBe(12);
    expect(new Set(reads.filter((r) => moofs.has(r))).size).toBeLessThanOrEqual(4);
    for (const t of src.tracks) {
      const other = scanned.tracks.find((x) => x.fileTrackId === t.fileTrackId)!;
      expect(t.fragments.map((f) => [f.time, f.duration])).toEqual(other.fragments.map((f) => [f.time, f.duration]));
      // A bitrate measured from the file (no .ism or LSM names one) counts the moofs too from a tfra.
      expect({ ...t.info, bitrate: 0 }).toEqual({ ...other.info, bitrate: 0 });
      expect(t.fragments[0]!.moofSize).toBe(0);
      for (let i = 0; i < t.fragments.length; i++) {
        const [a, b] = [await src.read(t, i), await scanned.read(other, i)];
        expect([a.moof.data.equals(b.moof.data), a.mdat.data.equals(b.mdat.data), a.gap]).toEqual([true, true, b.gap]);
      }
      // Learnt on the first read.
      expect(t.fragments.map((f) => f.moofSize)).toEqual(other.fragments.map((f) => f.moofSize));
    }
    // A tfra that points where no moof is: the file is scanned instead.
    const bad = Buffer.concat([plain, box('mfra', ...tfras.map((b, i) => (i === 0 ? Buffer.concat([b.subarray(0, b.length - 19), Buffer.alloc(19, 0)]) : b)), fullBox('mfro', 0, 0, mfroBody))]);
    const fallback = await openSource([file('ra-bad.ismv', bad)], { randomAccess: true });
    expect(fallback.tracks.map((t) => t.fragments.length)).toEqual(scanned.tracks.map((t) => t.fragments.length));
    expect(fallback.tracks[0]!.fragments[0]!.moofSize).toBeGreaterThan(0);
    await Promise.all([src.close(), scanned.close(), fallback.close()]);
  });

  it('names a missing file and a bad .ism', async () => {
    await expect(openSource([path.join(dir, 'missing.ismv')])).rejects.toThrow(/missing\.ismv: cannot open/);
    await expect(openSource([file('bad.ism', '<smil><body>')])).rejects.toThrow(/bad\.ism: not a valid server manifest/);
    const wrongTrack = renderSmil([{ type: 'audio', trackId: 1, bitrate: 1, params: [] }]).replace('src="Streams"', 'src="a_300.ismv"');
    file('a_300.ismv', ismv({ audio: false }));
    await expect(openSource([file('wrong.ism', wrongTrack)])).rejects.toThrow(/wrong\.ism: .*has no audio track 1/);
  });
});

describe('the stream header', () => {
  it('is accepted by the library’s ingest parser with the same track descriptions', async () => {
    const src = await open(file('hdr.ismv', ismv({ video: [300_000, 150_000] })));
    const header = streamHeader(src.tracks, 'Channel "1" <&> \'demo\'');
    const [event] = ingest(header);
    expect(event?.type).toBe('header');
    if (event?.type !== 'header') return;
    expect(event.tracks.map((t) => t.trackId)).toEqual([1, 2, 3]);
    expect(event.tracks.map((t) => t.info)).toEqual(src.tracks.map((t) => t.info));
    // ftyp isml/piff/iso2, then the LSM uuid box, then the moov with its tracks renumbered 1..n.
    const boxes = [...children(header)];
    expect(boxes.map((b) => b.type)).toEqual(['ftyp', 'uuid', 'moov']);
    expect(boxes[0]!.data.toString('latin1', 8)).toBe('isml\0\0\0\x01piffiso2');
    expect(boxes[1]!.uuid).toBe(UUID_LIVE_SERVER_MANIFEST);
  });

  it('escapes every value of the Live Server Manifest and lists each track’s params', async () => {
    const src = await open(file('esc.ismv', ismv({})));
    const text = liveServerManifestText([{ trackId: 7, info: src.tracks[0]!.info }], 'a"b<c>&d\'e');
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(text);
    expect(doc.smil.head.meta[1]).toEqual({ name: 'title', content: 'a"b<c>&d\'e' });
    const [el] = parseLiveServerManifest(text);
    expect(el!.systemBitrate).toBe(String(src.tracks[0]!.info.bitrate));
    expect([...el!.params.keys()]).toEqual([
      'systemBitrate', 'trackID', 'trackName', 'timescale', 'FourCC', 'CodecPrivateData', 'MaxWidth', 'MaxHeight',
      'DisplayWidth', 'DisplayHeight', 'NALUnitLengthField',
    ]);
    expect(el!.params.get('trackID')).toBe('7');
  });

  it('per track: one track, track_ID 1, like a hardware encoder’s POST', async () => {
    const src = await open(file('pt.ismv', ismv({})));
    const [event] = ingest(streamHeader([src.tracks[1]!]));
    expect(event?.type === 'header' && event.tracks.map((t) => [t.trackId, t.info.type])).toEqual([[1, 'audio']]);
    const lsm = [...children(streamHeader([src.tracks[1]!]))][1]!;
    expect(lsmText(lsm)).toContain('<audio src="Streams" systemBitrate="64000">');
  });
});

describe('outgoing fragments', () => {
  /** Every fragment of `loops` loops of the source, as sent in one POST, parsed back by the ingest. */
  async function pushed(src: Source, loops: number, start: bigint) {
    const timeline = new LoopTimeline(src.tracks.map((t) => ({ type: t.info.type, timescale: t.info.timescale, fragments: t.fragments })), start);
    const parts: Buffer[] = [streamHeader(src.tracks)];
    let seq = 0;
    for (let loop = 0; loop < loops; loop++) {
      for (let i = 0; i < src.tracks[0]!.fragments.length; i++) {
        for (let t = 0; t < src.tracks.length; t++) {
          const plan = timeline.plan(t, loop, i);
          if (!plan) continue;
          const out = buildFragment(await src.read(src.tracks[t]!, i), src.tracks[t]!, plan, t + 1, ++seq);
          parts.push(out.moof, out.mdat);
        }
      }
    }
    return ingest(Buffer.concat(parts)).flatMap((e) => (e.type === 'fragment' ? [e.fragment] : []));
  }

  it.each([
    ['one traf per moof', {}],
    ['several trafs per moof, with tfdt', { multiTraf: true, tfdt: true }],
  ])('are continuous per track over loops at UTC times, samples intact (%s)', async (_, spec) => {
    const src = await open(file(`out-${Object.keys(spec).length}.ismv`, ismv({ fragments: 3, ...spec })));
    const start = 17_640_720_000_000_001n;
    const frags = await pushed(src, 3, start);
    expect(frags).toHaveLength(18);
    for (const trackId of [1, 2]) {
      const mine = frags.filter((f) => f.trackId === trackId);
      expect(mine).toHaveLength(9);
      for (let i = 1; i < mine.length; i++) expect(mine[i]!.time).toBe(mine[i - 1]!.time + mine[i - 1]!.duration);
    }
    const video = frags.filter((f) => f.trackId === 1);
    expect(video[0]!.time).toBe(start);
    expect(video[3]!.time).toBe(start + 60_000_000n);
    // Loop 1 sends loop 0's samples again.
    expect(Buffer.concat(video[3]!.data).equals(Buffer.concat(video[0]!.data))).toBe(true);
    const audio = frags.filter((f) => f.trackId === 2);
    // The priming sample overlaps the previous loop: dropped after the first loop (21 → 20 samples).
    expect(audio.map((f) => f.samples.count)).toEqual([21, 20, 20, 20, 20, 20, 20, 20, 20]);
    expect(Buffer.concat(audio[3]!.data).equals(Buffer.concat(audio[0]!.data).subarray(50))).toBe(true);
    // A tfdt moves with the loop, plus the dropped sample (the file's first audio tfdt is 0).
    if ('tfdt' in spec) expect(audio[3]!.decodeTime).toBe(start + 60_000_000n + AUDIO_SAMPLE);
  });
});
