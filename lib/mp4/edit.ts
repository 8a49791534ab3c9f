/**
 * Editing the boxes an encoder sends: the end-of-stream box, re-timing a movie fragment and
 * renumbering tracks. Every function returns fresh buffers and never writes into its input, which is
 * often a view into a file buffer or a buffer that another connection still resends.
 *
 * Layouts: ISO 14496-12 (mfhd, tfhd, tfdt, trun, tkhd, trex, mvhd), MS-SSTR 2.2.4.4 (tfxd).
 */
import { SmoothError } from '../errors';
import { TFHD, TRUN, UUID_TFRF, UUID_TFXD, parseTfdt, parseTfhd } from './boxes';
import { Box, childrenOf, printable } from './reader';
import { makeBox, makeFullBox, tfxdBox } from './writer';


/** The empty `mfra` that ends a live ingest stream (MS-SSTR 3.3.4.2: no tfra entries, no mfro). */
export function emptyMfra(): Buffer {
  return makeBox('mfra');
}

/** What {@link retimeMoof} changes. Unset fields keep the input's value. */
export interface RetimeOptions {
  /** New tfxd start time (track timescale). A tfxd is added when the traf has none. */
  time: bigint;
  /** New tfxd duration. */
  duration: bigint;
  /** Added to the tfdt, when the traf has one. */
  decodeTimeShift?: bigint;
  /** New `tfhd.track_ID`. */
  trackId?: number;
  /** New `mfhd.sequence_number`. */
  sequenceNumber?: number;
  /**
   * Bytes to add to the moof-relative `trun.data_offset`s besides the moof's own change of size; e.g.
   * minus the size of boxes that sat between the moof and its mdat in a file and are not sent.
   */
  dataOffsetDelta?: number;
}

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_FRAGMENT', message);
}

/**
 * Re-times a single-track movie fragment: writes a version-1 tfxd with the new time and duration
 * (replacing a version-0 one, whose 32-bit fields cannot hold live times), shifts a tfdt (written as
 * version 1), drops any tfrf (encoders send none; servers build their own) and optionally renumbers the
 * track and the sequence. When the moof changes size, every `trun.data_offset` is moved by the same
 * amount, so the offsets still point at the samples in the mdat that follows.
 *
 * @param moof - a `moof` with exactly one `traf`; not modified
 * @returns a new `moof`
 * @throws SmoothError ERR_BAD_FRAGMENT for several trafs, base-data-offset, or a first trun without data_offset
 */
export function retimeMoof(moof: Box, o: RetimeOptions): Buffer {
  const parts: Buffer[] = [];
  /** Offsets (in the new moof) of the data_offset fields to move. */
  const offsetFields: number[] = [];
  let pos = 8; // the new moof's header
  let trafs = 0;
  for (const child of childrenOf(moof)) {
    if (child.type === 'mfhd' && o.sequenceNumber !== undefined) {
      const mfhd = Buffer.from(child.data);
      mfhd.writeUInt32BE(o.sequenceNumber >>> 0, child.headerSize + 4);
      parts.push(mfhd);
    } else if (child.type === 'traf') {
      if (++trafs > 1) throw bad('moof carries several trafs; split it first');
      const traf = retimeTraf(child, o, pos, offsetFields);
      parts.push(traf);
    } else {
      parts.push(child.data);
    }
    pos += parts[parts.length - 1]!.length;
  }
  if (trafs === 0) throw bad('moof carries no traf');
  const out = makeBox('moof', ...parts);
  const delta = out.length - moof.data.length + (o.dataOffsetDelta ?? 0);
  if (delta !== 0) {
    for (const at of offsetFields) out.writeInt32BE(out.readInt32BE(at) + delta, at);
  }
  return out;
}

/** Rebuilds one traf; `start` is where it will sit in the new moof (to record trun data_offset positions). */
function retimeTraf(traf: Box, o: RetimeOptions, start: number, offsetFields: number[]): Buffer {
  const parts: Buffer[] = [];
  let pos = start + 8;
  let tfxdAt = -1;
  let firstTrun = true;
  for (const c of childrenOf(traf)) {
    let out: Buffer | undefined = c.data;
    if (c.type === 'tfhd') {
      const tfhd = parseTfhd(c);
      // An absolute file offset means nothing once the fragment leaves its file (PIFF forbids it anyway).
      if (tfhd.flags & TFHD.BASE_DATA_OFFSET) throw bad('tfhd base-data-offset is not supported');
      if (o.trackId !== undefined) {
        out = Buffer.from(c.data);
        out.writeUInt32BE(o.trackId >>> 0, c.headerSize + 4);
      }
    } else if (c.type === 'tfdt' && o.decodeTimeShift !== undefined) {
      const shifted = parseTfdt(c) + o.decodeTimeShift;
      const body = Buffer.alloc(8);
      body.writeBigUInt64BE(BigInt.asUintN(64, shifted));
      out = makeFullBox('tfdt', 1, 0, body);
    } else if (c.type === 'trun') {
      const flags = c.data.readUInt32BE(c.headerSize) & 0xffffff;
      if (flags & TRUN.DATA_OFFSET) offsetFields.push(pos + c.headerSize + 8);
      // Without data_offset the first run would start at the moof itself (single traf: base = moof).
      else if (firstTrun) throw bad('first trun has no data_offset');
      firstTrun = false;
    } else if (c.type === 'uuid' && c.uuid === UUID_TFXD) {
      tfxdAt = parts.length;
      out = tfxdBox(o.time, o.duration);
    } else if (c.type === 'uuid' && c.uuid === UUID_TFRF) {
      out = undefined;
    }
    // Everything else (sdtp, PIFF uuids, …) passes through; the server decides what it accepts.
    if (out) {
      parts.push(out);
      pos += out.length;
    }
  }
  if (tfxdAt === -1) parts.push(tfxdBox(o.time, o.duration));
  return makeBox('traf', ...parts);
}

/**
 * A copy of a `tkhd`, `trex` or `tfhd` box with another track_ID. tkhd keeps it after its times
 * (32- or 64-bit by version); trex and tfhd right after version and flags.
 */
export function withTrackId(box: Box, trackId: number): Buffer {
  const out = Buffer.from(box.data);
  const payload = box.headerSize;
  let at: number;
  if (box.type === 'tkhd') at = payload + 4 + (box.data[payload] === 1 ? 16 : 8);
  else if (box.type === 'trex' || box.type === 'tfhd') at = payload + 4;
  else throw new SmoothError('ERR_BAD_BOX', `cannot set the track_ID of a '${printable(box.type)}' box`);
  if (at + 4 > out.length) throw new SmoothError('ERR_BAD_BOX', `'${box.type}' box is truncated`);
  out.writeUInt32BE(trackId >>> 0, at);
  return out;
}

/**
 * A copy of a `trak` whose tkhd carries `trackId`. A `tref` is dropped: it names other tracks by their
 * old ids, which mean nothing in a moov built from a selection of tracks.
 */
export function renumberTrak(trak: Box, trackId: number): Buffer {
  const parts: Buffer[] = [];
  for (const c of childrenOf(trak)) {
    if (c.type === 'tref') continue;
    parts.push(c.type === 'tkhd' ? withTrackId(c, trackId) : c.data);
  }
  return makeBox('trak', ...parts);
}
