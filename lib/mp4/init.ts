/**
 * The CMAF header (init segment) of one track, built from the `moov` an encoder sent at the start of a
 * Smooth ingest: what DASH serves as the Representation's `initialization` and HLS as `EXT-X-MAP`.
 *
 * Output layout (ISO 14496-12 box order; ISO/IEC 23000-19:2018 (CMAF) §7.3.2.1 CMAF header and its
 * Table 3 of header boxes):
 *
 *   ftyp  major iso6, minor 0, compatible iso6 cmfc dash msdh
 *   moov
 *     mvhd  v1: times from the ingest mvhd, its timescale, duration 0, next_track_ID 2
 *     trak
 *       tkhd  v1, flags 7 (enabled | in movie | in preview), track_ID 1, duration 0, ingest
 *             layer / alternate group / volume / matrix / width / height
 *       mdia
 *         mdhd  v1: ingest times, timescale and language, duration 0
 *         hdlr  ingest box, byte for byte (`subt` for a subtitle sample entry whose encoder said `text`)
 *         [elng] ingest box, when present
 *         minf
 *           vmhd | smhd | hmhd | nmhd | sthd   ingest box (built when missing; always sthd for subtitles)
 *           dinf  ingest box, or dref with one self-contained `url ` (flags 1)
 *           stbl
 *             stsd  ingest box, byte for byte (avcC / esds untouched)
 *             stts stsc stsz stco   empty: a fragmented track's samples all live in movie fragments
 *             [sgpd] ingest boxes, when present: sbgp in the fragments may refer to them
 *     mvex
 *       trex  the ingest one for the track, as track 1 (default_sample_description_index 0 → 1), or 1/0/0/0
 *
 * Everything else is dropped. The ingest `ftyp` (isml/piff brands) and the Live Server Manifest box
 * are not inputs (they sit beside the moov, not in it). Dropped from the moov: `iods`, `udta`, `meta`,
 * `uuid`, and the other tracks (a CMAF header describes one CMAF track, §7.3.2.1/§7.3.2.2). From the
 * trak: `edts` (MSE implementations apply edit lists inconsistently, so every offset is carried by
 * `tfdt` instead), `tref` (it names tracks this header no longer has), `udta`, `meta`, `uuid`. From
 * the mvex: `mehd` (a live track has no known duration). From the stbl: `ctts`, `stss`, `sdtp`,
 * `stz2`, `co64` and the like (they describe samples, and the header has none).
 *
 * The pattern follows dash.js `src/mss/MssFragmentMoovProcessor.js`, which builds the same tree from a
 * Smooth manifest; here the ingest moov already has the sample entry, so it is kept instead of rebuilt.
 * Every header gives its track track_ID 1 ({@link CMAF_TRACK_ID}), as packagers do, and so do the
 * segments: a player that switches representations then meets the same track, where GStreamer's qtdemux
 * took another track_ID for a new stream that nothing downstream was linked to.
 */
import { SmoothError } from '../errors';
import { Box, childrenOf, findChild } from './reader';
import { makeBox, makeFullBox } from './writer';

/** The track_ID of every init segment's track, and of the CMAF segments played with it. */
export const CMAF_TRACK_ID = 1;

/**
 * Brands of the header's `ftyp`: `iso6` as major (ISO 14496-12 Annex E; its feature set includes
 * default-base-is-moof, tfdt and the version-1 trun with signed composition offsets), `cmfc` (the
 * CMAF structural brand, ISO/IEC 23000-19 clause 7), `dash` and `msdh` (ISO 23009-1 DASH segments):
 * the set dash-hls.md §1.2 settles on.
 */
const BRANDS = ['iso6', 'cmfc', 'dash', 'msdh'] as const;

/** Unity matrix (ISO 14496-12 §8.2.2.3): { 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000 }. */
const UNITY_MATRIX = u32s(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000);

/** Media information headers a `minf` starts with (ISO 14496-12 §12.1.2, §12.2.2, §12.4.2, §8.4.5.2, §12.6.2). */
const MEDIA_HEADERS = new Set(['vmhd', 'smhd', 'hmhd', 'nmhd', 'sthd']);

/** tkhd flags: track_enabled | track_in_movie | track_in_preview (ISO 14496-12 §8.3.2.1). */
const TKHD_FLAGS = 0x000007;

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_HEADER', message);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

/** The payload after `version u8, flags u24` of a full box, and its version, checked to hold `v0`/`v1` bytes. */
function fullPayload(box: Box, v0: number, v1: number): { version: number; body: Buffer } {
  const payload = box.data.subarray(box.headerSize);
  if (payload.length < 4) throw bad(`'${box.type}' is truncated`);
  const version = payload[0]!;
  const body = payload.subarray(4);
  if (body.length < (version === 1 ? v1 : v0)) throw bad(`'${box.type}' is truncated`);
  return { version, body };
}

/** Reads a v0 (32-bit) or v1 (64-bit) time field at `p`. */
function time(body: Buffer, p: number, version: number): bigint {
  return version === 1 ? body.readBigUInt64BE(p) : BigInt(body.readUInt32BE(p));
}

/**
 * `mvhd` v1 (ISO 14496-12 §8.2.2): creation_time u64, modification_time u64, timescale u32,
 * duration u64 (0: unknown, the movie is fragmented), rate 1.0, volume 1.0, 10 reserved bytes, matrix,
 * 24 bytes pre_defined, next_track_ID.
 */
function mvhd(ingest: Box, trackId: number): Buffer {
  // v0: 4 + 4 + 4 + 4 (times, timescale, duration); v1: 8 + 8 + 4 + 8.
  const { version, body } = fullPayload(ingest, 16, 28);
  const created = time(body, 0, version);
  const modified = time(body, version === 1 ? 8 : 4, version);
  const timescale = body.readUInt32BE(version === 1 ? 16 : 8);
  const rest = Buffer.alloc(4 + 2 + 10);
  rest.writeUInt32BE(0x00010000, 0);
  rest.writeUInt16BE(0x0100, 4);
  // next_track_ID must exceed every track_ID in the file (§8.2.2.3); 0xFFFFFFFF has no successor.
  const next = trackId === 0xffffffff ? 0xffffffff : trackId + 1;
  return makeFullBox('mvhd', 1, 0, u64(created), u64(modified), u32s(timescale), u64(0n), rest, UNITY_MATRIX,
    Buffer.alloc(24), u32s(next));
}

/**
 * `tkhd` v1 (ISO 14496-12 §8.3.2): creation u64, modification u64, track_ID u32, reserved u32,
 * duration u64, reserved 8, then layer, alternate_group, volume, reserved (2 bytes each), matrix (36),
 * width, height (16.16) — the 60 bytes after the duration are the same in both versions and are kept.
 */
function tkhd(ingest: Box, trackId: number): Buffer {
  const { version, body } = fullPayload(ingest, 80, 92);
  const created = time(body, 0, version);
  const modified = time(body, version === 1 ? 8 : 4, version);
  const ids = version === 1 ? 16 : 8;
  const tail = body.subarray(ids + 8 + (version === 1 ? 8 : 4), ids + 8 + (version === 1 ? 8 : 4) + 60);
  return makeFullBox('tkhd', 1, TKHD_FLAGS, u64(created), u64(modified), u32s(trackId, 0), u64(0n), tail);
}

/** The track_ID of a `tkhd` of either version, or `undefined` when it is too short to hold one. */
function tkhdTrackId(box: Box): number | undefined {
  const payload = box.data.subarray(box.headerSize);
  const p = 4 + (payload[0] === 1 ? 16 : 8);
  return payload.length >= p + 4 ? payload.readUInt32BE(p) : undefined;
}

/**
 * `mdhd` v1 (ISO 14496-12 §8.4.2): creation u64, modification u64, timescale u32, duration u64 (0),
 * then pad(1) + language(15) and pre_defined u16, kept.
 */
function mdhd(ingest: Box): Buffer {
  const { version, body } = fullPayload(ingest, 20, 32);
  const created = time(body, 0, version);
  const modified = time(body, version === 1 ? 8 : 4, version);
  const timescale = body.readUInt32BE(version === 1 ? 16 : 8);
  const language = body.subarray(version === 1 ? 28 : 16, (version === 1 ? 28 : 16) + 4);
  return makeFullBox('mdhd', 1, 0, u64(created), u64(modified), u32s(timescale), u64(0n), language);
}

/**
 * A media information header for a trak that had none (ISO 14496-12 §12.1.2 vmhd, §12.2.2 smhd,
 * §12.6.2 sthd, §8.4.5.2 nmhd).
 */
function defaultMediaHeader(handler: string): Buffer {
  // vmhd has flags 1 by definition; graphicsmode 0 (copy) and opcolor 0.
  if (handler === 'vide') return makeFullBox('vmhd', 0, 1, Buffer.alloc(8));
  // smhd: balance 0 (centre), reserved.
  if (handler === 'soun') return makeFullBox('smhd', 0, 0, Buffer.alloc(4));
  if (handler === 'subt') return makeFullBox('sthd', 0, 0);
  return makeFullBox('nmhd', 0, 0);
}

/** Sample entries of subtitle tracks (ISO/IEC 14496-30: TTML `stpp`, WebVTT `wvtt`). */
const SUBTITLE_ENTRIES = new Set(['stpp', 'wvtt']);

/** The type of the first sample entry of an `stsd`, if it has one. */
function firstEntry(stsd: Box): string | undefined {
  // version/flags, entry_count, then the first entry's size and type.
  const p = stsd.headerSize + 8;
  return stsd.data.length >= p + 8 ? stsd.data.toString('latin1', p + 4, p + 8) : undefined;
}

/**
 * `hdlr` (ISO 14496-12 §8.4.3) of a subtitle track whose encoder named another handler (`text`,
 * `sbtl`): CMAF and ISO/IEC 14496-30 want `subt`, and players pick their text parser by it.
 */
function subtitleHandler(name: string): Buffer {
  return makeFullBox('hdlr', 0, 0, u32s(0), Buffer.from('subt', 'latin1'), Buffer.alloc(12), Buffer.from(`${name}\0`, 'utf8'));
}

/**
 * `dinf` with a `dref` of one `url ` entry whose flag 1 says "the media is in this file"
 * (ISO 14496-12 §8.7.2): what a fragmented track needs, since its samples are in the segments.
 */
function defaultDinf(): Buffer {
  return makeBox('dinf', makeFullBox('dref', 0, 0, u32s(1), makeFullBox('url ', 0, 1)));
}

/**
 * `trex` (ISO 14496-12 §8.8.3): track_ID, default_sample_description_index, default duration, size
 * and flags. The ingest values are kept (fragments written for this header carry every sample field
 * in the trun anyway); an index of 0 names no sample entry, so it becomes 1.
 */
function trex(mvex: Box | undefined, trackId: number): Buffer {
  let fields = [CMAF_TRACK_ID, 1, 0, 0, 0];
  if (mvex) {
    for (const child of childrenOf(mvex)) {
      if (child.type !== 'trex') continue;
      const payload = child.data.subarray(child.headerSize);
      if (payload.length < 24 || payload.readUInt32BE(4) !== trackId) continue;
      fields = [0, 1, 2, 3, 4].map((i) => payload.readUInt32BE(4 + i * 4));
      fields[0] = CMAF_TRACK_ID;
      if (fields[1] === 0) fields[1] = 1;
      break;
    }
  }
  return makeFullBox('trex', 0, 0, u32s(...fields));
}

/**
 * Builds the CMAF header (init segment) of one track of an ingest `moov`: `ftyp` + `moov` holding
 * that track alone with empty sample tables and its `mvex/trex`, times in the ingest timescales. See
 * the module comment for the full layout and what is dropped.
 *
 * References: ISO 14496-12 §8.2.2 (mvhd), §8.3.2 (tkhd), §8.4.2 (mdhd), §8.7.2 (dref), §8.8.3
 * (trex); ISO/IEC 23000-19:2018 (CMAF) §7.3.2.1 and Table 3 (CMAF header: starts with ftyp, one moov,
 * one track, `mvex`, empty sample tables); dash.js `MssFragmentMoovProcessor` for the reference tree.
 *
 * @param moov - the ingest `moov` box
 * @param trackId - `tkhd.track_ID` of the track in the ingest `moov` (the header calls it {@link CMAF_TRACK_ID})
 * @returns the init segment (one fresh allocation; nothing refers to `moov` afterwards)
 * @throws SmoothError ERR_BAD_HEADER when the moov has no mvhd or no trak with that track_ID, or the
 *   trak lacks any of mdia, mdhd, hdlr, minf, stbl, stsd, or one of the header boxes is truncated
 * @throws SmoothError ERR_BAD_BOX when a box overruns its parent (from the box reader)
 */
export function initSegment(moov: Box, trackId: number): Buffer {
  const ingestMvhd = findChild(moov, 'mvhd');
  if (!ingestMvhd) throw bad('moov has no mvhd');
  let trak: Box | undefined;
  let ingestTkhd: Box | undefined;
  for (const child of childrenOf(moov)) {
    if (child.type !== 'trak') continue;
    const t = findChild(child, 'tkhd');
    if (t && tkhdTrackId(t) === trackId) {
      trak = child;
      ingestTkhd = t;
      break;
    }
  }
  if (!trak || !ingestTkhd) throw bad(`moov has no trak with track_ID ${trackId}`);
  const where = `trak ${trackId}`;
  const mdia = findChild(trak, 'mdia');
  if (!mdia) throw bad(`${where} has no mdia`);
  const ingestMdhd = findChild(mdia, 'mdhd');
  const hdlr = findChild(mdia, 'hdlr');
  const minf = findChild(mdia, 'minf');
  if (!ingestMdhd || !hdlr) throw bad(`${where} has no mdhd or hdlr`);
  if (!minf) throw bad(`${where} has no minf`);
  const stbl = findChild(minf, 'stbl');
  if (!stbl) throw bad(`${where} has no stbl`);
  const stsd = findChild(stbl, 'stsd');
  if (!stsd) throw bad(`${where} has no stsd`);
  const elng = findChild(mdia, 'elng');

  const hdlrPayload = hdlr.data.subarray(hdlr.headerSize);
  if (hdlrPayload.length < 12) throw bad(`${where}: 'hdlr' is truncated`);
  let handler = hdlrPayload.toString('latin1', 8, 12);
  let handlerBox = hdlr.data;
  let mediaHeader: Buffer | undefined;
  let dinf: Buffer | undefined;
  for (const child of childrenOf(minf)) {
    if (!mediaHeader && MEDIA_HEADERS.has(child.type)) mediaHeader = child.data;
    else if (!dinf && child.type === 'dinf') dinf = child.data;
  }
  // A subtitle track is a CMAF subtitle track (ISO/IEC 23000-19 §9.4): `subt` handler, `sthd` header.
  const entry = firstEntry(stsd);
  if (entry !== undefined && SUBTITLE_ENTRIES.has(entry) && (handler !== 'subt' || mediaHeader?.toString('latin1', 4, 8) !== 'sthd')) {
    if (handler !== 'subt') handlerBox = subtitleHandler(hdlrPayload.length > 24 ? hdlrPayload.toString('utf8', 24).replace(/\0[\s\S]*$/, '') : '');
    handler = 'subt';
    mediaHeader = undefined;
  }
  // sgpd in stbl holds descriptions that sbgp in a fragment may index (1…0x10000); the rest of the
  // stbl describes samples, of which the header has none.
  const sampleGroups = [...childrenOf(stbl)].filter((c) => c.type === 'sgpd').map((c) => c.data);

  const newStbl = makeBox('stbl',
    stsd.data,
    makeFullBox('stts', 0, 0, u32s(0)), // entry_count 0
    makeFullBox('stsc', 0, 0, u32s(0)), // entry_count 0
    makeFullBox('stsz', 0, 0, u32s(0, 0)), // sample_size 0 (sizes per sample), sample_count 0
    makeFullBox('stco', 0, 0, u32s(0)), // entry_count 0
    ...sampleGroups);
  const newMinf = makeBox('minf', mediaHeader ?? defaultMediaHeader(handler), dinf ?? defaultDinf(), newStbl);
  const newMdia = makeBox('mdia', mdhd(ingestMdhd), handlerBox, ...(elng ? [elng.data] : []), newMinf);
  const newTrak = makeBox('trak', tkhd(ingestTkhd, CMAF_TRACK_ID), newMdia);
  const newMvex = makeBox('mvex', trex(findChild(moov, 'mvex'), trackId));
  const brands = BRANDS.map((b) => Buffer.from(b, 'latin1'));
  const ftyp = makeBox('ftyp', brands[0]!, u32s(0), ...brands); // major, minor_version 0, compatible
  return Buffer.concat([ftyp, makeBox('moov', mvhd(ingestMvhd, CMAF_TRACK_ID), newTrak, newMvex)]);
}
