import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createFile, MP4BoxBuffer, type Movie } from 'mp4box';
import { parseMoov } from '../../../lib/mp4/boxes';
import { CMAF_TRACK_ID, initSegment } from '../../../lib/mp4/init';
import { Box, BoxReader, childrenOf, findChild } from '../../../lib/mp4/reader';
import { codeOf as code } from '../../helpers/errors';
import {
  box,
  defaultEntry,
  fullBox,
  hdlr,
  mdhd,
  moov as moovBox,
  mvhd,
  tkhd,
  trex as trexBox,
  u32,
  uuidBox,
} from '../../helpers/fmp4';

const FIXTURE = readFileSync(path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin'));

function topLevel(bytes: Buffer): Box[] {
  const reader = new BoxReader({ maxBoxSize: bytes.length });
  return [...reader.push(bytes), ...reader.end()];
}

const INGEST_MOOV = topLevel(FIXTURE).find((b) => b.type === 'moov')!;
const TRACKS = parseMoov(INGEST_MOOV).tracks;

/** A box as a {@link Box} (for building test moovs with the fmp4 helpers). */
function asBox(bytes: Buffer): Box {
  return topLevel(bytes)[0]!;
}

function child(parent: Box, ...path: string[]): Box {
  let cur = parent;
  for (const type of path) {
    const next = findChild(cur, type);
    if (!next) throw new Error(`no ${type} under ${cur.type}`);
    cur = next;
  }
  return cur;
}

const types = (b: Box, skip = 0): string[] => [...childrenOf(b, skip)].map((c) => c.type);
const payload = (b: Box): Buffer => b.data.subarray(b.headerSize);

/** Every box type in the tree under `b` (sample entries are not descended into). */
function allTypes(b: Box): string[] {
  const containers = new Set(['moov', 'trak', 'mdia', 'minf', 'dinf', 'stbl', 'mvex', 'edts', 'udta']);
  const out: string[] = [];
  for (const c of childrenOf(b)) {
    out.push(c.type);
    if (containers.has(c.type)) out.push(...allTypes(c));
  }
  return out;
}

/** The ingest trak of a track_ID (its tkhd is v1 in the fixture: track_ID at payload offset 20). */
function ingestTrak(trackId: number): Box {
  return [...childrenOf(INGEST_MOOV)].find((c) => c.type === 'trak' && payload(child(c, 'tkhd')).readUInt32BE(20) === trackId)!;
}

/** Feeds a file to mp4box in one buffer and returns what onReady reported; mp4box must log no error. */
function mp4boxInfo(bytes: Buffer): Movie {
  const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const file = createFile();
    let info: Movie | undefined;
    let failure: string | undefined;
    file.onReady = (i) => (info = i);
    file.onError = (module, message) => (failure = `${module}: ${message}`);
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(ab, 0));
    file.flush();
    expect(failure).toBeUndefined();
    expect(errors).not.toHaveBeenCalled();
    if (!info) throw new Error('mp4box never reported the movie ready');
    return info;
  } finally {
    errors.mockRestore();
  }
}

describe('initSegment on the ffmpeg ismv fixture', () => {
  it('has the three tracks the fixture is documented to have', () => {
    expect(TRACKS.map((t) => [t.trackId, t.handler, t.timescale])).toEqual([
      [1, 'vide', 10_000_000],
      [2, 'vide', 10_000_000],
      [3, 'soun', 10_000_000],
    ]);
  });

  describe.each(TRACKS.map((t) => [t.trackId, t.handler] as const))('track %i (%s)', (trackId, handler) => {
    const init = initSegment(INGEST_MOOV, trackId);
    const top = topLevel(init);

    it('is an ftyp with the CMAF brands then one moov, and nothing else', () => {
      expect(top.map((b) => b.type)).toEqual(['ftyp', 'moov']);
      const ftyp = payload(top[0]!);
      expect(ftyp.toString('latin1', 0, 4)).toBe('iso6');
      expect(ftyp.readUInt32BE(4)).toBe(0);
      const compatible = [];
      for (let p = 8; p < ftyp.length; p += 4) compatible.push(ftyp.toString('latin1', p, p + 4));
      expect(compatible).toEqual(['iso6', 'cmfc', 'dash', 'msdh']);
    });

    const moov = top[1]!;

    it('holds mvhd, exactly one trak and mvex, and no udta/meta/uuid/iods', () => {
      expect(types(moov)).toEqual(['mvhd', 'trak', 'mvex']);
      const all = allTypes(moov);
      for (const dropped of ['udta', 'meta', 'uuid', 'iods', 'edts', 'elst', 'tref', 'mehd', 'ctts', 'stss', 'sdtp']) {
        expect(all).not.toContain(dropped);
      }
    });

    it('writes mvhd v1 with the ingest timescale, duration 0 and next_track_ID 2', () => {
      const p = payload(child(moov, 'mvhd'));
      expect(p.length).toBe(112);
      expect(p[0]).toBe(1);
      expect(p.readUInt32BE(20)).toBe(parseMoov(INGEST_MOOV).timescale);
      expect(p.readUInt32BE(20)).toBe(1000);
      expect(p.readBigUInt64BE(24)).toBe(0n);
      expect(p.readUInt32BE(32)).toBe(0x00010000); // rate 1.0
      expect(p.readUInt16BE(36)).toBe(0x0100); // volume 1.0
      expect(p.readUInt32BE(48)).toBe(0x00010000); // matrix a
      expect(p.readUInt32BE(80)).toBe(0x40000000); // matrix w
      expect(p.readUInt32BE(108)).toBe(CMAF_TRACK_ID + 1);
    });

    it('gives the track track_ID 1 and keeps its size in a v1 tkhd with flags 7 and duration 0', () => {
      const trak = child(moov, 'trak');
      expect(types(trak)).toEqual(['tkhd', 'mdia']);
      const p = payload(child(trak, 'tkhd'));
      const ingest = payload(child(ingestTrak(trackId), 'tkhd'));
      expect(p.length).toBe(96);
      expect(p.readUInt32BE(0)).toBe(0x01000007);
      expect(p.readUInt32BE(20)).toBe(CMAF_TRACK_ID);
      expect(p.readBigUInt64BE(28)).toBe(0n);
      // layer … height: the 60 bytes after the duration, identical to the ingest v1 tkhd's.
      expect(p.subarray(36)).toEqual(ingest.subarray(36));
      const entry = TRACKS.find((t) => t.trackId === trackId)!.entry!;
      expect(p.readUInt32BE(88) >>> 16).toBe(entry.width ?? 0);
      expect(p.readUInt32BE(92) >>> 16).toBe(entry.height ?? 0);
    });

    it('keeps the mdhd timescale (10 MHz) and language with duration 0, and the hdlr byte for byte', () => {
      const mdia = child(moov, 'trak', 'mdia');
      expect(types(mdia)).toEqual(['mdhd', 'hdlr', 'minf']);
      const p = payload(child(mdia, 'mdhd'));
      expect(p[0]).toBe(1);
      expect(p.readUInt32BE(20)).toBe(10_000_000);
      expect(p.readBigUInt64BE(24)).toBe(0n);
      expect(p.subarray(32)).toEqual(payload(child(ingestTrak(trackId), 'mdia', 'mdhd')).subarray(32));
      expect(child(mdia, 'hdlr').data).toEqual(child(ingestTrak(trackId), 'mdia', 'hdlr').data);
    });

    it('keeps the media header and dinf, the stsd byte for byte, and empty sample tables', () => {
      const minf = child(moov, 'trak', 'mdia', 'minf');
      expect(types(minf)).toEqual([handler === 'vide' ? 'vmhd' : 'smhd', 'dinf', 'stbl']);
      expect(child(minf, 'dinf').data).toEqual(child(ingestTrak(trackId), 'mdia', 'minf', 'dinf').data);
      const stbl = child(minf, 'stbl');
      expect(types(stbl)).toEqual(['stsd', 'stts', 'stsc', 'stsz', 'stco']);
      expect(child(stbl, 'stsd').data).toEqual(child(ingestTrak(trackId), 'mdia', 'minf', 'stbl', 'stsd').data);
      expect(payload(child(stbl, 'stts'))).toEqual(Buffer.alloc(8));
      expect(payload(child(stbl, 'stsc'))).toEqual(Buffer.alloc(8));
      expect(payload(child(stbl, 'stsz'))).toEqual(Buffer.alloc(12));
      expect(payload(child(stbl, 'stco'))).toEqual(Buffer.alloc(8));
    });

    it('has one trex, for this track', () => {
      const mvex = child(moov, 'mvex');
      expect(types(mvex)).toEqual(['trex']);
      const p = payload(child(mvex, 'trex'));
      expect([0, 4, 8, 12, 16, 20].map((o) => p.readUInt32BE(o))).toEqual([0, CMAF_TRACK_ID, 1, 0, 0, 0]);
    });

    it('parses back with parseMoov as the same track', () => {
      const parsed = parseMoov(moov);
      const ingest = TRACKS.find((t) => t.trackId === trackId)!;
      expect(parsed.timescale).toBe(1000);
      expect(parsed.tracks).toEqual([{ ...ingest, trackId: CMAF_TRACK_ID, trex: { ...ingest.trex, trackId: CMAF_TRACK_ID } }]);
    });

    it('is accepted by mp4box with one track, its codec string and timescale', () => {
      const info = mp4boxInfo(init);
      expect(info.isFragmented).toBe(true);
      expect(info.brands).toEqual(expect.arrayContaining(['iso6', 'cmfc', 'dash', 'msdh']));
      expect(info.timescale).toBe(1000);
      expect(info.tracks).toHaveLength(1);
      const track = info.tracks[0]!;
      expect(track.id).toBe(CMAF_TRACK_ID);
      expect(track.timescale).toBe(10_000_000);
      expect(track.nb_samples).toBe(0);
      const entry = TRACKS.find((t) => t.trackId === trackId)!.entry!;
      if (handler === 'vide') {
        // avc1. + profile, constraint flags, level from the avcC, zero-padded (ffmpeg wrote 42c00c / 42d00b).
        const avcC = child(ingestTrak(trackId), 'mdia', 'minf', 'stbl', 'stsd');
        const hex = payload(avcC).toString('hex');
        const at = hex.indexOf(Buffer.from('avcC').toString('hex'));
        expect(track.codec).toBe(`avc1.${hex.slice(at + 10, at + 16)}`);
        expect(track.codec).toMatch(/^avc1\.42[cd]00[bc]$/);
        expect(info.videoTracks).toHaveLength(1);
        expect(track.video).toEqual({ width: entry.width, height: entry.height });
      } else {
        expect(track.codec).toBe('mp4a.40.2');
        expect(info.audioTracks).toHaveLength(1);
        expect(track.audio?.sample_rate).toBe(48000);
        expect(track.audio?.channel_count).toBe(2);
      }
    });
  });

  it('does not alias the ingest moov: writing into the init leaves the ingest bytes alone', () => {
    const before = Buffer.from(INGEST_MOOV.data);
    initSegment(INGEST_MOOV, 1).fill(0);
    expect(INGEST_MOOV.data).toEqual(before);
  });
});

describe('initSegment on other moovs', () => {
  const videoEntry = defaultEntry({ trackId: 5, kind: 'video', width: 320, height: 180 })!;

  /** A trak with the given children under minf/stbl replaced or left out. */
  interface TrakOptions {
    trackId?: number;
    extraTrak?: Buffer[];
    stbl?: Buffer[];
    minf?: Buffer[];
    noMinf?: boolean;
    noMdia?: boolean;
  }
  const DINF = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));

  function trakWith(o: TrakOptions): Buffer {
    const stbl = box('stbl', ...(o.stbl ?? [fullBox('stsd', 0, 0, u32(1), videoEntry)]));
    const minf = box('minf', ...(o.minf ?? [fullBox('vmhd', 0, 1, Buffer.alloc(8)), DINF]), stbl);
    const mdia = box('mdia', mdhd(90000, 'swe'), hdlr('vide'), ...(o.noMinf ? [] : [minf]));
    return box('trak', tkhd(o.trackId ?? 5, { width: 320, height: 180 }), ...(o.noMdia ? [] : [mdia]), ...(o.extraTrak ?? []));
  }

  it('rewrites v0 tkhd/mdhd as v1 and keeps their fields', () => {
    const moov = asBox(moovBox([{ trackId: 7, kind: 'video', width: 640, height: 360, timescale: 90000, language: 'fra' }]));
    const out = topLevel(initSegment(moov, 7))[1]!;
    const tk = payload(child(out, 'trak', 'tkhd'));
    expect(tk[0]).toBe(1);
    expect(tk.readUInt32BE(20)).toBe(CMAF_TRACK_ID);
    expect(tk.readUInt32BE(88) >>> 16).toBe(640);
    expect(tk.readUInt32BE(92) >>> 16).toBe(360);
    const md = payload(child(out, 'trak', 'mdia', 'mdhd'));
    expect(md[0]).toBe(1);
    expect(md.readUInt32BE(20)).toBe(90000);
    expect(parseMoov(out).tracks[0]!.language).toBe('fra');
    expect(payload(child(out, 'mvhd')).readUInt32BE(108)).toBe(CMAF_TRACK_ID + 1);
  });

  it('drops edts, tref, udta, meta and uuid from the trak and keeps stbl sgpd and mdia elng', () => {
    const sgpd = fullBox('sgpd', 1, 0, Buffer.from('roll', 'latin1'), u32(2), u32(1), Buffer.from([0xff, 0xff]));
    const trak = box('trak', tkhd(5), box('edts', fullBox('elst', 0, 0, u32(0))), box('tref', box('chap', u32(2))),
      box('mdia', mdhd(90000), hdlr('vide'), fullBox('elng', 0, 0, Buffer.from('sv-SE\0')),
        box('minf', fullBox('vmhd', 0, 1, Buffer.alloc(8)), DINF,
          box('stbl', fullBox('stsd', 0, 0, u32(1), videoEntry), fullBox('stts', 0, 0, u32(1), u32(3), u32(3000)),
            fullBox('stss', 0, 0, u32(1), u32(1)), fullBox('stsc', 0, 0, u32(0)), fullBox('stsz', 0, 0, u32(0), u32(0)),
            fullBox('stco', 0, 0, u32(0)), sgpd))),
      box('udta', box('name', Buffer.from('x'))), box('meta', Buffer.alloc(4)),
      uuidBox('00112233445566778899aabbccddeeff', Buffer.alloc(4)));
    const moov = asBox(box('moov', mvhd(600, 6), fullBox('iods', 0, 0, Buffer.alloc(7)), trak, box('mvex', trexBox(5)),
      box('udta', Buffer.alloc(0)), uuidBox('ffeeddccbbaa99887766554433221100')));
    const out = topLevel(initSegment(moov, 5))[1]!;
    expect(types(out)).toEqual(['mvhd', 'trak', 'mvex']);
    expect(payload(child(out, 'mvhd')).readUInt32BE(20)).toBe(600);
    expect(types(child(out, 'trak'))).toEqual(['tkhd', 'mdia']);
    expect(types(child(out, 'trak', 'mdia'))).toEqual(['mdhd', 'hdlr', 'elng', 'minf']);
    const stbl = child(out, 'trak', 'mdia', 'minf', 'stbl');
    expect(types(stbl)).toEqual(['stsd', 'stts', 'stsc', 'stsz', 'stco', 'sgpd']);
    expect(child(stbl, 'sgpd').data).toEqual(sgpd);
    expect(payload(child(stbl, 'stts')).readUInt32BE(4)).toBe(0); // the ingest entries are not kept
  });

  it('builds dinf, the media header and trex when the ingest has none, and fixes a trex index of 0', () => {
    const noDinf = trakWith({ minf: [] });
    let out = topLevel(initSegment(asBox(box('moov', mvhd(), noDinf)), 5))[1]!;
    const minf = child(out, 'trak', 'mdia', 'minf');
    expect(types(minf)).toEqual(['vmhd', 'dinf', 'stbl']);
    expect(payload(child(minf, 'vmhd'))).toEqual(Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    const dref = child(minf, 'dinf', 'dref');
    expect(payload(dref).subarray(0, 8)).toEqual(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]));
    expect(types(dref, 8)).toEqual(['url ']);
    expect(payload([...childrenOf(dref, 8)][0]!)).toEqual(Buffer.from([0, 0, 0, 1]));
    let trex = payload(child(out, 'mvex', 'trex'));
    expect([4, 8, 12, 16, 20].map((o) => trex.readUInt32BE(o))).toEqual([CMAF_TRACK_ID, 1, 0, 0, 0]);

    const ingestTrex = trexBox(5, { descriptionIndex: 0, duration: 3000, flags: 0x01010000 });
    const zeroIndex = asBox(box('moov', mvhd(), trakWith({}), box('mvex', ingestTrex)));
    out = topLevel(initSegment(zeroIndex, 5))[1]!;
    trex = payload(child(out, 'mvex', 'trex'));
    expect([4, 8, 12, 16, 20].map((o) => trex.readUInt32BE(o))).toEqual([CMAF_TRACK_ID, 1, 3000, 0, 0x01010000]);
  });

  it('picks the trak by track_ID among several', () => {
    const moov = asBox(moovBox([
      { trackId: 2, kind: 'video' },
      { trackId: 9, kind: 'audio' },
    ]));
    const out = topLevel(initSegment(moov, 9))[1]!;
    expect(parseMoov(out).tracks.map((t) => [t.trackId, t.handler])).toEqual([[CMAF_TRACK_ID, 'soun']]);
    expect(types(child(out, 'mvex'))).toEqual(['trex']);
    expect(payload(child(out, 'mvex', 'trex')).readUInt32BE(4)).toBe(CMAF_TRACK_ID);
  });

  it('throws ERR_BAD_HEADER for a track_ID the moov does not have', () => {
    expect(code(() => initSegment(INGEST_MOOV, 4))).toBe('ERR_BAD_HEADER');
    expect(code(() => initSegment(INGEST_MOOV, 0))).toBe('ERR_BAD_HEADER');
    expect(() => initSegment(INGEST_MOOV, 4)).toThrow(/track_ID 4/);
  });

  it('throws ERR_BAD_HEADER for a trak without stsd, stbl, minf or mdia, or a moov without mvhd', () => {
    const inMoov = (trak: Buffer) => asBox(box('moov', mvhd(), trak));
    expect(code(() => initSegment(inMoov(trakWith({ stbl: [fullBox('stts', 0, 0, u32(0))] })), 5))).toBe('ERR_BAD_HEADER');
    expect(() => initSegment(inMoov(trakWith({ stbl: [] })), 5)).toThrow(/stsd/);
    const emptyMinf = box('trak', tkhd(5), box('mdia', mdhd(1000), hdlr('vide'), box('minf')));
    expect(code(() => initSegment(inMoov(emptyMinf), 5))).toBe('ERR_BAD_HEADER');
    expect(code(() => initSegment(inMoov(trakWith({ noMinf: true })), 5))).toBe('ERR_BAD_HEADER');
    expect(code(() => initSegment(inMoov(trakWith({ noMdia: true })), 5))).toBe('ERR_BAD_HEADER');
    expect(code(() => initSegment(asBox(box('moov', trakWith({}))), 5))).toBe('ERR_BAD_HEADER');
  });
});
